"""HTTP routes of the catalogue and price lists."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

from functions.core.api import Api, Call
from functions.core.auth import CUSTOMER, RESELLER, TENANT_ADMIN
from functions.core.money import format_money
from functions.core.pagination import Page
from functions.core.schemas import ListQuery
from functions.pricelist.domain import AlertChange, Price, PriceList
from functions.pricelist.schemas import (
    AlertChangeOut,
    CommitmentOut,
    CostChangeOut,
    CreatePriceList,
    CreateProduct,
    InvoiceLineChangeOut,
    MarginAlertOut,
    MoneyOut,
    NextInvoiceOut,
    Origin,
    PriceListOut,
    PriceMoveOut,
    PriceOut,
    PricesOut,
    ProductOut,
    ProductQuery,
    SetPriceOut,
    SetPrices,
    SimulatePrices,
    SimulationOut,
    SimulationTotalsOut,
    TenantForecastOut,
    UpdateProduct,
)

if TYPE_CHECKING:  # types only: a route module loads its service when first called
    from functions.pricelist.services import Offer, Reached, Simulation, Simulator

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
        commitments={c: CommitmentOut(**v.as_dict()) for c, v in p.commitments.items()},
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


def _money(amounts: dict[str, Decimal], currency: str) -> dict[str, str]:
    return {cycle: format_money(amount, currency) for cycle, amount in amounts.items()}


def _maybe(amount: Decimal | None, currency: str) -> str | None:
    return format_money(amount, currency) if amount is not None else None


def forecast_out(reached: Reached) -> TenantForecastOut:
    """R34: one tenant's predictions, money as strings beside its currency."""
    tenant, forecast = reached.tenant, reached.forecast
    currency = tenant.currency

    def alerts(found: list[AlertChange]) -> list[AlertChangeOut]:
        return [
            AlertChangeOut(
                product_id=a.product_id,
                price_list_id=a.price_list_id,
                billing_cycle=a.billing_cycle,
                currency=currency,
                price=format_money(a.price, currency),
                cost=format_money(a.cost, currency),
            )
            for a in found
        ]

    invoice = None
    if reached.tier > 0:
        billed = forecast.invoice_currency or currency
        invoice = NextInvoiceOut(
            currency=billed,
            change=format_money(forecast.invoice_change, billed),
            subscriptions=[
                InvoiceLineChangeOut(
                    subscription_id=line.subscription_id,
                    account_id=line.account_id,
                    product_id=line.product_id,
                    billing_cycle=line.billing_cycle,
                    quantity=line.quantity,
                    price_before=format_money(line.price_before, billed),
                    price_after=format_money(line.price_after, billed),
                    change=format_money(line.change, billed),
                )
                for line in forecast.invoice
            ],
            truncated=reached.invoice_truncated,
        )
    return TenantForecastOut(
        tenant_id=tenant.id,
        name=tenant.name,
        tier=reached.tier,
        provider_tenant_id=reached.provider_id,
        price_list_id=reached.price_list_id,
        currency=currency,
        copies=[
            CostChangeOut(
                product_id=c.product_id,
                origin_product_id=c.origin_product_id,
                sku=c.sku,
                change=c.change,  # type: ignore[arg-type]
                currency=currency,
                costs_before=_money(c.costs_before, currency),
                costs_after=_money(c.costs_after, currency),
            )
            for c in forecast.copies
        ],
        moved_prices=[
            PriceMoveOut(
                price_list_id=m.price_list_id,
                product_id=m.product_id,
                billing_cycle=m.billing_cycle,
                currency=m.currency,
                before=_maybe(m.before, m.currency),
                after=_maybe(m.after, m.currency),
            )
            for m in forecast.moved_prices
        ],
        margin_alerts_raised=alerts(forecast.alerts_raised),
        margin_alerts_cleared=alerts(forecast.alerts_cleared),
        next_invoice=invoice,
    )


def simulation_out(simulation: Simulation, limits: Simulator) -> SimulationOut:
    tenants = [forecast_out(r) for r in simulation.reached]
    by_currency: dict[str, Decimal] = {}
    for reached in simulation.reached[1:]:
        currency = reached.forecast.invoice_currency or reached.tenant.currency
        by_currency[currency] = by_currency.get(currency, Decimal(0)) + (
            reached.forecast.invoice_change
        )
    forecasts = [r.forecast for r in simulation.reached]
    return SimulationOut(
        price_list_id=simulation.price_list.id,
        currency=simulation.price_list.currency,
        tenants=tenants,
        totals=SimulationTotalsOut(
            tenants=len(simulation.reached) - 1,
            tenants_skipped=simulation.skipped,
            copies_changed=sum(len(f.copies) for f in forecasts),
            moved_prices=sum(len(f.moved_prices) for f in forecasts),
            margin_alerts_raised=sum(len(f.alerts_raised) for f in forecasts),
            margin_alerts_cleared=sum(len(f.alerts_cleared) for f in forecasts),
            next_invoices=[
                MoneyOut(currency=c, amount=format_money(a, c))
                for c, a in sorted(by_currency.items())
            ],
        ),
        truncated=simulation.truncated,
        limits={"tenants": limits.MAX_TENANTS, "subscriptions": limits.MAX_SUBSCRIPTIONS},
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
    summary=(
        "Set a product's price for a billing cycle: fixed, or a markup % over cost (R4); with "
        "`entries`, several at once, all or none (answer `{items: [...]}`)"
    ),
    roles=ADMIN,
    body=SetPrices,
    response=SetPriceOut,
    status=200,
    errors=(400, 404, 409),
)
def set_price(call: Call) -> PriceOut | PricesOut:
    catalogue = call.container.catalogue
    price_list = catalogue.get_price_list(call.principal, call.params["price_list_id"])
    bodies = call.body.items()
    if not call.body.batch:
        entry, amount = catalogue.set_price(call.principal, price_list.id, bodies[0])
        return price_out(entry, amount, price_list.currency)
    done = catalogue.set_prices(call.principal, price_list.id, bodies)
    return PricesOut(items=[price_out(e, a, price_list.currency) for e, a in done])


@api.route(
    "/pricelists/{price_list_id}/simulate",
    "POST",
    summary=(
        "Simulate proposed entries (R34): per tenant reached, down every tier, the new costs, "
        "moved markup prices, margin alerts and the change of the next invoice; writes nothing"
    ),
    roles=ADMIN,
    body=SimulatePrices,
    response=SimulationOut,
    status=200,
    errors=(400, 404),
    idempotent=False,
)
def simulate_prices(call: Call) -> SimulationOut:
    simulation = call.container.simulator.simulate(
        call.principal, call.params["price_list_id"], list(call.body.entries)
    )
    return simulation_out(simulation, call.container.simulator)


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
