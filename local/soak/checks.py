"""The checks, over HTTP only: the invariants of
``tests/integration/test_backorder_convergence.py`` on both BSSs once the load is over, the
probe (the stream still delivers) and the billing run."""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from local.soak.clients import Applied, Shared, Sub
from local.soak.http import Http
from local.soak.world import World, provider_order_id


@dataclass
class Check:
    name: str
    passed: bool
    detail: str = ""
    problems: list[str] = field(default_factory=list)


#: what a mirror copies of its source (R13); product, account and add-on link are mapped
MIRRORED = (
    "quantity",
    "status",
    "start_date",
    "end_date",
    "activation_date",
    "cancellation_date",
    "auto_renew",
    "billing_cycle",
    "term",
    "characteristics",
    "currency",
)


def _problems(found: Iterable[str], limit: int = 8) -> list[str]:
    found = list(found)
    return found[:limit] + ([f"… and {len(found) - limit} more"] if len(found) > limit else [])


@dataclass
class State:
    """Both BSSs as their admins read them."""

    child_subs: dict[str, dict[str, Any]]
    orders_of: dict[str, list[dict[str, Any]]]  # Cloud Resell's orders by subscription
    mirror_of: dict[str, dict[str, Any]]  # Cloud's mirrors by source subscription
    twice: list[str]  # sources with two mirrors
    account_mirror: dict[str, dict[str, Any]]  # Cloud's mirror accounts by source account
    provider_of: dict[str, list[dict[str, Any]]]  # Cloud's orders by (mirror) subscription
    eligible: dict[str, dict[str, Any]]  # Cloud Resell's subscriptions that are mirrored (R13)


def read_state(http: Http, world: World) -> State:
    admin, cloud = world.tokens["resell_admin"], world.tokens["cloud_admin"]
    child_subs = {s["id"]: s for s in http.items("/subscriptions", admin)}
    orders_of: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for order in http.items("/orders", admin):
        orders_of[order["subscription_id"]].append(order)
    mirror_of: dict[str, dict[str, Any]] = {}
    twice = []
    for mirror in http.items("/subscriptions", cloud):
        source = (mirror.get("source") or {}).get("subscription_id")
        if mirror["mirrored"] and source is not None:
            if source in mirror_of:
                twice.append(source)
            mirror_of[source] = mirror
    account_mirror = {
        a["source"]["account_id"]: a
        for a in http.items("/accounts", cloud)
        if a["mirrored"] and (a.get("source") or {}).get("tenant_id") == world.resell_id
    }
    provider_of: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for order in http.items("/orders", cloud):
        provider_of[order["subscription_id"]].append(order)
    eligible = {
        sub_id: sub
        for sub_id, sub in child_subs.items()
        if sub["paid"] and sub["product_id"] in world.origin
    }
    return State(child_subs, orders_of, mirror_of, twice, account_mirror, provider_of, eligible)


def check_convergence(http: Http, world: World, shared: Shared) -> list[Check]:
    """The mirrors, the provider's orders and the usage copies against Cloud Resell's state."""
    state = read_state(http, world)
    with shared.lock:
        made = list(shared.subs)
        usage_subs = sorted(shared.usage_subs)
    return [
        _versions_check(state, made),
        _mirrors_check(state, world),
        _provider_orders_check(state, world, made),
        _usage_check(http, world, state, usage_subs),
    ]


def _versions_check(state: State, made: list[str]) -> Check:
    """One child order per version: a change commits over the version it read, so two changes
    never start from the same state."""
    problems = []
    for sub_id in made:
        sub = state.child_subs.get(sub_id)
        if sub is None:
            problems.append(f"{sub_id}: not listed")
        elif len(state.orders_of[sub_id]) != sub["version"]:
            problems.append(
                f"{sub_id}: version {sub['version']}, {len(state.orders_of[sub_id])} orders"
            )
    orders = sum(len(state.orders_of[s]) for s in made)
    return Check(
        "one child order per subscription version (no two changes from the same state)",
        not problems,
        f"{len(made)} subscriptions, {orders} orders",
        _problems(problems),
    )


