"""What the catalogue's services (``services.py``) need of the repositories: ``typing.Protocol``s,
each with exactly the methods the services call (the orders, invoices and back-ordering services
reach ``Products`` through ``CatalogueService.products``). The DynamoDB repositories
(``adapters.py``, and core's for the tenants and accounts) meet them structurally, as do the
in-memory fakes (``tests/fakes.py``).

Pure: the stdlib, the domains and the kernel's pure modules only, never an adapter, PynamoDB or
the AWS SDK (``lint-imports``).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator
from datetime import date
from typing import Any, Protocol

from functions.core.domain import Account, Tenant
from functions.core.pagination import Page
from functions.pricelist.domain import Price, PriceList, Product, Resold


class Tenants(Protocol):
    """What the catalogue reads of the tenants (core's tenant repository)."""

    def get(self, tenant_id: str) -> Tenant | None: ...


class Accounts(Protocol):
    """What the catalogue reads of the accounts (core's account repository)."""

    def get(self, tenant_id: str, account_id: str) -> Account | None: ...

    def assignees(
        self, tenant_id: str, price_list_id: str, limit: int, cursor: str | None
    ) -> Page[str]:
        """The child tenants a price list is assigned to (R5), a page at a time."""
        ...


class Products(Protocol):
    """A tenant's products and their SKUs (``adapters.ProductRepository``)."""

    def get(
        self, tenant_id: str, product_id: str, *, consistent: bool = False
    ) -> Product | None: ...

    def write_copy(self, copy: Product, previous: Product | None) -> bool:
        """A copy re-derived from its provider's offer (R5): one write, only over an older
        offer and the version read; a new copy holds its SKU. False if the condition failed."""
        ...

    def sku_holders(self, tenant_id: str, sku: str) -> set[str]:
        """The products of the tenant holding ``sku`` (consistent: read after a refusal)."""
        ...

    def create_own(self, product: Product) -> None:
        """A tenant's own new product and its SKU held by it alone, all or nothing; a SKU some
        product holds already fails it (``ConcurrentUpdate``)."""
        ...

    def change_sku(self, updated: Product, previous: Product) -> None:
        """An own product's new SKU: the product (on the version read), the new SKU held by it
        alone and the old one let go, all or nothing."""
        ...

    def set_margin_alerts(self, product: Product, alerts: list[Any]) -> None:
        """The alerts of a product (R5), over the version read (``ConcurrentUpdate`` when the
        product moved on)."""
        ...

    def get_many(self, tenant_id: str, product_ids: Iterable[str]) -> dict[str, Product]: ...

    def page(
        self, tenant_id: str, limit: int, cursor: str | None, *, margin_alert: bool = False
    ) -> Page[Product]:
        """A page of the tenant's products; with ``margin_alert``, only those flagged (R5)."""
        ...

    def all(self, tenant_id: str) -> list[Product]:
        """Every product of a tenant (a job path: an upgrade's default list)."""
        ...

    def save_many(self, products: Iterable[Product]) -> None:
        """Unconditional batch puts, their SKUs held first (deterministic ids only)."""
        ...


class PriceListStore(Protocol):
    """A tenant's price lists and their entries (``adapters.PriceListRepository``). Not named
    ``PriceLists``: that is the service the parties use (``services.PriceLists``)."""

    def get(
        self, tenant_id: str, price_list_id: str, *, consistent: bool = False
    ) -> PriceList | None: ...

    def page(self, tenant_id: str, limit: int, cursor: str | None) -> Page[PriceList]: ...

    def save_list(self, price_list: PriceList, entries: Iterable[Price]) -> None:
        """A list and its entries in batches, unconditionally (deterministic ids only)."""
        ...

    def all_lists(self, tenant_id: str) -> list[PriceList]:
        """Every list of a tenant (a tenant has a handful: a job path reads them all)."""
        ...

    def entries_in_lists(self, tenant_id: str, currency: str, product_id: str) -> list[Price]:
        """A product's entries in every list of the tenant in ``currency`` (its costs'):
        what a margin alert compares (R5)."""
        ...

    def entries(
        self, tenant_id: str, price_list_id: str, product_id: str, *, consistent: bool = False
    ) -> dict[str, Price]:
        """A product's entries in one list, by billing cycle."""
        ...

    def price(
        self, tenant_id: str, price_list_id: str, product_id: str, cycle: str
    ) -> Price | None: ...

    def prices_for(
        self, tenant_id: str, price_list_id: str, product_ids: Iterable[str], cycles: Iterable[str]
    ) -> list[Price]: ...

    def prices(
        self, tenant_id: str, price_list_id: str, limit: int, cursor: str | None
    ) -> Page[Price]: ...

    def all_prices(self, tenant_id: str, price_list_id: str) -> Iterator[Price]:
        """Every entry of a list, page by page (a job path: R3's catalogue copy)."""
        ...

    def products_page(
        self, tenant_id: str, price_list_id: str, limit: int, cursor: str | None
    ) -> tuple[list[Price], str | None]:
        """Entries of up to ``limit`` products, never splitting one product's cycles across
        pages; the cursor continues after the last product returned."""
        ...


class ResoldSubscriptions(Protocol):
    """What a simulation (R34) reads of the subscriptions, which the orders context owns: the
    ones a provider bills a tenant reseller for (R20), the mirrors under its tenant reseller
    account. The pricelist context may not import orders (the layers), so it declares what it
    needs here and the composition root gives it ``orders.services.ResoldReader``."""

    def resold(
        self,
        tenant_id: str,
        reseller_account_id: str,
        product_ids: Collection[str],
        today: date,
        limit: int,
    ) -> tuple[list[Resold], int, bool]:
        """The subscriptions of ``product_ids`` active and paid on ``today`` (R8) that
        ``tenant_id`` bills the account for, reading at most ``limit``; how many were read,
        and True when more were left unread."""
        ...
