"""R31: the automatic renewal that applies a due scheduled downgrade (``domain.renew_due``, the
daily ``renewal_schedule``), pure and hand-computed, and billed from its day (R22). Purchase
2026-01-01 12:00 UTC (Europe/Berlin), P1Y on NCE terms, 10 seats of E3 at 240.00; a downgrade
to E1 at 120.00 asked on 2026-03-01 waits for 2027-01-01."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime
from decimal import Decimal

from functions.invoices import domain as billing
from functions.invoices.domain import LineKind
from functions.orders import domain
from functions.orders.domain import ProductRef, Subscription
from tests.unit.test_commitment_billing import NCE, ZONE, buy, recorded

E1 = ProductRef("prd_e1", "O365-E1", "Office 365 E1", "license", ["monthly", "annual"], [])
D = Decimal


def downgraded(sub: Subscription, on: date) -> Subscription:
    changed, _ = domain.change_product(sub, E1, D("120.00"), "downgrade", on, "x")
    return changed


def test_r31_nothing_is_due_before_the_renewal_day() -> None:
    sub = downgraded(buy(NCE), date(2026, 3, 1))
    assert sub.scheduled_change is not None and sub.scheduled_change["on"] == "2027-01-01"
    assert domain.renew_due(sub, date(2026, 12, 31), "x", ZONE) is None


def test_r31_the_automatic_renewal_writes_the_next_term_with_the_downgrade() -> None:
    """On 2027-01-01 (or a day later, the job having missed one): term 2 is written, E1 at
    120.00, its window opening at the term's first instant (2026-12-31 23:00 UTC = midnight in
    Berlin) for 168 h, the downgrade gone."""
    sub = downgraded(buy(NCE), date(2026, 3, 1))
    for today in (date(2027, 1, 1), date(2027, 1, 2)):
        renewed = domain.renew_due(sub, today, "2027-01-02T00:05:00Z", ZONE)
        assert renewed is not None
        assert (renewed.product_id, renewed.unit_price, renewed.terms, renewed.end_date) == (
            "prd_e1",
            D("120.00"),
            2,
            "2027-12-31",
        )
        assert renewed.scheduled_change is None
        assert renewed.renewals == [{"term": 2, "at": "2026-12-31T23:00:00Z"}]
        assert domain.window(renewed, domain.term_on(renewed, today), ZONE) == (
            datetime(2026, 12, 31, 23, tzinfo=UTC),
            datetime(2027, 1, 7, 23, tzinfo=UTC),
        )
        assert domain.due_entry(renewed) == (None, None)  # done: it leaves the index


def test_r31_a_downgrade_asked_in_a_term_that_renewed_by_itself_writes_the_terms_before() -> None:
    """Nothing wrote 2027's term (it renewed by itself); a downgrade asked on 2027-06-01 waits
    for 2028-01-01, when terms 2 and 3 are written (end 2028-12-31)."""
    sub = downgraded(buy(NCE), date(2027, 6, 1))
    assert sub.scheduled_change is not None and sub.scheduled_change["on"] == "2028-01-01"
    renewed = domain.renew_due(sub, date(2028, 1, 1), "x", ZONE)
    assert renewed is not None
    assert (renewed.terms, renewed.end_date, renewed.product_id) == (3, "2028-12-31", "prd_e1")


def test_r31_a_term_written_ahead_just_takes_the_downgrade() -> None:
    sub = downgraded(buy(NCE), date(2026, 3, 1))
    ahead = replace(sub, terms=2, end_date="2027-12-31")
    renewed = domain.renew_due(ahead, date(2027, 1, 1), "x", ZONE)
    assert renewed is not None
    assert (renewed.terms, renewed.product_id, renewed.renewals) == (2, "prd_e1", [])


def test_r31_no_automatic_renewal_without_auto_renew_for_a_mirror_or_when_cancelled() -> None:
    sub = downgraded(buy(NCE), date(2026, 3, 1))
    off = replace(sub, auto_renew=False)
    assert domain.renew_due(off, date(2027, 1, 1), "x", ZONE) is None
    assert domain.due_entry(off) == (None, None)
    mirror = replace(sub, mirrored=True)
    assert domain.renew_due(mirror, date(2027, 1, 1), "x", ZONE) is None
    assert domain.due_entry(mirror) == (None, None)
    assert domain.due_entry(sub) == ("tnt_1#due", "2027-01-01#sub_1")
    cancelled = domain.cancel(sub, date(2026, 12, 31), "x")
    assert domain.due_entry(cancelled) == (None, None)


def test_r31_r22_billing_charges_the_downgraded_product_from_the_renewal() -> None:
    """Annual in advance: 2026's period at E3 (2,400.00); the run of 2027-01 after the
    automatic renewal charges 2027's period at E1: 120.00 × 10 = 1,200.00."""
    sub = downgraded(buy(NCE), date(2026, 3, 1))
    prices = {"prd_e3": D("240.00"), "prd_e1": D("120.00")}

    def rate(s: Subscription, month: date, issued: list[billing.Line]) -> list[billing.Line]:
        return billing.rate_subscription(s, billing.run_for(1, month), issued, prices.__getitem__)

    issued = rate(sub, date(2026, 1, 1), [])
    renewed = domain.renew_due(sub, date(2027, 1, 1), "x", ZONE)
    assert renewed is not None
    renewed = recorded(renewed, domain.RENEW, date(2027, 1, 1))
    added = rate(renewed, date(2027, 1, 1), issued)
    assert [(line.kind, line.product_id, line.amount) for line in added] == [
        (LineKind.CHARGE, "prd_e1", D("1200.00"))
    ]


def test_r31_a_co_termed_subscriptions_due_downgrade_renews_on_its_aligned_day() -> None:
    """Co-termed to 2026-06-30 (a short first term), a downgrade waits for 2026-07-01; its
    automatic renewal writes term 2, 2026-07-01 – 2027-06-30."""
    sub = replace(buy(NCE), coterm_end="2026-06-30", end_date="2026-06-30")
    sub = downgraded(sub, date(2026, 3, 1))
    assert sub.scheduled_change is not None and sub.scheduled_change["on"] == "2026-07-01"
    renewed = domain.renew_due(sub, date(2026, 7, 1), "x", ZONE)
    assert renewed is not None
    assert (renewed.terms, renewed.end_date, renewed.product_id) == (2, "2027-06-30", "prd_e1")


def test_r31_a_term_renewed_ahead_opens_with_the_seats_the_subscription_has_then() -> None:
    """Renewed on day 2 (term 2 written ahead with 10 seats), reduced to 1 seat on day 3 inside
    the window, raised to 4 on day 5: term 2 opens with 4 refundable seats in its window, not
    the 10 the renewal saw (Hypothesis found the 10)."""
    sub = buy(NCE)
    sub = domain.renew(
        sub, date(2026, 1, 2), "x", at=datetime(2026, 1, 2, 12, tzinfo=UTC), time_zone=ZONE
    )
    for moment, seats in (
        (datetime(2026, 1, 3, 12, tzinfo=UTC), 1),
        (datetime(2026, 1, 5, 12, tzinfo=UTC), 4),
    ):
        sub = domain.change_quantity(sub, seats, moment.date(), "x", at=moment, time_zone=ZONE)
    opening = datetime(2027, 1, 1, 12, tzinfo=UTC)
    assert [r.quantity for r in domain.refundable(sub, opening, ZONE)] == [4]
