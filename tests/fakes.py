"""In memory: the repositories and the unit of work (``functions.core.units``) the services use,
so ``TenancyService``, ``CatalogueService`` and ``OrderService`` are tested without moto or AWS.

Each fake has the methods, with the signatures, that the services call on the DynamoDB
repository it stands for, and keeps what that repository and ``functions.core.persistence``
do, nothing more:

- A unit of work writes on a clean exit of its ``with`` block, all or nothing: every entity is
  checked, then all are written; an exception inside the block writes nothing. A versioned
  entity (all but ``Order``, whose table has no version attribute) is written only over the
  version it was read at (``version=None``: only if absent) and stored at that version + 1
  (PynamoDB's ``VersionAttribute``); a failed check raises ``ConcurrentUpdate``, as
  ``DynamoUnits`` does, and writes nothing. As in DynamoDB a transaction holds an item once and
  at most 100 items (else ``ValueError``; DynamoDB refuses the transaction too).
- The repositories' own writes (a product and its SKU, margin alerts, batch puts, contacts and
  notes) keep their conditions and what they do to versions.
- A list is a query of one partition, in sort-key order: ``limit`` rows evaluated after the
  cursor, a filter applied after the limit, and a cursor of the last row evaluated whenever
  the limit stopped it (DynamoDB's ``LastEvaluatedKey``, given on a page that ends exactly at
  the last row too). Cursors are the real ones (``functions.core.pagination``), bound to the
  list's partition: another list's cursor is a 400 ``invalid_cursor``.

Rows live in ``Tables``, partitioned by tenant id first. ``Tables.writes`` counts every write
that landed (a commit, a repository write: one each), ``FakeUnits.commits`` the units of work
committed and ``FakeUnits.committed`` what each wrote: "one write", "nothing written".
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from types import TracebackType
from typing import TYPE_CHECKING, Any, Generic, TypeVar, cast

from functions.core.domain import Account, Contact, Note, Tenant
from functions.core.errors import BadRequest, ConcurrentUpdate, present
from functions.core.pagination import Page, decode_cursor, encode_cursor
from functions.core.services import TenancyService
from functions.orders.domain import Order, Subscription, due_entry
from functions.orders.services import OrderService
from functions.pricelist.domain import Price, PriceList, Product
from functions.pricelist.services import CatalogueService, PriceLists

if TYPE_CHECKING:
    from functions.core import ports as core_ports
    from functions.core.units import UnitOfWork, Units
    from functions.orders import ports as orders_ports
    from functions.pricelist import ports as pricelist_ports

R = TypeVar("R")

PLATFORM = "platform"  # the by-parent partition of root tenants (functions/core/adapters.py)
MAX_TRANSACTION = 100  # DynamoDB's TransactWriteItems limit


def _version(row: object) -> int | None:
    return cast("int | None", getattr(row, "version", None))


class Table(Generic[R]):
    """One table: partition (a tenant id) → sort key → row."""

    def __init__(self, key: Callable[[R], tuple[str, str]], *, versioned: bool = True) -> None:
        self.key = key
        self.versioned = versioned
        self.rows: dict[str, dict[str, R]] = {}

    def get(self, partition: str, sort: str = "") -> R | None:
        return self.rows.get(partition, {}).get(sort)

    def partition(self, partition: str) -> list[R]:
        rows = self.rows.get(partition, {})
        return [rows[sort] for sort in sorted(rows)]

    def all(self) -> list[R]:
        return [row for partition in sorted(self.rows) for row in self.partition(partition)]

    def put(self, row: R) -> None:
        partition, sort = self.key(row)
        self.rows.setdefault(partition, {})[sort] = row

    def delete(self, row: R) -> None:
        partition, sort = self.key(row)
        self.rows.get(partition, {}).pop(sort, None)

    def holds_version(self, row: R) -> bool:
        """The put's condition: a new row (no version) is absent, another is stored at its
        version. An unversioned table puts unconditionally."""
        if not self.versioned:
            return True
        stored = self.get(*self.key(row))
        if _version(row) is None:
            return stored is None
        return stored is not None and _version(stored) == _version(row)

    def bumped(self, row: R) -> R:
        """The row as a versioned put stores it."""
        if not self.versioned:
            return row
        return cast(R, dataclasses.replace(cast(Any, row), version=(_version(row) or 0) + 1))


def _price_key(price: Price) -> tuple[str, str]:
    return price.tenant_id, f"{price.price_list_id}#{price.product_id}#{price.billing_cycle}"


class Tables:
    """Every table the three services use, in memory."""

    def __init__(self) -> None:
        self.tenants = Table[Tenant](lambda t: (t.id, ""))
        self.accounts = Table[Account](lambda a: (a.tenant_id, a.id))
        self.products = Table[Product](lambda p: (p.tenant_id, p.id))
        self.price_lists = Table[PriceList](lambda p: (p.tenant_id, p.id))
        self.prices = Table[Price](_price_key)
        self.subscriptions = Table[Subscription](lambda s: (s.tenant_id, s.id))
        self.orders = Table[Order](lambda o: (o.tenant_id, o.id), versioned=False)
        self.contacts = Table[Contact](
            lambda c: (c.tenant_id, f"{c.account_id}#{c.id}"), versioned=False
        )
        self.notes = Table[Note](lambda n: (n.tenant_id, f"{n.account_id}#{n.id}"), versioned=False)
        #: tenant id → SKU → the products holding it (R1; ``SkuModel``)
        self.skus: dict[str, dict[str, set[str]]] = {}
        self.writes = 0
        #: what a unit of work writes each entity to (the adapters' ``WRITERS``)
        self.writers: dict[type, Table[Any]] = {
            Tenant: self.tenants,
            Account: self.accounts,
            Product: self.products,
            PriceList: self.price_lists,
            Price: self.prices,
            Subscription: self.subscriptions,
            Order: self.orders,
        }

    def seed(self, *entities: object) -> None:
        """Entities stored before the test (at version 1 unless they carry one; a product
        holds its SKU), counted as no write."""
        for entity in entities:
            table = self.writers[type(entity)]
            if table.versioned and _version(entity) is None:
                entity = dataclasses.replace(cast(Any, entity), version=1)
            table.put(entity)
            if isinstance(entity, Product):
                self.holders(entity.tenant_id, entity.sku).add(entity.id)

    def holders(self, tenant_id: str, sku: str) -> set[str]:
        return self.skus.setdefault(tenant_id, {}).setdefault(sku, set())

    def transact(self, entities: Sequence[object]) -> None:
        """Write ``entities`` all or nothing, each conditional on its version."""
        if len(entities) > MAX_TRANSACTION:
            raise ValueError(f"a transaction holds at most {MAX_TRANSACTION} items")
        keyed = [(self._table(e), e) for e in entities]
        keys = [(id(table), table.key(e)) for table, e in keyed]
        if len(set(keys)) != len(keys):
            raise ValueError("a transaction writes an item once")
        if not all(table.holds_version(e) for table, e in keyed):
            raise ConcurrentUpdate()
        for table, e in keyed:
            table.put(table.bumped(e))
        self.writes += 1

    def _table(self, entity: object) -> Table[Any]:
        table = self.writers.get(type(entity))
        if table is None:
            raise TypeError(f"no table is registered for {type(entity).__name__}")
        return table


# --- the unit of work ---------------------------------------------------------------------------


class FakeUnit:
    """``functions.core.units.UnitOfWork`` in memory (``DynamoUnit``)."""

    def __init__(self, units: FakeUnits) -> None:
        self.units = units
        self.entities: list[object] = []

    def save(self, entity: object) -> None:
        self.units.tables._table(entity)  # an unregistered type fails here, as DynamoUnit's
        self.entities.append(entity)

    def __enter__(self) -> FakeUnit:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if kind is None:
            self.commit()

    def commit(self) -> None:
        entities, self.entities = self.entities, []
        if entities:
            self.units.tables.transact(entities)
            self.units.commits += 1
            self.units.committed.append(entities)


class FakeUnits:
    """``functions.core.units.Units`` in memory (``DynamoUnits``)."""

    def __init__(self, tables: Tables) -> None:
        self.tables = tables
        self.commits = 0
        self.committed: list[list[object]] = []

    def __call__(self) -> FakeUnit:
        return FakeUnit(self)

    def save(self, entity: object) -> None:
        with self() as unit:
            unit.save(entity)


# --- queries ------------------------------------------------------------------------------------


def query(
    rows: Iterable[R],
    key: Callable[[R], dict[str, str]],
    *,
    partition: dict[str, str],
    names: frozenset[str],
    sort: str,
    limit: int,
    cursor: str | None,
    keep: Callable[[R], bool] | None = None,
    forward: bool = True,
) -> Page[R]:
    """A Query of one partition: ``rows`` are its rows, ``key`` a row's key attributes (the
    ``LastEvaluatedKey`` of the query: table and index keys), ``partition`` the attributes the
    cursor is bound to, ``sort`` the one rows are ordered by. ``keep`` is a filter: applied to
    the ``limit`` rows evaluated, as DynamoDB applies one."""
    start = decode_cursor(cursor, {n: {"S": v} for n, v in partition.items()}, names)
    ordered = sorted(rows, key=lambda row: key(row)[sort], reverse=not forward)
    if start is not None:
        after = str(start[sort]["S"])
        ordered = [
            r for r in ordered if (key(r)[sort] > after if forward else key(r)[sort] < after)
        ]
    evaluated = ordered[:limit]
    items = [row for row in evaluated if keep is None or keep(row)]
    last = None
    if len(evaluated) == limit and evaluated:
        last = {name: {"S": value} for name, value in key(evaluated[-1]).items()}
    return Page(items, encode_cursor(last))


def tenant_page(
    rows: Iterable[R],
    tenant_id: str,
    limit: int,
    cursor: str | None,
    keep: Callable[[R], bool] | None = None,
) -> Page[R]:
    """A Query of a table's tenant partition in id order (its keys ``tenant_id``, ``id``)."""
    return query(
        rows,
        lambda row: {"tenant_id": tenant_id, "id": cast(Any, row).id},
        partition={"tenant_id": tenant_id},
        names=frozenset({"tenant_id", "id"}),
        sort="id",
        limit=limit,
        cursor=cursor,
        keep=keep,
    )


