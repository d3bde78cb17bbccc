"""Billing periods and proration (R21, R22).

- **Periods** (R21) are half-open ``[start, end)``: a monthly one starts on the account's billing
  day (a day past a month's end is that month's last day); an annual one on the anniversary
  (the arithmetic is ``functions.core.periods``, which orders' backdating shares).
- **Proration** (R22): a part of a period is charged ``price × quantity × days used / days in the
  whole period``, each line rounded half-up to the currency's minor unit (R23).
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from functions.core.money import round_money
from functions.core.periods import Period, annual_period, monthly_period

MONTHLY, ANNUAL = "monthly", "annual"
FACTOR_PLACES = Decimal("0.000001")  # the proration factor as shown on a line


def billing_period(cycle: str, *, billing_day: int, anniversary: date, on: date) -> Period:
    """R21: monthly periods start on the account's billing day (an annual term billed monthly
    too); annual ones on the subscription's anniversary."""
    if cycle == MONTHLY:
        return monthly_period(billing_day, on)
    if cycle == ANNUAL:
        return annual_period(anniversary, on)
    raise ValueError(f"unknown billing cycle {cycle!r}")


def next_period(cycle: str, period: Period, *, billing_day: int, anniversary: date) -> Period:
    return billing_period(cycle, billing_day=billing_day, anniversary=anniversary, on=period.end)


def window_periods(cycle: str, billing_day: int, anniversary: date, window: Period) -> list[Period]:
    """R21: the periods of a cycle that overlap a run's window."""
    found = []
    period = billing_period(
        cycle, billing_day=billing_day, anniversary=anniversary, on=window.start
    )
    while period.start < window.end:
        found.append(period)
        period = next_period(cycle, period, billing_day=billing_day, anniversary=anniversary)
    return found


def proration(days: int, period: Period) -> Decimal:
    """R22: days used over the days of the whole period (never the partial one)."""
    return Decimal(days) / Decimal(period.days)


def prorated(
    unit_price: Decimal, quantity: Decimal | int, days: int, period: Period, currency: str
) -> Decimal:
    """R22, R23: ``price × quantity × days / days in the period``, rounded half-up once."""
    return round_money(unit_price * quantity * days / period.days, currency)
