"""``OrderService`` on in-memory fakes (``tests/fakes.py``): every action is an order written
with its subscription (R8, R9), at the buyer's list (R2, R20), by customers and resellers in
their scope (R10, R28), never on a reseller's mirrors (R15, R16), all or nothing (R29); no moto,
no AWS."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest

from functions.core.auth import Principal
from functions.core.clock import today_in
from functions.core.errors import BadRequest, ConcurrentUpdate, Conflict, NotFound
from functions.orders import domain
from functions.orders.domain import Order, ProductRef, Subscription
from functions.orders.schemas import CreateAddon, CreateSubscription, SubscriptionAction
from tests.fakes import Fakes
from tests.unit.conftest_fakes import (
    ADMIN,
    CLOUD,
    CUSTOMER_X,
    CUSTOMER_Z,
    E3,
    E5,
    LITE,
    LITE_USER,
    MIRROR,
    OTHER_LITE_USER,
    RESELL,
    RESELL_LIST,
    RETAIL,
    RIVAL,
    RIVAL_ADMIN,
    RIVAL_CUSTOMER,
    TEAMS,
    W,
    X,
    Z,
    cloud,
    price,
    product,
)


def today() -> date:
    return today_in("Europe/Berlin")  # Cloud's time zone


def subscribe(
    world: Fakes,
    caller: Principal,
    account_id: str,
    product_id: str = E3,
    **extra: Any,
) -> tuple[Subscription, Order]:
    body = {
        "account_id": account_id,
        "product_id": product_id,
        "billing_cycle": "monthly",
        "quantity": 3,
        **extra,
    }
    return world.ordering.create_subscription(caller, CreateSubscription.model_validate(body))


def act(
    world: Fakes, caller: Principal, subscription_id: str, action: str, **extra: Any
) -> tuple[Subscription, Order]:
    body = SubscriptionAction.model_validate({"action": action, **extra})
    return world.ordering.act(caller, subscription_id, body)


def kinds(unit: list[object]) -> list[str]:
    return [type(entity).__name__ for entity in unit]


def orders_of(world: Fakes, account_id: str) -> list[Order]:
    return world.ordering.list_orders(ADMIN, account_id, 100, None).items


# --- new subscriptions (R8, R9, R2, R20) ----------------------------------------------------------


def test_r8_r9_a_new_subscription_and_its_order_are_one_write_at_the_buyers_price() -> None:
    world = cloud()
    sub, order = subscribe(world, ADMIN, Z)
    start = today().isoformat()
    assert (sub.status, sub.start_date, sub.activation_date) == ("active", start, start)
    assert (sub.unit_price, sub.currency, sub.price_list_id) == (Decimal("20.00"), "EUR", RETAIL)
    assert sub.paid_once and sub.version == 1 and sub.last_change == "new"
    assert (order.type, order.date, order.total) == ("new", start, Decimal("60.00"))
    assert (order.subscription_id, order.lines[0].quantity) == (sub.id, 3)
    assert [kinds(unit) for unit in world.units.committed] == [["Subscription", "Order"]]
    assert orders_of(world, Z) == [order]


def test_r2_r20_a_lite_resellers_customer_buys_at_the_lite_resellers_list() -> None:
    world = cloud()
    sub, order = subscribe(world, CUSTOMER_X, X)
    assert (order.lines[0].unit_price, order.total) == (Decimal("18.90"), Decimal("56.70"))
    assert (order.price_list_id, sub.reseller_account_id) == (RESELL_LIST, LITE)


@pytest.mark.parametrize(
    ("caller", "account_id", "product_id", "cycle", "code", "field"),
    [
        (CUSTOMER_X, X, E5, "monthly", "not_in_price_list", "product_id"),
        (CUSTOMER_X, X, E3, "annual", "not_in_price_list", "product_id"),
        (ADMIN, Z, TEAMS, "monthly", "addon_needs_base", "product_id"),
        (ADMIN, Z, "prd_retired", "monthly", "product_discontinued", "product_id"),
        (CUSTOMER_Z, Z, "prd_hidden", "monthly", "unknown_product", "product_id"),
        (RIVAL_ADMIN, RIVAL_CUSTOMER, "prd_rival", "monthly", "no_price_list", "account_id"),
    ],
)
def test_r2_r29_what_the_buyer_cannot_buy_is_refused_before_any_write(
    caller: Principal, account_id: str, product_id: str, cycle: str, code: str, field: str
) -> None:
    world = cloud()
    world.tables.seed(
        product("prd_retired", "OLD", ["monthly"], {"monthly": "1.00"}, status="discontinued"),
        price(RETAIL, "prd_retired", "monthly", fixed="2.00"),
        product("prd_hidden", "HIDDEN", ["monthly"], {"monthly": "1.00"}, visible=False),
        price(RETAIL, "prd_hidden", "monthly", fixed="2.00"),
        product("prd_rival", "RIVAL-1", ["monthly"], {"monthly": "1.00"}, tenant_id=RIVAL),
    )
    with pytest.raises(BadRequest) as refused:
        subscribe(world, caller, account_id, product_id, billing_cycle=cycle)
    assert (refused.value.code, refused.value.field) == (code, field)
    assert world.tables.writes == 0


# --- actions (R8, R9) ---------------------------------------------------------------------------


def test_r9_every_action_writes_its_subscription_and_one_order_together() -> None:
    world = cloud()
    sub, _ = subscribe(world, ADMIN, Z)
    steps: list[tuple[str, dict[str, Any], str, str]] = [
        ("change_quantity", {"quantity": 5}, "quantity_change", "100.00"),
        ("upgrade", {"product_id": E5}, "upgrade", "175.00"),
        ("downgrade", {"product_id": E3}, "downgrade", "100.00"),
        ("suspend", {}, "suspend", "0.00"),
        ("resume", {}, "resume", "100.00"),
        ("renew", {}, "renew", "100.00"),
        ("cancel", {}, "cancel", "0.00"),
    ]
    for n, (action, extra, order_type, total) in enumerate(steps, start=2):
        updated, order = act(world, ADMIN, sub.id, action, **extra)
        assert (order.type, order.total, order.subscription_id) == (
            order_type,
            Decimal(total),
            sub.id,
        )
        assert (updated.version, updated.last_change) == (n, order_type)
        assert world.units.commits == n and kinds(world.units.committed[-1]) == [
            "Subscription",
            "Order",
        ]
    final = world.ordering.subscription(ADMIN, sub.id)
    assert (final.status, final.cancellation_date) == ("cancelled", today().isoformat())
    assert Counter(o.type for o in orders_of(world, Z)) == Counter(
        ["new", *(order_type for _, _, order_type, _ in steps)]
    )


@pytest.mark.parametrize(
    ("action", "extra"),
    [
        ("change_quantity", {"quantity": 5}),
        ("upgrade", {"product_id": E5}),
        ("suspend", {}),
        ("resume", {}),
        ("renew", {}),
        ("cancel", {}),
    ],
)
def test_r8_r29_an_action_on_a_cancelled_subscription_is_refused_and_nothing_written(
    action: str, extra: dict[str, Any]
) -> None:
    world = cloud()
    sub, _ = subscribe(world, ADMIN, Z)
    act(world, ADMIN, sub.id, "cancel")
    writes, commits = world.tables.writes, world.units.commits
    with pytest.raises(Conflict) as refused:
        act(world, ADMIN, sub.id, action, **extra)
    error = refused.value
    assert (error.status, error.code, error.details["status"]) == (
        409,
        "invalid_state",
        "cancelled",
    )
    assert (world.tables.writes, world.units.commits) == (writes, commits)
    assert len(orders_of(world, Z)) == 2
    assert world.ordering.subscription(ADMIN, sub.id).version == 2


def test_r8_an_active_subscription_is_not_resumed() -> None:
    world = cloud()
    sub, _ = subscribe(world, ADMIN, Z)
    with pytest.raises(Conflict) as refused:
        act(world, ADMIN, sub.id, "resume")
    assert (refused.value.code, refused.value.details["status"]) == ("invalid_state", "active")
    assert world.units.commits == 1


def test_r8_r9_cancelling_a_base_cancels_its_addons_each_with_its_order_in_one_write() -> None:
    world = cloud()
    base, _ = subscribe(world, ADMIN, Z)
    body = CreateAddon.model_validate({"product_id": TEAMS, "quantity": 2})
    addon, added = world.ordering.add_addon(ADMIN, base.id, body)
    assert (addon.parent_subscription_id, added.type, added.total) == (
        base.id,
        "addon_added",
        Decimal("16.00"),
    )
    assert [a.id for a in world.ordering.list_addons(ADMIN, base.id).items] == [addon.id]
    _, cancel = act(world, ADMIN, base.id, "cancel")
    assert cancel.type == "cancel"
    assert kinds(world.units.committed[-1]) == ["Subscription", "Order"] * 2  # one commit
    assert world.ordering.subscription(ADMIN, addon.id).status == "cancelled"
    removed = [o for o in orders_of(world, Z) if o.type == "addon_removed"]
    assert [o.subscription_id for o in removed] == [addon.id]
    assert sorted(o.type for o in orders_of(world, Z)) == [
        "addon_added",
        "addon_removed",
        "cancel",
        "new",
    ]


def test_r9_an_addon_for_another_base_product_is_refused() -> None:
    world = cloud()
    base, _ = subscribe(world, ADMIN, Z, E5)
    with pytest.raises(BadRequest) as refused:
        world.ordering.add_addon(ADMIN, base.id, CreateAddon.model_validate({"product_id": TEAMS}))
    assert (refused.value.code, refused.value.field) == ("addon_not_compatible", "product_id")
    assert world.units.commits == 1


def test_r22_only_a_tenant_admin_backdates_and_never_before_the_start() -> None:
    world = cloud()
    sub, _ = subscribe(world, ADMIN, Z)
    yesterday = today() - timedelta(days=1)
    with pytest.raises(BadRequest) as refused:
        act(world, CUSTOMER_Z, sub.id, "change_quantity", quantity=5, effective_date=yesterday)
    assert (refused.value.code, refused.value.field) == ("not_allowed", "effective_date")
    with pytest.raises(BadRequest) as early:  # the subscription started today
        act(world, ADMIN, sub.id, "change_quantity", quantity=5, effective_date=yesterday)
    assert (early.value.code, early.value.field) == ("out_of_range", "effective_date")
    assert world.units.commits == 1


def test_r9_r29_a_concurrent_change_fails_the_action_and_writes_no_order(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Another request changes the subscription between this action's read and its commit:
    the action is a 409 ``concurrent_update`` and its order is not written either."""
    world = cloud()
    sub, _ = subscribe(world, ADMIN, Z)
    read = world.subscriptions.get

    def raced(tenant_id: str, record_id: str) -> Subscription | None:
        found = read(tenant_id, record_id)
        if found is not None and world.units.commits == 1:
            world.units.save(replace(found, quantity=7))
        return found

    monkeypatch.setattr(world.subscriptions, "get", raced)
    with pytest.raises(ConcurrentUpdate):
        act(world, ADMIN, sub.id, "change_quantity", quantity=5)
    stored = read(CLOUD, sub.id)
    assert stored is not None and (stored.quantity, stored.version) == (7, 2)
    assert [o.type for o in orders_of(world, Z)] == ["new"]


