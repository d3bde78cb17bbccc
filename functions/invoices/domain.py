"""Rating (SPEC §6: R21-R23): billing periods, proration by days and the lines one subscription
owes for one period. Pure: stdlib and the kernel only.

- **Periods** (R21) are half-open ``[start, end)``: a monthly one starts on the account's billing
  day (a day past a month's end is that month's last day); an annual one on the anniversary.
- **Proration** (R22): a part of a period is charged ``price × quantity × days used / days in the
  whole period``, each line rounded half-up to the currency's minor unit (R23).
- **Reconciliation** (R22): recurring charges are billed in advance. What a subscription used in
  a period (its *segments*: days at one quantity and price) is compared with the lines already
  issued for that period; a day billed at a quantity or price that no longer holds is credited
  (a credit line linked to the charge it corrects) and charged anew; issued lines are never
  edited. A quantity change mid-period thus credits the old quantity for the rest of the period
  and charges the new one for the same days; a cancellation credits the days after it.
- **Usage** is billed in arrears (R21): the period's quantity at the unit price, no proration.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import date
from decimal import Decimal
from itertools import pairwise

from functions.core.errors import BadRequest
from functions.core.money import round_money

MONTHLY, ANNUAL = "monthly", "annual"
CHARGE, CREDIT, USAGE = "charge", "credit", "usage"
FACTOR_PLACES = Decimal("0.000001")  # the proration factor as shown on a line


def on_day(year: int, month: int, day: int) -> date:
    """``day`` of a month, or its last day if the month is shorter (R22)."""
    return date(year, month, min(day, calendar.monthrange(year, month)[1]))


def months_after(year: int, month: int, months: int) -> tuple[int, int]:
    index = year * 12 + (month - 1) + months
    return index // 12, index % 12 + 1


@dataclass(frozen=True, order=True)
class Period:
    """A billing period, ``[start, end)``."""

    start: date
    end: date

    def __post_init__(self) -> None:
        if self.end <= self.start:
            raise ValueError(f"an empty period {self.start} → {self.end}")

    @property
    def days(self) -> int:
        return (self.end - self.start).days

    def overlap(self, start: date, end: date) -> int:
        return max(0, (min(self.end, end) - max(self.start, start)).days)


def monthly_period(billing_day: int, on: date) -> Period:
    """The monthly period holding ``on``: from one billing day to the next."""
    if not 1 <= billing_day <= 31:
        raise ValueError("billing_day must be 1-31")
    start = on_day(on.year, on.month, billing_day)
    if start > on:
        start = on_day(*months_after(on.year, on.month, -1), billing_day)
    return Period(start, on_day(*months_after(start.year, start.month, 1), billing_day))


def annual_period(anniversary: date, on: date) -> Period:
    """The yearly period holding ``on``, starting on the anniversary (29 February: the 28th)."""
    year = on.year
    start = on_day(year, anniversary.month, anniversary.day)
    if start > on:
        year -= 1
        start = on_day(year, anniversary.month, anniversary.day)
    return Period(start, on_day(year + 1, anniversary.month, anniversary.day))


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


def proration(days: int, period: Period) -> Decimal:
    """R22: days used over the days of the whole period (never the partial one)."""
    return Decimal(days) / Decimal(period.days)


def prorated(
    unit_price: Decimal, quantity: Decimal | int, days: int, period: Period, currency: str
) -> Decimal:
    """R22, R23: ``price × quantity × days / days in the period``, rounded half-up once."""
    return round_money(unit_price * quantity * days / period.days, currency)


# --- what a subscription used ----------------------------------------------------------------


@dataclass(frozen=True)
class Change:
    """A subscription's state from ``on`` (its effective date) until the next change: its
    quantity and unit price, and whether it is billed then (active; not suspended, cancelled,
    expired or not started)."""

    on: date
    quantity: int
    unit_price: Decimal
    billed: bool = True


@dataclass(frozen=True)
class Segment:
    """Days ``[start, end)`` at one quantity and unit price."""

    start: date
    end: date
    quantity: int
    unit_price: Decimal

    def same_rate(self, other: Segment | None) -> bool:
        return other is not None and (self.quantity, self.unit_price) == (
            other.quantity,
            other.unit_price,
        )


def segments(changes: Iterable[Change], period: Period) -> list[Segment]:
    """What a subscription used in a period, from its changes (in any order; the last of two
    on one day wins): the billed stretches, clipped to the period."""
    ordered: dict[date, Change] = {}
    for change in sorted(changes, key=lambda c: c.on):
        ordered[change.on] = change
    found: list[Segment] = []
    days = list(ordered)
    for index, on in enumerate(days):
        change = ordered[on]
        end = days[index + 1] if index + 1 < len(days) else period.end
        start, end = max(on, period.start), min(end, period.end)
        if change.billed and start < end:
            found.append(Segment(start, end, change.quantity, change.unit_price))
    return found


# --- lines -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Line:
    """One invoice line (R26) of one subscription: a charge for days ``[start, end)`` of
    ``period``, a credit of an issued charge's days (negative; ``credits`` names it), or usage.
    ``key`` is deterministic: the same line rated twice is the same line."""

    kind: str
    subscription_id: str
    period: Period
    start: date
    end: date
    quantity: Decimal
    unit_price: Decimal
    proration: Decimal
    amount: Decimal
    credits: str | None = None

    @property
    def key(self) -> str:
        return ":".join(
            (
                self.kind,
                self.subscription_id,
                self.period.start.isoformat(),
                self.start.isoformat(),
                self.end.isoformat(),
                str(self.quantity),
                str(self.unit_price),
                self.credits or "",
            )
        )

    @property
    def days(self) -> int:
        return (self.end - self.start).days


def charge(subscription_id: str, segment: Segment, period: Period, currency: str) -> Line:
    stop = segment.end
    days = (stop - segment.start).days
    return Line(
        kind=CHARGE,
        subscription_id=subscription_id,
        period=period,
        start=segment.start,
        end=stop,
        quantity=Decimal(segment.quantity),
        unit_price=segment.unit_price,
        proration=proration(days, period).quantize(FACTOR_PLACES),
        amount=prorated(segment.unit_price, segment.quantity, days, period, currency),
    )


def credit(issued: Line, start: date, end: date, currency: str) -> Line:
    """R22: the days ``[start, end)`` of an issued charge given back, as a new linked line."""
    days = (end - start).days
    return Line(
        kind=CREDIT,
        subscription_id=issued.subscription_id,
        period=issued.period,
        start=start,
        end=end,
        quantity=issued.quantity,
        unit_price=issued.unit_price,
        proration=proration(days, issued.period).quantize(FACTOR_PLACES),
        amount=-prorated(issued.unit_price, issued.quantity, days, issued.period, currency),
        credits=issued.key,
    )


def _live(issued: Sequence[Line]) -> list[tuple[Line, date, date]]:
    """The days of each issued charge not credited yet: (charge, start, end) pieces."""
    credited: dict[str, list[tuple[date, date]]] = {}
    for line in issued:
        if line.kind == CREDIT and line.credits:
            credited.setdefault(line.credits, []).append((line.start, line.end))
    pieces = []
    for line in issued:
        if line.kind != CHARGE:
            continue
        cursor = line.start
        for start, end in sorted(credited.get(line.key, [])):
            if start > cursor:
                pieces.append((line, cursor, min(start, line.end)))
            cursor = max(cursor, end)
        if cursor < line.end:
            pieces.append((line, cursor, line.end))
    return pieces


def reconcile(
    subscription_id: str,
    used: Sequence[Segment],
    issued: Sequence[Line],
    period: Period,
    currency: str,
) -> list[Line]:
    """R22: the lines to add so that one period's billing of a subscription matches what it
    used: issued charge days that no longer hold are credited, used days not billed at their
    rate are charged. Nothing to add when they match (re-rating is idempotent)."""
    live = _live([line for line in issued if line.period == period])
    cuts = {period.start, period.end}
    for stretch in used:
        cuts |= {stretch.start, stretch.end}
    for _, start, end in live:
        cuts |= {start, end}
    points = sorted(day for day in cuts if period.start <= day <= period.end)

    def used_on(day: date) -> Segment | None:
        return next((s for s in used if s.start <= day < s.end), None)

    def live_on(day: date) -> tuple[Line, date, date] | None:
        return next((piece for piece in live if piece[1] <= day < piece[2]), None)

    added: list[Line] = []
    pending_credit: tuple[Line, date, date] | None = None
    pending_charge: tuple[Segment, date, date] | None = None
    for start, end in pairwise(points):
        segment, piece = used_on(start), live_on(start)
        billed = (
            None
            if piece is None
            else Segment(start, end, int(piece[0].quantity), piece[0].unit_price)
        )
        wrong = piece is not None and not (segment is not None and segment.same_rate(billed))
        missing = segment is not None and (billed is None or not segment.same_rate(billed))
        if wrong and piece is not None:
            if pending_credit and pending_credit[0] is piece[0] and pending_credit[2] == start:
                pending_credit = (piece[0], pending_credit[1], end)
            else:
                if pending_credit:
                    added.append(credit(pending_credit[0], *pending_credit[1:], currency))
                pending_credit = (piece[0], start, end)
        if missing and segment is not None:
            if pending_charge and pending_charge[0] is segment and pending_charge[2] == start:
                pending_charge = (segment, pending_charge[1], end)
            else:
                if pending_charge:
                    added.append(_charge_piece(subscription_id, pending_charge, period, currency))
                pending_charge = (segment, start, end)
    if pending_credit:
        added.append(credit(pending_credit[0], *pending_credit[1:], currency))
    if pending_charge:
        added.append(_charge_piece(subscription_id, pending_charge, period, currency))
    return added


def _charge_piece(
    subscription_id: str, piece: tuple[Segment, date, date], period: Period, currency: str
) -> Line:
    segment, start, end = piece
    return charge(subscription_id, replace(segment, start=start, end=end), period, currency)


def usage(
    subscription_id: str, period: Period, quantity: Decimal, unit_price: Decimal, currency: str
) -> Line:
    """R21, R25: a period's usage, billed in arrears at the unit price (no proration)."""
    return Line(
        kind=USAGE,
        subscription_id=subscription_id,
        period=period,
        start=period.start,
        end=period.end,
        quantity=quantity,
        unit_price=unit_price,
        proration=Decimal(1).quantize(FACTOR_PLACES),
        amount=round_money(unit_price * quantity, currency),
    )


