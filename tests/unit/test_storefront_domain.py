"""The storefronts' rules (R27, R30) on plain values: aliases, plan changes in any order,
branding checks, signed tokens."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from functions.core.errors import BadRequest, Conflict
from functions.storefront import domain, tokens
from functions.storefront.domain import (
    ACTIVATED,
    ACTIVE,
    DEACTIVATED,
    INACTIVE,
    STALE,
    SWITCHED,
    PlanChange,
    Storefront,
)

SECRET = "unit-secret-0123456789abcdef-0123456789"


def front(**changes: object) -> Storefront:
    base = Storefront(
        tenant_id="tnt_1",
        account_id="acc_lite",
        alias="cloud-lite",
        name="Cloud Lite",
        plan="standard",
        status=ACTIVE,
        created_at="2026-12-01T00:00:00Z",
        updated_at="2026-12-01T00:00:00Z",
        plan_subscription_id="sub_1",
        plan_version=1,
        version=1,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


# --- aliases ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name,alias",
    [
        ("Cloud Lite", "cloud-lite"),
        ("Müller & Söhne GmbH", "muller-sohne-gmbh"),
        ("  --Cloud--  ", "cloud"),
        ("Admin", "shop-admin"),
        ("X", "shop-x"),
        ("日本", "shop"),
    ],
)
def test_r30_an_alias_is_the_names_slug(name: str, alias: str) -> None:
    assert domain.slug(name) == alias
    assert domain.valid_alias(alias)


@given(st.text(max_size=200))
def test_r30_every_name_gets_valid_distinct_aliases(name: str) -> None:
    candidates = domain.alias_candidates(name)
    assert len(set(candidates)) == len(candidates) == domain.MAX_ALIAS_TRIES
    assert all(domain.valid_alias(a) for a in candidates), candidates


# --- plan changes (R27) -----------------------------------------------------------------------


def test_r27_a_first_live_plan_activates_a_storefront() -> None:
    assert domain.apply_plan(None, PlanChange("sub_1", 1, "free", True)) == (None, ACTIVATED)
    assert domain.apply_plan(None, PlanChange("sub_1", 1, "free", False))[1] == "unchanged"


def test_r27_switching_and_cancelling() -> None:
    switched, outcome = domain.apply_plan(front(), PlanChange("sub_1", 2, "free", True))
    assert outcome == SWITCHED and switched is not None and switched.plan == "free"
    assert not switched.branded  # Free shows no branding
    gone, outcome = domain.apply_plan(switched, PlanChange("sub_1", 3, "free", False))
    assert outcome == DEACTIVATED and gone is not None
    assert (gone.status, gone.plan) == (INACTIVE, "basic")
    back, outcome = domain.apply_plan(gone, PlanChange("sub_2", 1, "standard", True))
    assert outcome == ACTIVATED and back is not None and back.alias == "cloud-lite"


def test_r27_an_old_plans_cancellation_does_not_close_a_newer_plan() -> None:
    current = front(plan_subscription_id="sub_2", plan_version=1)
    assert domain.apply_plan(current, PlanChange("sub_1", 9, "free", False)) == (current, STALE)


changes = st.lists(
    st.tuples(st.sampled_from(["free", "standard"]), st.booleans()), min_size=1, max_size=8
)


@given(changes, st.randoms(use_true_random=False))
def test_r27_changes_in_any_order_end_at_the_newest(
    history: list[tuple[str, bool]], rnd: object
) -> None:
    """R18's rule for streams: replayed and out-of-order changes end where the newest says."""
    versions = [PlanChange("sub_1", v + 1, plan, live) for v, (plan, live) in enumerate(history)]
    delivered = versions + versions[: len(versions) // 2]  # some replayed
    rnd.shuffle(delivered)  # type: ignore[attr-defined]
    state: Storefront | None = front(plan="free", status=INACTIVE, plan_version=0)
    for change in delivered:
        updated, _ = domain.apply_plan(state, change)
        state = updated or state
    newest = versions[-1]
    assert state is not None and state.plan_version == newest.version
    assert state.serving == newest.live
    assert state.plan == (newest.plan if newest.live else "basic")


# --- branding ---------------------------------------------------------------------------------


def test_r30_colours_keep_white_text_readable() -> None:
    assert domain.check_color("#1F4E8C", "primary_color") == "#1f4e8c"
    with pytest.raises(BadRequest) as low:
        domain.check_color("#ffff00", "accent_color")
    assert low.value.code == "low_contrast" and low.value.field == "accent_color"
    with pytest.raises(BadRequest):
        domain.check_color("blue", "primary_color")
    assert domain.contrast_with_white("#000000") == pytest.approx(21.0)


def test_r30_a_logo_is_a_small_png_or_jpeg() -> None:
    assert domain.logo_type(b"\x89PNG\r\n\x1a\n" + b"0" * 10) == "image/png"
    assert domain.logo_type(b"\xff\xd8\xff\xe0" + b"0" * 10) == "image/jpeg"
    for data, code in (
        (b"<svg onload=alert(1)>", "unsupported_type"),
        (b"", "missing_field"),
        (b"\x89PNG\r\n\x1a\n" + b"0" * domain.MAX_LOGO_BYTES, "too_large"),
    ):
        with pytest.raises(BadRequest) as refused:
            domain.logo_type(data)
        assert refused.value.code == code and refused.value.field == "logo"


def test_r27_branding_needs_standard() -> None:
    domain.can_brand(front())
    with pytest.raises(Conflict):
        domain.can_brand(front(plan="free"))


@pytest.mark.parametrize("host", ["shop.example.com", "SHOP.Example.com."])
def test_r30_a_custom_domain_is_a_host_name(host: str) -> None:
    assert domain.check_domain(host) == "shop.example.com"


@pytest.mark.parametrize("host", ["localhost", "shop", "-a.example.com", "a..b.com", "a b.com"])
def test_r30_a_custom_domain_must_be_a_host_name(host: str) -> None:
    with pytest.raises(BadRequest):
        domain.check_domain(host)


# --- tokens -----------------------------------------------------------------------------------


def link(expires: int = 2_000) -> tokens.LoginLink:
    return tokens.LoginLink(
        "tnt_1", "acc_x", "customer", "it@x.example", "cloud-lite", "n1", expires
    )


def test_r30_a_signed_link_reads_back_until_it_expires() -> None:
    token = tokens.sign(SECRET, tokens.LINK, link().payload())
    assert tokens.LoginLink.of(tokens.verify(SECRET, tokens.LINK, token, 1_999)) == link()
    with pytest.raises(tokens.InvalidToken) as expired:
        tokens.verify(SECRET, tokens.LINK, token, 2_000)
    assert expired.value.reason == "expired"


def test_r30_a_token_of_another_purpose_or_key_or_changed_is_forged() -> None:
    token = tokens.sign(SECRET, tokens.LINK, link().payload())
    body, mac = token.split(".")
    for forged, secret, purpose in (
        (token, SECRET, tokens.SESSION),  # a link is no session
        (token, SECRET[::-1], tokens.LINK),  # another platform's
        (body[:-2] + "xx." + mac, SECRET, tokens.LINK),  # changed
        ("x" * 5000, SECRET, tokens.LINK),
        ("no-dot", SECRET, tokens.LINK),
    ):
        with pytest.raises(tokens.InvalidToken) as refused:
            tokens.verify(secret, purpose, forged, 0)
        assert refused.value.reason == "forged"


@given(st.text(max_size=300))
def test_r30_any_string_is_refused_as_forged_never_an_error(garbage: str) -> None:
    with pytest.raises(tokens.InvalidToken):
        tokens.verify(SECRET, tokens.SESSION, garbage, 0)


def test_r30_csrf_tokens_are_bound_to_the_visitor() -> None:
    token = tokens.csrf_token(SECRET, "seed-a")
    assert tokens.csrf_ok(SECRET, "seed-a", token)
    assert not tokens.csrf_ok(SECRET, "seed-b", token)
    assert not tokens.csrf_ok(SECRET, "seed-a", None)
    assert not tokens.csrf_ok(SECRET, None, token)
