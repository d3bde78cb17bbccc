"""DynamoDB tables of the catalogue (products, price lists, prices) and their repositories."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import replace
from decimal import Decimal
from typing import Any

from pynamodb.attributes import (
    BooleanAttribute,
    ListAttribute,
    MapAttribute,
    NumberAttribute,
    UnicodeAttribute,
    UnicodeSetAttribute,
    VersionAttribute,
)

from functions.core.errors import ConcurrentUpdate, present
from functions.core.pagination import Page, decode_cursor, encode_cursor
from functions.core.persistence import (
    BaseTable,
    DecimalAttribute,
    complete_items,
    entity_values,
    put_if,
    to_entity,
    transaction,
    update,
)
from functions.core.settings import Settings
from functions.pricelist.domain import MarginAlert, Price, PriceList, Product, commitment_of


class CycleAmounts(MapAttribute[str, Decimal]):
    monthly = DecimalAttribute(null=True)
    annual = DecimalAttribute(null=True)


class MarginAlertMap(MapAttribute[str, object]):
    price_list_id = UnicodeAttribute()
    billing_cycle = UnicodeAttribute()
    price = DecimalAttribute()
    cost = DecimalAttribute()


class ProductModel(BaseTable):
    base_name = "products"
    streamed = True

    tenant_id = UnicodeAttribute(hash_key=True)
    id = UnicodeAttribute(range_key=True)
    sku = UnicodeAttribute()
    name = UnicodeAttribute()
    type = UnicodeAttribute()
    billing_cycles = ListAttribute(of=UnicodeAttribute)
    unit = UnicodeAttribute()
    created_at = UnicodeAttribute()
    description = UnicodeAttribute(null=True)
    categories = ListAttribute(of=UnicodeAttribute, default=list)
    visible = BooleanAttribute(default=True)
    status = UnicodeAttribute(default="active")
    origin_tenant_id = UnicodeAttribute(null=True)
    origin_product_id = UnicodeAttribute(null=True)
    costs = CycleAmounts(null=True)
    addon_for = ListAttribute(of=UnicodeAttribute, default=list)
    plan = UnicodeAttribute(null=True)
    source_version = NumberAttribute(null=True)
    costs_changed_at = UnicodeAttribute(null=True)
    margin_alerts = ListAttribute(of=MarginAlertMap, null=True)
    margin_alert = BooleanAttribute(null=True)  # set (true) only with alerts: the list's filter
    #: R31: ``{cycle: Commitment.as_dict()}`` as JSON; absent on a flexible product
    commitments = UnicodeAttribute(null=True)
    version = VersionAttribute()

    @classmethod
    def of(cls, product: Product) -> ProductModel:
        values = entity_values(product)
        values["costs"] = CycleAmounts(**product.costs)
        values["margin_alerts"] = [
            MarginAlertMap(**vars(alert)) for alert in product.margin_alerts
        ] or None
        values["margin_alert"] = True if product.margin_alerts else None
        values["commitments"] = (
            json.dumps({c: v.as_dict() for c, v in product.commitments.items()}, sort_keys=True)
            if product.commitments
            else None
        )
        return cls(**values)

    def entity(self) -> Product:
        costs = {
            k: v for k, v in (self.costs.as_dict() if self.costs else {}).items() if v is not None
        }
        alerts = [MarginAlert(**alert.as_dict()) for alert in self.margin_alerts or []]
        values = {
            "costs": costs,
            "margin_alerts": alerts,
            "source_version": None if self.source_version is None else int(self.source_version),
            "commitments": {
                c: commitment_of(v) for c, v in json.loads(self.commitments or "{}").items()
            },
        }
        return Product(**{**entity_values(to_entity(self, Product)), **values})


class SkuModel(BaseTable):
    """R1, R29: the products of a tenant's catalogue holding a SKU, its own and its copies
    (R3, R5). An own product is written only in the transaction that makes it the SKU's first
    holder, so two of the tenant's products never share a SKU by its own doing; a copy is added
    as a holder whatever the others (the provider's offer always reaches its tenants, R5)."""

    base_name = "skus"

    tenant_id = UnicodeAttribute(hash_key=True)
    sku = UnicodeAttribute(range_key=True)
    holders = UnicodeSetAttribute(null=True)  # product ids; DynamoDB drops an emptied set


class PriceListModel(BaseTable):
    base_name = "pricelists"
    streamed = True

    tenant_id = UnicodeAttribute(hash_key=True)
    id = UnicodeAttribute(range_key=True)
    name = UnicodeAttribute()
    currency = UnicodeAttribute()
    created_at = UnicodeAttribute()
    version = VersionAttribute()


class PriceModel(BaseTable):
    base_name = "prices"
    streamed = True

    list_key = UnicodeAttribute(hash_key=True)  # {tenant_id}#{price_list_id}
    item_key = UnicodeAttribute(range_key=True)  # {product_id}#{billing_cycle}
    tenant_id = UnicodeAttribute()
    price_list_id = UnicodeAttribute()
    product_id = UnicodeAttribute()
    billing_cycle = UnicodeAttribute()
    updated_at = UnicodeAttribute()
    price = DecimalAttribute(null=True)
    markup_percent = DecimalAttribute(null=True)
    version = VersionAttribute()

    @staticmethod
    def keys(tenant_id: str, price_list_id: str, product_id: str, cycle: str) -> tuple[str, str]:
        return f"{tenant_id}#{price_list_id}", f"{product_id}#{cycle}"

    @classmethod
    def of(cls, price: Price) -> PriceModel:
        list_key, item_key = cls.keys(
            price.tenant_id, price.price_list_id, price.product_id, price.billing_cycle
        )
        return cls(list_key=list_key, item_key=item_key, **entity_values(price))


_PRODUCT_KEYS = frozenset({"tenant_id", "id"})
_PRICE_KEYS = frozenset({"list_key", "item_key"})


class ProductRepository:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def get(self, tenant_id: str, product_id: str, *, consistent: bool = False) -> Product | None:
        try:
            return ProductModel.get(tenant_id, product_id, consistent_read=consistent).entity()
        except ProductModel.DoesNotExist:
            return None

    def write_copy(self, copy: Product, previous: Product | None) -> bool:
        """A copy re-derived from its provider's offer (R5): one write, only over an older
        offer (``source_version``) and the version read (a concurrent edit of the tenant's own
        fields fails it: the caller reads again). A new copy holds its SKU in the same
        transaction (a copy's SKU never changes). False if the condition failed."""
        item = ProductModel.of(copy)
        present(copy.source_version, f"the source version of copy {copy.id}")
        if previous is not None:
            condition = ProductModel.source_version.does_not_exist() | (
                ProductModel.source_version < copy.source_version
            )
            return put_if(item, condition)
        try:
            with transaction(self.settings) as tx:
                tx.save(item, condition=ProductModel.id.does_not_exist())
                tx.update(
                    SkuModel(copy.tenant_id, copy.sku),
                    actions=[SkuModel.holders.add({copy.id})],
                )
        except ConcurrentUpdate:
            return False
        return True

    # --- SKUs (R1, R29) ---

    def sku_holders(self, tenant_id: str, sku: str) -> set[str]:
        """The products of the tenant holding ``sku`` (consistent: read after a refusal)."""
        try:
            item = SkuModel.get(tenant_id, sku, consistent_read=True)
        except SkuModel.DoesNotExist:
            return set()
        return set(item.holders or ())

    def create_own(self, product: Product) -> None:
        """A tenant's own new product, and its SKU held by it alone, in one transaction: a SKU
        some product holds already fails it (``ConcurrentUpdate``; the caller reads
        ``sku_holders`` to tell the client which)."""
        with transaction(self.settings) as tx:
            tx.save(ProductModel.of(product), condition=ProductModel.id.does_not_exist())
            tx.update(
                SkuModel(product.tenant_id, product.sku),
                actions=[SkuModel.holders.add({product.id})],
                condition=SkuModel.holders.does_not_exist(),
            )

    def change_sku(self, updated: Product, previous: Product) -> None:
        """An own product's new SKU (PATCH): the product (on the version read), the new SKU
        held by it alone and the old one let go, in one transaction."""
        with transaction(self.settings) as tx:
            tx.save(ProductModel.of(updated))
            tx.update(
                SkuModel(updated.tenant_id, updated.sku),
                actions=[SkuModel.holders.add({updated.id})],
                condition=SkuModel.holders.does_not_exist(),
            )
            tx.update(
                SkuModel(previous.tenant_id, previous.sku),
                actions=[SkuModel.holders.delete({previous.id})],
            )

    def set_margin_alerts(self, product: Product, alerts: list[Any]) -> None:
        """The alerts of a product after one of the tenant's own prices changed (R5); over the
        version read (``ConcurrentUpdate`` when the product moved on)."""
        item = ProductModel.of(replace(product, margin_alerts=alerts))
        actions: list[Any] = [
            ProductModel.margin_alerts.set(item.margin_alerts)
            if alerts
            else ProductModel.margin_alerts.remove(),
            ProductModel.margin_alert.set(True) if alerts else ProductModel.margin_alert.remove(),
        ]
        update(item, actions, ProductModel.id.exists())

    def get_many(self, tenant_id: str, product_ids: Iterable[str]) -> dict[str, Product]:
        keys = [(tenant_id, pid) for pid in dict.fromkeys(product_ids)]
        return {item.id: item.entity() for item in ProductModel.batch_get(keys)}

    def page(
        self, tenant_id: str, limit: int, cursor: str | None, *, margin_alert: bool = False
    ) -> Page[Product]:
        """A page of the tenant's products; with ``margin_alert``, only those flagged (R5)."""
        start = decode_cursor(cursor, {"tenant_id": {"S": tenant_id}}, _PRODUCT_KEYS)
        result = ProductModel.query(
            tenant_id,
            limit=limit,
            last_evaluated_key=start,
            filter_condition=ProductModel.margin_alert.exists() if margin_alert else None,
        )
        items = [item.entity() for item in complete_items(ProductModel, result, what="products")]
        return Page(items, encode_cursor(result.last_evaluated_key))

    def all(self, tenant_id: str) -> list[Product]:
        """Every product of a tenant (a job path: an upgrade's default list)."""
        found = complete_items(ProductModel, ProductModel.query(tenant_id), what="products")
        return [item.entity() for item in found]

    def save_many(self, products: Iterable[Product]) -> None:
        """Unconditional batch puts (for deterministic ids only: a rerun rewrites the same
        items). A batch put does not bump versions, so new items start at version 1. Their
        SKUs are held first (added to the holders found: a rerun adds nothing), so no product
        is in the catalogue without holding its SKU. For a new tenant's catalogue (R3) and
        tests, not for concurrent writers."""
        products = list(products)
        by_sku: dict[tuple[str, str], set[str]] = {}
        for product in products:
            by_sku.setdefault((product.tenant_id, product.sku), set()).add(product.id)
        found = {(item.tenant_id, item.sku): item for item in SkuModel.batch_get(list(by_sku))}
        with SkuModel.batch_write() as skus:
            for (tenant_id, sku), holders in by_sku.items():
                held = found.get((tenant_id, sku))
                if held is not None and held.holders:
                    holders = holders | set(held.holders)
                skus.save(SkuModel(tenant_id, sku, holders=holders))
        with ProductModel.batch_write() as batch:
            for product in products:
                batch.save(ProductModel.of(replace(product, version=product.version or 1)))


class PriceListRepository:
    def get(
        self, tenant_id: str, price_list_id: str, *, consistent: bool = False
    ) -> PriceList | None:
        try:
            item = PriceListModel.get(tenant_id, price_list_id, consistent_read=consistent)
            return to_entity(item, PriceList)
        except PriceListModel.DoesNotExist:
            return None

    def page(self, tenant_id: str, limit: int, cursor: str | None) -> Page[PriceList]:
        start = decode_cursor(cursor, {"tenant_id": {"S": tenant_id}}, _PRODUCT_KEYS)
        result = PriceListModel.query(tenant_id, limit=limit, last_evaluated_key=start)
        found = complete_items(PriceListModel, result, what="price lists")
        items = [to_entity(item, PriceList) for item in found]
        return Page(items, encode_cursor(result.last_evaluated_key))

    # --- prices ---

    def save_list(self, price_list: PriceList, entries: Iterable[Price]) -> None:
        """A list and its entries in batches, unconditionally (deterministic ids only)."""
        with PriceListModel.batch_write() as lists:
            lists.save(_price_list_item(price_list))
        with PriceModel.batch_write() as prices:
            for entry in entries:
                prices.save(PriceModel.of(entry))

    def all_lists(self, tenant_id: str) -> list[PriceList]:
        """Every list of a tenant (a tenant has a handful: a job path reads them all)."""
        return [to_entity(item, PriceList) for item in PriceListModel.query(tenant_id)]

    def entries_in_lists(self, tenant_id: str, currency: str, product_id: str) -> list[Price]:
        """A product's entries in every list of the tenant in ``currency`` (its costs'):
        what a margin alert compares (R5)."""
        found: list[Price] = []
        for price_list in self.all_lists(tenant_id):
            if price_list.currency == currency:
                found += self.entries(tenant_id, price_list.id, product_id).values()
        return found

    def entries(
        self, tenant_id: str, price_list_id: str, product_id: str, *, consistent: bool = False
    ) -> dict[str, Price]:
        """A product's entries in one list, by billing cycle."""
        keys = [
            PriceModel.keys(tenant_id, price_list_id, product_id, cycle)
            for cycle in ("monthly", "annual")
        ]
        items = PriceModel.batch_get(keys, consistent_read=consistent)
        return {item.billing_cycle: to_entity(item, Price) for item in items}

    def price(
        self, tenant_id: str, price_list_id: str, product_id: str, cycle: str
    ) -> Price | None:
        try:
            item = PriceModel.get(*PriceModel.keys(tenant_id, price_list_id, product_id, cycle))
        except PriceModel.DoesNotExist:
            return None
        return to_entity(item, Price)

    def prices_for(
        self, tenant_id: str, price_list_id: str, product_ids: Iterable[str], cycles: Iterable[str]
    ) -> list[Price]:
        keys = [
            PriceModel.keys(tenant_id, price_list_id, pid, cycle)
            for pid in dict.fromkeys(product_ids)
            for cycle in cycles
        ]
        return [to_entity(item, Price) for item in PriceModel.batch_get(keys)]

    def prices(
        self, tenant_id: str, price_list_id: str, limit: int, cursor: str | None
    ) -> Page[Price]:
        list_key = f"{tenant_id}#{price_list_id}"
        start = decode_cursor(cursor, {"list_key": {"S": list_key}}, _PRICE_KEYS)
        result = PriceModel.query(list_key, limit=limit, last_evaluated_key=start)
        items = [
            to_entity(item, Price) for item in complete_items(PriceModel, result, what="prices")
        ]
        return Page(items, encode_cursor(result.last_evaluated_key))

    def all_prices(self, tenant_id: str, price_list_id: str) -> Iterator[Price]:
        """Every entry of a list, page by page (a job path: R3's catalogue copy)."""
        for item in PriceModel.query(f"{tenant_id}#{price_list_id}"):
            yield to_entity(item, Price)

    def products_page(
        self, tenant_id: str, price_list_id: str, limit: int, cursor: str | None
    ) -> tuple[list[Price], str | None]:
        """Entries of up to ``limit`` products, never splitting one product's cycles across
        pages; the cursor continues after the last product returned."""
        list_key = f"{tenant_id}#{price_list_id}"
        start = decode_cursor(cursor, {"list_key": {"S": list_key}}, _PRICE_KEYS)
        entries: list[Price] = []
        seen: list[str] = []
        for item in PriceModel.query(list_key, last_evaluated_key=start, page_size=limit * 2 + 2):
            if item.product_id not in seen:
                if len(seen) == limit:
                    last = entries[-1]
                    key = PriceModel.keys(
                        tenant_id, price_list_id, last.product_id, last.billing_cycle
                    )
                    return entries, encode_cursor(
                        {"list_key": {"S": key[0]}, "item_key": {"S": key[1]}}
                    )
                seen.append(item.product_id)
            entries.append(to_entity(item, Price))
        return entries, None


def _price_list_item(price_list: PriceList) -> PriceListModel:
    return PriceListModel(**entity_values(price_list))


#: What a unit of work (``functions.core.persistence.DynamoUnits``) writes each entity as.
WRITERS: dict[type, Any] = {
    Product: ProductModel.of,
    PriceList: _price_list_item,
    Price: PriceModel.of,
}

MODELS: tuple[type[BaseTable], ...] = (ProductModel, SkuModel, PriceListModel, PriceModel)


# --- stream images (the propagation functions, ``handlers.py``) -----------------------------


def price_of_image(image: dict[str, Any]) -> Price:
    """The price entry a prices-stream record carries."""
    return to_entity(PriceModel.from_raw_data(image), Price)


def product_of_image(image: dict[str, Any]) -> Product:
    """The product a products-stream record carries."""
    return ProductModel.from_raw_data(image).entity()
