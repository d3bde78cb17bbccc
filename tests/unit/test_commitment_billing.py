"""R31 billed (R22, R9, R14): what a cancellation's refund and penalty come to on the invoices,
pure and hand-computed, and a Hypothesis property that no sequence of actions refunds more than
was charged. Purchase 2026-01-01 12:00 UTC (13:00 Berlin), P1Y billed annually in advance:
10 seats × 240.00 = 2,400.00 for [2026-01-01, 2027-01-01), 365 days; runs on the 1st."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from functions.backorder import domain as backorder
from functions.backorder.domain import Link, ProviderProduct
from functions.core.errors import Conflict
from functions.invoices import domain as billing
from functions.invoices.domain import Line, LineKind
from functions.orders import domain
from functions.orders.domain import ProductRef, Subscription
from functions.pricelist.domain import Commitment

ZONE = "Europe/Berlin"
E3 = ProductRef("prd_e3", "O365-E3", "Office 365 E3", "license", ["monthly", "annual"], [])
NCE = Commitment("P1Y", 168, "prorated", "refused", None, "within_window")
FULL = replace(NCE, refund="full")
PENALTY = replace(NCE, after_window="penalty", penalty_percent=Decimal("25"))
PURCHASE = datetime(2026, 1, 1, 12, tzinfo=UTC)
PRICE = Decimal("240.00")
D = Decimal


def at(hours: float) -> datetime:
    return PURCHASE + timedelta(hours=hours)


def local_day(moment: datetime) -> date:
    return moment.astimezone(ZoneInfo(ZONE)).date()


def recorded(sub: Subscription, order_type: str, effective: date) -> Subscription:
    """As the service commits it: the subscription with its order (its history, R22)."""
    order = domain.order_for(
        "ord", order_type, sub, E3, effective=effective, now="x", created_by="t"
    )
    return domain.recorded(sub, order)


def buy(
    commitment: Commitment | None, *, cycle: str = "annual", quantity: int = 10
) -> Subscription:
    sub = domain.new_subscription(
        "sub_1",
        tenant_id="tnt_1",
        account_id="acc_1",
        reseller_account_id=None,
        product=E3,
        quantity=quantity,
        billing_cycle=cycle,
        term="annual" if commitment is None else None,
        start=date(2026, 1, 1),
        today=date(2026, 1, 1),
        auto_renew=True,
        characteristics={},
        currency="EUR",
        unit_price=PRICE,
        price_list_id="prl_1",
        parent=None,
        now="2026-01-01T12:00:00Z",
        commitment=commitment,
        at=PURCHASE,
        time_zone=ZONE,
    )
    return recorded(sub, domain.NEW, date(2026, 1, 1))


def cancel(sub: Subscription, moment: datetime) -> Subscription:
    """As ``OrderService.act`` cancels: the policy's terms first, then the cancellation."""
    terms = domain.cancel_terms(sub, moment, ZONE)
    today = local_day(moment)
    cancelled = domain.with_cancel_terms(domain.cancel(sub, today, "x"), terms, today)
    return recorded(cancelled, domain.CANCEL, today)


def rate(sub: Subscription, period_start: date, issued: list[Line]) -> list[Line]:
    run = billing.run_for(1, period_start)
    mine = [line for line in issued if line.subscription_id == sub.id]
    return billing.rate_subscription(sub, run, mine, lambda _product: PRICE)


def invoiced(sub: Subscription, *months: date) -> list[Line]:
    issued: list[Line] = []
    for month in months:
        issued += rate(sub, month, issued)
    return issued


JAN, FEB, AUG = date(2026, 1, 1), date(2026, 2, 1), date(2026, 8, 1)


def test_r31_r22_a_cancellation_at_167_hours_credits_the_unused_days_prorated() -> None:
    """167 h after 01-01 12:00 UTC is 01-08 11:00 UTC (the 8th in Berlin). Used
    [01-01, 01-08) = 7 days; credited 358 days: 2,400.00 × 358 / 365 = 2,353.972… → −2,353.97
    on the next invoice."""
    sub = buy(NCE)
    (charge,) = rate(sub, JAN, [])
    assert (charge.kind, charge.amount) == (LineKind.CHARGE, D("2400.00"))
    sub = cancel(sub, at(167))
    assert sub.cancellation_terms is not None and sub.cancellation_terms["refund"] == "prorated"
    (credit,) = rate(sub, FEB, [charge])
    assert (credit.kind, credit.start, credit.amount) == (
        LineKind.CREDIT,
        date(2026, 1, 8),
        D("-2353.97"),
    )


