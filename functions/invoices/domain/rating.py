"""Rating (R20-R22, R25): the lines a billing run adds for one subscription — recurring charges
in advance, reconciled with what was issued (``reconcile``), usage in arrears. A run of period
P (``Run``) reconciles every period of a subscription's cycle that overlaps [P−1 start, P end);
the lines it adds become the ledger the next run reconciles against."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import date, timedelta
from decimal import Decimal

from functions.core.money import round_money
from functions.core.periods import Period
from functions.invoices.domain.charges import reconcile
from functions.invoices.domain.history import Change, segments, timeline
from functions.invoices.domain.lines import Line, LineKind
from functions.invoices.domain.periods import FACTOR_PLACES, window_periods
from functions.invoices.domain.runs import Run
from functions.orders.domain import Subscription, anniversary


def usage(
    subscription_id: str,
    period: Period,
    quantity: Decimal,
    unit_price: Decimal,
    currency: str,
    product_id: str = "",
) -> Line:
    """R21, R25: a period's usage, billed in arrears at the unit price (no proration)."""
    return Line(
        kind=LineKind.USAGE,
        subscription_id=subscription_id,
        period=period,
        start=period.start,
        end=period.end,
        quantity=quantity,
        unit_price=unit_price,
        proration=Decimal(1).quantize(FACTOR_PLACES),
        amount=round_money(unit_price * quantity, currency),
        product_id=product_id,
    )


def reconcile_usage(
    subscription_id: str,
    product_id: str,
    total: Decimal,
    unit_price: Decimal,
    issued: Sequence[Line],
    period: Period,
    currency: str,
) -> list[Line]:
    """R21, R22, R25: a period's usage, once. Usage reported after its period was billed is a
    correction: the billed usage line is credited (linked) and the new total charged, at the
    price it was billed at (R7: an issued period keeps its price)."""
    credited = {line.credits for line in issued if line.kind == LineKind.CREDIT}
    live = [
        line
        for line in issued
        if line.kind == LineKind.USAGE and line.period == period and line.key not in credited
    ]
    if sum((line.quantity for line in live), Decimal(0)) == total:
        return []
    price = live[0].unit_price if live else unit_price
    added = [
        replace(line, kind=LineKind.CREDIT, amount=-line.amount, credits=line.key) for line in live
    ]
    if total:
        added.append(usage(subscription_id, period, total, price, currency, product_id))
    return added


def cancellation_fee(
    sub: Subscription, period: Period, issued: Sequence[Line], since: date
) -> list[Line]:
    """R31: the penalty of a commitment cancelled after its window, charged once as a ``fee``
    line in the period of the cancellation day (at the buyer's price: each tier's own, R14),
    unless that period holds it already. A day before the run's window (``since``) is only
    looked at where the period was issued."""
    penalty = (sub.cancellation_terms or {}).get("penalty")
    if penalty is None or sub.cancellation_date is None:
        return []
    day = date.fromisoformat(sub.cancellation_date)
    if not period.start <= day < period.end or (day < since and not issued):
        return []
    if any(line.kind == LineKind.FEE for line in issued):
        return []
    amount = Decimal(str(penalty))
    return [
        Line(
            kind=LineKind.FEE,
            subscription_id=sub.id,
            period=period,
            start=day,
            end=day + timedelta(days=1),
            quantity=Decimal(1),
            unit_price=amount,
            proration=Decimal(1).quantize(FACTOR_PLACES),
            amount=amount,
            product_id=sub.product_id,
        )
    ]


def rate_subscription(
    sub: Subscription,
    run: Run,
    issued: Sequence[Line],
    price: Callable[[str], Decimal],
    *,
    metered: bool = False,
    usage_total: Decimal = Decimal(0),
) -> list[Line]:
    """R20-R22, R25: the lines a run adds for one subscription.

    - Recurring (in advance): each period of its cycle in the run's window is reconciled with
      what was issued for it. A period is rated if lines were issued for it, or if its billable
      days begin in the window (the first run of a subscription billed before it does not bill
      months in arrears). A period already invoiced keeps the price it was invoiced at (R7);
      others are rated at ``price(product_id)``, the buyer's list today.
    - Metered (in arrears): the previous period's usage, ``usage_total``, at ``price``.

    Free lines (a trial at price 0) are left out."""
    if metered:
        if date.fromisoformat(sub.start_date) >= run.previous.end:
            return []
        issued_here = [line for line in issued if line.subscription_id == sub.id]
        return reconcile_usage(
            sub.id,
            sub.product_id,
            usage_total,
            price(sub.product_id),
            issued_here,
            run.previous,
            sub.currency,
        )
    steps = timeline(sub)
    start = date.fromisoformat(sub.start_date)
    lines: list[Line] = []
    # R21: an annual cycle's periods start on the anniversary: a co-termed subscription's is
    # its renewal day, so its first period is the part of a full one it uses (R22, R31)
    periods = window_periods(sub.billing_cycle, run.billing_day, anniversary(sub), run.window)
    for period in periods:
        if period.end <= start:
            continue
        issued_here = [line for line in issued if line.period == period]
        lines += cancellation_fee(sub, period, issued_here, run.window.start)
        if not issued_here and max(period.start, start) < run.window.start:
            continue
        billed_prices = {
            line.product_id: line.unit_price for line in issued_here if line.kind == LineKind.CHARGE
        }

        used = segments(
            [
                Change(
                    s.on,
                    s.quantity,
                    billed_prices.get(s.product_id) or price(s.product_id),
                    s.billed,
                    s.product_id,
                )
                for s in steps
            ],
            period,
        )
        lines += reconcile(sub.id, used, issued_here, period, sub.currency)
    return [line for line in lines if line.amount or line.unit_price]
