"""HTTP routes of the catalogue and price lists."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

from functions.core.api import Api, Call
from functions.core.auth import CUSTOMER, RESELLER, TENANT_ADMIN
from functions.core.money import format_money
from functions.core.pagination import Page
from functions.core.schemas import ListQuery
from functions.pricelist.domain import Price, PriceList
from functions.pricelist.schemas import (
    CreatePriceList,
    CreateProduct,
    MarginAlertOut,
    Origin,
    PriceListOut,
    PriceOut,
    ProductOut,
    ProductQuery,
    SetPrice,
    UpdateProduct,
)

if TYPE_CHECKING:  # types only: a route module loads its service when first called
    from functions.pricelist.services import Offer

api = Api("catalogue")
ADMIN = (TENANT_ADMIN,)


def product_out(offer: Offer) -> ProductOut:
    p = offer.product
    return ProductOut(
        id=p.id,
        sku=p.sku,
        name=p.name,
        type=p.type,
        billing_cycles=p.billing_cycles,
        unit=p.unit,
        description=p.description,
        categories=p.categories,
        visible=p.visible,
        status=p.status,
        origin=(
            Origin(tenant_id=p.origin_tenant_id, product_id=p.origin_product_id)
            if p.origin_tenant_id and p.origin_product_id
            else None
        ),
        addon_for=p.addon_for,
        plan=p.plan,
        currency=offer.price_list.currency if offer.price_list else None,
        prices=offer.prices,
        costs=offer.costs,
        price_list_id=offer.price_list.id if offer.price_list else None,
        margin_alerts=[
            MarginAlertOut(
                price_list_id=a.price_list_id,
                billing_cycle=a.billing_cycle,
                price=str(a.price),
                cost=str(a.cost),
            )
            for a in offer.margin_alerts
        ],
        costs_changed_at=p.costs_changed_at,
        version=p.version or 0,
    )


def price_list_out(price_list: PriceList, default: bool) -> PriceListOut:
    return PriceListOut(
        id=price_list.id,
        name=price_list.name,
        currency=price_list.currency,
        default=default,
        created_at=price_list.created_at,
        version=price_list.version or 0,
    )


def price_out(entry: Price, amount: Decimal | None, currency: str) -> PriceOut:
    return PriceOut(
        price_list_id=entry.price_list_id,
        product_id=entry.product_id,
        billing_cycle=entry.billing_cycle,
        currency=currency,
        price=format_money(amount, currency) if amount is not None else None,
        fixed_price=format_money(entry.price, currency) if entry.price is not None else None,
        markup_percent=str(entry.markup_percent) if entry.markup_percent is not None else None,
        updated_at=entry.updated_at,
        version=entry.version or 0,
    )


@api.route(
    "/products",
    "GET",
    summary="The caller's catalogue at the caller's prices (R10)",
    roles=(TENANT_ADMIN, RESELLER, CUSTOMER),
    query=ProductQuery,
    response=ProductOut,
    paginated=True,
)
def list_products(call: Call) -> Page[ProductOut]:
    page = call.container.catalogue.list_products(
        call.principal,
        call.query.price_list_id,
        call.limit,
        call.cursor,
        margin_alert=call.query.margin_alert,
    )
    return Page([product_out(o) for o in page.items], page.next_cursor)


@api.route(
    "/products",
    "POST",
    summary="Create one of the tenant's own products (R1)",
    roles=ADMIN,
    body=CreateProduct,
    response=ProductOut,
    status=201,
)
def create_product(call: Call) -> ProductOut:
    return product_out(call.container.catalogue.create_product(call.principal, call.body))


@api.route(
    "/products/{product_id}",
    "GET",
    summary="A product at the caller's prices",
    roles=(TENANT_ADMIN, RESELLER, CUSTOMER),
    response=ProductOut,
)
def get_product(call: Call) -> ProductOut:
    offer = call.container.catalogue.offer(call.principal, call.params["product_id"])
    return product_out(offer)


@api.route(
    "/products/{product_id}",
    "PATCH",
    summary="Change a product; inherited fields of a copied product are refused (R4)",
    roles=ADMIN,
    body=UpdateProduct,
    response=ProductOut,
    errors=(400, 404, 409),
)
def update_product(call: Call) -> ProductOut:
    offer = call.container.catalogue.update_product(
        call.principal, call.params["product_id"], call.body
    )
    return product_out(offer)


@api.route(
    "/products/{product_id}",
    "DELETE",
    summary="Retire a product: no longer sold, off the storefront; subscriptions go on (R4)",
    roles=ADMIN,
    response=ProductOut,
    errors=(404, 409),
)
def retire_product(call: Call) -> ProductOut:
    return product_out(
        call.container.catalogue.retire_product(call.principal, call.params["product_id"])
    )


@api.route(
    "/pricelists",
    "POST",
    summary="Create a price list (R2)",
    roles=ADMIN,
    body=CreatePriceList,
    response=PriceListOut,
    status=201,
)
def create_price_list(call: Call) -> PriceListOut:
    catalogue = call.container.catalogue
    price_list = catalogue.create_price_list(call.principal, call.body)
    return price_list_out(price_list, catalogue.is_default(call.principal, price_list))


@api.route(
    "/pricelists",
    "GET",
    summary="The tenant's price lists",
    roles=ADMIN,
    query=ListQuery,
    response=PriceListOut,
    paginated=True,
)
def list_price_lists(call: Call) -> Page[PriceListOut]:
    catalogue = call.container.catalogue
    page, default = catalogue.list_price_lists(call.principal, call.limit, call.cursor)
    return Page([price_list_out(p, p.id == default) for p in page.items], page.next_cursor)


@api.route(
    "/pricelists/{price_list_id}",
    "GET",
    summary="A price list",
    roles=ADMIN,
    response=PriceListOut,
)
def get_price_list(call: Call) -> PriceListOut:
    catalogue = call.container.catalogue
    price_list = catalogue.get_price_list(call.principal, call.params["price_list_id"])
    return price_list_out(price_list, catalogue.is_default(call.principal, price_list))


@api.route(
    "/pricelists/{price_list_id}/prices",
    "POST",
    summary="Set a product's price for a billing cycle: fixed, or a markup % over cost (R4)",
    roles=ADMIN,
    body=SetPrice,
    response=PriceOut,
    status=200,
    errors=(400, 404, 409),
)
def set_price(call: Call) -> PriceOut:
    catalogue = call.container.catalogue
    price_list = catalogue.get_price_list(call.principal, call.params["price_list_id"])
    entry, amount = catalogue.set_price(call.principal, price_list.id, call.body)
    return price_out(entry, amount, price_list.currency)


@api.route(
    "/pricelists/{price_list_id}/prices",
    "GET",
    summary="A price list's prices",
    roles=ADMIN,
    query=ListQuery,
    response=PriceOut,
    paginated=True,
)
def list_prices(call: Call) -> Page[PriceOut]:
    price_list, page = call.container.catalogue.list_prices(
        call.principal, call.params["price_list_id"], call.limit, call.cursor
    )
    return Page([price_out(e, a, price_list.currency) for e, a in page.items], page.next_cursor)
