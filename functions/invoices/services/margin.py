"""``MarginReports``: the margin report (R32), written by the billing run from the invoices it
issued, read a page at a time.

- Render (``record_chunk``, once the chunk's invoices are issued): the issuing tenant's REVENUE
  rows of the chunk; and, for each invoice billed to a tenant reseller account, the child's
  COST rows with their sums (a reseller account is never split across chunks, so the chunk
  holds everything its provider billed the child in the period).
- Close (``close``): the issuing tenant's REVENUE sums, from its rows.
- ``GET /reports/margin`` (``report``): one Query per page.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Protocol

from functions.core.auth import Principal
from functions.core.domain import Tenant
from functions.core.errors import BadRequest
from functions.core.ids import derived_id
from functions.invoices.domain import ISSUED, Invoice, InvoiceLine, margin
from functions.invoices.ports import BillingRecords
from functions.orders.domain import Subscription

if TYPE_CHECKING:
    from functions.core.services import TenancyService
    from functions.orders.services import OrderService


class MarginStore(Protocol):
    """The ``margin_report`` table (``adapters.MarginReportRepository``)."""

    def put(self, report_key: str, items: Iterable[margin.Row | margin.Group]) -> None: ...

    def side(self, report_key: str, prefix: str, side: str) -> list[margin.Row | margin.Group]: ...

    def delete(self, report_key: str, items: Iterable[margin.Row | margin.Group]) -> None: ...

    def page(
        self, report_key: str, prefix: str, limit: int, cursor: str | None
    ) -> tuple[list[margin.Row | margin.Group], str | None]: ...


def report_key(tenant_id: str, label: str) -> str:
    return f"{tenant_id}#{label}"


Issued = Sequence[tuple[Invoice, Sequence[InvoiceLine]]]


class MarginReports:
    def __init__(
        self,
        tenancy: TenancyService,
        orders: OrderService,
        repository: BillingRecords,
        reports: MarginStore,
    ) -> None:
        self.tenancy = tenancy
        self.orders = orders
        self.repository = repository
        self.reports = reports

    # --- written by the run ---

    def record_chunk(self, tenant: Tenant, period_start: str, issued: Issued) -> None:
        """R32: the chunk's issued invoices → the tenant's REVENUE rows, and the COST rows and
        sums of each child tenant they bill."""
        issued = [(invoice, lines) for invoice, lines in issued if invoice.status == ISSUED]
        if not issued:
            return
        label = margin.period_label(period_start)
        sub_ids = {line.subscription_id for _, lines in issued for line in lines}
        subs = self.repository.subscriptions(tenant.id, sub_ids)
        products = self.orders.catalogue.products.get_many(
            tenant.id, {sub.product_id for sub in subs.values()}
        )
        sold_as = {
            sub.id: margin.sold(sub.id, sub.account_id, sub.reseller_account_id, sub.product_id)
            for sub in subs.values()
        }
        unit_costs: dict[str, Decimal] = {}
        for sub in subs.values():
            product = products.get(sub.product_id)
            if product is not None and not product.inherited:  # a copy's cost is billed to us
                cost = product.costs.get(sub.billing_cycle)
                if cost:
                    unit_costs[sub.id] = cost
        rows = margin.revenue_rows(tenant.currency, issued, sold_as, unit_costs)
        self.reports.put(report_key(tenant.id, label), rows)
        billed = self.repository.accounts(tenant.id, {invoice.account_id for invoice, _ in issued})
        for account in billed.values():
            if account.child_tenant_id:
                mine = [(i, lines) for i, lines in issued if i.account_id == account.id]
                self._child_costs(tenant, account.child_tenant_id, label, mine, subs)

    def _child_costs(
        self,
        tenant: Tenant,
        child_id: str,
        label: str,
        issued: Issued,
        subs: dict[str, Subscription],
    ) -> None:
        sources = {
            sub.id: str(sub.source["subscription_id"])
            for sub in subs.values()
            if sub.source and sub.source.get("tenant_id") == child_id
        }
        theirs = self.repository.subscriptions(child_id, sources.values())
        sold_as = {
            sub.id: margin.sold(sub.id, sub.account_id, sub.reseller_account_id, sub.product_id)
            for sub in theirs.values()
        }
        account_ids = {s.customer_id for s in sold_as.values()} | {
            s.reseller_id for s in sold_as.values() if s.reseller_id != margin.DIRECT
        }
        names = {a.id: a.name for a in self.repository.accounts(child_id, account_ids).values()}
        purchases = {
            line.product_id: derived_id("prd", child_id, line.product_id)  # the child's copy
            for _, lines in issued
            for line in lines
        }
        rows = margin.cost_rows(issued, sources, sold_as, names, purchases)
        self.reports.put(report_key(child_id, label), [*rows, *margin.summaries(margin.COST, rows)])

    def close(self, tenant_id: str, period_start: str) -> int:
        """R32: the tenant's REVENUE sums of the period, from its rows (the run's last step);
        a group no longer sold has its sums removed. Returns the number of rows."""
        key = report_key(tenant_id, margin.period_label(period_start))
        found = self.reports.side(key, "s#", margin.REVENUE)
        rows = [r for r in found if isinstance(r, margin.Row)]
        groups = margin.summaries(margin.REVENUE, rows)
        fresh = {(g.grouping, g.key) for g in groups}
        stale = [
            g
            for g in self.reports.side(key, "g#", margin.REVENUE)
            if isinstance(g, margin.Group) and g.key and (g.grouping, g.key) not in fresh
        ]
        self.reports.delete(key, stale)
        self.reports.put(key, groups)
        return len(rows)

    # --- read ---

    def report(
        self,
        principal: Principal,
        label: str,
        group_by: str | None,
        limit: int,
        cursor: str | None,
    ) -> tuple[str, list[tuple[margin.Row | margin.Group | None, ...]], str | None]:
        """A page of the tenant's report of ``label`` (``YYYY-MM``): its subscriptions, or the
        groups of ``group_by``, the total first on the first page; and the currency. One Query:
        the items carry their currency (the tenant is read only for an empty page's)."""
        tenant_id = principal.tenant()
        if group_by is not None and group_by not in margin.GROUPINGS:
            raise BadRequest(
                f"group_by must be one of {', '.join(margin.GROUPINGS)}", field="group_by"
            )
        prefix = f"g#{group_by}#" if group_by else "s#"
        items, next_cursor = self.reports.page(report_key(tenant_id, label), prefix, limit, cursor)
        currency = next((i.currency for i in items if i.currency), "")
        if not currency:
            currency = self.tenancy.tenant_of(principal).currency
        return currency, list(margin.merged(items)), next_cursor