# --- core: tenants, accounts, contacts and notes --------------------------------------------------


class FakeTenants:
    """``functions.core.adapters.TenantRepository``."""

    def __init__(self, tables: Tables) -> None:
        self.tables = tables

    def get(self, tenant_id: str) -> Tenant | None:
        return self.tables.tenants.get(tenant_id)

    def children(self, parent_id: str | None, limit: int, cursor: str | None) -> Page[Tenant]:
        parent_key = parent_id or PLATFORM
        return query(
            (t for t in self.tables.tenants.all() if (t.parent_id or PLATFORM) == parent_key),
            lambda t: {"parent_key": parent_key, "id": t.id},
            partition={"parent_key": parent_key},
            names=frozenset({"id", "parent_key"}),
            sort="id",
            limit=limit,
            cursor=cursor,
        )


class FakeAccounts:
    """``functions.core.adapters.AccountRepository``."""

    def __init__(self, tables: Tables) -> None:
        self.tables = tables

    def get(self, tenant_id: str, account_id: str) -> Account | None:
        return self.tables.accounts.get(tenant_id, account_id)

    def page(self, tenant_id: str, limit: int, cursor: str | None) -> Page[Account]:
        return tenant_page(self.tables.accounts.partition(tenant_id), tenant_id, limit, cursor)

    def children(
        self, tenant_id: str, parent_account_id: str, limit: int, cursor: str | None
    ) -> Page[Account]:
        parent_key = f"{tenant_id}#{parent_account_id}"
        return query(
            (
                a
                for a in self.tables.accounts.partition(tenant_id)
                if a.parent_account_id == parent_account_id
            ),
            lambda a: {"tenant_id": a.tenant_id, "id": a.id, "parent_key": parent_key},
            partition={"parent_key": parent_key},
            names=frozenset({"tenant_id", "id", "parent_key"}),
            sort="id",
            limit=limit,
            cursor=cursor,
        )

    def create_once(self, account: Account) -> bool:
        """A put conditional on the account's absence (and, as PynamoDB's, on its version: a
        new one has none), stored at version 1; False if it is there."""
        table = self.tables.accounts
        if table.get(*table.key(account)) is not None or not table.holds_version(account):
            return False
        table.put(table.bumped(account))
        self.tables.writes += 1
        return True

    def by_email(self, tenant_id: str, email: str, limit: int = 10) -> list[Account]:
        """The sparse by-email index: own (not mirrored) accounts, any case (R30)."""
        wanted = email.strip().lower()
        found = [
            a
            for a in self.tables.accounts.partition(tenant_id)
            if a.email and not a.mirrored and a.email.strip().lower() == wanted
        ]
        return found[:limit]

    def assignees(
        self, tenant_id: str, price_list_id: str, limit: int, cursor: str | None
    ) -> Page[str]:
        """The child tenants a price list is assigned to (R5)."""
        assigned_key = f"{tenant_id}#{price_list_id}"
        page = query(
            (
                a
                for a in self.tables.accounts.partition(tenant_id)
                if a.child_tenant_id and a.price_list_id == price_list_id
            ),
            lambda a: {"tenant_id": a.tenant_id, "id": a.id, "assigned_key": assigned_key},
            partition={"assigned_key": assigned_key},
            names=frozenset({"tenant_id", "id", "assigned_key"}),
            sort="id",
            limit=limit,
            cursor=cursor,
        )
        return Page([a.child_tenant_id for a in page.items if a.child_tenant_id], page.next_cursor)


