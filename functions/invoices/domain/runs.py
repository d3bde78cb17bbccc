"""The billing run (R21, R24): what a run of a period bills (``Run``), which periods a tenant
may run, the run's record (``BillingRun``) and its chunks of whole accounts."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta

from functions.core.errors import BadRequest
from functions.core.ids import derived_id
from functions.core.periods import Period, monthly_period

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
    """R24: one run per tenant and period."""
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
    """R24: a run with a failed account or an unrated chunk completes with failures."""
    return (
        COMPLETED
        if run.failed_accounts == 0 and run.chunks_rated == run.chunks
        else COMPLETED_WITH_FAILURES
    )
