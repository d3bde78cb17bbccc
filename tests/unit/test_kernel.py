"""The shared kernel: money (R23), ids, cursors, tokens (§9, R28), settings."""

from __future__ import annotations

import time
from decimal import Decimal

import jwt
import pytest
from hypothesis import given
from hypothesis import strategies as st

from functions.core import auth
from functions.core.errors import BadRequest, Unauthorized
from functions.core.ids import derived_id, new_id
from functions.core.money import format_money, parse_price, round_money
from functions.core.pagination import decode_cursor, encode_cursor
from functions.core.settings import Settings, SettingsError

SECRET = "unit-secret-0123456789abcdef-0123456789"


def test_r23_half_up_to_the_minor_unit() -> None:
    assert round_money(Decimal("2.345"), "EUR") == Decimal("2.35")
    assert round_money(Decimal("2.344"), "EUR") == Decimal("2.34")
    assert round_money(Decimal("-2.345"), "EUR") == Decimal("-2.35")
    assert round_money(Decimal("1234.5"), "JPY") == Decimal("1235")
    assert round_money(Decimal("1.0005"), "KWD") == Decimal("1.001")
    assert format_money(Decimal("12.3"), "EUR") == "12.30"


@pytest.mark.parametrize("value", [1.5, True, None, "abc", "-1.00", "NaN", "Infinity", "1.001"])
def test_r23_prices_are_decimal_strings_never_floats(value: object) -> None:
    with pytest.raises(BadRequest) as error:
        parse_price(value, "EUR", field="price")
    assert error.value.field == "price"


def test_r23_parse_price_keeps_exact_decimals() -> None:
    assert parse_price("0.10", "EUR", field="p") + parse_price("0.20", "EUR", field="p") == Decimal(
        "0.30"
    )
    with pytest.raises(BadRequest):
        parse_price("1.5", "JPY", field="p")


def test_unsupported_currency_is_a_400_naming_currency() -> None:
    with pytest.raises(BadRequest) as error:
        round_money(Decimal(1), "XXX")
    assert error.value.field == "currency"


def test_ids_are_time_ordered_and_derived_ids_deterministic() -> None:
    first = new_id("sub")
    time.sleep(0.002)
    assert new_id("sub") > first
    assert derived_id("prd", "a", "b") == derived_id("prd", "a", "b") != derived_id("prd", "ab", "")


@given(st.text(min_size=1, max_size=40))
def test_cursor_round_trip_and_tamper_refusal(value: str) -> None:
    key = {"tenant_id": {"S": "tnt_a"}, "id": {"S": value[:40] or "x"}}
    names = frozenset(key)
    assert decode_cursor(encode_cursor(key), {"tenant_id": {"S": "tnt_a"}}, names) == key
    with pytest.raises(BadRequest) as error:  # the same cursor on another tenant's list
        decode_cursor(encode_cursor(key), {"tenant_id": {"S": "tnt_b"}}, names)
    assert error.value.field == "cursor"


@pytest.mark.parametrize("cursor", ["%%%", "bm90IGpzb24", "e30", "WyJ4Il0"])
def test_malformed_cursors_are_400(cursor: str) -> None:
    with pytest.raises(BadRequest):
        decode_cursor(cursor, {"tenant_id": {"S": "t"}}, frozenset({"tenant_id", "id"}))


def test_r28_tokens_round_trip_with_scope() -> None:
    token = auth.issue_token(SECRET, sub="u1", role="customer", tenant_id="t1", account_id="a1")
    principal = auth.authenticate(f"Bearer {token}", SECRET)
    assert principal == auth.Principal("u1", "customer", "t1", "a1")


@pytest.mark.parametrize(
    "make",
    [
        lambda: None,
        lambda: "Basic abc",
        lambda: (
            "Bearer "
            + auth.issue_token(
                "another-secret-0123456789abcdef-xx", sub="u", role="tenant_admin", tenant_id="t"
            )
        ),
        lambda: (
            "Bearer "
            + auth.issue_token(SECRET, sub="u", role="tenant_admin", tenant_id="t", ttl_seconds=-10)
        ),
        lambda: (
            "Bearer "
            + jwt.encode(
                {
                    "sub": "u",
                    "role": "tenant_admin",
                    "tenant_id": "t",
                    "exp": int(time.time()) + 60,
                },
                None,
                algorithm="none",
            )
        ),
        lambda: "Bearer " + auth.issue_token(SECRET, sub="u", role="root", tenant_id="t"),
        lambda: "Bearer " + auth.issue_token(SECRET, sub="u", role="customer", tenant_id="t"),
        lambda: "Bearer " + auth.issue_token(SECRET, sub="u", role="tenant_admin"),
        lambda: "Bearer " + auth.issue_token(SECRET, sub="u", role="platform_admin", tenant_id="t"),
    ],
    ids=[
        "missing",
        "basic",
        "forged",
        "expired",
        "alg-none",
        "role",
        "no-account",
        "no-tenant",
        "platform-with-tenant",
    ],
)
def test_r28_bad_tokens_are_401(make) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(Unauthorized):
        auth.authenticate(make(), SECRET)


def test_settings_have_no_silent_defaults() -> None:
    env = {
        "BSS_TABLE_PREFIX": "p",
        "AWS_REGION": "eu-west-1",
        "BSS_JWT_SECRET": SECRET,
        "BSS_BILLING_STATE_MACHINE": "arn:aws:states:eu-west-1:1:stateMachine:p-billing-run",
        "BSS_DOCUMENTS_BUCKET": "p-documents",
        "BSS_MAIL_FROM": "billing@example.com",
        "BSS_PUBLIC_URL": "https://api.example.com/",
    }
    settings = Settings.from_env(env)
    assert (settings.table_prefix, settings.region, settings.aws_endpoint) == (
        "p",
        "eu-west-1",
        None,
    )
    assert settings.public_url == "https://api.example.com"  # one form for building links
    for missing in env:
        with pytest.raises(SettingsError, match=missing if missing != "AWS_REGION" else "REGION"):
            Settings.from_env({k: v for k, v in env.items() if k != missing})
    with pytest.raises(SettingsError, match="32"):
        Settings.from_env({**env, "BSS_JWT_SECRET": "short"})