class FakeAccountItems:
    """``functions.core.adapters.AccountItemRepository``: contacts and notes (unversioned)."""

    def __init__(self, tables: Tables) -> None:
        self.tables = tables

    def add_contact(self, contact: Contact) -> None:
        self.tables.contacts.put(contact)
        self.tables.writes += 1

    def count_contacts(self, tenant_id: str, account_id: str) -> int:
        return len(self._of(self.tables.contacts, tenant_id, account_id))

    def contacts(
        self, tenant_id: str, account_id: str, limit: int, cursor: str | None
    ) -> Page[Contact]:
        rows = self._of(self.tables.contacts, tenant_id, account_id)
        return self._page(rows, "contact", tenant_id, account_id, limit, cursor, forward=True)

    def remove_contact(self, tenant_id: str, account_id: str, contact_id: str) -> Contact | None:
        found = self.tables.contacts.get(tenant_id, f"{account_id}#{contact_id}")
        if found is not None:
            self.tables.contacts.delete(found)
            self.tables.writes += 1
        return found

    def add_note(self, note: Note) -> None:
        self.tables.notes.put(note)
        self.tables.writes += 1

    def notes(self, tenant_id: str, account_id: str, limit: int, cursor: str | None) -> Page[Note]:
        """Newest first."""
        rows = self._of(self.tables.notes, tenant_id, account_id)
        return self._page(rows, "note", tenant_id, account_id, limit, cursor, forward=False)

    @staticmethod
    def _of(table: Table[Any], tenant_id: str, account_id: str) -> list[Any]:
        return [row for row in table.partition(tenant_id) if row.account_id == account_id]

    @staticmethod
    def _page(
        rows: list[Any],
        kind: str,
        tenant_id: str,
        account_id: str,
        limit: int,
        cursor: str | None,
        *,
        forward: bool,
    ) -> Any:
        key = f"{tenant_id}#{account_id}"
        names = frozenset({"key", "item"})
        start = decode_cursor(cursor, {"key": {"S": key}}, names)
        if start is not None and not str(start["item"].get("S", "")).startswith(f"{kind}#"):
            raise BadRequest(
                "cursor does not belong to this list", field="cursor", code="invalid_cursor"
            )
        return query(
            rows,
            lambda row: {"key": key, "item": f"{kind}#{row.id}"},
            partition={"key": key},
            names=names,
            sort="item",
            limit=limit,
            cursor=cursor,
            forward=forward,
        )


