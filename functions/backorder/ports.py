"""What back ordering's services (``services.py``) need of the repositories: ``typing.Protocol``s,
each with exactly the methods the services call. The DynamoDB repositories (``adapters.py``, and
the orders' and core's for the subscriptions and contacts) meet them structurally.

Pure: the stdlib, the domains and the kernel's pure modules only, never an adapter, PynamoDB or
the AWS SDK (``lint-imports``).
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Protocol

from functions.backorder.domain import (
    DriftItem,
    FailedDelivery,
    Link,
    MirrorRef,
    ProviderProduct,
    ReconciliationRun,
    Root,
)
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
        self,
        provider_tenant_id: str,
        mirror_id: str,
        fields: dict[str, object],
        version: int,
        *,
        over: int | None = None,
    ) -> bool:
        """Set a mirror account's synced fields from its source's ``version``, only over an
        older version (R12, R18), or the one a repair read (``over``, R33); False if it was not
        applied."""
        ...

    def provider_product(self, tenant_id: str, product_id: str) -> ProviderProduct | None: ...

    def price(self, link: Link, product_id: str, cycle: str) -> Decimal | None:
        """The reseller's price (its assigned list) of a provider product and cycle (R13)."""
        ...

    def upsert_mirror(self, mirror: Subscription, *, over: int | None = None) -> bool:
        """Write the mirror unless it already holds this or a newer source version (R18); a
        repair (R33) may also write over the source version ``over`` it read."""
        ...

    def close_orphan(self, closed: Subscription) -> bool:
        """A mirror whose source is gone, cancelled and marked, unless it is already (R33)."""
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


class Reconciliations(Protocol):
    """R33: the runs and their items, and the batched reads of both tiers a run's pages make
    (``adapters.ReconciliationRepository``)."""

    def get(self, tenant_id: str, run_id: str) -> ReconciliationRun | None: ...

    def create(self, run: ReconciliationRun) -> bool:
        """The run, unless one of its id exists (False)."""
        ...

    def save(self, run: ReconciliationRun) -> None:
        """Conditional on the version read (``ConcurrentUpdate``)."""
        ...

    def runs(self, tenant_id: str, limit: int, cursor: str | None) -> Page[ReconciliationRun]: ...

    def items(
        self, tenant_id: str, run_id: str, kind: str | None, limit: int, cursor: str | None
    ) -> Page[DriftItem]: ...

    def found_on(self, tenant_id: str, run_id: str, keys: Iterable[str]) -> dict[str, str]:
        """Of these item keys, those the run holds already: key → the page that found it."""
        ...

    def put_items(self, tenant_id: str, run_id: str, entries: Iterable[DriftItem]) -> None: ...

    def subscriptions_page(
        self, tenant_id: str, limit: int, cursor: str | None
    ) -> Page[Subscription]: ...

    def accounts_page(self, tenant_id: str, limit: int, cursor: str | None) -> Page[Account]: ...

    def subscriptions(
        self, tenant_id: str, ids: Iterable[str], *, whole: bool = False
    ) -> dict[str, Subscription]:
        """By id, with what a comparison reads, or ``whole`` (what a repair re-drives)."""
        ...

    def accounts(self, tenant_id: str, ids: Iterable[str]) -> dict[str, Account]: ...

    def existing(self, tenant_id: str, ids: Iterable[str]) -> set[str]: ...

    def reseller_mirrors(
        self, tenant_id: str, reseller_account_id: str, limit: int, cursor: str | None
    ) -> Page[MirrorRef]: ...


class SetAsideRecords(Protocol):
    """R33: the stream records set aside on the ``stream-failures`` queue (R18) that name a
    child's records, read without consuming them (``adapters.StreamFailures``)."""

    def records(self, child_tenant_id: str) -> list[tuple[str, str, str]]:
        """(entity, record id, where it is on the stream) of each such record."""
        ...


class FailureQueues(Protocol):
    """The on-failure queue of the streams and every dead-letter queue, read without consuming
    them (``adapters.FailureQueues``)."""

    def deliveries(self, limit: int) -> tuple[list[FailedDelivery], bool]:
        """Up to ``limit`` failed deliveries, and whether there were more."""
        ...
