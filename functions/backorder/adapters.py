"""What back ordering reads and writes in the provider's BSS: the link to a reseller tenant, the
mirrors (written without a read, only over an older source version) and the provider's orders
(put once per deterministic id). The tables are the parties', catalogue's and orders' own."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from pynamodb.exceptions import UpdateError

from functions.backorder.domain import Link, ProviderProduct, Root
from functions.core.adapters import (
    AccountModel,
    AccountRepository,
    JobModel,
    JobRepository,
    TenantModel,
    TenantRepository,
)
from functions.core.domain import Account, Job, Tenant
from functions.core.persistence import (
    conditional_failed,
    put_if,
    save,
    to_entity,
    transaction,
    upsert_actions,
)
from functions.core.settings import Settings
from functions.invoices.adapters import UsageModel, UsageRepository
from functions.invoices.domain import UsageRecord
from functions.orders.adapters import OrderModel, SubscriptionModel
from functions.orders.domain import Order, Subscription
from functions.pricelist.adapters import PriceListRepository, ProductRepository
from functions.pricelist.domain import effective_price


class BackorderRepository:
    def __init__(
        self,
        tenants: TenantRepository,
        accounts: AccountRepository,
        products: ProductRepository,
        price_lists: PriceListRepository,
    ) -> None:
        self.tenants = tenants
        self.accounts = accounts
        self.products = products
        self.price_lists = price_lists

    def link(self, child_tenant_id: str) -> Link | Root | None:
        """The child's link to its provider; ``Root`` for a root tenant; None if there is no
        such tenant or its reseller account (yet)."""
        child = self.tenants.get(child_tenant_id)
        if child is not None and child.parent_id is None:
            return Root(child.id)
        if child is None or child.parent_id is None or child.reseller_account_id is None:
            return None
        account = self.accounts.get(child.parent_id, child.reseller_account_id)
        if account is None:
            return None
        return Link(
            child_tenant_id=child.id,
            provider_tenant_id=child.parent_id,
            reseller_account_id=account.id,
            price_list_id=account.price_list_id,
            currency=account.currency,
            active=child.backordering,
            upgraded=child.upgrade_from is not None,
        )

    def account(self, tenant_id: str, account_id: str) -> Account | None:
        return self.accounts.get(tenant_id, account_id)

    def subscription(self, tenant_id: str, subscription_id: str) -> Subscription | None:
        try:
            return SubscriptionModel.get(tenant_id, subscription_id).entity()
        except SubscriptionModel.DoesNotExist:
            return None

    def create_account(self, account: Account) -> bool:
        """Put a mirror account unless it exists (a concurrent copy is the same copy)."""
        return self.accounts.create_once(account)

    def sync_account(
        self, provider_tenant_id: str, mirror_id: str, fields: dict[str, object], version: int
    ) -> bool:
        """Set a mirror account's synced fields from its source's ``version``: one conditional
        update, no read, applied only to an existing mirror holding an older version (R12, R18).
        Its own version grows, so the change flows on up (R17)."""
        item = AccountModel(provider_tenant_id, mirror_id)
        item.version = 0  # any value: the update adds one to the stored version
        actions: list[Any] = [AccountModel.source_version.set(version)]
        for name, value in fields.items():
            attribute = AccountModel.get_attributes()[name]
            actions.append(attribute.remove() if value is None else attribute.set(value))
        condition = AccountModel.id.exists() & (
            AccountModel.source_version.does_not_exist() | (AccountModel.source_version < version)
        )
        try:
            item.update(actions=actions, condition=condition, add_version_condition=False)
        except UpdateError as error:
            if conditional_failed(error):
                return False
            raise
        return True

    def provider_product(self, tenant_id: str, product_id: str) -> ProviderProduct | None:
        product = self.products.get(tenant_id, product_id)
        if product is None:
            return None
        return ProviderProduct(
            product.id,
            product.sku,
            product.name,
            product.origin_tenant_id,
            product.origin_product_id,
        )

    def price(self, link: Link, product_id: str, cycle: str) -> Decimal | None:
        """The reseller's price (its assigned list) of a provider product and cycle (R13)."""
        if link.price_list_id is None:
            return None
        entry = self.price_lists.price(
            link.provider_tenant_id, link.price_list_id, product_id, cycle
        )
        product = self.products.get(link.provider_tenant_id, product_id)
        if entry is None or product is None:
            return None
        if entry.price is None and cycle not in product.costs:
            return None
        return effective_price(entry, product, link.currency)

    def upsert_mirror(self, mirror: Subscription) -> bool:
        """Write the mirror unless it already holds this or a newer source version (R18): one
        conditional update, no read. Its own version still grows by one (R17 cascades on it)."""
        item = SubscriptionModel.of(mirror)
        item.version = 0  # any value: the update adds one to the stored version
        condition = SubscriptionModel.id.does_not_exist() | (
            SubscriptionModel.source_version < mirror.source_version
        )
        try:
            item.update(
                actions=upsert_actions(item, keep_first=("created_at",)),
                condition=condition,
                add_version_condition=False,
            )
        except UpdateError as error:
            if conditional_failed(error):
                return False
            raise
        return True

    def put_usage_once(self, record: UsageRecord) -> bool:
        """A use copied onto a mirror, once whatever the deliveries (R25, R18)."""
        return UsageRepository().record_once(record)

    def put_order_once(self, order: Order) -> bool:
        """The provider's order of one change, created once whatever the deliveries (R14)."""
        return put_if(OrderModel.of(order), OrderModel.id.does_not_exist())


class BackfillJobRepository:
    """An R11 backfill's job, kept in the parties' jobs table, and the activation that creates
    it together with the child's switch (one transaction over the tenants and jobs tables)."""

    def __init__(self, settings: Settings, tenants: TenantRepository, jobs: JobRepository) -> None:
        self.settings = settings
        self.tenants = tenants
        self.jobs = jobs

    def get(self, tenant_id: str, job_id: str) -> Job | None:
        return self.jobs.get(tenant_id, job_id)

    def activate(self, activated: Tenant | None, job: Job) -> None:
        """All or nothing: the child switched on (``activated``; None if it is already) and its
        job created, unless one exists (a concurrent activation: the 409 of ``transaction``)."""
        with transaction(self.settings) as tx:
            if activated is not None:
                tx.save(TenantModel.of(activated))
            tx.save(JobModel.of(job), condition=JobModel.id.does_not_exist())

    def save(self, job: Job) -> None:
        """Conditional on the version read: a concurrent change is a 409 (``ConcurrentUpdate``)."""
        save(JobModel.of(job))


# --- stream images (the back-ordering functions, ``handlers.py``) ----------------------------


def subscription_of_image(image: dict[str, Any]) -> Subscription:
    """The subscription a subscriptions-stream record carries."""
    return SubscriptionModel.from_raw_data(image).entity()


def account_of_image(image: dict[str, Any]) -> Account:
    """The account an accounts-stream record carries."""
    return to_entity(AccountModel.from_raw_data(image), Account)


def usage_of_image(image: dict[str, Any]) -> UsageRecord:
    """The use a usage-stream record carries."""
    return UsageModel.from_raw_data(image).entity()