# --- pricelist: products, price lists, prices ----------------------------------------------------


class FakeProducts:
    """``functions.pricelist.adapters.ProductRepository`` (the methods the services call)."""

    def __init__(self, tables: Tables) -> None:
        self.tables = tables

    def get(self, tenant_id: str, product_id: str, *, consistent: bool = False) -> Product | None:
        return self.tables.products.get(tenant_id, product_id)

    def write_copy(self, copy: Product, previous: Product | None) -> bool:
        """A copy re-derived from its provider's offer (R5): over a stored copy, only if it
        holds an older offer (``source_version``) at the version read; a new one only if absent,
        holding its SKU in the same write. False if the condition failed."""
        table = self.tables.products
        offer = present(copy.source_version, f"the source version of copy {copy.id}")
        stored = table.get(*table.key(copy))
        if previous is not None:
            older = stored is None or stored.source_version is None or stored.source_version < offer
            if not (older and table.holds_version(copy)):
                return False
        elif stored is not None or not table.holds_version(copy):
            return False
        table.put(table.bumped(copy))
        if previous is None:
            self.tables.holders(copy.tenant_id, copy.sku).add(copy.id)
        self.tables.writes += 1
        return True

    def sku_holders(self, tenant_id: str, sku: str) -> set[str]:
        return set(self.tables.skus.get(tenant_id, {}).get(sku, ()))

    def create_own(self, product: Product) -> None:
        """The product (absent) and its SKU (held by nobody), one transaction, else
        ``ConcurrentUpdate``."""
        table = self.tables.products
        if table.get(*table.key(product)) is not None or self.sku_holders(
            product.tenant_id, product.sku
        ):
            raise ConcurrentUpdate()
        table.put(table.bumped(product))
        self.tables.holders(product.tenant_id, product.sku).add(product.id)
        self.tables.writes += 1

    def change_sku(self, updated: Product, previous: Product) -> None:
        """The product on the version read, the new SKU held by it alone, the old let go: one
        transaction, else ``ConcurrentUpdate``."""
        table = self.tables.products
        if not table.holds_version(updated) or self.sku_holders(updated.tenant_id, updated.sku):
            raise ConcurrentUpdate()
        table.put(table.bumped(updated))
        self.tables.holders(updated.tenant_id, updated.sku).add(updated.id)
        self.tables.holders(previous.tenant_id, previous.sku).discard(previous.id)
        self.tables.writes += 1

    def set_margin_alerts(self, product: Product, alerts: list[Any]) -> None:
        """An update of the alerts alone, on the version read (PynamoDB adds the version's
        condition and increment to an update): ``ConcurrentUpdate`` when it moved on."""
        table = self.tables.products
        stored = table.get(*table.key(product))
        if stored is None or not table.holds_version(product):
            raise ConcurrentUpdate()
        table.put(table.bumped(dataclasses.replace(stored, margin_alerts=list(alerts))))
        self.tables.writes += 1

    def get_many(self, tenant_id: str, product_ids: Iterable[str]) -> dict[str, Product]:
        found = (self.tables.products.get(tenant_id, pid) for pid in dict.fromkeys(product_ids))
        return {product.id: product for product in found if product is not None}

    def page(
        self, tenant_id: str, limit: int, cursor: str | None, *, margin_alert: bool = False
    ) -> Page[Product]:
        return tenant_page(
            self.tables.products.partition(tenant_id),
            tenant_id,
            limit,
            cursor,
            (lambda p: bool(p.margin_alerts)) if margin_alert else None,
        )

    def all(self, tenant_id: str) -> list[Product]:
        return self.tables.products.partition(tenant_id)

    def save_many(self, products: Iterable[Product]) -> None:
        """Unconditional puts at the version given (1 if none); SKUs held first."""
        products = list(products)
        for product in products:
            self.tables.holders(product.tenant_id, product.sku).add(product.id)
        for product in products:
            self.tables.products.put(dataclasses.replace(product, version=product.version or 1))
        if products:
            self.tables.writes += 1


