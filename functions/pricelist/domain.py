"""Catalogue and price lists (SPEC §2: R1–R4). Pure: stdlib and the kernel only."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

from functions.core.errors import BadRequest, Conflict
from functions.core.money import format_money, parse_price, round_money

LICENSE, USAGE, ADDON, RESELLER_PLAN = "license", "usage", "addon", "reseller_plan"
PRODUCT_TYPES = (LICENSE, USAGE, ADDON, RESELLER_PLAN)
MONTHLY, ANNUAL = "monthly", "annual"
BILLING_CYCLES = (MONTHLY, ANNUAL)

MAX_MARKUP = Decimal("1000")


@dataclass(frozen=True)
class Product:
    """R1. ``origin_*`` is set on a copy of the provider's product (R3); ``costs`` are then the
    provider's list prices per billing cycle (the tenant's purchase prices)."""

    id: str
    tenant_id: str
    sku: str
    name: str
    type: str
    billing_cycles: list[str]
    unit: str
    created_at: str
    description: str | None = None
    categories: list[str] = field(default_factory=list)
    visible: bool = True
    status: str = "active"  # active | discontinued
    origin_tenant_id: str | None = None
    origin_product_id: str | None = None
    costs: dict[str, Decimal] = field(default_factory=dict)
    addon_for: list[str] = field(default_factory=list)
    version: int | None = None

    @property
    def inherited(self) -> bool:
        return self.origin_product_id is not None

    @property
    def sellable(self) -> bool:
        return self.status == "active"


@dataclass(frozen=True)
class PriceList:
    """R2: one currency, per product and billing cycle a price."""

    id: str
    tenant_id: str
    name: str
    currency: str
    created_at: str
    version: int | None = None


@dataclass(frozen=True)
class Price:
    """A fixed price, or a markup % over the product's cost for that cycle (R4)."""

    tenant_id: str
    price_list_id: str
    product_id: str
    billing_cycle: str
    updated_at: str
    price: Decimal | None = None
    markup_percent: Decimal | None = None
    version: int | None = None


def _cycles(cycles: list[str], *, field: str = "billing_cycles") -> list[str]:
    if not cycles:
        raise BadRequest("at least one billing cycle is required", field=field)
    if len(set(cycles)) != len(cycles):
        raise BadRequest("billing cycles must not repeat", field=field)
    return [c for c in BILLING_CYCLES if c in cycles]


def new_product(
    product_id: str,
    tenant_id: str,
    *,
    sku: str,
    name: str,
    type: str,
    billing_cycles: list[str],
    unit: str,
    created_at: str,
    currency: str,
    costs: dict[str, str] | None,
    addon_for: list[Product],
    **details: Any,
) -> Product:
    """A tenant's own product (R1)."""
    cycles = _cycles(billing_cycles)
    if type == ADDON and not addon_for:
        raise BadRequest(
            "an add-on names the products it attaches to", field="addon_for", code="missing_field"
        )
    if type != ADDON and addon_for:
        raise BadRequest("only an add-on attaches to other products", field="addon_for")
    for base in addon_for:
        if base.type == ADDON:
            raise BadRequest("an add-on attaches to base products, not add-ons", field="addon_for")
    parsed: dict[str, Decimal] = {}
    for cycle, amount in (costs or {}).items():
        if cycle not in cycles:
            raise BadRequest(f"cost for {cycle}, a cycle the product lacks", field=f"costs.{cycle}")
        parsed[cycle] = parse_price(amount, currency, field=f"costs.{cycle}")
    return Product(
        id=product_id,
        tenant_id=tenant_id,
        sku=sku,
        name=name,
        type=type,
        billing_cycles=cycles,
        unit=unit,
        created_at=created_at,
        costs=parsed,
        addon_for=[b.id for b in addon_for],
        **details,
    )


#: what a tenant may not change on a product copied from its provider (R4)
INHERITED_FIELDS = ("sku", "type", "billing_cycles", "unit", "costs", "addon_for")


def update_product(product: Product, changes: dict[str, Any]) -> Product:
    """R4: on a copied product only the tenant's own presentation may change."""
    if product.inherited:
        for name in INHERITED_FIELDS:
            if name in changes:
                raise Conflict(
                    f"{name} of a product copied from the provider cannot be changed (R4)",
                    code="inherited_product",
                    field=name,
                )
    if "billing_cycles" in changes:
        changes = {**changes, "billing_cycles": _cycles(changes["billing_cycles"])}
    return replace(product, **changes)


def copy_for_child(
    source: Product,
    child_tenant_id: str,
    child_product_id: str,
    costs: dict[str, Decimal],
    addon_for: list[str],
    *,
    created_at: str,
) -> Product:
    """R3: the child's copy: the product's configuration, the list's prices as its costs."""
    return Product(
        id=child_product_id,
        tenant_id=child_tenant_id,
        sku=source.sku,
        name=source.name,
        type=source.type,
        billing_cycles=[c for c in BILLING_CYCLES if c in costs],
        unit=source.unit,
        created_at=created_at,
        description=source.description,
        categories=list(source.categories),
        visible=source.visible,
        origin_tenant_id=source.tenant_id,
        origin_product_id=source.id,
        costs=dict(costs),
        addon_for=addon_for,
    )


def new_price(
    price_list: PriceList,
    product: Product,
    *,
    billing_cycle: str,
    price: str | None,
    markup_percent: str | None,
    updated_at: str,
    previous: Price | None,
) -> Price:
    if billing_cycle not in product.billing_cycles:
        raise BadRequest(
            f"the product is not sold {billing_cycle}",
            field="billing_cycle",
            code="unsupported_billing_cycle",
        )
    if (price is None) == (markup_percent is None):
        raise BadRequest("give either price or markup_percent", field="price")
    fixed = markup = None
    if price is not None:
        fixed = parse_price(price, price_list.currency, field="price")
    else:
        assert markup_percent is not None
        markup = Decimal(markup_percent)
        if not Decimal(0) <= markup <= MAX_MARKUP:
            raise BadRequest(
                f"markup_percent must be 0-{MAX_MARKUP}",
                field="markup_percent",
                code="out_of_range",
            )
        if billing_cycle not in product.costs:
            raise BadRequest(
                "a markup needs the product's cost for this cycle", field="markup_percent"
            )
    return Price(
        tenant_id=price_list.tenant_id,
        price_list_id=price_list.id,
        product_id=product.id,
        billing_cycle=billing_cycle,
        updated_at=updated_at,
        price=fixed,
        markup_percent=markup,
        version=previous.version if previous else None,
    )


def effective_price(entry: Price, product: Product, currency: str) -> Decimal:
    """The sell price: fixed, or cost × (1 + markup/100) rounded half-up (R4, R23)."""
    if entry.price is not None:
        return entry.price
    assert entry.markup_percent is not None
    cost = product.costs[entry.billing_cycle]
    return round_money(cost * (1 + entry.markup_percent / 100), currency)


def price_view(entries: list[Price], product: Product, currency: str) -> dict[str, str]:
    return {
        e.billing_cycle: format_money(effective_price(e, product, currency), currency)
        for e in entries
        if e.billing_cycle in product.billing_cycles
        and (e.price is not None or e.billing_cycle in product.costs)
    }
