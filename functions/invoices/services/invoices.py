"""``InvoiceService``: the invoices (R26) as their readers see them (R20, R28), their documents,
void, and the preview of an account's next invoice."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING

from functions.core.auth import TENANT_ADMIN, Principal, hidden
from functions.core.clock import now_utc, rfc3339, today_in
from functions.core.errors import BadRequest, Conflict
from functions.core.pagination import Page
from functions.invoices import domain
from functions.invoices.domain import DRAFT, Invoice, InvoiceLine, Preview
from functions.invoices.ports import BillingRecords, Documents
from functions.invoices.services.rating import Rater

if TYPE_CHECKING:
    from functions.core.services import TenancyService
    from functions.orders.services import OrderService


class InvoiceService:
    """Invoices read, voided and rendered (R26), and the preview."""

    def __init__(
        self,
        tenancy: TenancyService,
        orders: OrderService,
        repository: BillingRecords,
        rater: Rater,
        *,
        documents: Callable[[], Documents],
    ) -> None:
        self.tenancy = tenancy
        self.orders = orders
        self.repository = repository
        self.rater = rater
        self.documents = documents

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
        facts = replace(self.rater.load(tenant, billing, {account.id: sub_ids}), existing={})
        return Preview(billing, self.rater.drafts(facts, "preview", account.id, sub_ids))

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
