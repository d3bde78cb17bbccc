"""R31: commitment terms (cancellation windows, seat reductions, scheduled downgrades), pure and
hand-computed. The clock is Europe/Berlin's; a window counts hours from the purchase instant."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from functions.core.errors import ApiError, BadRequest, Conflict
from functions.orders import domain
from functions.orders.domain import ProductRef, Subscription
from functions.pricelist import domain as catalogue
from functions.pricelist.domain import Commitment

ZONE = "Europe/Berlin"
E3 = ProductRef("prd_e3", "O365-E3", "Office 365 E3", "license", ["monthly", "annual"], [])
E5 = ProductRef("prd_e5", "O365-E5", "Office 365 E5", "license", ["monthly", "annual"], [])
E1 = ProductRef("prd_e1", "O365-E1", "Office 365 E1", "license", ["monthly", "annual"], [])
NCE = Commitment("P1Y", 168, "prorated", "refused", None, "within_window")
PURCHASE = datetime(2026, 1, 1, 12, tzinfo=UTC)  # 13:00 in Berlin; the term is 2026 (P1Y)


def at(hours: float) -> datetime:
    return PURCHASE + timedelta(hours=hours)


def day(n: int) -> datetime:
    """Noon UTC of the n-th day of the term (day 1 = the purchase day)."""
    return PURCHASE + timedelta(days=n - 1)


def today(moment: datetime) -> date:
    return moment.astimezone(__import__("zoneinfo").ZoneInfo(ZONE)).date()


def buy(
    commitment: Commitment | None = NCE, *, quantity: int = 10, cycle: str = "annual"
) -> Subscription:
    return domain.new_subscription(
        "sub_1",
        tenant_id="tnt_1",
        account_id="acc_1",
        reseller_account_id=None,
        product=E3,
        quantity=quantity,
        billing_cycle=cycle,
        term=None,
        start=date(2026, 1, 1),
        today=date(2026, 1, 1),
        auto_renew=True,
        characteristics={},
        currency="EUR",
        unit_price=Decimal("240.00"),
        price_list_id="prl_1",
        parent=None,
        now="2026-01-01T12:00:00Z",
        commitment=commitment,
        at=PURCHASE,
        time_zone=ZONE,
    )


def quantity(sub: Subscription, new: int, moment: datetime) -> Subscription:
    return domain.change_quantity(sub, new, today(moment), "x", at=moment, time_zone=ZONE)


# --- the purchase ----------------------------------------------------------------------------


def test_r31_the_purchase_records_the_policy_its_instant_and_the_opening_seats() -> None:
    sub = buy()
    assert sub.commitment == NCE
    assert sub.term == "annual" and sub.end_date == "2026-12-31"
    assert sub.purchased_at == "2026-01-01T12:00:00Z"
    assert sub.seat_additions == [
        {"term": 1, "quantity": 10, "at": "2026-01-01T12:00:00Z", "until": "2026-01-08T12:00:00Z"}
    ]


def test_r31_a_three_year_commitment_is_a_triennial_term() -> None:
    sub = buy(replace(NCE, term="P3Y"))
    assert (sub.term, sub.end_date) == ("triennial", "2028-12-31")


def test_r31_a_term_other_than_the_commitment_is_refused_naming_term() -> None:
    with pytest.raises(BadRequest) as refused:
        domain.new_subscription(
            "sub_1",
            tenant_id="t",
            account_id="a",
            reseller_account_id=None,
            product=E3,
            quantity=1,
            billing_cycle="monthly",
            term="monthly",
            start=date(2026, 1, 1),
            today=date(2026, 1, 1),
            auto_renew=True,
            characteristics={},
            currency="EUR",
            unit_price=Decimal("20"),
            price_list_id="p",
            parent=None,
            now="x",
            commitment=NCE,  # P1Y billed monthly: the term is annual
            at=PURCHASE,
            time_zone=ZONE,
        )
    assert refused.value.field == "term"


# --- cancellation -----------------------------------------------------------------------------


def test_r31_cancel_at_167_hours_is_allowed_with_the_prorated_refund() -> None:
    assert domain.cancel_terms(buy(), at(167), ZONE) == domain.CancelTerms(refund="prorated")


def test_r31_cancel_at_169_hours_is_409_naming_the_term_end() -> None:
    with pytest.raises(Conflict) as refused:
        domain.cancel_terms(buy(), at(169), ZONE)
    assert refused.value.code == "outside_cancellation_window"
    assert refused.value.details == {
        "possible_on": "2026-12-31",
        "term_end": "2026-12-31",
        "window_closed_at": "2026-01-08T12:00:00Z",
    }


def test_r31_the_window_is_half_open_at_168_hours() -> None:
    with pytest.raises(Conflict):
        domain.cancel_terms(buy(), at(168), ZONE)
    assert domain.cancel_terms(buy(), at(168) - timedelta(seconds=1), ZONE).refund == "prorated"


def test_r31_a_full_refund_policy_says_so() -> None:
    terms = domain.cancel_terms(buy(replace(NCE, refund="full")), at(1), ZONE)
    assert terms == domain.CancelTerms(refund="full")


def test_r31_on_the_terms_last_day_a_cancellation_is_possible_without_refund() -> None:
    moment = datetime(2026, 12, 31, 9, tzinfo=UTC)
    assert domain.cancel_terms(buy(), moment, ZONE) == domain.CancelTerms()


def test_r31_a_penalty_policy_cancels_after_the_window_and_owes_the_percentage() -> None:
    """240.00 × 10 seats × 1 cycle a term × 183 days left (Jul 2 – Dec 31) / 365 × 25 %
    = 300.8219… → 300.82."""
    policy = replace(NCE, after_window="penalty", penalty_percent=Decimal("25"))
    terms = domain.cancel_terms(buy(policy), datetime(2026, 7, 2, 10, tzinfo=UTC), ZONE)
    assert terms == domain.CancelTerms(penalty=Decimal("300.82"))


def test_r31_an_annual_term_billed_monthly_counts_twelve_cycles_in_its_penalty() -> None:
    """20.00 a month × 1 seat × 12 × 365/365 (cancelled on day 1 after a 0 h window) × 10 %."""
    policy = Commitment("P1Y", 0, "prorated", "penalty", Decimal("10"), "within_window")
    sub = replace(buy(policy, quantity=1, cycle="monthly"), unit_price=Decimal("20.00"))
    terms = domain.cancel_terms(sub, datetime(2026, 1, 1, 15, tzinfo=UTC), ZONE)
    assert terms.penalty == Decimal("24.00")


def test_r31_a_cancelled_subscription_answers_invalid_state_not_the_window() -> None:
    gone = domain.cancel(buy(), date(2026, 1, 2), "x")
    assert domain.cancel_terms(gone, at(500), ZONE) == domain.CancelTerms()
    with pytest.raises(Conflict) as refused:
        domain.cancel(gone, today(at(500)), "x")
    assert refused.value.code == "invalid_state"


def test_r31_flexible_products_cancel_any_time_without_terms() -> None:
    assert domain.cancel_terms(buy(None), at(5000), ZONE) == domain.CancelTerms()


def test_r31_a_renewal_opens_a_new_window_from_its_instant() -> None:
    renewal = datetime(2026, 12, 20, 8, tzinfo=UTC)
    sub = domain.renew(buy(), today(renewal), "x", at=renewal, time_zone=ZONE)
    assert sub.renewals == [{"term": 2, "at": "2026-12-20T08:00:00Z"}]
    # term 2 opens on Jan 1 (Berlin midnight = Dec 31 23:00 UTC), later than the renewal
    assert domain.cancel_terms(sub, datetime(2027, 1, 7, 22, tzinfo=UTC), ZONE).refund
    with pytest.raises(Conflict):
        domain.cancel_terms(sub, datetime(2027, 1, 8, 0, tzinfo=UTC), ZONE)


def test_r31_an_automatic_renewal_opens_its_window_at_the_terms_first_instant() -> None:
    """Nothing writes an auto-renewing term: its window runs from Jan 1 2027 00:00 Berlin."""
    sub = buy()
    view = domain.commitment_view(sub, datetime(2027, 1, 3, tzinfo=UTC), ZONE)
    assert view == {
        "term_end": "2027-12-31",
        "cancellable_until": "2027-01-07T23:00:00Z",
        "cancellable_from": None,
        "refundable_quantity": [{"quantity": 10, "until": "2027-01-07T23:00:00Z"}],
    }


# --- seats --------------------------------------------------------------------------------------


def test_r31_a_seat_added_on_day_10_may_go_on_day_12_not_on_day_20_the_original_seats_stay() -> (
    None
):
    sub = quantity(buy(), 15, day(10))  # 5 seats, refundable until day 17 noon
    assert domain.refundable(sub, day(11), ZONE) == [domain.Refundable(5, "2026-01-17T12:00:00Z")]
    on_12 = quantity(sub, 12, day(12))  # 3 of the 5: allowed
    assert on_12.quantity == 12
    assert domain.refundable(on_12, day(12), ZONE) == [domain.Refundable(2, "2026-01-17T12:00:00Z")]
    with pytest.raises(Conflict) as below:  # the original 10 are past their window
        quantity(sub, 9, day(12))
    assert below.value.code == "seat_reduction_not_allowed"
    assert below.value.details["minimum_quantity"] == 10
    with pytest.raises(Conflict) as late:
        quantity(sub, 12, day(20))
    assert late.value.code == "seat_reduction_not_allowed"
    assert late.value.details == {
        "field": "quantity",
        "possible_on": "2026-12-31",
        "term_end": "2026-12-31",
        "quantity": 15,
        "minimum_quantity": 15,
        "refundable_quantity": 0,
    }
    assert quantity(sub, 16, day(20)).quantity == 16  # increases any time


def test_r31_inside_the_purchase_window_every_seat_may_go() -> None:
    assert quantity(buy(), 1, at(100)).quantity == 1


def test_r31_any_time_seat_reduction_frees_reductions() -> None:
    assert quantity(buy(replace(NCE, seat_reduction="any_time")), 2, day(200)).quantity == 2


def test_r31_on_the_terms_last_day_seats_may_go() -> None:
    assert quantity(buy(), 3, datetime(2026, 12, 31, 10, tzinfo=UTC)).quantity == 3


def test_r31_flexible_quantity_changes_are_unchanged() -> None:
    sub = quantity(buy(None), 1, day(200))
    assert sub.quantity == 1 and sub.seat_additions == []


# --- product changes and auto-renew -----------------------------------------------------------


def test_r31_an_upgrade_mid_term_takes_effect_at_once() -> None:
    updated, kind = domain.change_product(
        buy(), E5, Decimal("400.00"), domain.UPGRADE, date(2026, 6, 1), "x"
    )
    assert (kind, updated.product_id, updated.unit_price) == ("upgrade", "prd_e5", Decimal("400"))
    assert updated.scheduled_change is None


def test_r31_a_downgrade_waits_for_the_renewal_which_applies_it() -> None:
    sub, kind = domain.change_product(
        buy(), E1, Decimal("100.00"), domain.DOWNGRADE, date(2026, 6, 1), "x"
    )
    assert kind == "downgrade"
    assert (sub.product_id, sub.unit_price) == ("prd_e3", Decimal("240.00"))
    assert sub.scheduled_change == {
        "type": "downgrade",
        "on": "2027-01-01",
        "product_id": "prd_e1",
        "origin_tenant_id": None,
        "origin_product_id": None,
        "unit_price": "100.00",
    }
    moment = datetime(2026, 12, 30, 9, tzinfo=UTC)
    renewed = domain.renew(sub, today(moment), "y", at=moment, time_zone=ZONE)
    assert (renewed.product_id, renewed.unit_price) == ("prd_e1", Decimal("100.00"))
    assert renewed.scheduled_change is None and renewed.end_date == "2027-12-31"


def test_r31_an_upgrade_replaces_a_downgrade_waiting_for_the_renewal() -> None:
    sub, _ = domain.change_product(
        buy(), E1, Decimal("100.00"), domain.DOWNGRADE, date(2026, 6, 1), "x"
    )
    upgraded, _ = domain.change_product(
        sub, E5, Decimal("400.00"), domain.UPGRADE, date(2026, 7, 1), "x"
    )
    assert upgraded.product_id == "prd_e5" and upgraded.scheduled_change is None


def test_r31_a_flexible_downgrade_is_immediate() -> None:
    sub, _ = domain.change_product(
        buy(None), E1, Decimal("100.00"), domain.DOWNGRADE, date(2026, 6, 1), "x"
    )
    assert sub.product_id == "prd_e1" and sub.scheduled_change is None


def test_r31_a_scheduled_order_leaves_the_history_alone() -> None:
    sub, _ = domain.change_product(
        buy(), E1, Decimal("100.00"), domain.DOWNGRADE, date(2026, 6, 1), "x"
    )
    order = replace(
        domain.order_for(
            "ord_1", "downgrade", sub, E1, effective=date(2027, 1, 1), now="x", created_by="u"
        ),
        status=domain.SCHEDULED,
    )
    assert domain.recorded(sub, order).history == sub.history


def test_r31_auto_renew_may_be_turned_off_any_time() -> None:
    sub = domain.set_auto_renew(buy(), False, date(2026, 8, 1), "x")  # long past the window
    assert not sub.auto_renew and sub.end_date == "2026-12-31"


def test_r31_auto_renew_off_in_a_term_renewed_by_itself_ends_with_that_term() -> None:
    sub = domain.set_auto_renew(buy(), False, date(2027, 3, 1), "x")
    assert (sub.terms, sub.end_date, sub.status_on(date(2027, 3, 1))) == (
        2,
        "2027-12-31",
        "active",
    )


def test_r31_the_view_after_the_window_names_the_day_it_becomes_possible() -> None:
    sub = quantity(buy(), 12, day(10))
    assert domain.commitment_view(sub, day(12), ZONE) == {
        "term_end": "2026-12-31",
        "cancellable_until": "2026-01-08T12:00:00Z",
        "cancellable_from": "2026-12-31",
        "refundable_quantity": [{"quantity": 2, "until": "2026-01-17T12:00:00Z"}],
    }


# --- the product's policy (R31, R3, R4, R5) ---------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({"term": "P2Y", "cancellation_window_hours": 1}, "commitments.annual.term"),
        ({"term": "P1M", "cancellation_window_hours": 1}, "commitments.annual.term"),
        (
            {"term": "P1Y", "cancellation_window_hours": -1},
            "commitments.annual.cancellation_window_hours",
        ),
        (
            {"term": "P1Y", "cancellation_window_hours": 8761},
            "commitments.annual.cancellation_window_hours",
        ),
        (
            {"term": "P1Y", "cancellation_window_hours": 1, "refund": "half"},
            "commitments.annual.refund",
        ),
        (
            {"term": "P1Y", "cancellation_window_hours": 1, "after_window": "penalty"},
            "commitments.annual.penalty_percent",
        ),
        (
            {
                "term": "P1Y",
                "cancellation_window_hours": 1,
                "after_window": "penalty",
                "penalty_percent": "0",
            },
            "commitments.annual.penalty_percent",
        ),
        (
            {"term": "P1Y", "cancellation_window_hours": 1, "penalty_percent": "10"},
            "commitments.annual.penalty_percent",
        ),
        (
            {"term": "P1Y", "cancellation_window_hours": 1, "seat_reduction": "never"},
            "commitments.annual.seat_reduction",
        ),
    ],
)
def test_r31_a_bad_commitment_is_400_naming_its_field(raw: dict[str, object], field: str) -> None:
    with pytest.raises(BadRequest) as refused:
        catalogue.new_commitments(["monthly", "annual"], {"annual": raw})
    assert refused.value.field == field


def test_r31_a_commitment_for_a_missing_cycle_is_refused() -> None:
    with pytest.raises(BadRequest) as refused:
        catalogue.new_commitments(
            ["monthly"], {"annual": {"term": "P1Y", "cancellation_window_hours": 1}}
        )
    assert refused.value.field == "commitments.annual"


def own_product() -> catalogue.Product:
    return catalogue.new_product(
        "prd_1",
        "tnt_p",
        sku="NCE-E3",
        name="E3",
        type="license",
        billing_cycles=["monthly", "annual"],
        unit="user",
        created_at="x",
        currency="EUR",
        costs=None,
        addon_for=[],
        commitments={"annual": {"term": "P1Y", "cancellation_window_hours": 168}},
    )


def test_r31_r3_r4_a_copy_keeps_its_providers_policy_and_may_not_change_it() -> None:
    source = own_product()
    assert source.commitments == {"annual": NCE}
    copy = catalogue.copy_for_child(
        source, "tnt_c", "prd_c", {"annual": Decimal("200")}, [], created_at="x"
    )
    assert copy.commitments == {"annual": NCE}
    with pytest.raises(Conflict) as refused:
        catalogue.update_product(copy, {"commitments": None})
    assert refused.value.code == "inherited_product"


@pytest.mark.parametrize("mode", ["full", "partial"])
def test_r31_r5_a_copy_follows_its_providers_policy_in_either_mode(mode: str) -> None:
    source = own_product()
    copy = replace(
        catalogue.copy_for_child(
            source, "tnt_c", "prd_c", {"annual": Decimal("200")}, [], created_at="x"
        ),
        source_version=1,
    )
    shorter = replace(
        source, commitments={"annual": replace(NCE, cancellation_window_hours=72)}, version=5
    )
    entry = catalogue.Price("tnt_p", "prl", "prd_1", "annual", "x", price=Decimal("200"), version=1)
    offered = catalogue.Offered(shorter, {"annual": entry}, "EUR")
    updated = catalogue.rederive_copy(
        offered,
        copy,
        child_tenant_id="tnt_c",
        copy_id="prd_c",
        addon_for=[],
        propagation=catalogue.Propagation(mode=mode),
        now="y",
    )
    assert updated is not None
    assert updated.commitments["annual"].cancellation_window_hours == 72


def test_r31_dropping_a_cycle_drops_its_commitment() -> None:
    updated = catalogue.update_product(own_product(), {"billing_cycles": ["monthly"]})
    assert updated.commitments == {}


# --- property: nothing outside the policy changes anything --------------------------------------

ACTIONS = st.lists(
    st.tuples(
        st.sampled_from(["quantity", "cancel", "downgrade", "upgrade", "auto_renew", "renew"]),
        st.integers(0, 24 * 400),  # hours after the purchase
        st.integers(1, 30),
    ),
    max_size=12,
)


@settings(max_examples=150, deadline=None)
@given(ACTIONS, st.sampled_from(["within_window", "any_time"]), st.integers(0, 400))
def test_r31_property_refused_actions_change_nothing_and_committed_seats_stay(
    actions: list[tuple[str, int, int]], reduction: str, hours: int
) -> None:
    """Whatever the sequence: an action refused under R31 raises before any change (the
    subscription in hand stays as it was); the seats a reduction takes are never more than the
    ones still inside their windows (or it is free: any_time, or the term's last day); the
    refundable seats never exceed the quantity."""
    sub = buy(replace(NCE, cancellation_window_hours=hours, seat_reduction=reduction))
    last = PURCHASE
    for kind, offset, amount in sorted(actions, key=lambda a: a[1]):
        moment = max(last, at(offset))
        last = moment
        day_ = today(moment)
        if sub.status_on(day_) not in (domain.ACTIVE, domain.INACTIVE):
            break
        before = sub
        open_seats = sum(r.quantity for r in domain.refundable(sub, moment, ZONE))
        assert open_seats <= sub.quantity
        term = domain.term_on(sub, day_)
        try:
            if kind == "quantity" and amount != sub.quantity:
                sub = quantity(sub, amount, moment)
                if amount < before.quantity and reduction == "within_window" and day_ < term.end:
                    assert before.quantity - amount <= open_seats
            elif kind == "cancel":
                terms = domain.cancel_terms(sub, moment, ZONE)
                window_closes = domain.window(sub, term, ZONE)[1]
                assert (terms.refund is not None) == (moment < window_closes)
                sub = domain.cancel(sub, day_, "x")
            elif kind == "downgrade":
                sub, _ = domain.change_product(sub, E1, Decimal("1"), "downgrade", day_, "x")
                assert sub.product_id == before.product_id
            elif kind == "upgrade":
                sub, _ = domain.change_product(sub, E5, Decimal("999"), "upgrade", day_, "x")
            elif kind == "auto_renew":
                sub = domain.set_auto_renew(sub, not sub.auto_renew, day_, "x")
            elif kind == "renew":
                sub = domain.renew(sub, day_, "x", at=moment, time_zone=ZONE)
        except Conflict as refused:
            assert sub == before
            if refused.code in ("outside_cancellation_window", "seat_reduction_not_allowed"):
                assert refused.details["possible_on"] == term.end.isoformat()
                if refused.code == "seat_reduction_not_allowed":
                    assert before.quantity - amount > open_seats
        except ApiError:
            assert sub == before
