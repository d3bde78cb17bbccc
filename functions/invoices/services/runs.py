"""``BillingService``: the billing run (R24) — started by a tenant admin or the daily schedule,
then its steps, the Task states of ``infra/billing_run.asl.json`` (``handlers.py``): open, list
the billable accounts in chunks, rate each chunk into drafts, finalize (gapless numbers), render
the documents and email them, close."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from functions.core import observability
from functions.core.auth import Principal, hidden
from functions.core.clock import now_utc, rfc3339, today_in
from functions.core.domain import Tenant
from functions.core.errors import BadRequest, Conflict
from functions.core.pagination import Page
from functions.core.settings import Settings
from functions.invoices import domain
from functions.invoices.domain import (
    DRAFT,
    BillingRun,
    Facts,
    Invoice,
    InvoiceLine,
    Line,
    RatingError,
)
from functions.invoices.ports import BillingRecords, Documents, Launcher, Mailer
from functions.invoices.services.margin import MarginReports
from functions.invoices.services.rating import Rater
from functions.orders.domain import Subscription

if TYPE_CHECKING:
    from functions.core.services import TenancyService

log = logging.getLogger(__name__)

FINALIZE_CHUNKS = 20  # chunks numbered per Finalize invocation
ISSUE_BATCH = 99  # drafts per transaction, with the sequence: DynamoDB's limit is 100 items


class BillingService:
    """The billing run (R24): started or resumed, scheduled, and its steps."""

    def __init__(
        self,
        settings: Settings,
        tenancy: TenancyService,
        repository: BillingRecords,
        rater: Rater,
        margin: MarginReports,
        *,
        launcher: Callable[[], Launcher],
        documents: Callable[[], Documents],
        mailer: Callable[[], Mailer],
    ) -> None:
        self.settings = settings
        self.tenancy = tenancy
        self.repository = repository
        self.rater = rater
        self.margin = margin
        self.launcher = launcher
        self.documents = documents
        self.mailer = mailer

    # --- starting a run ---

    def start(self, principal: Principal, period_start: date | None) -> BillingRun:
        """``POST /billing-runs``: the tenant's run of a period (the current one by default)."""
        tenant = self.tenancy.tenant_of(principal)
        return self.begin(tenant, period_start, started_by=principal.sub)

    def begin(self, tenant: Tenant, period_start: date | None, *, started_by: str) -> BillingRun:
        """Open the run of a period, or a new attempt of it: an attempt whose execution is still
        running is answered as it is; a finished (or failed) one is resumed by a new attempt,
        which invoices only what is not invoiced yet (R24)."""
        today = today_in(tenant.time_zone)
        current = domain.monthly_period(tenant.billing_day, today)
        start = period_start or current.start
        domain.check_run_period(
            start,
            billing_day=tenant.billing_day,
            today=today,
            created_on=today_in(tenant.time_zone, at=datetime.fromisoformat(tenant.created_at)),
        )
        billing = domain.run_for(tenant.billing_day, start)
        run_id = domain.run_id(tenant.id, start)
        now = now_utc()
        for _ in range(3):
            found = self.repository.run(tenant.id, run_id, consistent=True)
            if (
                found is not None
                and not found.finished
                and self.launcher().running(f"{found.id}-{found.attempt}")
            ):
                return found
            run = domain.BillingRun(
                id=run_id,
                tenant_id=tenant.id,
                period_start=billing.period.start.isoformat(),
                period_end=billing.period.end.isoformat(),
                status=domain.QUEUED,
                attempt=(found.attempt + 1) if found else 1,
                created_at=found.created_at if found else rfc3339(now),
                updated_at=rfc3339(now),
                started_by=started_by,
            )
            if self.repository.save_run(run, expected_attempt=found.attempt if found else None):
                self.launcher().start(f"{run.id}-{run.attempt}", _step(run))
                return run
        raise Conflict("the run is being started by someone else; try again", code="busy")

    def run(self, principal: Principal, run_id: str) -> BillingRun:
        tenant = self.tenancy.tenant_of(principal)
        run = self.repository.run(tenant.id, run_id)
        if run is None:
            raise hidden("billing run")
        chunks = self.repository.chunks(tenant.id, run.id, run.attempt, run.chunks)
        failures = [failure for chunk in chunks for failure in chunk.failures]
        return replace(run, failures=failures[: domain.MAX_FAILURES_SHOWN])

    def runs(self, principal: Principal, limit: int, cursor: str | None) -> Page[BillingRun]:
        tenant = self.tenancy.tenant_of(principal)
        return self.repository.runs(tenant.id, limit, cursor)

    def schedule(self, on: datetime) -> list[str]:
        """The daily schedule (EventBridge): every tenant whose period begins today, in its
        time zone, gets its run; started twice on a day, it starts each run once."""
        started, failed = [], []
        for tenant in self.tenancy.all_tenants():
            today = today_in(tenant.time_zone, at=on)
            if domain.monthly_period(tenant.billing_day, today).start != today:
                continue
            try:  # one tenant's trouble does not hold up the others' runs
                started.append(self.begin(tenant, today, started_by="schedule").id)
            except Exception:
                log.exception("the billing run of tenant %s could not start", tenant.id)
                failed.append(tenant.id)
        if failed:  # fail the invocation so the schedule's retry starts what is missing
            raise RuntimeError(f"billing runs not started for tenants {failed}")
        return started

    # --- the steps of the state machine ---

    def open(self, tenant_id: str, run_id: str, attempt: int) -> None:
        self.repository.update_run(
            tenant_id, run_id, attempt, status=domain.RUNNING, updated_at=rfc3339(now_utc())
        )

    def list_accounts(self, tenant_id: str, run_id: str, attempt: int) -> list[int]:
        """R20: the billable accounts (those billed for some subscription), in chunks."""
        chunks = domain.chunked(self.repository.billable(tenant_id))
        self.repository.put_chunks(tenant_id, run_id, attempt, chunks)
        self.repository.update_run(
            tenant_id,
            run_id,
            attempt,
            chunks=len(chunks),
            accounts=sum(len(chunk) for chunk in chunks),
            updated_at=rfc3339(now_utc()),
        )
        return list(range(len(chunks)))

    def rate_chunk(self, tenant_id: str, run_id: str, attempt: int, n: int) -> dict[str, int]:
        """Rate each account of a chunk into draft invoices. An account that fails is reported
        and skipped (the others go on, R24); an infrastructure error fails the whole step, which
        the state machine retries (what was written is found again, not written twice)."""
        chunk = self.repository.chunk(tenant_id, run_id, attempt, n)
        if chunk.status != "pending":
            return {"invoices": len(chunk.invoice_ids), "failed": len(chunk.failures)}
        run = self.repository.run(tenant_id, run_id)
        tenant = self.tenancy.tenants.get(tenant_id)
        if run is None or tenant is None:
            raise RatingError(f"run {run_id} of {tenant_id} is gone")
        billing = domain.run_for(tenant.billing_day, date.fromisoformat(run.period_start))
        facts = self.rater.load(tenant, billing, chunk.accounts)

        def rate(sub: Subscription, issued: list[Line]) -> list[Line]:
            return self._rate(facts, sub, issued)

        invoice_ids: list[str] = []
        failures: list[dict[str, str]] = []
        for account_id, sub_ids in chunk.accounts.items():
            try:
                for draft in self.rater.drafts(facts, run.id, account_id, sub_ids, rate):
                    if draft.invoice.id not in facts.existing:
                        self.repository.put_draft(draft.invoice, draft.lines, draft.ledgers)
                    invoice_ids.append(draft.invoice.id)
            except (RatingError, BadRequest, Conflict, ValueError, KeyError) as error:
                log.warning("billing run %s: account %s failed: %s", run_id, account_id, error)
                failures.append({"account_id": account_id, "error": str(error)})
        self.repository.chunk_done(
            tenant_id,
            run_id,
            attempt,
            n,
            status="rated",
            invoice_ids=invoice_ids,
            failures=failures,
            counts={
                "chunks_rated": 1,
                "invoices": len(invoice_ids),
                "failed_accounts": len(failures),
            },
        )
        return {"invoices": len(invoice_ids), "failed": len(failures)}

    def _rate(self, facts: Facts, sub: Subscription, issued: list[Line]) -> list[Line]:
        """The run's rating of one subscription (``Rater.rate``)."""
        return self.rater.rate(facts, sub, issued)

    def finalize(self, tenant_id: str, run_id: str, attempt: int, cursor: int) -> tuple[int, bool]:
        """Number the drafts of up to ``FINALIZE_CHUNKS`` rated chunks: gapless, in chunk and
        account order, each batch in one transaction with the tenant's sequence (R24)."""
        run = self.repository.run(tenant_id, run_id, consistent=True)
        if run is None or run.attempt != attempt:
            return cursor, True
        stop = min(run.chunks, cursor + FINALIZE_CHUNKS)
        for chunk in self.repository.chunks(tenant_id, run_id, attempt, run.chunks)[cursor:stop]:
            if chunk.status != "rated":
                continue
            self._issue(tenant_id, chunk.invoice_ids)
            self.repository.chunk_done(
                tenant_id,
                run_id,
                attempt,
                chunk.n,
                status="finalized",
                counts={"issued": len(chunk.invoice_ids)},
            )
        return stop, stop >= run.chunks

    def _issue(self, tenant_id: str, invoice_ids: Sequence[str]) -> None:
        for offset in range(0, len(invoice_ids), ISSUE_BATCH):
            batch = invoice_ids[offset : offset + ISSUE_BATCH]
            for _ in range(10):
                found = self.repository.invoices(tenant_id, batch)
                drafts = [found[i] for i in batch if i in found and found[i].status == DRAFT]
                if not drafts:
                    break
                last = self.repository.last_number(tenant_id)
                issued_at = rfc3339(now_utc())
                numbered = [
                    domain.issue(draft, last + k, issued_at) for k, draft in enumerate(drafts, 1)
                ]
                if self.repository.issue(tenant_id, last, numbered):
                    break
            else:
                raise Conflict("the invoice sequence kept moving; the step is retried")

    def render_chunk(self, tenant_id: str, run_id: str, attempt: int, n: int) -> dict[str, int]:
        """R26: a PDF per issued invoice of the chunk, stored in S3, and an email to the
        bill-to with the total and the link; an invoice with a document is not sent again.
        Then the margin report's rows of the chunk's issued invoices (R32), rewritten whole by
        a retry, before the chunk is marked rendered."""
        chunk = self.repository.chunk(tenant_id, run_id, attempt, n)
        if chunk.status != "finalized":
            return {"rendered": 0}
        issued = [
            invoice
            for invoice in self.repository.invoices(tenant_id, chunk.invoice_ids).values()
            if invoice.status == domain.ISSUED
        ]
        lines = self.repository.lines_of(issued)  # one batched read for the chunk
        due = [invoice for invoice in issued if not invoice.document_key]
        for invoice in due:
            self._render(invoice, lines[invoice.id])
        rendered = len(due)
        run = self.repository.run(tenant_id, run_id)
        tenant = self.tenancy.tenants.get(tenant_id)
        if run is not None and tenant is not None:  # R32: the margin report's rows
            self.margin.record_chunk(tenant, run.period_start, [(i, lines[i.id]) for i in issued])
        self.repository.chunk_done(
            tenant_id, run_id, attempt, n, status="rendered", counts={"chunks_rendered": 1}
        )
        return {"rendered": rendered}

    def _render(self, invoice: Invoice, lines: list[InvoiceLine]) -> None:
        from functions.invoices import documents

        key = documents.document_key(invoice)
        self.documents().put(key, documents.render_pdf(invoice, lines))
        emailed_at = None
        address = invoice.bill_to.get("email")
        if address:
            link = f"{self.settings.public_url}/invoices/{invoice.id}/document"
            message = documents.email_message(invoice, link)
            self.mailer().send(address, message.subject, message.text, message.html)
            emailed_at = rfc3339(now_utc())
        self.repository.documented(invoice, key, emailed_at)

    def close(self, tenant_id: str, run_id: str, attempt: int) -> str:
        run = self.repository.run(tenant_id, run_id, consistent=True)
        if run is None or run.attempt != attempt:
            return "superseded"
        self.margin.close(tenant_id, run.period_start)  # R32: the report's sums
        status = domain.close_status(run)
        finished = now_utc()
        now = rfc3339(finished)
        self.repository.update_run(
            tenant_id, run_id, attempt, status=status, finished_at=now, updated_at=now
        )
        started = datetime.fromisoformat(run.created_at.replace("Z", "+00:00"))
        observability.emit(  # issue 16: what a run did, for the operator's dashboards
            {
                "InvoicesIssued": run.issued,
                "FailedAccounts": run.failed_accounts,
                "RunDuration": round((finished - started).total_seconds(), 3),
            },
            dimensions={"status": status},
            units={"RunDuration": "Seconds"},
        )
        return status


def _step(run: BillingRun) -> dict[str, Any]:
    return {"tenant_id": run.tenant_id, "run_id": run.id, "attempt": run.attempt}