def test_r31_r22_a_full_refund_credits_the_whole_term() -> None:
    """refund: full — the whole charge of the term given back: −2,400.00."""
    sub = buy(FULL)
    (charge,) = rate(sub, JAN, [])
    sub = cancel(sub, at(100))
    assert sub.cancellation_terms == {
        "refund": "full",
        "penalty": None,
        "on": "2026-01-05",
        "term_start": "2026-01-01",
    }
    (credit,) = rate(sub, FEB, [charge])
    assert (credit.start, credit.end, credit.amount) == (
        date(2026, 1, 1),
        date(2027, 1, 1),
        D("-2400.00"),
    )
    assert rate(sub, date(2026, 3, 1), [charge, credit]) == []  # once


def test_r31_a_full_refund_of_a_term_billed_monthly_credits_its_months() -> None:
    """P1Y billed monthly at 20.00 × 10: January 200.00 (31/31) charged on 01-01; cancelled on
    01-05 (full): January's 200.00 credited whole, nothing charged for February."""
    sub = replace(buy(FULL, cycle="monthly"), unit_price=D("20.00"))
    issued = [
        replace(line, unit_price=D("20.00"), amount=D("200.00")) for line in rate(sub, JAN, [])
    ]
    sub = cancel(sub, at(100))
    added = billing.rate_subscription(sub, billing.run_for(1, FEB), issued, lambda _p: D("20.00"))
    assert [(line.kind, line.amount) for line in added] == [(LineKind.CREDIT, D("-200.00"))]


def test_r31_a_penalty_is_charged_once_as_a_fee_beside_the_prorated_credit() -> None:
    """Cancelled on 2026-07-02 after the window under a 25 % penalty: 240.00 × 10 × 183 days
    left / 365 × 25 % = 300.82 (a ``fee`` line), and the 183 unused days credited:
    2,400.00 × 183 / 365 = 1,203.287… → −1,203.29. A second run adds nothing."""
    sub = buy(PENALTY)
    (charge,) = rate(sub, JAN, [])
    sub = cancel(sub, datetime(2026, 7, 2, 10, tzinfo=UTC))
    added = rate(sub, AUG, [charge])
    fee = next(line for line in added if line.kind == LineKind.FEE)
    credit = next(line for line in added if line.kind == LineKind.CREDIT)
    assert (fee.amount, fee.start, fee.quantity, fee.unit_price) == (
        D("300.82"),
        date(2026, 7, 2),
        D(1),
        D("300.82"),
    )
    assert credit.amount == D("-1203.29")
    assert rate(sub, date(2026, 9, 1), [charge, *added]) == []
    named = billing.Named("O365-E3", "Office 365 E3", "seat", "acc_1", "Customer")
    assert billing.describe(fee, named) == "Cancellation fee: Office 365 E3, cancelled 2026-07-02"


def test_r31_flexible_and_last_day_cancellations_keep_no_terms() -> None:
    flexible = cancel(buy(None), at(24 * 40))
    assert flexible.cancellation_terms is None
    last_day = cancel(buy(NCE), datetime(2026, 12, 31, 10, tzinfo=UTC))
    assert last_day.cancellation_terms is None


# --- R14: the provider's side --------------------------------------------------------------

LINK = Link("tnt_1", "tnt_prov", "acc_reseller", "prl_resell", "EUR", active=True)
PROVIDER_E3 = ProviderProduct("prd_p_e3", "O365-E3", "Office 365 E3", "tnt_root", "prd_root")


def mirrored(sub: Subscription, price: str) -> tuple[Subscription, domain.Order]:
    source = replace(sub, version=3, paid_once=True)
    mirror = backorder.mirror_subscription(
        LINK, source, PROVIDER_E3, unit_price=D(price), now="2026-07-02T10:00:00Z"
    )
    order = backorder.provider_order(LINK, source, mirror, PROVIDER_E3, now="x")
    return mirror, order