class FakePriceLists:
    """``functions.pricelist.adapters.PriceListRepository`` (the methods the services call)."""

    def __init__(self, tables: Tables) -> None:
        self.tables = tables

    def get(
        self, tenant_id: str, price_list_id: str, *, consistent: bool = False
    ) -> PriceList | None:
        return self.tables.price_lists.get(tenant_id, price_list_id)

    def page(self, tenant_id: str, limit: int, cursor: str | None) -> Page[PriceList]:
        return tenant_page(self.tables.price_lists.partition(tenant_id), tenant_id, limit, cursor)

    def save_list(self, price_list: PriceList, entries: Iterable[Price]) -> None:
        """Unconditional puts, at the versions given."""
        self.tables.price_lists.put(price_list)
        for entry in entries:
            self.tables.prices.put(entry)
        self.tables.writes += 1

    def all_lists(self, tenant_id: str) -> list[PriceList]:
        return self.tables.price_lists.partition(tenant_id)

    def entries_in_lists(self, tenant_id: str, currency: str, product_id: str) -> list[Price]:
        found: list[Price] = []
        for price_list in self.all_lists(tenant_id):
            if price_list.currency == currency:
                found += self.entries(tenant_id, price_list.id, product_id).values()
        return found

    def entries(
        self, tenant_id: str, price_list_id: str, product_id: str, *, consistent: bool = False
    ) -> dict[str, Price]:
        found = (self.price(tenant_id, price_list_id, product_id, c) for c in ("monthly", "annual"))
        return {entry.billing_cycle: entry for entry in found if entry is not None}

    def price(
        self, tenant_id: str, price_list_id: str, product_id: str, cycle: str
    ) -> Price | None:
        return self.tables.prices.get(tenant_id, f"{price_list_id}#{product_id}#{cycle}")

    def prices_for(
        self, tenant_id: str, price_list_id: str, product_ids: Iterable[str], cycles: Iterable[str]
    ) -> list[Price]:
        cycles = list(cycles)
        found = (
            self.price(tenant_id, price_list_id, pid, cycle)
            for pid in dict.fromkeys(product_ids)
            for cycle in cycles
        )
        return [entry for entry in found if entry is not None]

    def prices(
        self, tenant_id: str, price_list_id: str, limit: int, cursor: str | None
    ) -> Page[Price]:
        list_key = f"{tenant_id}#{price_list_id}"
        return query(
            self._of(tenant_id, price_list_id),
            lambda e: {"list_key": list_key, "item_key": f"{e.product_id}#{e.billing_cycle}"},
            partition={"list_key": list_key},
            names=frozenset({"list_key", "item_key"}),
            sort="item_key",
            limit=limit,
            cursor=cursor,
        )

    def all_prices(self, tenant_id: str, price_list_id: str) -> Iterator[Price]:
        yield from self._of(tenant_id, price_list_id)

    def products_page(
        self, tenant_id: str, price_list_id: str, limit: int, cursor: str | None
    ) -> tuple[list[Price], str | None]:
        """Entries of up to ``limit`` products, a product's cycles never split across pages."""
        list_key = f"{tenant_id}#{price_list_id}"
        names = frozenset({"list_key", "item_key"})
        start = decode_cursor(cursor, {"list_key": {"S": list_key}}, names)
        after = str(start["item_key"]["S"]) if start else ""
        entries: list[Price] = []
        seen: list[str] = []
        for entry in self._of(tenant_id, price_list_id):
            item_key = f"{entry.product_id}#{entry.billing_cycle}"
            if item_key <= after:
                continue
            if entry.product_id not in seen:
                if len(seen) == limit:
                    last = entries[-1]
                    last_key = f"{last.product_id}#{last.billing_cycle}"
                    return entries, encode_cursor(
                        {"list_key": {"S": list_key}, "item_key": {"S": last_key}}
                    )
                seen.append(entry.product_id)
            entries.append(entry)
        return entries, None

    def _of(self, tenant_id: str, price_list_id: str) -> list[Price]:
        return [
            e for e in self.tables.prices.partition(tenant_id) if e.price_list_id == price_list_id
        ]