# --- totals ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Totals:
    subtotal: Decimal
    tax: Decimal
    total: Decimal


def totals(lines: Iterable[Line], tax_rate: Decimal, currency: str) -> Totals:
    """R23: subtotal = the sum of the (rounded) lines; tax at the bill-to country's rate,
    rounded once; total = subtotal + tax."""
    subtotal = round_money(sum((line.amount for line in lines), Decimal(0)), currency)
    tax = round_money(subtotal * tax_rate, currency)
    return Totals(subtotal, tax, subtotal + tax)


# --- usage (R25) -------------------------------------------------------------------------------

MAX_USAGE = Decimal("1000000000")


@dataclass(frozen=True)
class UsageRecord:
    """A subscription's metered use (R25): ``quantity`` of ``unit`` at time ``at``, under a
    deduplication key unique per subscription (the same key twice is counted once). A copy made
    by back ordering in the provider's BSS names its ``source``."""

    tenant_id: str
    subscription_id: str
    key: str
    quantity: Decimal
    unit: str
    at: str  # RFC 3339 UTC
    recorded_at: str
    source: dict[str, str] | None = None

    def same_use(self, other: UsageRecord) -> bool:
        """The same use reported again (what a retry sends): quantity, unit and time."""
        return (self.quantity, self.unit, self.at) == (other.quantity, other.unit, other.at)


def usage_record(
    tenant_id: str,
    subscription_id: str,
    *,
    key: str,
    quantity: Decimal,
    unit: str,
    product_unit: str,
    at: str,
    recorded_at: str,
) -> UsageRecord:
    """R25: a usage record, in the product's unit, not negative."""
    if not Decimal(0) <= quantity < MAX_USAGE:
        raise BadRequest(
            f"quantity must be 0 to {MAX_USAGE}", field="quantity", code="out_of_range"
        )
    if unit != product_unit:
        raise BadRequest(
            f"the product is metered in {product_unit!r}, not {unit!r}",
            field="unit",
            code="unit_mismatch",
        )
    return UsageRecord(tenant_id, subscription_id, key, quantity, unit, at, recorded_at)
