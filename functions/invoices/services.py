"""Use cases of billing: usage records (R25)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from functions.core import clock
from functions.core.auth import TENANT_ADMIN, Principal, hidden
from functions.core.clock import now_utc, rfc3339, today_in
from functions.core.domain import Tenant
from functions.core.errors import BadRequest, Conflict, present
from functions.core.pagination import Page
from functions.core.settings import Settings
from functions.invoices import domain
from functions.invoices.adapters import (
    BillingRepository,
    DocumentStore,
    Launcher,
    Mailer,
    UsageRepository,
)
from functions.invoices.domain import (
    DRAFT,
    BillingRun,
    Draft,
    Invoice,
    InvoiceLine,
    Line,
    Preview,
    RatingError,
    UsageRecord,
)
from functions.orders.domain import Subscription

if TYPE_CHECKING:
    from functions.core.services import TenancyService
    from functions.orders.services import OrderService

log = logging.getLogger(__name__)


class UsageService:
    def __init__(
        self, orders: OrderService, usage: UsageRepository, runs: BillingRepository
    ) -> None:
        self.orders = orders
        self.usage = usage
        self.runs = runs

    def record(self, principal: Principal, body: Any) -> UsageRecord:
        """R25: record a use once per key. The same key with the same use answers the stored
        record (a retry); with another use it is a 409 and nothing changes."""
        sub = self.orders.subscription(principal, body.subscription_id)
        if sub.mirrored:
            raise Conflict(
                "usage of a mirrored subscription is its reseller's to report (R15)",
                code="locked_by_reseller",
                field="subscription_id",
            )
        product = self.orders.catalogue.products.get(sub.tenant_id, sub.product_id)
        if product is None or product.type != "usage":
            raise BadRequest(
                "only a usage (pay as you go) subscription is metered",
                field="subscription_id",
                code="not_metered",
            )
        quantity = Decimal(body.quantity)
        try:
            self._check_time(principal, sub, body.at)
        except BadRequest:
            stored = self.usage.get(sub.tenant_id, sub.id, body.key)
            if stored is not None and stored.same_use_at(quantity, body.unit, body.at):
                return stored  # a retry of a use recorded while its period was open
            raise
        record = domain.usage_record(
            sub.tenant_id,
            sub.id,
            key=body.key,
            quantity=quantity,
            unit=body.unit,
            product_unit=product.unit,
            at=rfc3339(body.at),
            recorded_at=rfc3339(now_utc()),
        )
        if self.usage.record_once(record):
            return record
        # not written: a record under its key is there (a retry or a reuse of the key)
        stored = present(
            self.usage.get(sub.tenant_id, sub.id, record.key), f"usage record {record.key!r}"
        )
        if not stored.same_use(record):
            raise Conflict(
                f"key {record.key!r} was recorded with another quantity, unit or time",
                code="usage_key_reused",
                field="key",
            )
        return stored

    def _check_time(self, principal: Principal, sub: Subscription, at: datetime) -> None:
        """R25, R29: ``at`` from the subscription's start, in a period whose usage a run will
        still bill, and not in the future (``domain.check_usage_time``)."""
        tenant = self.orders.tenancy.tenant_of(principal)
        now = clock.now_utc()  # the clock today_in reads
        current = domain.monthly_period(tenant.billing_day, today_in(tenant.time_zone, at=now))
        billing = domain.run_for(tenant.billing_day, current.start)
        open_from = domain.usage_open_from(
            billing,
            lambda start: self.runs.run(tenant.id, domain.run_id(tenant.id, start)) is not None,
        )
        domain.check_usage_time(
            at,
            starts=_midnight(date.fromisoformat(sub.start_date), tenant.time_zone),
            open_from=_midnight(open_from, tenant.time_zone),
            now=now,
        )

    def list(
        self, principal: Principal, subscription_id: str, limit: int, cursor: str | None
    ) -> Page[UsageRecord]:
        sub = self.orders.subscription(principal, subscription_id)
        return self.usage.page(sub.tenant_id, sub.id, limit, cursor)


# --- billing (R20-R26) ---------------------------------------------------------------------------

FINALIZE_CHUNKS = 20  # chunks numbered per Finalize invocation
ISSUE_BATCH = 99  # drafts per transaction, with the sequence: DynamoDB's limit is 100 items


class BillingService:
    """The billing run (R24) as its steps, the invoices (R26) and the preview."""

    def __init__(
        self,
        settings: Settings,
        tenancy: TenancyService,
        orders: OrderService,
        usage: UsageRepository,
        repository: BillingRepository,
        *,
        launcher: Callable[[], Launcher],
        documents: Callable[[], DocumentStore],
        mailer: Callable[[], Mailer],
    ) -> None:
        self.settings = settings
        self.tenancy = tenancy
        self.orders = orders
        self.usage = usage
        self.repository = repository
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
        facts = self._load(tenant, billing, chunk.accounts)
        invoice_ids: list[str] = []
        failures: list[dict[str, str]] = []
        for account_id, sub_ids in chunk.accounts.items():
            try:
                for draft in self._drafts(facts, run.id, account_id, sub_ids):
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
        bill-to with the total and the link; an invoice with a document is not sent again."""
        chunk = self.repository.chunk(tenant_id, run_id, attempt, n)
        if chunk.status != "finalized":
            return {"rendered": 0}
        due = [
            invoice
            for invoice in self.repository.invoices(tenant_id, chunk.invoice_ids).values()
            if invoice.status == domain.ISSUED and not invoice.document_key
        ]
        lines = self.repository.lines_of(due)  # one batched read for the chunk
        for invoice in due:
            self._render(invoice, lines[invoice.id])
        rendered = len(due)
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
        status = domain.close_status(run)
        now = rfc3339(now_utc())
        self.repository.update_run(
            tenant_id, run_id, attempt, status=status, finished_at=now, updated_at=now
        )
        return status

    # --- rating ---

    def _load(
        self, tenant: Tenant, billing: domain.Run, accounts: dict[str, list[str]]
    ) -> domain.Facts:
        """Everything a chunk's rating reads, by key (BatchGetItem), before rating it."""
        repo = self.repository
        subs = repo.subscriptions(tenant.id, [s for ids in accounts.values() for s in ids])
        account_ids = [*accounts, *(sub.account_id for sub in subs.values())]
        product_ids = {sub.product_id for sub in subs.values()} | {
            str(entry["product_id"]) for sub in subs.values() for entry in sub.history
        }
        products = self.orders.catalogue.products.get_many(tenant.id, product_ids)
        billed = repo.accounts(tenant.id, account_ids)
        invoice_ids = [
            domain.invoice_id(tenant.id, account_id, end_customer, billing.period)
            for account_id, ids in accounts.items()
            for end_customer in domain.end_customers(billed.get(account_id), ids, subs)
        ]
        return domain.Facts(
            tenant=tenant,
            billing=billing,
            subs=subs,
            accounts=billed,
            ledgers=repo.ledgers(tenant.id, subs),
            products=products,
            prices=repo.prices(
                tenant.id,
                {
                    (sub.price_list_id, product_id, sub.billing_cycle)
                    for sub in subs.values()
                    for product_id in {sub.product_id} | {str(e["product_id"]) for e in sub.history}
                },
            ),
            existing=repo.invoices(tenant.id, invoice_ids),
        )

    def _drafts(
        self, facts: domain.Facts, run_id: str, account_id: str, sub_ids: Sequence[str]
    ) -> list[Draft]:
        """R20-R24: an account's invoices for the run's period (``domain.account_drafts``)."""
        return domain.account_drafts(
            facts,
            run_id,
            account_id,
            sub_ids,
            lambda sub, issued: self._rate(facts, sub, issued),
            created_at=rfc3339(now_utc()),
        )

    def _rate(self, facts: domain.Facts, sub: Subscription, issued: list[Line]) -> list[Line]:
        """R21, R25: a subscription rated (``domain.rated``); a metered one with its usage of
        the previous period, from local midnight to local midnight (R22)."""
        usage_total = Decimal(0)
        if domain.metered(facts, sub):
            start, end = (
                _utc(day, facts.tenant.time_zone)
                for day in (facts.billing.previous.start, facts.billing.previous.end)
            )
            usage_total = self.usage.total(sub.tenant_id, sub.id, start, end)
        return domain.rated(facts, sub, issued, usage_total)

    # --- invoices ---

    def preview(self, principal: Principal, account_id: str) -> Preview:
        """R26: the account's next invoice, rated now and written nowhere: the current period's
        if it is not invoiced yet, else the next one's."""
        account = self.tenancy.account(principal, account_id)
        tenant = self.tenancy.tenant_of(principal)
        period = domain.monthly_period(tenant.billing_day, today_in(tenant.time_zone))
        billing = domain.run_for(tenant.billing_day, period.start)
        if self._any_invoice(tenant.id, account.id, billing.period):
            billing = domain.run_for(tenant.billing_day, billing.period.end)
        sub_ids = self._billed_for(tenant.id, account.id)
        facts = replace(self._load(tenant, billing, {account.id: sub_ids}), existing={})
        return Preview(billing, self._drafts(facts, "preview", account.id, sub_ids))

    def _any_invoice(self, tenant_id: str, account_id: str, period: domain.Period) -> bool:
        page = self.repository.page(tenant_id, account_id, 1, None)
        return any(invoice.period_start == period.start.isoformat() for invoice in page.items)

    def _billed_for(self, tenant_id: str, account_id: str) -> list[str]:
        """The subscriptions an account is billed for (R20): its own, and those it resells."""
        found: list[str] = []
        for listing in (
            self.orders.subscriptions.for_account,
            self.orders.subscriptions.for_reseller,
        ):
            cursor = None
            while True:
                page = listing(tenant_id, account_id, 100, cursor)
                found += [sub.id for sub in page.items if domain.bill_to(sub) == account_id]
                cursor = page.next_cursor
                if cursor is None:
                    break
        return sorted(set(found))

    def invoices(
        self,
        principal: Principal,
        account_id: str | None,
        limit: int,
        cursor: str | None,
        *,
        received: bool = False,
    ) -> Page[Invoice]:
        """A tenant admin reads every invoice of its tenant (or one account's), or with
        ``received`` those its provider issued to it (R20: the provider bills the tenant
        reseller's account); a reseller or customer its own account's (or, with
        ``account_id``, another account it sees: a reseller's customer's), issued ones only
        (R28)."""
        tenant = self.tenancy.tenant_of(principal)
        if received:
            if principal.role != TENANT_ADMIN:
                raise BadRequest(
                    "only a tenant admin reads what its provider bills it",
                    field="received",
                    code="not_allowed",
                )
            if account_id is not None:
                raise BadRequest(
                    "received invoices are the tenant's own: no account_id",
                    field="account_id",
                    code="unknown_field",
                )
            if tenant.parent_id is None or tenant.reseller_account_id is None:
                return Page([], None)
            page = self.repository.page(tenant.parent_id, tenant.reseller_account_id, limit, cursor)
            return Page([i for i in page.items if i.status != DRAFT], page.next_cursor)
        if account_id is not None:
            # any account the caller sees (else 404, R28): a reseller names itself or one of
            # its customers, whom the tenant never bills (R20: their subscriptions are billed
            # to the reseller, each line naming its end customer), so theirs is an empty list
            self.tenancy.account(principal, account_id)
        elif principal.role != TENANT_ADMIN:
            account_id = principal.account_id
        page = self.repository.page(tenant.id, account_id, limit, cursor)
        if principal.role != TENANT_ADMIN:
            return Page([i for i in page.items if i.status != DRAFT], page.next_cursor)
        return page

    def invoice(self, principal: Principal, invoice_id: str) -> tuple[Invoice, list[InvoiceLine]]:
        invoice = self._visible(principal, invoice_id, received=True)
        return invoice, self.repository.lines(invoice)

    def void(self, principal: Principal, invoice_id: str) -> Invoice:
        """R26: void an issued invoice (tenant admin). The next run bills its days again."""
        invoice = self._visible(principal, invoice_id)
        voided = domain.void(invoice, rfc3339(now_utc()))
        subscriptions = {line.subscription_id for line in self.repository.lines(invoice)}
        if not self.repository.void(invoice, subscriptions, str(voided.voided_at)):
            raise Conflict("the invoice changed meanwhile; read it again", code="invalid_state")
        return voided

    def document(self, principal: Principal, invoice_id: str) -> bytes:
        invoice = self._visible(principal, invoice_id, received=True)
        if invoice.document_key is None:
            raise Conflict(
                "the invoice's document is not rendered yet", code="not_rendered", field="id"
            )
        return self.documents().get(invoice.document_key)

    def _visible(self, principal: Principal, invoice_id: str, *, received: bool = False) -> Invoice:
        """An invoice the caller may read: its tenant's (a reseller's or customer's own issued
        ones); with ``received``, for a tenant admin, also one its provider issued to it."""
        invoice = self.repository.invoice(principal.tenant(), invoice_id)
        if invoice is None and received and principal.role == TENANT_ADMIN:
            tenant = self.tenancy.tenant_of(principal)
            if tenant.parent_id is not None and tenant.reseller_account_id is not None:
                found = self.repository.invoice(tenant.parent_id, invoice_id)
                if (
                    found is not None
                    and found.account_id == tenant.reseller_account_id
                    and found.status != DRAFT
                ):
                    return found
        if invoice is None or (
            principal.role != TENANT_ADMIN
            and (invoice.account_id != principal.account_id or invoice.status == DRAFT)
        ):
            raise hidden("invoice")
        return invoice


def _step(run: BillingRun) -> dict[str, Any]:
    return {"tenant_id": run.tenant_id, "run_id": run.id, "attempt": run.attempt}


def _utc(day: date, time_zone: str) -> str:
    """Local midnight of ``day`` in the tenant's time zone, as RFC 3339 UTC (R22)."""
    return rfc3339(_midnight(day, time_zone))


def _midnight(day: date, time_zone: str) -> datetime:
    """Local midnight of ``day`` in the tenant's time zone, in UTC (R22)."""
    return datetime.combine(day, time(0), ZoneInfo(time_zone)).astimezone(UTC)