# --- orders: subscriptions and orders -----------------------------------------------------------


class _Records(Generic[R]):
    """What subscriptions and orders share (``functions.orders.adapters._Records``)."""

    def __init__(self, tables: Tables, table: Table[R]) -> None:
        self.tables = tables
        self.table = table

    def get(self, tenant_id: str, record_id: str) -> R | None:
        return self.table.get(tenant_id, record_id)

    def page(self, tenant_id: str, limit: int, cursor: str | None) -> Page[R]:
        return tenant_page(self.table.partition(tenant_id), tenant_id, limit, cursor)

    def for_account(
        self, tenant_id: str, account_id: str, limit: int, cursor: str | None
    ) -> Page[R]:
        return self._index(tenant_id, "account_key", account_id, "account_id", limit, cursor)

    def _index(
        self, tenant_id: str, name: str, value: str, attribute: str, limit: int, cursor: str | None
    ) -> Page[R]:
        key = f"{tenant_id}#{value}"
        return query(
            (r for r in self.table.partition(tenant_id) if getattr(r, attribute) == value),
            lambda r: {"tenant_id": tenant_id, "id": cast(Any, r).id, name: key},
            partition={name: key},
            names=frozenset({"tenant_id", "id", name}),
            sort="id",
            limit=limit,
            cursor=cursor,
        )


