"""HTTP routes of the storefront: subscriptions, add-ons, actions, orders (R8–R10)."""

from __future__ import annotations

from datetime import date

from functions.core.api import Api, Call
from functions.core.auth import CUSTOMER, RESELLER, TENANT_ADMIN
from functions.core.money import format_money
from functions.core.pagination import Page
from functions.orders.domain import Order, Subscription
from functions.orders.schemas import (
    CreateAddon,
    CreateSubscription,
    OrderLineOut,
    OrderOut,
    SubscriptionAction,
    SubscriptionOut,
    SubscriptionQuery,
    SubscriptionWithOrder,
)

api = Api("storefront")
BUYERS = (TENANT_ADMIN, RESELLER, CUSTOMER)
WRITE_ERRORS = (400, 404, 409)


def subscription_out(sub: Subscription, today: date) -> SubscriptionOut:
    """``today``: the tenant's date (R8), read once per request by the caller."""
    return SubscriptionOut(
        id=sub.id,
        account_id=sub.account_id,
        product_id=sub.product_id,
        quantity=sub.quantity,
        billing_cycle=sub.billing_cycle,
        term=sub.term,
        status=sub.status_on(today),
        start_date=sub.start_date,
        end_date=sub.end_date,
        activation_date=sub.activation_on(today),
        cancellation_date=sub.cancellation_date,
        auto_renew=sub.auto_renew,
        characteristics=sub.characteristics,
        parent_subscription_id=sub.parent_subscription_id,
        currency=sub.currency,
        unit_price=format_money(sub.unit_price, sub.currency),
        paid=sub.paid,
        price_list_id=sub.price_list_id,
        mirrored=sub.mirrored,
        source=sub.source,
        created_at=sub.created_at,
        updated_at=sub.updated_at,
        version=sub.version or 0,
    )


def order_out(order: Order) -> OrderOut:
    c = order.currency
    return OrderOut(
        id=order.id,
        number=order.number,
        account_id=order.account_id,
        subscription_id=order.subscription_id,
        type=order.type,
        date=order.date,
        status=order.status,
        currency=c,
        lines=[
            OrderLineOut(
                product_id=line.product_id,
                sku=line.sku,
                name=line.name,
                billing_cycle=line.billing_cycle,
                quantity=line.quantity,
                previous_quantity=line.previous_quantity,
                previous_product_id=line.previous_product_id,
                unit_price=format_money(line.unit_price, c),
                amount=format_money(line.amount, c),
            )
            for line in order.lines
        ],
        total=format_money(order.total, c),
        price_list_id=order.price_list_id,
        created_at=order.created_at,
        created_by=order.created_by,
        end_customer_account_id=order.end_customer_account_id,
    )


def with_order(result: tuple[Subscription, Order], call: Call) -> SubscriptionWithOrder:
    sub, order = result
    return SubscriptionWithOrder(
        subscription=subscription_out(sub, call.container.orders.today(call.principal)),
        order=order_out(order),
    )


@api.route(
    "/subscriptions",
    "POST",
    summary="Order a new subscription (R8, R9)",
    roles=BUYERS,
    body=CreateSubscription,
    response=SubscriptionWithOrder,
    status=201,
    errors=WRITE_ERRORS,
)
def create_subscription(call: Call) -> SubscriptionWithOrder:
    return with_order(call.container.orders.create_subscription(call.principal, call.body), call)


@api.route(
    "/subscriptions",
    "GET",
    summary="Subscriptions in the caller's scope",
    roles=BUYERS,
    query=SubscriptionQuery,
    response=SubscriptionOut,
    paginated=True,
)
def list_subscriptions(call: Call) -> Page[SubscriptionOut]:
    page = call.container.orders.list_subscriptions(
        call.principal, call.query.account_id, call.limit, call.cursor
    )
    today = call.container.orders.today(call.principal)
    return Page([subscription_out(s, today) for s in page.items], page.next_cursor)


@api.route(
    "/subscriptions/{subscription_id}",
    "GET",
    summary="A subscription",
    roles=BUYERS,
    response=SubscriptionOut,
)
def get_subscription(call: Call) -> SubscriptionOut:
    sub = call.container.orders.subscription(call.principal, call.params["subscription_id"])
    return subscription_out(sub, call.container.orders.today(call.principal))


@api.route(
    "/subscriptions/{subscription_id}/actions",
    "POST",
    summary="change_quantity, upgrade, downgrade, suspend, resume, renew or cancel (R9)",
    roles=BUYERS,
    body=SubscriptionAction,
    response=SubscriptionWithOrder,
    errors=WRITE_ERRORS,
)
def subscription_action(call: Call) -> SubscriptionWithOrder:
    result = call.container.orders.act(call.principal, call.params["subscription_id"], call.body)
    return with_order(result, call)


@api.route(
    "/subscriptions/{subscription_id}/addons",
    "POST",
    summary="Add an add-on (a child subscription); remove it with its cancel action",
    roles=BUYERS,
    body=CreateAddon,
    response=SubscriptionWithOrder,
    status=201,
    errors=WRITE_ERRORS,
)
def add_addon(call: Call) -> SubscriptionWithOrder:
    result = call.container.orders.add_addon(
        call.principal, call.params["subscription_id"], call.body
    )
    return with_order(result, call)


@api.route(
    "/subscriptions/{subscription_id}/addons",
    "GET",
    summary="A subscription's add-ons",
    roles=BUYERS,
    response=SubscriptionOut,
    paginated=True,
)
def list_addons(call: Call) -> Page[SubscriptionOut]:
    page = call.container.orders.list_addons(call.principal, call.params["subscription_id"])
    today = call.container.orders.today(call.principal)
    return Page([subscription_out(s, today) for s in page.items], page.next_cursor)


@api.route(
    "/orders",
    "GET",
    summary="Orders in the caller's scope (R9)",
    roles=BUYERS,
    query=SubscriptionQuery,
    response=OrderOut,
    paginated=True,
)
def list_orders(call: Call) -> Page[OrderOut]:
    page = call.container.orders.list_orders(
        call.principal, call.query.account_id, call.limit, call.cursor
    )
    return Page([order_out(o) for o in page.items], page.next_cursor)


@api.route(
    "/orders/{order_id}",
    "GET",
    summary="An order",
    roles=BUYERS,
    response=OrderOut,
)
def get_order(call: Call) -> OrderOut:
    return order_out(call.container.orders.order(call.principal, call.params["order_id"]))
