"""What the storefront's services (``services.py``) need of the repositories: ``typing.Protocol``s,
each with exactly the methods the services call (the invoices services read ``Subscriptions``
through ``OrderService.subscriptions``). The DynamoDB repositories (``adapters.py``) meet them
structurally, as do the in-memory fakes (``tests/fakes.py``).

Pure: the stdlib, the domains and the kernel's pure modules only, never an adapter, PynamoDB or
the AWS SDK (``lint-imports``).
"""

from __future__ import annotations

from datetime import date
from typing import Protocol, TypeVar

from functions.core.pagination import Page
from functions.orders.domain import Order, Subscription


class Scoped(Protocol):
    """A record in an account's and its reseller's scope (R12)."""

    @property
    def account_id(self) -> str: ...

    @property
    def reseller_account_id(self) -> str | None: ...


R = TypeVar("R", bound=Scoped)


class Records(Protocol[R]):
    """What the listings read of subscriptions and orders alike (the repositories)."""

    def get(self, tenant_id: str, record_id: str) -> R | None: ...

    def page(self, tenant_id: str, limit: int, cursor: str | None) -> Page[R]: ...

    def for_account(
        self, tenant_id: str, account_id: str, limit: int, cursor: str | None
    ) -> Page[R]: ...

    def for_reseller(
        self, tenant_id: str, reseller_id: str, limit: int, cursor: str | None
    ) -> Page[R]: ...


class Subscriptions(Records[Subscription], Protocol):
    """The subscriptions (``adapters.SubscriptionRepository``): the listings and a base's
    add-ons."""

    def addons(
        self, tenant_id: str, subscription_id: str, limit: int = 100, cursor: str | None = None
    ) -> Page[Subscription]: ...

    def due(self, tenant_id: str, on: date, limit: int, cursor: str | None) -> Page[str]: ...


class Orders(Records[Order], Protocol):
    """The orders (``adapters.OrderRepository``): the listings alone."""
