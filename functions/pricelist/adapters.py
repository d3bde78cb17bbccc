"""DynamoDB tables of the catalogue (products, price lists, prices) and their repositories."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import replace
from decimal import Decimal

from pynamodb.attributes import (
    BooleanAttribute,
    ListAttribute,
    MapAttribute,
    UnicodeAttribute,
    VersionAttribute,
)

from functions.core.pagination import Page, decode_cursor, encode_cursor
from functions.core.persistence import BaseTable, DecimalAttribute, entity_values, to_entity
from functions.pricelist.domain import Price, PriceList, Product


class CycleAmounts(MapAttribute[str, Decimal]):
    monthly = DecimalAttribute(null=True)
    annual = DecimalAttribute(null=True)


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
    version = VersionAttribute()

    @classmethod
    def of(cls, product: Product) -> ProductModel:
        values = entity_values(product)
        values["costs"] = CycleAmounts(**product.costs)
        return cls(**values)

    def entity(self) -> Product:
        product = to_entity(self, Product)
        costs = {
            k: v for k, v in (self.costs.as_dict() if self.costs else {}).items() if v is not None
        }
        return Product(**{**entity_values(product), "costs": costs})


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
    def get(self, tenant_id: str, product_id: str) -> Product | None:
        try:
            return ProductModel.get(tenant_id, product_id).entity()
        except ProductModel.DoesNotExist:
            return None

    def get_many(self, tenant_id: str, product_ids: Iterable[str]) -> dict[str, Product]:
        keys = [(tenant_id, pid) for pid in dict.fromkeys(product_ids)]
        return {item.id: item.entity() for item in ProductModel.batch_get(keys)}

    def page(self, tenant_id: str, limit: int, cursor: str | None) -> Page[Product]:
        start = decode_cursor(cursor, {"tenant_id": {"S": tenant_id}}, _PRODUCT_KEYS)
        result = ProductModel.query(tenant_id, limit=limit, last_evaluated_key=start)
        items = [item.entity() for item in result]
        return Page(items, encode_cursor(result.last_evaluated_key))

    def save_many(self, products: Iterable[Product]) -> None:
        """Unconditional batch puts (for deterministic ids only: a rerun rewrites the same
        items). A batch put does not bump versions, so new items start at version 1."""
        with ProductModel.batch_write() as batch:
            for product in products:
                batch.save(ProductModel.of(replace(product, version=product.version or 1)))

    def model(self, product: Product) -> ProductModel:
        return ProductModel.of(product)


class PriceListRepository:
    def get(self, tenant_id: str, price_list_id: str) -> PriceList | None:
        try:
            return to_entity(PriceListModel.get(tenant_id, price_list_id), PriceList)
        except PriceListModel.DoesNotExist:
            return None

    def page(self, tenant_id: str, limit: int, cursor: str | None) -> Page[PriceList]:
        start = decode_cursor(cursor, {"tenant_id": {"S": tenant_id}}, _PRODUCT_KEYS)
        result = PriceListModel.query(tenant_id, limit=limit, last_evaluated_key=start)
        items = [to_entity(item, PriceList) for item in result]
        return Page(items, encode_cursor(result.last_evaluated_key))

    def model(self, price_list: PriceList) -> PriceListModel:
        return PriceListModel(**entity_values(price_list))

    # --- prices ---

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
        items = [to_entity(item, Price) for item in result]
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

    def price_model(self, price: Price) -> PriceModel:
        return PriceModel.of(price)


MODELS: tuple[type[BaseTable], ...] = (ProductModel, PriceListModel, PriceModel)