# --- self-service in scope (R10, R28) -----------------------------------------------------------


def test_r10_a_reseller_orders_for_its_customer_and_sees_its_customers_subscriptions_only() -> None:
    world = cloud()
    x_sub, x_order = subscribe(world, LITE_USER, X)
    assert (x_sub.account_id, x_sub.reseller_account_id) == (X, LITE)
    z_sub, _ = subscribe(world, ADMIN, Z)
    w_sub, _ = subscribe(world, ADMIN, W)
    listed = world.ordering.list_subscriptions
    assert [s.id for s in listed(LITE_USER, None, 50, None).items] == [x_sub.id]
    assert [s.id for s in listed(OTHER_LITE_USER, None, 50, None).items] == [w_sub.id]
    assert [o.id for o in world.ordering.list_orders(LITE_USER, None, 50, None).items] == [
        x_order.id
    ]
    updated, _ = act(world, LITE_USER, x_sub.id, "change_quantity", quantity=4)
    assert updated.quantity == 4
    commits = world.units.commits
    with pytest.raises(NotFound):
        world.ordering.subscription(LITE_USER, z_sub.id)
    with pytest.raises(NotFound):  # nor orders for an account outside its scope
        subscribe(world, LITE_USER, Z)
    assert world.units.commits == commits


def test_r10_a_resellers_orders_are_its_own_and_its_customers_page_by_page() -> None:
    world = cloud()
    own = subscribe(world, LITE_USER, LITE)[1]
    customers = subscribe(world, LITE_USER, X)[1]
    subscribe(world, ADMIN, Z)
    subscribe(world, ADMIN, W)
    seen: list[str] = []
    cursor: str | None = None
    while True:
        page = world.ordering.list_orders(LITE_USER, None, 1, cursor)
        assert len(page.items) <= 1
        seen += [o.id for o in page.items]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert sorted(seen) == sorted([own.id, customers.id])


