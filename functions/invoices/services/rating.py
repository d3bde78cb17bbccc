"""``Rater``: what a run's chunk or a preview rates, loaded by key up front (``load``), and an
account's drafts (``drafts``: ``domain.account_drafts``); a metered subscription's usage is read
when it is rated (``rate``)."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import TYPE_CHECKING

from functions.core.clock import now_utc, rfc3339
from functions.core.domain import Tenant
from functions.invoices import domain
from functions.invoices.domain import Draft, Facts, Line
from functions.invoices.ports import BillingRecords, Usage
from functions.invoices.services.local_time import utc_midnight
from functions.orders.domain import Subscription

if TYPE_CHECKING:
    from functions.orders.services import OrderService


class Rater:
    """Rating (R20-R25) for the billing run and the preview alike."""

    def __init__(self, orders: OrderService, usage: Usage, repository: BillingRecords) -> None:
        self.orders = orders
        self.usage = usage
        self.repository = repository

    def load(self, tenant: Tenant, billing: domain.Run, accounts: dict[str, list[str]]) -> Facts:
        """Everything a chunk's (or a preview's) rating reads, by key (BatchGetItem), before
        rating it."""
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
        return Facts(
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

    def drafts(
        self,
        facts: Facts,
        run_id: str,
        account_id: str,
        sub_ids: Sequence[str],
        rate: domain.Rate | None = None,
    ) -> list[Draft]:
        """R20-R24: an account's invoices for the run's period (``domain.account_drafts``), its
        subscriptions rated by ``rate`` (by default ``self.rate``)."""
        return domain.account_drafts(
            facts,
            run_id,
            account_id,
            sub_ids,
            rate or (lambda sub, issued: self.rate(facts, sub, issued)),
            created_at=rfc3339(now_utc()),
        )

    def rate(self, facts: Facts, sub: Subscription, issued: list[Line]) -> list[Line]:
        """R21, R25: a subscription rated (``domain.rated``); a metered one with its usage of
        the previous period, from local midnight to local midnight (R22)."""
        usage_total = Decimal(0)
        if domain.metered(facts, sub):
            start, end = (
                utc_midnight(day, facts.tenant.time_zone)
                for day in (facts.billing.previous.start, facts.billing.previous.end)
            )
            usage_total = self.usage.total(sub.tenant_id, sub.id, start, end)
        return domain.rated(facts, sub, issued, usage_total)