def test_r31_r14_the_providers_order_of_a_penalty_is_reckoned_at_the_resellers_price() -> None:
    """The reseller buys at 200.00: 200.00 × 10 × 183 / 365 × 25 % = 250.68 on the provider's
    cancel order and on the mirror, which the provider bills as its fee."""
    sub = cancel(buy(PENALTY), datetime(2026, 7, 2, 10, tzinfo=UTC))
    mirror, order = mirrored(sub, "200.00")
    assert (order.type, order.refund, order.penalty) == ("cancel", None, D("250.68"))
    assert mirror.cancellation_terms is not None
    assert mirror.cancellation_terms["penalty"] == "250.68"


def test_r31_r14_the_providers_order_of_a_refunded_cancellation_is_a_refund_order() -> None:
    sub = cancel(buy(FULL), at(24))
    mirror, order = mirrored(sub, "200.00")
    assert (order.type, order.refund, order.penalty) == ("cancel", "full", None)
    assert mirror.cancellation_terms == sub.cancellation_terms
    (charge,) = billing.rate_subscription(
        replace(mirror, cancellation_terms=None, status="active", history=mirror.history[:1]),
        billing.run_for(1, JAN),
        [],
        lambda _p: D("200.00"),
    )
    (credit,) = billing.rate_subscription(
        mirror, billing.run_for(1, FEB), [charge], lambda _p: D("200.00")
    )
    assert (charge.amount, credit.amount) == (D("2000.00"), D("-2000.00"))


# --- Hypothesis: the refund never exceeds what was charged ---------------------------------

ACTIONS = st.lists(
    st.tuples(
        st.sampled_from(["quantity", "cancel"]),
        st.integers(0, 24 * 400),  # hours after the purchase
        st.integers(1, 30),
    ),
    max_size=8,
)
POLICIES = st.sampled_from([NCE, FULL, PENALTY, replace(NCE, seat_reduction="any_time"), None])


@settings(max_examples=150, deadline=None)
@given(ACTIONS, POLICIES, st.sampled_from(["monthly", "annual"]))
def test_r31_property_the_refund_never_exceeds_what_was_charged(
    actions: list[tuple[str, int, int]], policy: Commitment | None, cycle: str
) -> None:
    """For any policy and any sequence of quantity changes and a cancellation over the first
    term and a bit, billed by a run on each 1st: the credits given never exceed the charges made
    (the subscription never owes the customer), and an action refused by R31 leaves the
    subscription as it was."""
    sub = buy(policy, cycle=cycle)
    issued: list[Line] = []
    moments = sorted((at(hours), kind, amount) for kind, hours, amount in actions)
    month = JAN
    for moment, kind, amount in [*moments, (datetime(2027, 3, 1, tzinfo=UTC), "end", 0)]:
        while datetime(month.year, month.month, 1, tzinfo=UTC) <= moment:
            issued += rate(sub, month, issued)
            month = domain.add_months(month, 1)
        today = local_day(moment)
        if kind == "end" or sub.status_on(today) not in domain.CANCELLABLE:
            continue
        before = sub
        try:
            if kind == "cancel":
                sub = cancel(sub, moment)
            elif amount != sub.quantity:
                changed = domain.change_quantity(sub, amount, today, "x", at=moment, time_zone=ZONE)
                sub = recorded(changed, domain.QUANTITY_CHANGE, today)
        except Conflict:
            assert sub == before
    charged = sum((line.amount for line in issued if line.amount > 0), D(0))
    credited = -sum((line.amount for line in issued if line.kind == LineKind.CREDIT), D(0))
    assert credited <= charged
    assert sum((line.amount for line in issued), D(0)) >= 0
    for charge in (line for line in issued if line.kind == LineKind.CHARGE):
        given_back = -sum((c.amount for c in issued if c.credits == charge.key), D(0))
        assert given_back <= charge.amount, charge  # no charge is credited twice
    fees = [line for line in issued if line.kind == LineKind.FEE]
    assert len(fees) <= 1 and (not fees or policy is PENALTY)
