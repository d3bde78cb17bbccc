"""Request and response models of the catalogue and price lists."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from functions.core.schemas import (
    LINE,
    Body,
    CurrencyCode,
    Id,
    ListQuery,
    MoneyString,
    Name,
    Out,
    Text,
)

Cycle = Literal["monthly", "annual"]
Sku = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:/-]+$")]
Unit = Annotated[str, StringConstraints(min_length=1, max_length=32), LINE]
Category = Annotated[str, StringConstraints(min_length=1, max_length=64), LINE]
Percent = Annotated[str, StringConstraints(pattern=r"^\d{1,4}(\.\d{1,2})?$")]


class CycleMoney(Body):
    monthly: MoneyString | None = None
    annual: MoneyString | None = None


class CreateProduct(Body):
    sku: Sku
    name: Name
    type: Literal["license", "usage", "addon", "reseller_plan"]
    billing_cycles: list[Cycle] = Field(min_length=1, max_length=2)
    unit: Unit
    description: Text | None = None
    categories: list[Category] = Field(default_factory=list, max_length=20)
    visible: bool = True
    costs: CycleMoney | None = None
    addon_for: list[Id] = Field(default_factory=list, max_length=50)
    plan: Literal["basic", "free", "standard"] | None = Field(
        default=None, description="a reseller_plan product: the plan it grants (R27)"
    )


class UpdateProduct(Body):
    """R4: on a product copied from the provider, only name, description, categories and
    visibility may change; the rest answers 409 ``inherited_product``."""

    name: Name | None = None
    description: Text | None = None
    categories: list[Category] | None = Field(default=None, max_length=20)
    visible: bool | None = None
    sku: Sku | None = None
    type: Literal["license", "usage", "addon", "reseller_plan"] | None = None
    billing_cycles: list[Cycle] | None = Field(default=None, min_length=1, max_length=2)
    unit: Unit | None = None
    costs: CycleMoney | None = None
    status: Literal["active", "discontinued"] | None = Field(
        default=None, description="an own product only: a copy's follows its provider (R5)"
    )


class ProductQuery(ListQuery):
    price_list_id: Id | None = None
    margin_alert: bool = Field(
        default=False,
        description="tenant_admin: only products with a fixed sell price below cost (R5)",
    )


class Origin(Out):
    tenant_id: str
    product_id: str


class ProductOut(Out):
    id: str
    sku: str
    name: str
    type: str
    billing_cycles: list[str]
    unit: str
    description: str | None
    categories: list[str]
    visible: bool
    status: str
    origin: Origin | None
    addon_for: list[str]
    plan: str | None = Field(default=None, description="a reseller_plan: the plan it grants")
    currency: str | None = Field(description="currency of `prices` (and `costs`)")
    prices: dict[str, str] = Field(description="the caller's price per billing cycle")
    costs: dict[str, str] | None = Field(
        default=None, description="purchase price per cycle (tenant_admin only)"
    )
    price_list_id: str | None = None
    margin_alerts: list[MarginAlertOut] = Field(
        default_factory=list,
        description="tenant_admin: fixed sell prices of its lists below the cost (R5)",
    )
    costs_changed_at: str | None = Field(
        default=None, description="a copy: when its costs last changed (R7)"
    )
    version: int


class CreatePriceList(Body):
    name: Name
    currency: CurrencyCode
    default: bool = Field(default=False, description="make it the list direct customers buy at")


class PriceListOut(Out):
    id: str
    name: str
    currency: str
    default: bool
    created_at: str
    version: int


class SetPrice(Body):
    """A fixed ``price`` or a ``markup_percent`` over the product's cost (R4)."""

    product_id: Id
    billing_cycle: Cycle
    price: MoneyString | None = None
    markup_percent: Percent | None = None


class PriceOut(Out):
    price_list_id: str
    product_id: str
    billing_cycle: str
    currency: str
    price: str | None = Field(description="the effective sell price")
    fixed_price: str | None
    markup_percent: str | None
    updated_at: str
    version: int


class CurrencyOut(Out):
    currency: str


# --- propagation (R5, R6) ----------------------------------------------------------------------

#: the queue of propagation pages (``infra/events.py`` wires its consumer)
PRICE_CHANGES_QUEUE = "price-changes"


class PriceChange(BaseModel):
    """One page of a price-list change's fan-out: the provider's product in one of its lists
    changed; the page is the list's assignees after ``cursor`` (None = the first page). The
    consumer reads the offer as it is then, so a message carries no state to go stale."""

    model_config = ConfigDict(extra="forbid", strict=True)

    provider_tenant_id: str
    price_list_id: str
    product_id: str
    cursor: str | None = None


class MarginAlertOut(Out):
    price_list_id: str
    billing_cycle: str
    price: str = Field(description="the fixed sell price, below the cost")
    cost: str
