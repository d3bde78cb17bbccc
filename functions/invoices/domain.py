"""Billing (SPEC §6: R20-R26): rating — billing periods, proration by days and the lines one
subscription owes for one period —, what a billing run adds for a subscription (its history
against what was invoiced), who bills whom, invoices with their totals and gapless numbers, and
the run's chunks. Pure: stdlib, the kernel and the orders domain only.

- **Periods** (R21) are half-open ``[start, end)``: a monthly one starts on the account's billing
  day (a day past a month's end is that month's last day); an annual one on the anniversary
  (the arithmetic is ``functions.core.periods``, which orders' backdating shares).
- **Proration** (R22): a part of a period is charged ``price × quantity × days used / days in the
  whole period``, each line rounded half-up to the currency's minor unit (R23).
- **Reconciliation** (R22): recurring charges are billed in advance. What a subscription used in
  a period (its *segments*: days at one quantity and price) is compared with the lines already
  issued for that period; a day billed at a quantity or price that no longer holds is credited
  (a credit line linked to the charge it corrects) and charged anew; issued lines are never
  edited. A quantity change mid-period thus credits the old quantity for the rest of the period
  and charges the new one for the same days; a cancellation credits the days after it.
- **Usage** is billed in arrears (R21): the period's quantity at the unit price, no proration.
- **A run** of period P (``Run``) reconciles every period of a subscription's cycle that
  overlaps [P−1 start, P end) (``rate_subscription``); the lines it adds become the ledger the
  next run reconciles against.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from itertools import pairwise
from typing import Any

from functions.core.domain import Account
from functions.core.errors import BadRequest, Conflict
from functions.core.ids import derived_id
from functions.core.money import round_money
from functions.core.periods import Period, annual_period, monthly_period
from functions.orders.domain import Subscription

MONTHLY, ANNUAL = "monthly", "annual"
CHARGE, CREDIT, USAGE = "charge", "credit", "usage"
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
    product_id: str = ""


@dataclass(frozen=True)
class Segment:
    """Days ``[start, end)`` at one quantity and unit price."""

    start: date
    end: date
    quantity: int
    unit_price: Decimal
    product_id: str = ""

    def same_rate(self, other: Segment | None) -> bool:
        """Billed alike: the same product, quantity and unit price."""
        return other is not None and (self.product_id, self.quantity, self.unit_price) == (
            other.product_id,
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
            found.append(Segment(start, end, change.quantity, change.unit_price, change.product_id))
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
    product_id: str = ""

    @property
    def key(self) -> str:
        return ":".join(
            (
                self.kind,
                self.subscription_id,
                self.product_id,
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
        product_id=segment.product_id,
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
        product_id=issued.product_id,
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
            else Segment(
                start, end, int(piece[0].quantity), piece[0].unit_price, piece[0].product_id
            )
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
    subscription_id: str,
    period: Period,
    quantity: Decimal,
    unit_price: Decimal,
    currency: str,
    product_id: str = "",
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
    credited = {line.credits for line in issued if line.kind == CREDIT}
    live = [
        line
        for line in issued
        if line.kind == USAGE and line.period == period and line.key not in credited
    ]
    if sum((line.quantity for line in live), Decimal(0)) == total:
        return []
    price = live[0].unit_price if live else unit_price
    added = [replace(line, kind=CREDIT, amount=-line.amount, credits=line.key) for line in live]
    if total:
        added.append(usage(subscription_id, period, total, price, currency, product_id))
    return added


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


def combined(invoices: Iterable[Invoice]) -> Totals:
    """The totals of several invoices of one account and currency (a preview with separate
    invoices per end customer, R20), each already rounded (R23): plain sums."""
    found = list(invoices)
    zero = Decimal(0)
    return Totals(
        sum((i.subtotal for i in found), zero),
        sum((i.tax for i in found), zero),
        sum((i.total for i in found), zero),
    )


# --- usage (R25) -------------------------------------------------------------------------------

MAX_USAGE = Decimal("1000000000")  # a use is below a billion units …
USAGE_PLACES = 6  # … with at most 6 decimals
#: how far ahead of the server's clock a use may be dated (the reporter's clock may run ahead)
USAGE_CLOCK_SKEW = timedelta(minutes=5)


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

    def same_use_at(self, quantity: Decimal, unit: str, at: datetime) -> bool:
        """``same_use`` with the time as sent (any offset)."""
        return (self.quantity, self.unit) == (quantity, unit) and datetime.fromisoformat(
            self.at
        ) == at


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
    """R25: a usage record, in the product's unit, of a quantity above 0 (a use of nothing is
    no use) and below ``MAX_USAGE``, with at most ``USAGE_PLACES`` decimals."""
    if not Decimal(0) < quantity < MAX_USAGE:
        raise BadRequest(
            f"quantity must be more than 0 and less than {MAX_USAGE}",
            field="quantity",
            code="out_of_range",
        )
    if quantity != quantity.quantize(Decimal(1).scaleb(-USAGE_PLACES)):
        raise BadRequest(
            f"quantity has more than {USAGE_PLACES} decimals",
            field="quantity",
            code="invalid_format",
        )
    if unit != product_unit:
        raise BadRequest(
            f"the product is metered in {product_unit!r}, not {unit!r}",
            field="unit",
            code="unit_mismatch",
        )
    return UsageRecord(tenant_id, subscription_id, key, quantity, unit, at, recorded_at)


def usage_open_from(run: Run, run_started: Callable[[date], bool]) -> date:
    """R21, R24, R25: the first day whose usage a billing run will still bill. ``run`` is the
    run of the current period; ``run_started(day)`` whether the run of the period starting on
    ``day`` was started. The run of a period bills the previous period's usage in arrears, once:
    when it has started, that usage is closed. So the previous period is open until the current
    period's run starts, and the current period until the next one's (it may be run ahead)."""
    if not run_started(run.period.start):
        return run.previous.start
    if not run_started(run.period.end):
        return run.period.start
    return run.period.end


def check_usage_time(at: datetime, *, starts: datetime, open_from: datetime, now: datetime) -> None:
    """R25, R29: a use is dated from the subscription's start (``starts``), in a period whose
    usage is still to be billed (from ``open_from``: ``usage_open_from``), and not later than
    now plus ``USAGE_CLOCK_SKEW``. Anything else would be recorded and never billed."""
    latest = now + USAGE_CLOCK_SKEW
    if at > latest:
        raise BadRequest(
            f"at {at.isoformat()} is in the future (the latest accepted is {_utc(latest)})",
            field="at",
            code="out_of_range",
            details={"latest": _utc(latest)},
        )
    if at < starts:
        raise BadRequest(
            f"at {at.isoformat()} is before the subscription's start ({_utc(starts)})",
            field="at",
            code="out_of_range",
            details={"earliest": _utc(max(starts, open_from))},
        )
    if at < open_from:
        raise BadRequest(
            f"at {at.isoformat()} falls in a period whose usage was billed already; usage "
            f"from {_utc(open_from)} is still billed",
            field="at",
            code="period_billed",
            details={"earliest": _utc(open_from)},
        )


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


# --- a subscription in a billing run (R20-R22, R25) ----------------------------------------------

BILLED_STATUSES = frozenset({"active", "inactive"})  # inactive: billed from its start date


@dataclass(frozen=True)
class Step:
    """A point of a subscription's history: from ``on`` it has this quantity and product, and
    is billed or not (suspended, cancelled, expired)."""

    on: date
    quantity: int
    product_id: str
    billed: bool


def timeline(sub: Subscription) -> list[Step]:
    """A subscription's history as steps, from its start date (R8). Days before the start are
    never billed; a term that does not renew itself ends after its end date. A subscription
    written before it kept a history has one step from its start, and its latest change."""
    start = date.fromisoformat(sub.start_date)
    entries = sub.history or [
        {
            "on": sub.start_date,
            "quantity": sub.quantity,
            "product_id": sub.product_id,
            "status": "active",
        },
        *(
            [
                {
                    "on": sub.last_change_date,
                    "quantity": sub.quantity,
                    "product_id": sub.product_id,
                    "status": sub.status,
                }
            ]
            if sub.last_change_date and sub.status not in BILLED_STATUSES
            else []
        ),
    ]
    steps = [
        Step(
            max(date.fromisoformat(entry["on"]), start),
            int(entry["quantity"]),
            str(entry["product_id"]),
            entry["status"] in BILLED_STATUSES,
        )
        for entry in entries
    ]
    if not sub.auto_renew:
        last = steps[-1]
        ended = date.fromisoformat(sub.end_date) + timedelta(days=1)
        steps.append(Step(ended, last.quantity, last.product_id, False))
    return sorted(steps, key=lambda step: step.on)


def window_periods(cycle: str, billing_day: int, anniversary: date, window: Period) -> list[Period]:
    """The periods of a cycle that overlap a run's window."""
    found = []
    period = billing_period(
        cycle, billing_day=billing_day, anniversary=anniversary, on=window.start
    )
    while period.start < window.end:
        found.append(period)
        period = next_period(cycle, period, billing_day=billing_day, anniversary=anniversary)
    return found


