"""R31 co-terming (issue 15, item 4), pure and hand-computed: a new subscription's first term
aligned to another subscription's term end or to its month's end; a shorter first term, billed
prorated (R22), renewing on the aligned day into full terms (R8). Europe/Berlin."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from functions.core.errors import BadRequest, Conflict
from functions.invoices import domain as billing
from functions.orders import domain
from functions.orders.coterm import Coterm, check_coterm, month_end
from functions.orders.domain import ProductRef, Subscription
from functions.pricelist.domain import Commitment

ZONE = "Europe/Berlin"
E3 = ProductRef("prd_e3", "O365-E3", "Office 365 E3", "license", ["monthly", "annual"], [])
NCE = Commitment("P1Y", 168, "prorated", "refused", None, "within_window")
BOUGHT = datetime(2026, 3, 15, 11, tzinfo=UTC)  # noon in Berlin


def buy(
    start: date,
    *,
    coterm: Coterm | None = None,
    commitment: Commitment | None = NCE,
    cycle: str = "annual",
    price: str = "240.00",
    quantity: int = 10,
    auto_renew: bool = True,
    sub_id: str = "sub_new",
) -> Subscription:
    return domain.new_subscription(
        sub_id,
        tenant_id="tnt_1",
        account_id="acc_1",
        reseller_account_id=None,
        product=E3,
        quantity=quantity,
        billing_cycle=cycle,
        term=None,
        start=start,
        today=start,
        auto_renew=auto_renew,
        characteristics={},
        currency="EUR",
        unit_price=Decimal(price),
        price_list_id="prl_1",
        parent=None,
        now="2026-03-15T11:00:00Z",
        commitment=commitment,
        at=BOUGHT if start == date(2026, 3, 15) else None,
        time_zone=ZONE,
        coterm=coterm,
    )


#: the existing annual subscription of the account: 2026-01-01 to 2026-12-31
EXISTING = buy(date(2026, 1, 1), sub_id="sub_old")


def cotermed() -> Subscription:
    """Bought 2026-03-15, aligned with ``EXISTING``'s term: its first term ends 2026-12-31."""
    start = date(2026, 3, 15)
    return buy(start, coterm=domain.coterm_with(EXISTING, start, start))


# --- the first term --------------------------------------------------------------------------


def test_r31_coterm_with_a_subscription_ends_the_first_term_with_its_term() -> None:
    sub = cotermed()
    assert sub.start_date == "2026-03-15"
    assert sub.end_date == sub.coterm_end == "2026-12-31"
    first = domain.term_bounds(sub, 1)
    assert (first.start, first.end, first.full_start) == (
        date(2026, 3, 15),
        date(2026, 12, 31),
        date(2026, 1, 1),
    )
    assert first.full_days == 365  # R22's denominator: the whole term, not its 292 days


def test_r31_r8_a_cotermed_subscription_renews_on_the_aligned_day_into_full_terms() -> None:
    sub = cotermed()
    second, third = domain.term_bounds(sub, 2), domain.term_bounds(sub, 3)
    assert (second.start, second.end) == (date(2027, 1, 1), date(2027, 12, 31))
    assert (third.start, third.end) == (date(2028, 1, 1), date(2028, 12, 31))
    assert domain.term_on(sub, date(2026, 12, 31)).number == 1
    assert domain.term_on(sub, date(2027, 1, 1)).number == 2
    renewed = domain.renew(sub, date(2026, 12, 20), "x", time_zone=ZONE)
    assert (renewed.terms, renewed.end_date) == (2, "2027-12-31")
    assert renewed.seat_additions[-1]["term"] == 2


def test_r31_coterm_to_the_month_end_with_monthly_terms() -> None:
    """Started 2026-03-10 monthly, aligned to 2026-03-31: terms Mar 10–31, April, May …"""
    start = date(2026, 3, 10)
    sub = buy(start, coterm=Coterm(month_end(start)), commitment=None, cycle="monthly")
    assert (sub.end_date, sub.coterm_end) == ("2026-03-31", "2026-03-31")
    assert domain.term_bounds(sub, 1).full_start == date(2026, 3, 1)
    assert [(t.start, t.end) for t in (domain.term_bounds(sub, n) for n in (2, 3))] == [
        (date(2026, 4, 1), date(2026, 4, 30)),
        (date(2026, 5, 1), date(2026, 5, 31)),
    ]


def test_r31_an_aligned_day_that_is_a_full_terms_end_is_no_coterming() -> None:
    start = date(2026, 3, 1)
    sub = buy(start, coterm=Coterm(month_end(start)), commitment=None, cycle="monthly")
    assert (sub.end_date, sub.coterm_end) == ("2026-03-31", None)


def test_r31_r8_a_cotermed_term_that_does_not_renew_expires_after_the_aligned_day() -> None:
    sub = replace(cotermed(), auto_renew=False)
    assert sub.status_on(date(2026, 12, 31)) == domain.ACTIVE
    assert sub.status_on(date(2027, 1, 1)) == domain.EXPIRED


# --- the rules on the shorter first term ------------------------------------------------------


def test_r31_the_view_and_a_scheduled_downgrade_use_the_aligned_end() -> None:
    sub = cotermed()
    view = domain.commitment_view(sub, datetime(2026, 4, 1, 10, tzinfo=UTC), ZONE)
    assert view["term_end"] == "2026-12-31" and view["cancellable_from"] == "2026-12-31"
    assert view["cancellable_until"] == "2026-03-22T11:00:00Z"  # 168 h after the purchase
    cheaper = ProductRef("prd_e1", "O365-E1", "E1", "license", ["annual"], [])
    down, _ = domain.change_product(
        sub, cheaper, Decimal("100.00"), domain.DOWNGRADE, date(2026, 4, 1), "x"
    )
    assert down.scheduled_change and down.scheduled_change["on"] == "2027-01-01"