class FakeSubscriptions(_Records[Subscription]):
    """``functions.orders.adapters.SubscriptionRepository`` (the methods the services call)."""

    def __init__(self, tables: Tables) -> None:
        super().__init__(tables, tables.subscriptions)

    def for_reseller(
        self, tenant_id: str, reseller_id: str, limit: int, cursor: str | None
    ) -> Page[Subscription]:
        return self._index(
            tenant_id, "reseller_key", reseller_id, "reseller_account_id", limit, cursor
        )

    def addons(
        self, tenant_id: str, subscription_id: str, limit: int = 100, cursor: str | None = None
    ) -> Page[Subscription]:
        return self._index(
            tenant_id, "parent_key", subscription_id, "parent_subscription_id", limit, cursor
        )

    def due(self, tenant_id: str, on: date, limit: int, cursor: str | None) -> Page[str]:
        """The sparse ``by_due`` index: the keys ``due_entry`` gives, up to ``on``'s."""
        keyed = [(due_entry(s), s) for s in self.table.partition(tenant_id)]
        rows = [
            (str(due_on), s.id)
            for (due_key, due_on), s in keyed
            if due_key is not None and str(due_on) <= f"{on.isoformat()}#~"
        ]
        page = query(
            rows,
            lambda r: {
                "tenant_id": tenant_id,
                "id": r[1],
                "due_key": f"{tenant_id}#due",
                "due_on": r[0],
            },
            partition={"due_key": f"{tenant_id}#due"},
            names=frozenset({"tenant_id", "id", "due_key", "due_on"}),
            sort="due_on",
            limit=limit,
            cursor=cursor,
        )
        return Page([sub_id for _, sub_id in page.items], page.next_cursor)