@pytest.mark.parametrize("caller", [CUSTOMER_X, LITE_USER, RIVAL_ADMIN])
def test_r12_r28_another_accounts_subscription_and_order_are_404_as_if_absent(
    caller: Principal,
) -> None:
    world = cloud()
    sub, order = subscribe(world, ADMIN, Z)
    with pytest.raises(NotFound) as absent:
        world.ordering.subscription(caller, "sub_nobody")
    with pytest.raises(NotFound) as hidden:
        world.ordering.subscription(caller, sub.id)
    assert hidden.value.message == absent.value.message == "subscription not found"
    with pytest.raises(NotFound):
        world.ordering.order(caller, order.id)
    with pytest.raises(NotFound):
        act(world, caller, sub.id, "change_quantity", quantity=9)
    assert world.units.commits == 1
    assert sub.id not in [
        s.id for s in world.ordering.list_subscriptions(caller, None, 50, None).items
    ]


# --- a reseller's mirrors (R15, R16) ------------------------------------------------------------


def mirrored_subscription(world: Fakes) -> Subscription:
    """Cloud's mirror of a subscription Cloud Resell sold to its customer Q (R13)."""
    e3 = ProductRef(E3, "O365-E3", "O365-E3", "license", ["monthly", "annual"], [])
    sub = domain.new_subscription(
        "sub_mirror",
        tenant_id=CLOUD,
        account_id=MIRROR,
        reseller_account_id=None,
        product=e3,
        quantity=10,
        billing_cycle="monthly",
        term=None,
        start=today(),
        today=today(),
        auto_renew=True,
        characteristics={},
        currency="EUR",
        unit_price=Decimal("20.00"),
        price_list_id=RETAIL,
        parent=None,
        now="2026-01-05T09:00:00Z",
    )
    source = {"tenant_id": RESELL, "subscription_id": "sub_q"}
    mirror = replace(sub, mirrored=True, source=source, version=1)
    world.tables.seed(mirror)
    return mirror