def test_r31_cancel_after_the_window_names_the_aligned_end() -> None:
    with pytest.raises(Conflict) as refused:
        domain.cancel_terms(cotermed(), datetime(2026, 4, 1, 10, tzinfo=UTC), ZONE)
    assert refused.value.details["possible_on"] == "2026-12-31"


def test_r31_r22_a_cotermed_penalty_counts_the_days_left_over_a_full_term() -> None:
    """240.00 × 10 × 1 cycle × 183 days left (Jul 2 – Dec 31) / 365 (the full term, not the
    292 days of the shorter first term) × 25 % = 300.8219… → 300.82 (over 292: 376.03)."""
    policy = replace(NCE, after_window="penalty", penalty_percent=Decimal("25"))
    start = date(2026, 3, 15)
    sub = buy(start, coterm=domain.coterm_with(EXISTING, start, start), commitment=policy)
    terms = domain.cancel_terms(sub, datetime(2026, 7, 2, 10, tzinfo=UTC), ZONE)
    assert terms.penalty == Decimal("300.82")


# --- validation ------------------------------------------------------------------------------


def test_r31_coterm_refuses_an_end_before_the_start_or_past_one_full_term() -> None:
    start = date(2026, 3, 15)
    with pytest.raises(BadRequest) as before:
        check_coterm(Coterm(date(2026, 3, 14)), start, date(2027, 3, 14))
    assert before.value.field == "coterm"
    with pytest.raises(BadRequest) as beyond:
        check_coterm(Coterm(date(2027, 3, 15), "coterm.subscription_id"), start, date(2027, 3, 14))
    assert beyond.value.field == "coterm.subscription_id"
    assert check_coterm(Coterm(start), start, date(2027, 3, 14)) == start  # a one-day term


def test_r31_coterm_with_a_subscription_starting_later_is_past_one_full_term() -> None:
    later = buy(date(2026, 6, 1), sub_id="sub_later")  # its term ends 2027-05-31
    start = date(2026, 3, 15)
    with pytest.raises(BadRequest) as refused:
        buy(start, coterm=domain.coterm_with(later, start, start))
    assert refused.value.field == "coterm.subscription_id"


def test_r31_coterm_with_a_cancelled_or_expired_subscription_is_invalid_state() -> None:
    gone = domain.cancel(EXISTING, date(2026, 1, 2), "x")
    with pytest.raises(Conflict) as cancelled:
        domain.coterm_with(gone, date(2026, 3, 15), date(2026, 3, 15))
    assert (cancelled.value.code, cancelled.value.field) == (
        "invalid_state",
        "coterm.subscription_id",
    )
    ended = replace(EXISTING, auto_renew=False)
    with pytest.raises(Conflict):
        domain.coterm_with(ended, date(2027, 1, 5), date(2027, 1, 5))


def test_r31_coterm_follows_a_term_that_renewed_by_itself_or_the_end_of_one_that_does_not() -> None:
    spring = date(2027, 3, 15)  # EXISTING renewed by itself: its term 2 ends 2027-12-31
    assert domain.coterm_with(EXISTING, spring, spring).end == date(2027, 12, 31)
    one_off = replace(EXISTING, auto_renew=False)
    assert domain.coterm_with(one_off, date(2026, 3, 15), date(2026, 3, 15)).end == date(
        2026, 12, 31
    )


# --- billing (R21, R22) -----------------------------------------------------------------------


def test_r31_r22_a_cotermed_annual_subscriptions_first_invoice_is_prorated() -> None:
    """Annual, 10 × 240.00, bought 2026-03-15 and aligned to 2026-12-31: its periods start on
    its renewal day (Jan 1), so the first is [2026-01-01, 2027-01-01) (365 days), used from Mar
    15: 17 + 30 + 31 + 30 + 31 + 31 + 30 + 31 + 30 + 31 = 292 days →
    240.00 × 10 × 292 / 365 = 1,920.00. The next period, from 2027-01-01, is a full 2,400.00."""
    sub = cotermed()
    assert domain.anniversary(sub) == date(2027, 1, 1)
    first = billing.rate_subscription(sub, billing.run_for(1, date(2026, 3, 1)), [], _price)
    assert [(ln.start, ln.end, str(ln.proration), str(ln.amount)) for ln in first] == [
        (date(2026, 3, 15), date(2027, 1, 1), "0.800000", "1920.00")
    ]
    renewal = billing.rate_subscription(sub, billing.run_for(1, date(2027, 1, 1)), first, _price)
    assert [(ln.start, ln.end, str(ln.amount)) for ln in renewal] == [
        (date(2027, 1, 1), date(2028, 1, 1), "2400.00")
    ]


def test_r31_r22_a_month_end_cotermed_monthly_subscription_is_prorated_to_the_month() -> None:
    """Monthly, 1 × 31.00 from 2026-03-10 to 2026-03-31, billing day 1: 31.00 × 22 / 31 =
    22.00 for March, then April in full (31.00)."""
    start = date(2026, 3, 10)
    sub = buy(
        start,
        coterm=Coterm(month_end(start)),
        commitment=None,
        cycle="monthly",
        price="31.00",
        quantity=1,
    )
    lines = billing.rate_subscription(sub, billing.run_for(1, date(2026, 4, 1)), [], _price31)
    assert [(ln.start, ln.end, str(ln.amount)) for ln in lines] == [
        (date(2026, 3, 10), date(2026, 4, 1), "22.00"),
        (date(2026, 4, 1), date(2026, 5, 1), "31.00"),
    ]


def _price(_: str) -> Decimal:
    return Decimal("240.00")


def _price31(_: str) -> Decimal:
    return Decimal("31.00")