class FakeOrders(_Records[Order]):
    """``functions.orders.adapters.OrderRepository``."""

    def __init__(self, tables: Tables) -> None:
        super().__init__(tables, tables.orders)

    def for_reseller(
        self, tenant_id: str, reseller_id: str, limit: int, cursor: str | None
    ) -> Page[Order]:
        """Its customers' orders and its own account's, in id order; a cursor only when more
        are left (the real one merges two indexes and looks one order ahead)."""
        page = self._index(
            tenant_id, "reseller_key", reseller_id, "reseller_account_id", limit + 1, cursor
        )
        items = page.items[:limit]
        last = None
        if len(page.items) > limit:
            key = f"{tenant_id}#{reseller_id}"
            last = {
                "tenant_id": {"S": tenant_id},
                "id": {"S": items[-1].id},
                "reseller_key": {"S": key},
            }
        return Page(items, encode_cursor(last))


# --- the services, wired as functions/composition.py wires them -----------------------------------


@dataclass
class Fakes:
    """Every fake over one set of tables, and the services built on them."""

    tables: Tables
    units: FakeUnits
    tenants: FakeTenants
    accounts: FakeAccounts
    items: FakeAccountItems
    products: FakeProducts
    price_lists: FakePriceLists
    subscriptions: FakeSubscriptions
    orders: FakeOrders
    tenancy: TenancyService
    catalogue: CatalogueService
    ordering: OrderService

    @classmethod
    def build(cls, tables: Tables | None = None) -> Fakes:
        """The three services over ``tables``, as ``composition.build`` makes them: their
        constructors take the ports (``functions.<context>.ports``), which the fakes meet."""
        tables = tables or Tables()
        units = FakeUnits(tables)
        tenants, accounts, items = (
            FakeTenants(tables),
            FakeAccounts(tables),
            FakeAccountItems(tables),
        )
        products, price_lists = FakeProducts(tables), FakePriceLists(tables)
        subscriptions, orders = FakeSubscriptions(tables), FakeOrders(tables)
        lists = PriceLists(products, price_lists)
        tenancy = TenancyService(units, tenants, accounts, lists, items)
        catalogue = CatalogueService(units, tenancy, tenants, accounts, products, price_lists)
        ordering = OrderService(units, tenancy, catalogue, subscriptions, orders)
        return cls(
            tables,
            units,
            tenants,
            accounts,
            items,
            products,
            price_lists,
            subscriptions,
            orders,
            tenancy,
            catalogue,
            ordering,
        )


if TYPE_CHECKING:  # the fakes meet the ports the services take (checked by mypy)

    def _protocols(fakes: Fakes) -> None:
        units: Units = fakes.units
        unit: UnitOfWork = fakes.units()
        tenants: core_ports.Tenants = fakes.tenants
        accounts: core_ports.Accounts = fakes.accounts
        items: core_ports.AccountItems = fakes.items
        catalogue_tenants: pricelist_ports.Tenants = fakes.tenants
        catalogue_accounts: pricelist_ports.Accounts = fakes.accounts
        products: pricelist_ports.Products = fakes.products
        price_lists: pricelist_ports.PriceListStore = fakes.price_lists
        subscriptions: orders_ports.Subscriptions = fakes.subscriptions
        orders: orders_ports.Orders = fakes.orders
        del units, unit, tenants, accounts, items, catalogue_tenants, catalogue_accounts
        del products, price_lists, subscriptions, orders