def _mirrors_check(state: State, world: World) -> Check:
    """R12, R13: every paid subscription of Cloud's products has one mirror equal to it, under
    the mirror of its account; nothing else is mirrored."""
    problems = [f"{source}: two mirrors" for source in state.twice]
    for sub_id, sub in state.child_subs.items():
        mirror = state.mirror_of.get(sub_id)
        if sub_id not in state.eligible:
            if mirror is not None:
                problems.append(f"{sub_id}: mirrored, but not paid or not Cloud's product")
        elif mirror is None:
            problems.append(f"{sub_id}: no mirror in Cloud's BSS")
        else:
            differ = _differences(sub, mirror, state, world)
            if differ:
                problems.append(f"{sub_id}: {'; '.join(differ)}")
    problems += [
        f"{source}: a mirror without a source"
        for source in state.mirror_of
        if source not in state.child_subs
    ]
    return Check(
        "every mirror equals its source",
        not problems,
        f"{len(state.eligible)} mirrored subscriptions, "
        f"{len(state.account_mirror)} mirror accounts",
        _problems(problems),
    )


def _differences(
    sub: dict[str, Any], mirror: dict[str, Any], state: State, world: World
) -> list[str]:
    differ = [
        f"{name} {sub[name]!r} ≠ {mirror[name]!r}" for name in MIRRORED if sub[name] != mirror[name]
    ]
    if mirror["product_id"] != world.origin[sub["product_id"]]:
        differ.append("product")
    account = state.account_mirror.get(sub["account_id"])
    if account is None or mirror["account_id"] != account["id"]:
        differ.append("account (not the mirror of its account)")
    elif account["parent_account_id"] != _mirror_parent(sub["account_id"], world, state):
        differ.append("account hierarchy (R12)")
    parent = sub["parent_subscription_id"]
    parent_mirror = state.mirror_of.get(parent) if parent else None
    if mirror["parent_subscription_id"] != (parent_mirror["id"] if parent_mirror else None):
        differ.append("add-on link")
    return differ


def _mirror_parent(account_id: str, world: World, state: State) -> str | None:
    """R12: a customer of Cloud Lite sits under Cloud Lite's mirror, others under Cloud
    Resell's account in Cloud's BSS."""
    if any(b.id == account_id and b.lite for b in world.buyers):
        lite = state.account_mirror.get(world.lite_id)
        return lite["id"] if lite else None
    return world.reseller_account_id


def _provider_orders_check(state: State, world: World, made: list[str]) -> Check:
    """R14, R18: the orders of a mirror are one per version of its source (ids derived from the
    version), each of the type, date and quantity of the child's order of that version."""
    problems = []
    counted = 0
    for sub_id in made:
        sub, mirror = state.eligible.get(sub_id), state.mirror_of.get(sub_id)
        if sub is None or mirror is None:
            continue
        listed = state.provider_of[mirror["id"]]
        placed = {order["id"]: order for order in listed}
        if len(placed) != len(listed):
            problems.append(f"{sub_id}: an order listed twice")
        expected = {
            provider_order_id(world, sub_id, version): version
            for version in range(1, sub["version"] + 1)
        }
        counted += len(expected)
        if set(placed) != set(expected):
            lost = sorted(version for order, version in expected.items() if order not in placed)
            extra = len(set(placed) - set(expected))
            problems.append(f"{sub_id}: versions without an order {lost}, {extra} extra")
            continue
        # the child's orders by version: their ids are time-ordered, and a version's order is
        # made after the previous version committed
        child = sorted(state.orders_of[sub_id], key=lambda order: str(order["id"]))
        for order_id, version in expected.items():
            if version > len(child) or _change(child[version - 1]) != _change(placed[order_id]):
                problems.append(f"{sub_id} v{version}: Cloud's order is not the child's change")
    return Check(
        "exactly one provider order per applied change",
        not problems,
        f"{counted} provider orders",
        _problems(problems),
    )


def _change(order: dict[str, Any]) -> tuple[Any, ...]:
    return order["type"], order["date"], order["lines"][0]["quantity"]