@dataclass(frozen=True)
class Run:
    """What a billing run bills (R21, R24): the tenant's monthly ``period`` in advance, and the
    ``previous`` one in arrears (usage) and for corrections; together they are the window."""

    period: Period
    previous: Period
    billing_day: int

    @property
    def window(self) -> Period:
        return Period(self.previous.start, self.period.end)


def run_for(billing_day: int, period_start: date) -> Run:
    """The run of the period starting on ``period_start``, which must be a billing day."""
    period = monthly_period(billing_day, period_start)
    if period.start != period_start:
        raise BadRequest(
            f"a period starts on the billing day ({billing_day}); {period_start} is not one",
            field="period_start",
            code="not_a_billing_day",
        )
    return Run(period, monthly_period(billing_day, period.start - timedelta(days=1)), billing_day)


def check_run_period(start: date, *, billing_day: int, today: date, created_on: date) -> None:
    """R24, R29: the periods a tenant may run: the current one, the next one (run ahead, in
    advance), and the previous one (a late or resumed run; older periods' ledgers are pruned,
    so running one could bill it twice) — never one before the period the tenant was created in
    (``created_on``: nothing of its own to bill then; an upgraded tenant's customers were
    billed by its provider, R19). ``run_for`` checks it starts on a billing day."""
    current = monthly_period(billing_day, today)
    if start > current.end:
        raise BadRequest(
            f"the period starting {start} is more than one period ahead (the current one "
            f"began {current.start})",
            field="period_start",
            code="future_period",
        )
    previous = monthly_period(billing_day, current.start - timedelta(days=1))
    first = monthly_period(billing_day, min(created_on, today))
    earliest = max(previous.start, first.start)
    if start < earliest:
        why = "the previous period" if earliest == previous.start else "the tenant's first period"
        raise BadRequest(
            f"the period starting {start} is too far back: the earliest a run may bill is {why}, "
            f"from {earliest}",
            field="period_start",
            code="out_of_range",
            details={"earliest": earliest.isoformat()},
        )


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
    for period in window_periods(sub.billing_cycle, run.billing_day, start, run.window):
        if period.end <= start:
            continue
        issued_here = [line for line in issued if line.period == period]
        if not issued_here and max(period.start, start) < run.window.start:
            continue
        billed_prices = {
            line.product_id: line.unit_price for line in issued_here if line.kind == CHARGE
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


# --- who bills whom (R20) ------------------------------------------------------------------------


def bill_to(sub: Subscription) -> str:
    """R20: a lite reseller's customer's subscription is billed to the lite reseller, a
    mirrored one to the tenant reseller's account (both its ``reseller_account_id``); any other
    to its own account."""
    return sub.reseller_account_id or sub.account_id


def check_billable(account: Account) -> None:
    """R20: a tenant invoices only its own accounts. A mirror is its reseller's: what is sold
    under it is billed to the tenant reseller's account, so a mirror named as the billed account
    (a record opened under it before R15 closed mirrored hierarchies) is refused, for a person to
    sort out, never invoiced."""
    if account.mirrored:
        raise Conflict(
            f"account {account.id} is a mirror of a reseller's account: the provider bills the "
            "tenant reseller, never a mirror (R20)",
            code="locked_by_reseller",
        )


def end_customer(account: Account, sub: Subscription) -> str | None:
    """R20: the end customer an invoice is for, if the billed account asked for separate
    invoices (one per end customer); None: one invoice for all."""
    return sub.account_id if account.separate_invoices else None


def invoice_id(tenant_id: str, account_id: str, end_customer: str | None, period: Period) -> str:
    """One invoice per account and period (per end customer if the account asked for separate
    invoices): deterministic, so a re-run finds it instead of creating a second (R24)."""
    return derived_id("inv", tenant_id, account_id, end_customer or "", period.start.isoformat())


# VAT standard rates by country (R23), as of 2026. A bill-to country not listed is not taxed:
# the issuer's tax rules (reverse charge, exports) are its accountant's; documented.
def _rates(text: str) -> dict[str, Decimal]:
    words = text.split()
    return dict(zip(words[::2], map(Decimal, words[1::2]), strict=True))


TAX_RATES = _rates(
    """
    AT 0.20 BE 0.21 BG 0.20 CH 0.081 CY 0.19 CZ 0.21 DE 0.19 DK 0.25 EE 0.24 ES 0.21 FI 0.255
    FR 0.20 GB 0.20 GR 0.24 HR 0.25 HU 0.27 IE 0.23 IT 0.22 LT 0.21 LU 0.17 LV 0.21 MT 0.18
    NL 0.21 NO 0.25 PL 0.23 PT 0.23 RO 0.21 SE 0.25 SI 0.22 SK 0.23 US 0 CA 0 AU 0.10 NZ 0.15
    JP 0.10 SG 0.09
    """
)


def tax_rate(country: str | None) -> Decimal:
    return TAX_RATES.get(country or "", Decimal(0))


# --- invoices (R26) ------------------------------------------------------------------------------

DRAFT, ISSUED, VOID = "draft", "issued", "void"
LINES_PER_PART = 200  # lines per stored item: ~80 KB, well under DynamoDB's 400 KB


@dataclass(frozen=True)
class InvoiceLine:
    """A line as invoiced (R26): the rated line, with the product and end customer named."""

    no: int
    kind: str
    subscription_id: str
    product_id: str
    sku: str
    product_name: str
    end_customer_id: str
    end_customer_name: str
    description: str
    period_start: str
    period_end: str
    start: str
    end: str
    quantity: Decimal
    unit_price: Decimal
    proration: Decimal
    amount: Decimal
    key: str
    credits: str | None = None

    def rated(self) -> Line:
        return Line(
            kind=self.kind,
            subscription_id=self.subscription_id,
            period=Period(
                date.fromisoformat(self.period_start), date.fromisoformat(self.period_end)
            ),
            start=date.fromisoformat(self.start),
            end=date.fromisoformat(self.end),
            quantity=self.quantity,
            unit_price=self.unit_price,
            proration=self.proration,
            amount=self.amount,
            credits=self.credits,
            product_id=self.product_id,
        )


@dataclass(frozen=True)
class Named:
    """How a line names its product and end customer."""

    sku: str
    product_name: str
    unit: str
    end_customer_id: str
    end_customer_name: str


def describe(line: Line, named: Named) -> str:
    last = line.end - timedelta(days=1)
    days = f"{line.start.isoformat()} to {last.isoformat()}"
    if line.kind == USAGE:
        return f"{named.product_name}: {line.quantity} {named.unit}, {days}"
    if line.kind == CREDIT:
        return f"Credit: {named.product_name} × {line.quantity}, {days}"
    return f"{named.product_name} × {line.quantity}, {days}"


def invoice_lines(rated: Sequence[tuple[Line, Named]]) -> list[InvoiceLine]:
    return [
        InvoiceLine(
            no=no,
            kind=line.kind,
            subscription_id=line.subscription_id,
            product_id=line.product_id,
            sku=named.sku,
            product_name=named.product_name,
            end_customer_id=named.end_customer_id,
            end_customer_name=named.end_customer_name,
            description=describe(line, named),
            period_start=line.period.start.isoformat(),
            period_end=line.period.end.isoformat(),
            start=line.start.isoformat(),
            end=line.end.isoformat(),
            quantity=line.quantity,
            unit_price=line.unit_price,
            proration=line.proration,
            amount=line.amount,
            key=line.key,
            credits=line.credits,
        )
        for no, (line, named) in enumerate(rated, start=1)
    ]


@dataclass(frozen=True)
class Invoice:
    """R26: issuer (the tenant), bill-to (one of its accounts; an end customer too when the
    account asked for separate invoices), period, currency, totals and status. Its lines are
    stored beside it, ``LINES_PER_PART`` per item. ``number`` is given when it is issued:
    gapless per issuing tenant (R24)."""

    id: str
    tenant_id: str
    run_id: str
    account_id: str
    currency: str
    period_start: str
    period_end: str
    status: str
    issuer: dict[str, Any]
    bill_to: dict[str, Any]
    subtotal: Decimal
    tax_rate: Decimal
    tax: Decimal
    total: Decimal
    line_count: int
    created_at: str
    end_customer_id: str | None = None
    number: str | None = None
    sequence: int | None = None
    issued_at: str | None = None
    document_key: str | None = None
    emailed_at: str | None = None
    voided_at: str | None = None
    version: int | None = None

    @property
    def parts(self) -> int:
        return max(1, -(-self.line_count // LINES_PER_PART))


def draft_invoice(
    *,
    id: str,
    tenant_id: str,
    run_id: str,
    account_id: str,
    end_customer_id: str | None,
    currency: str,
    period: Period,
    issuer: dict[str, Any],
    bill_to: dict[str, Any],
    lines: Sequence[InvoiceLine],
    created_at: str,
) -> Invoice:
    """R23, R26: a draft whose totals are the sum of its rounded lines and the bill-to
    country's tax, rounded once."""
    rate = tax_rate(bill_to.get("country"))
    sums = totals([line.rated() for line in lines], rate, currency)
    return Invoice(
        id=id,
        tenant_id=tenant_id,
        run_id=run_id,
        account_id=account_id,
        end_customer_id=end_customer_id,
        currency=currency,
        period_start=period.start.isoformat(),
        period_end=period.end.isoformat(),
        status=DRAFT,
        issuer=issuer,
        bill_to=bill_to,
        subtotal=sums.subtotal,
        tax_rate=rate,
        tax=sums.tax,
        total=sums.total,
        line_count=len(lines),
        created_at=created_at,
    )


def void(invoice: Invoice, at: str) -> Invoice:
    """R26: an issued invoice withdrawn. It keeps its number (the sequence stays gapless); what
    it charged counts as not invoiced, so the next run bills it again, correctly."""
    if invoice.status != ISSUED:
        raise Conflict(
            f"only an issued invoice can be voided; this one is {invoice.status}",
            code="invalid_state",
            field="status",
        )
    return replace(invoice, status=VOID, voided_at=at)


def invoice_number(sequence: int) -> str:
    """Gapless per issuing tenant (R24): ``INV-000001``, ``INV-000002``, …"""
    return f"INV-{sequence:06d}"


def issue(invoice: Invoice, sequence: int, issued_at: str) -> Invoice:
    if invoice.status != DRAFT:
        raise ValueError(f"invoice {invoice.id} is {invoice.status}, not a draft")
    return replace(
        invoice,
        status=ISSUED,
        sequence=sequence,
        number=invoice_number(sequence),
        issued_at=issued_at,
    )


# --- the billing run (R24) -----------------------------------------------------------------------

QUEUED, RUNNING, COMPLETED, COMPLETED_WITH_FAILURES = (
    "queued",
    "running",
    "completed",
    "completed_with_failures",
)
CHUNK_ACCOUNTS = 100  # accounts per Map iteration
CHUNK_SUBSCRIPTIONS = 1000  # subscriptions per Map iteration (an account is never split)
MAX_FAILURES_SHOWN = 100


@dataclass(frozen=True)
class BillingRun:
    """A tenant's run of one period (R24): one per tenant and period; each start is an
    ``attempt`` that resumes it (what is invoiced stays invoiced)."""

    id: str
    tenant_id: str
    period_start: str
    period_end: str
    status: str
    attempt: int
    created_at: str
    updated_at: str
    started_by: str
    chunks: int = 0
    accounts: int = 0
    chunks_rated: int = 0
    chunks_rendered: int = 0
    invoices: int = 0
    issued: int = 0
    failed_accounts: int = 0
    failures: list[dict[str, str]] = field(default_factory=list)
    finished_at: str | None = None

    @property
    def finished(self) -> bool:
        return self.status in (COMPLETED, COMPLETED_WITH_FAILURES)


def run_id(tenant_id: str, period_start: date) -> str:
    return derived_id("run", tenant_id, period_start.isoformat())


@dataclass(frozen=True)
class Chunk:
    n: int
    accounts: dict[str, list[str]]  # bill-to account → its subscriptions
    status: str
    invoice_ids: list[str]
    failures: list[dict[str, str]]


def chunked(billable: Iterable[tuple[str, str, str | None]]) -> list[dict[str, list[str]]]:
    """R20, R24: a tenant's subscriptions ``(id, account, reseller account)`` grouped by the
    account billed for them, in pages of whole accounts for the Map."""
    by_account: dict[str, list[str]] = {}
    for sub_id, account_id, reseller_account_id in billable:
        by_account.setdefault(reseller_account_id or account_id, []).append(sub_id)
    chunks: list[dict[str, list[str]]] = []
    current: dict[str, list[str]] = {}
    size = 0
    for account_id in sorted(by_account):
        subs = sorted(by_account[account_id])
        if current and (len(current) >= CHUNK_ACCOUNTS or size + len(subs) > CHUNK_SUBSCRIPTIONS):
            chunks.append(current)
            current, size = {}, 0
        current[account_id] = subs
        size += len(subs)
    if current:
        chunks.append(current)
    return chunks


def close_status(run: BillingRun) -> str:
    return (
        COMPLETED
        if run.failed_accounts == 0 and run.chunks_rated == run.chunks
        else COMPLETED_WITH_FAILURES
    )
