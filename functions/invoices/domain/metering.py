"""Usage records (R25): a subscription's metered uses, each counted once per deduplication
key, and when a use may be dated — from the subscription's start, in a period whose usage a
run will still bill, not in the future (R24, R29)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from functions.core.errors import BadRequest
from functions.invoices.domain.runs import Run

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