def _usage_check(http: Http, world: World, state: State, usage_subs: list[str]) -> Check:
    """R25: every usage record of a mirrored subscription has its copy on the mirror."""
    problems = []
    records = 0
    for sub_id in usage_subs:
        mine = http.items(f"/usage?subscription_id={sub_id}", world.tokens["resell_admin"])
        records += len(mine)
        mirror = state.mirror_of.get(sub_id)
        if mirror is None:
            if mine:
                problems.append(f"{sub_id}: usage, but no mirror")
            continue
        theirs = http.items(f"/usage?subscription_id={mirror['id']}", world.tokens["cloud_admin"])
        use = Counter((u["quantity"], u["unit"], u["at"]) for u in mine)
        if use != Counter((u["quantity"], u["unit"], u["at"]) for u in theirs):
            problems.append(f"{sub_id}: {len(mine)} records, {len(theirs)} copies")
    return Check(
        "every usage record of a mirrored subscription is on its mirror",
        not problems,
        f"{records} records",
        _problems(problems),
    )


def check_orders_readable(http: Http, world: World, shared: Shared) -> Check:
    token = world.tokens["resell_admin"]
    problems = []
    with shared.lock:
        applied = list(shared.applied)
    for write in applied:
        answer = http.call("GET", f"/orders/{write.order_id}", token)
        if answer.status != 200:
            problems.append(f"{write.what} {write.order_id}: {answer.status}")
        elif answer.body["subscription_id"] != write.subscription_id:
            problems.append(f"{write.order_id}: of another subscription")
    return Check(
        "every 200's order id is readable",
        not problems,
        f"{len(applied)} orders",
        _problems(problems),
    )


def probe(http: Http, world: World, shared: Shared, timeout: float) -> tuple[Check, float]:
    """A last change after the load: it must reach Cloud's BSS (the stream still delivers). How
    long it took."""
    buyer = world.buyers[2]  # Z, a direct customer
    body: dict[str, Any] = {
        "account_id": buyer.id,
        "product_id": world.products["exchange_p1"],
        "quantity": 1,
        "billing_cycle": "monthly",
    }
    token = world.tokens["resell_admin"]
    created = http.call("POST", "/subscriptions", token, body)
    if created.status != 201:
        return Check("the stream delivers after the load", False, f"{created.status}"), 0.0
    sub_id = created.body["subscription"]["id"]
    shared.add(Sub(sub_id, buyer, world.products["exchange_p1"], "monthly"))
    changed = http.call(
        "POST",
        f"/subscriptions/{sub_id}/actions",
        token,
        {"action": "change_quantity", "quantity": 2},
    )
    if changed.status != 200:
        return Check("the stream delivers after the load", False, f"{changed.status}"), 0.0
    version = int(changed.body["subscription"]["version"])
    for what, answer in (("new", created), ("change_quantity", changed)):
        shared.applied_write(
            Applied(
                what,
                answer.body["order"]["id"],
                sub_id,
                int(answer.body["subscription"]["version"]),
                True,
                answer.at,
            )
        )
    order_id = provider_order_id(world, sub_id, version)
    deadline = changed.at + timeout
    while time.monotonic() < deadline:
        seen = http.call("GET", f"/orders/{order_id}", world.tokens["cloud_admin"])
        if seen.status == 200:
            took = seen.at - changed.at
            return Check("the stream delivers after the load", True, f"in {took:.2f} s"), took
        time.sleep(0.05)
    return Check("the stream delivers after the load", False, f"not within {timeout:.0f} s"), 0.0


def billing_run(http: Http, world: World, run_id: str | None, timeout: float) -> Check:
    if run_id is None:
        return Check("the billing run finished", False, "it did not start")
    deadline = time.monotonic() + timeout
    body: Any = None
    while time.monotonic() < deadline:
        answer = http.call("GET", f"/billing-runs/{run_id}", world.tokens["resell_admin"])
        body = answer.body
        if answer.status == 200 and body["status"].startswith("completed"):
            return Check(
                "the billing run finished",
                body["status"] == "completed",
                f"{body['status']}: {body['invoices']} invoices, {body['issued']} issued",
            )
        time.sleep(0.5)
    return Check("the billing run finished", False, f"not within {timeout:.0f} s: {body}")
