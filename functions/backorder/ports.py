"""What back ordering's services (``services.py``) need of the repositories: ``typing.Protocol``s,
each with exactly the methods the services call. The DynamoDB repositories (``adapters.py``, and
the orders' and core's for the subscriptions and contacts) meet them structurally.

Pure: the stdlib, the domains and the kernel's pure modules only, never an adapter, PynamoDB or
the AWS SDK (``lint-imports``).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Protocol

from functions.backorder.domain import Link, ProviderProduct, Root
from functions.core.domain import Account, Contact, Job, Tenant
from functions.core.pagination import Page
from functions.invoices.domain import UsageRecord
from functions.orders.domain import Order, Subscription


class Backorders(Protocol):
    """What a ``Replicator`` reads and writes in a provider's BSS (``adapters.
    BackorderRepository``): the link, the mirrors, the provider's orders and copied uses."""

    def link(self, child_tenant_id: str) -> Link | Root | None:
        """The child's link to its provider; ``Root`` for a root tenant; None if there is no
        such tenant or its reseller account (yet)."""
        ...

    def account(self, tenant_id: str, account_id: str) -> Account | None: ...

    def subscription(self, tenant_id: str, subscription_id: str) -> Subscription | None: ...

    def create_account(self, account: Account) -> bool:
        """Put a mirror account unless it exists (a concurrent copy is the same copy)."""
        ...

    def sync_account(
        self, provider_tenant_id: str, mirror_id: str, fields: dict[str, object], version: int
    ) -> bool:
        """Set a mirror account's synced fields from its source's ``version``, only over an
        older version (R12, R18); False if it was not applied."""
        ...

    def provider_product(self, tenant_id: str, product_id: str) -> ProviderProduct | None: ...

    def price(self, link: Link, product_id: str, cycle: str) -> Decimal | None:
        """The reseller's price (its assigned list) of a provider product and cycle (R13)."""
        ...

    def upsert_mirror(self, mirror: Subscription) -> bool:
        """Write the mirror unless it already holds this or a newer source version (R18)."""
        ...

    def put_usage_once(self, record: UsageRecord) -> bool:
        """A use copied onto a mirror, once whatever the deliveries (R25, R18)."""
        ...

    def put_order_once(self, order: Order) -> bool:
        """The provider's order of one change, created once whatever the deliveries (R14)."""
        ...


class BackfillJobs(Protocol):
    """An R11 backfill's job (``adapters.BackfillJobRepository``)."""

    def get(self, tenant_id: str, job_id: str) -> Job | None: ...

    def activate(self, activated: Tenant | None, job: Job) -> None:
        """All or nothing: the child switched on (``activated``; None if it is already) and its
        job created, unless one exists (a ``ConcurrentUpdate`` 409)."""
        ...

    def save(self, job: Job) -> None:
        """Conditional on the version read: a concurrent change is a 409 (``ConcurrentUpdate``)."""
        ...


class Subscriptions(Protocol):
    """What back ordering reads and creates of the subscriptions (the orders context's
    repository)."""

    def get(self, tenant_id: str, subscription_id: str) -> Subscription | None: ...

    def page(self, tenant_id: str, limit: int, cursor: str | None) -> Page[Subscription]: ...

    def for_account(
        self, tenant_id: str, account_id: str, limit: int, cursor: str | None
    ) -> Page[Subscription]: ...

    def create_once(self, sub: Subscription) -> bool: ...


class Contacts(Protocol):
    """What an upgrade reads and writes of the accounts' contacts (the parties' repository)."""

    def contacts(
        self, tenant_id: str, account_id: str, limit: int, cursor: str | None
    ) -> Page[Contact]: ...

    def add_contact_once(self, contact: Contact) -> bool: ...
