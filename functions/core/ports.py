"""What the parties' services (``services.py``) need of the repositories, the price lists and a
queue: ``typing.Protocol``s, each with exactly the methods the services call. The DynamoDB
repositories (``adapters.py``) meet them structurally (mypy checks it where
``functions.composition`` builds the services), and so do the in-memory fakes
(``tests/fakes.py``).

Pure: the stdlib and the kernel's pure modules only, never an adapter, PynamoDB or the AWS SDK
(``lint-imports``: services and ports load no PynamoDB).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from functions.core.domain import Account, Contact, Note, Tenant
from functions.core.pagination import Page


class Tenants(Protocol):
    """The tenants (``adapters.TenantRepository``)."""

    def get(self, tenant_id: str) -> Tenant | None: ...

    def children(self, parent_id: str | None, limit: int, cursor: str | None) -> Page[Tenant]: ...


class Accounts(Protocol):
    """The accounts of a tenant (``adapters.AccountRepository``); ``create_once`` is the lite
    → tenant upgrade's (R19, through ``TenancyService.accounts``)."""

    def get(self, tenant_id: str, account_id: str) -> Account | None: ...

    def page(self, tenant_id: str, limit: int, cursor: str | None) -> Page[Account]: ...

    def children(
        self, tenant_id: str, parent_account_id: str, limit: int, cursor: str | None
    ) -> Page[Account]: ...

    def create_once(self, account: Account) -> bool:
        """Put a new account unless one with its (deterministic) id exists."""
        ...

    def by_email(self, tenant_id: str, email: str, limit: int = 10) -> list[Account]:
        """The tenant's own (not mirrored) accounts with this email, any case (R30)."""
        ...


class StorefrontOpener(Protocol):
    """What else is written with a new tenant, in the same unit of work: its own storefront
    (R30; ``functions.storefront.services.TenantStorefronts``, wired by the composition root)."""

    def __call__(self, tenant: Tenant) -> list[object]: ...


class AccountItems(Protocol):
    """Contacts and notes of an account (``adapters.AccountItemRepository``)."""

    def add_contact(self, contact: Contact) -> None: ...

    def contacts(
        self, tenant_id: str, account_id: str, limit: int, cursor: str | None
    ) -> Page[Contact]: ...

    def count_contacts(self, tenant_id: str, account_id: str) -> int: ...

    def remove_contact(self, tenant_id: str, account_id: str, contact_id: str) -> Contact | None:
        """Delete and return the contact; None if there was none."""
        ...

    def add_note(self, note: Note) -> None: ...

    def notes(self, tenant_id: str, account_id: str, limit: int, cursor: str | None) -> Page[Note]:
        """Newest first."""
        ...


class IdempotencyRecord(Protocol):
    """One ``Idempotency-Key`` request as stored (``adapters.IdempotencyModel``), read only."""

    @property
    def fingerprint(self) -> str: ...

    @property
    def status(self) -> str:
        """``in_progress`` or ``done``."""
        ...

    @property
    def response_status(self) -> float | None: ...

    @property
    def response_body(self) -> str | None: ...


class IdempotencyRecords(Protocol):
    """Records of ``Idempotency-Key`` requests (``adapters.IdempotencyRepository``)."""

    def find(self, key: str) -> IdempotencyRecord | None: ...

    def claim(self, key: str, fingerprint: str, *, take_over: bool) -> bool:
        """Mark the key in progress; False if another request holds it (or finished it)."""
        ...

    def complete(self, key: str, status: int, payload: Any) -> None: ...

    def release(self, key: str) -> None: ...


class PriceListLookup(Protocol):
    """What the parties need of the price lists (the pricelist context implements it:
    ``functions.pricelist.services.PriceLists``)."""

    def currency_of(self, tenant_id: str, price_list_id: str) -> str:
        """The list's currency; a 400 naming ``price_list_id`` if the tenant has no such list."""
        ...

    def copy_catalogue(self, provider_id: str, price_list_id: str, child_id: str) -> int:
        """R3: copy every product of the list into the child's catalogue, costs = list prices."""
        ...


class Queue(Protocol):
    """One of the BSS's job queues (``functions.core.queues.Queue``, SQS)."""

    def send(self, body: Mapping[str, Any]) -> None: ...
