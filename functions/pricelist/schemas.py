"""Request and response models of the catalogue and price lists."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from functions.core.schemas import Body, CurrencyCode, Id, ListQuery, MoneyString, Name, Out, Text

Cycle = Literal["monthly", "annual"]
Sku = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:/-]+$")]
Unit = Annotated[str, StringConstraints(min_length=1, max_length=32, pattern=r"\S")]
Category = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"\S")]
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


class ProductQuery(ListQuery):
    price_list_id: Id | None = None


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
    currency: str | None = Field(description="currency of `prices` (and `costs`)")
    prices: dict[str, str] = Field(description="the caller's price per billing cycle")
    costs: dict[str, str] | None = Field(
        default=None, description="purchase price per cycle (tenant_admin only)"
    )
    price_list_id: str | None = None
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
