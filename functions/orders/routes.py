"""HTTP routes of the storefront: subscriptions, add-ons, actions, orders (R8–R10)."""

from __future__ import annotations

from datetime import date, datetime

from functions.core.api import Api, Call
from functions.core.auth import CUSTOMER, RESELLER, TENANT_ADMIN
from functions.core.clock import today_in
from functions.core.money import format_money
from functions.core.pagination import Page
from functions.orders.domain import Order, Subscription, commitment_view, start_of
from functions.orders.schemas import (
    CommitmentOut,
    CreateAddon,
    CreateSubscription,
    OrderLineOut,
    OrderOut,
    RefundableOut,
    ScheduledChangeOut,
    SubscriptionAction,
    SubscriptionOut,
    SubscriptionQuery,
    SubscriptionWithOrder,
)

api = Api("storefront")
BUYERS = (TENANT_ADMIN, RESELLER, CUSTOMER)
WRITE_ERRORS = (400, 404, 409)


def subscription_out(
    sub: Subscription, today: date, moment: tuple[datetime, str] | None = None
) -> SubscriptionOut:
    """``today``: the tenant's date (R8), read once per request by the caller; ``moment``: now
    and the tenant's time zone, for a commitment's dates (R31)."""
    at, zone = moment or (start_of(today, "UTC"), "UTC")
    view = commitment_view(sub, at, zone)
    change = sub.scheduled_change
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
        commitment=CommitmentOut(**sub.commitment.as_dict()) if sub.commitment else None,
        purchased_at=sub.purchased_at,
        term_end=view["term_end"],
        cancellable_until=view["cancellable_until"],
        cancellable_from=view["cancellable_from"],
        refundable_quantity=[RefundableOut(**r) for r in view["refundable_quantity"]],
        scheduled_change=(
            ScheduledChangeOut(
                type=str(change["type"]), on=str(change["on"]), product_id=str(change["product_id"])
            )
            if change
            else None
        ),
        coterm_end=sub.coterm_end,
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
        refund=order.refund,
        penalty=None if order.penalty is None else format_money(order.penalty, c),
    )


def _clock(call: Call) -> tuple[date, tuple[datetime, str]]:
    """The tenant's today, and now with its time zone (R8, R31), read once per request."""
    at, zone = call.container.orders.moment(call.principal)
    return today_in(zone, at=at), (at, zone)


def with_order(result: tuple[Subscription, Order], call: Call) -> SubscriptionWithOrder:
    sub, order = result
    return SubscriptionWithOrder(
        subscription=subscription_out(sub, *_clock(call)),
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
    today, moment = _clock(call)
    return Page([subscription_out(s, today, moment) for s in page.items], page.next_cursor)


@api.route(
    "/subscriptions/{subscription_id}",
    "GET",
    summary="A subscription",
    roles=BUYERS,
    response=SubscriptionOut,
)
def get_subscription(call: Call) -> SubscriptionOut:
    sub = call.container.orders.subscription(call.principal, call.params["subscription_id"])
    return subscription_out(sub, *_clock(call))


@api.route(
    "/subscriptions/{subscription_id}/actions",
    "POST",
    summary="change_quantity, upgrade, downgrade, suspend, resume, renew, cancel or set_auto_renew "
    "(R9); R31: 409 outside_cancellation_window / seat_reduction_not_allowed",
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
    today, moment = _clock(call)
    return Page([subscription_out(s, today, moment) for s in page.items], page.next_cursor)


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