def test_r16_the_provider_cannot_sell_to_a_resellers_customer() -> None:
    world = cloud()
    with pytest.raises(Conflict) as refused:
        subscribe(world, ADMIN, MIRROR)
    assert (refused.value.code, refused.value.field) == ("locked_by_reseller", "account_id")
    assert world.tables.writes == 0


@pytest.mark.parametrize(
    ("action", "extra"),
    [
        ("change_quantity", {"quantity": 11}),
        ("upgrade", {"product_id": E5}),
        ("suspend", {}),
        ("renew", {}),
        ("cancel", {}),
    ],
)
def test_r15_a_mirrored_subscription_refuses_every_action_data_unchanged(
    action: str, extra: dict[str, Any]
) -> None:
    world = cloud()
    mirror = mirrored_subscription(world)
    with pytest.raises(Conflict) as refused:
        act(world, ADMIN, mirror.id, action, **extra)
    assert (refused.value.status, refused.value.code) == (409, "locked_by_reseller")
    assert world.tables.writes == 0 and world.subscriptions.get(CLOUD, mirror.id) == mirror


def test_r15_no_addon_is_added_to_a_mirrored_subscription() -> None:
    world = cloud()
    mirror = mirrored_subscription(world)
    with pytest.raises(Conflict) as refused:
        world.ordering.add_addon(
            ADMIN, mirror.id, CreateAddon.model_validate({"product_id": TEAMS})
        )
    assert refused.value.code == "locked_by_reseller" and world.tables.writes == 0
