"""Back ordering's stream path (SPEC §4, R11-R18; docs/backorder.md): DynamoDB requests, write
and read units, cost and throughput per mirrored change, on in-process moto. Figures, not a test.

The world (SPEC §1): a root provider, Cloud, selling E3 and Business Premium (monthly and annual)
and a Teams add-on for both; its reseller tenant Cloud Resell, with back ordering on, a product
of its own (Support, never mirrored), 40 direct customers and 10 of a lite reseller. Cloud
Resell's traffic goes through the real services first: paid subscriptions, add-ons, then
actions (``OrderService.act``: quantity changes, suspensions, resumptions, renewals, upgrades,
downgrades, cancellations with their add-ons). The rest of the wanted number of mirrored
changes is made cheaply: the same domain functions as ``act``, the subscription item the
service commits, put on the same version condition, without the service's reads and without
the child's own order (the handler never reads it; moto copies whole tables on every
transaction). The subscriptions table's stream is read back, shaped as Lambda delivers it
(``local/streams.py``), and fed in batches of 100 to the real handler
(``functions.backorder.handlers.subscriptions_stream``), from a fresh container
(``composition.reset()``; once more mid-stream: cold starts). The mirrors the handler writes are
records of the same stream too ("echoes", in the root provider's tenant): Lambda delivers them
to the same function, so they are fed to it and counted apart (``--echoes`` of them; they all
take one path, the rest are scaled).

Only the handler is measured, by ``bench/meter.py``: botocore event hooks
(``before-parameter-build`` and ``after-call`` on ``dynamodb``) on the session of every client
PynamoDB makes (``pynamodb.connection.base.get_session`` is wrapped for the run).

Units: moto answers PynamoDB's ``ReturnConsumedCapacity=TOTAL`` with a flat 1.0 per PutItem,
0.5 per GetItem and nothing for UpdateItem, blind to sizes and indexes, so units are computed
from the payloads as DynamoDB bills them: a write is 1 WRU per started KB of the item (an
update: of the item it writes, from its SET and ADD clauses), plus each global secondary index
holding the item: an ALL index (the orders') as much on every write; an INCLUDE or KEYS_ONLY
one (the subscriptions') only when the write changes its key or a projected attribute (a new
item: one write; a changed key: two), by the index item's size (keys and projected attributes,
+ 100 bytes); a failed condition bills the table only; an eventually consistent read is 0.5 RRU
per started 4 KB; a transaction doubles (``bench/meter.py``).

Limits (issue 12, item 7): the run exits 1, naming the figure, when the write units per
mirrored change (everything the handler wrote, echoes and first sights included: the ``all``
row) exceed ``MAX_WRU_PER_CHANGE``, or the cost of a million mirrored changes exceeds
``MAX_USD_PER_MILLION``; ``make bench`` fails with it.

Throughput: warm batches' records per second against plain boto3 calls on the same moto, run
in slices between the batches: put_item of items like the handler's orders, and update_item
replaying the handler's own mirror update over existing items.

    python -m bench.backorder [--changes N] [--echoes N]
    python -m bench backorder [--changes N] [--echoes N]
"""

from __future__ import annotations

import argparse
import math
import random
import re
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from bench.meter import (
    DYNAMODB_ROUND_TRIP_S,
    ENV,
    FULL_VCPU_MB,
    LAMBDA_MB,
    SECRET,
    USD_PER_GB_SECOND,
    USD_PER_INVOCATION,
    USD_PER_READ_UNIT,
    USD_PER_WRITE_UNIT,
    Meter,
    Tally,
    environment,
    metered,
    total,
)

#: 10,000 is issue 3's scenario, but moto's UpdateItem of a whole mirror (~25-35 ms here, its
#: expression validation grows faster than linearly with the ~27 SET actions) makes that
#: ~10 minutes: the default keeps ``make bench`` near 3. ``--changes 10000`` for the full run.
DEFAULT_CHANGES = 3_000
BATCH_SIZE = 100  # the event source mapping's batch size
RAW_PUTS = 2_000
RAW_UPDATES = 300  # moto's UpdateItem of a whole item is slow (~30 ms): fewer suffice
#: Echo records delivered (each takes the same path: the rest are scaled from these).
DEFAULT_ECHOES = 1_000
SEED = 20_240_607


# The floor of requests per mirrored change (docs/backorder.md).
WRITE_FLOOR, READ_FLOOR = 2, 1
#: The limits the run fails over (issue 12, item 7): write units per mirrored change, all of
#: them (the mirror's update 1, the provider's order 1 and its one index copy 1, and the first
#: sight of accounts and subscriptions spread over the changes), and USD per million mirrored
#: changes (DynamoDB and Lambda, ``cost_per_million``).
MAX_WRU_PER_CHANGE = 3.1
MAX_USD_PER_MILLION = 2.50


def create_queues(settings: Any) -> None:
    """The BSS's queues (the activation's backfill job goes to one)."""
    import boto3

    from infra.events import queue_names

    sqs = boto3.client("sqs")
    for name in queue_names():
        sqs.create_queue(QueueName=settings.queue_name(name))


# --- the world ------------------------------------------------------------------------------


class Http:
    """The app through Chalice's test client, JSON in and out."""

    def __init__(self) -> None:
        from chalice.test import Client

        from app import app

        self._client = Client(app)
        self.client = self._client.__enter__()

    def close(self) -> None:
        self._client.__exit__(None, None, None)

    def call(self, method: str, path: str, token: str, body: Any = None) -> Any:
        import json

        response = self.client.http.request(
            method,
            path,
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
            body=json.dumps(body).encode() if body is not None else b"",
        )
        text = response.body.decode() if response.body else ""
        if response.status_code >= 300:
            raise RuntimeError(f"{method} {path}: {response.status_code} {text}")
        return json.loads(text) if text else None


def token(role: str, tenant_id: str | None = None) -> str:
    from functions.core.auth import issue_token

    return issue_token(SECRET, sub=f"bench-{role}", role=role, tenant_id=tenant_id)


@dataclass
class World:
    root: str
    child: str
    #: the child's copies of the provider's products, by SKU, and its own product
    products: dict[str, dict[str, Any]]
    customers: list[str]  # direct customers and the lite reseller's
    lite_customers: int

    @classmethod
    def build(cls, direct: int, lite: int) -> World:
        http = Http()
        try:
            return cls._build(http, direct, lite)
        finally:
            http.close()

    @classmethod
    def _build(cls, http: Http, direct: int, lite: int) -> World:
        root = http.call(
            "POST",
            "/tenants",
            token("platform_admin"),
            {"name": "Cloud", "country": "DE", "time_zone": "Europe/Berlin", "currency": "EUR"},
        )["id"]
        admin = token("tenant_admin", root)
        http.call("POST", "/pricelists", admin, {"name": "Retail", "currency": "EUR"})
        resell = http.call("POST", "/pricelists", admin, {"name": "Resell", "currency": "EUR"})
        both = ["monthly", "annual"]
        e3 = http.call(
            "POST",
            "/products",
            admin,
            {
                "sku": "E3",
                "name": "Office 365 E3",
                "type": "license",
                "billing_cycles": both,
                "unit": "seat",
                "costs": {"monthly": "18.00", "annual": "210.00"},
            },
        )
        premium = http.call(
            "POST",
            "/products",
            admin,
            {
                "sku": "BP",
                "name": "Microsoft 365 Business Premium",
                "type": "license",
                "billing_cycles": both,
                "unit": "seat",
                "costs": {"monthly": "22.00", "annual": "250.00"},
            },
        )
        teams = http.call(
            "POST",
            "/products",
            admin,
            {
                "sku": "TEAMS",
                "name": "Teams",
                "type": "addon",
                "billing_cycles": both,
                "unit": "seat",
                "addon_for": [e3["id"], premium["id"]],
            },
        )
        prices = {
            e3["id"]: ("23.50", "270.00"),
            premium["id"]: ("28.00", "320.00"),
            teams["id"]: ("6.00", "66.00"),
        }
        for product_id, (monthly, annual) in prices.items():
            for cycle, price in (("monthly", monthly), ("annual", annual)):
                http.call(
                    "POST",
                    f"/pricelists/{resell['id']}/prices",
                    admin,
                    {"product_id": product_id, "billing_cycle": cycle, "price": price},
                )
        child = http.call(
            "POST",
            "/tenants",
            admin,
            {
                "name": "Cloud Resell",
                "country": "DE",
                "time_zone": "Europe/Berlin",
                "price_list_id": resell["id"],
            },
        )["id"]
        http.call("POST", f"/tenants/{child}/backordering", admin)  # R11
        child_admin = token("tenant_admin", child)
        retail = http.call(
            "POST", "/pricelists", child_admin, {"name": "Retail", "currency": "EUR"}
        )
        products = {p["sku"]: p for p in http.call("GET", "/products", child_admin)["items"]}
        products["SUPPORT"] = http.call(
            "POST",
            "/products",
            child_admin,
            {
                "sku": "SUPPORT",
                "name": "Support",
                "type": "license",
                "billing_cycles": ["monthly"],
                "unit": "h",
            },
        )
        for sku, markup in (("E3", "20"), ("BP", "15"), ("TEAMS", "50")):
            for cycle in both:
                http.call(
                    "POST",
                    f"/pricelists/{retail['id']}/prices",
                    child_admin,
                    {
                        "product_id": products[sku]["id"],
                        "billing_cycle": cycle,
                        "markup_percent": markup,
                    },
                )
        http.call(
            "POST",
            f"/pricelists/{retail['id']}/prices",
            child_admin,
            {"product_id": products["SUPPORT"]["id"], "billing_cycle": "monthly", "price": "99"},
        )
        customers = []
        for n in range(direct):
            body = {"name": f"Customer {n:03d}", "email": f"it@customer{n:03d}.example"}
            customers.append(http.call("POST", "/accounts", child_admin, body)["id"])
        lite_reseller = http.call(
            "POST", "/accounts", child_admin, {"name": "Cloud Lite", "kind": "lite_reseller"}
        )["id"]
        for n in range(lite):
            body = {"name": f"Lite Customer {n:03d}", "parent_account_id": lite_reseller}
            customers.append(http.call("POST", "/accounts", child_admin, body)["id"])
        return cls(root, child, products, customers, lite)


# --- the traffic ------------------------------------------------------------------------------


class Traffic:
    """Cloud Resell's sales and changes, until ``target`` of them are mirrored changes."""

    def __init__(self, world: World, rng: random.Random) -> None:
        from functions import composition
        from functions.core.auth import TENANT_ADMIN, Principal
        from functions.core.clock import today_in
        from functions.orders.domain import ProductRef

        self.world, self.rng = world, rng
        self.orders = composition.container().orders
        self.principal = Principal(sub="bench-admin", role=TENANT_ADMIN, tenant_id=world.child)
        self.today = today_in("Europe/Berlin")
        self.refs = {}
        for product in world.products.values():
            p = self.orders.catalogue.products.get(world.child, product["id"])
            assert p is not None
            self.refs[p.id] = ProductRef(
                p.id,
                p.sku,
                p.name,
                p.type,
                p.billing_cycles,
                p.addon_for,
                p.origin_tenant_id,
                p.origin_product_id,
            )
        self.subs: dict[str, Any] = {}  # id → the subscription as last committed
        self.prices: dict[tuple[str, str, str], Any] = {}
        self.mirrored = 0
        self.kinds: Counter[str] = Counter()

    def _is_mirrored(self, sub: Any) -> bool:
        return bool(sub.origin_tenant_id == self.world.root and sub.paid_once)

    def _record(self, sub: Any, kind: str) -> None:
        self.subs[sub.id] = sub
        if self._is_mirrored(sub):
            self.mirrored += 1
            self.kinds[kind] += 1

    def generate(self, target: int) -> None:
        from functions.orders.schemas import CreateAddon, CreateSubscription

        products = self.world.products
        bases = max(10, target // 40)
        for n in range(bases):
            if self.mirrored >= target:
                return
            customer = self.world.customers[n % len(self.world.customers)]
            sku = "E3" if self.rng.random() < 0.7 else "BP"
            body = CreateSubscription.model_validate(
                {
                    "account_id": customer,
                    "product_id": products[sku]["id"],
                    "billing_cycle": "monthly" if self.rng.random() < 0.8 else "annual",
                    "quantity": self.rng.randint(1, 50),
                }
            )
            sub, _ = self.orders.create_subscription(self.principal, body)
            self._record(sub, "new")
            if self.rng.random() < 0.1:  # the reseller's own product: never mirrored
                body = CreateSubscription.model_validate(
                    {
                        "account_id": customer,
                        "product_id": products["SUPPORT"]["id"],
                        "billing_cycle": "monthly",
                        "quantity": self.rng.randint(1, 10),
                    }
                )
                own, _ = self.orders.create_subscription(self.principal, body)
                self._record(own, "new")
        for base in [s for s in list(self.subs.values()) if s.origin_tenant_id]:
            if self.mirrored >= target:
                return
            if self.rng.random() < 0.35:
                addon_body = CreateAddon.model_validate(
                    {"product_id": products["TEAMS"]["id"], "quantity": base.quantity}
                )
                addon, _ = self.orders.add_addon(self.principal, base.id, addon_body)
                self._record(addon, "addon_added")
        for _ in range(bases // 4):  # actions through the whole service
            if self.mirrored >= target:
                return
            self._act_through_service()
        while self.mirrored < target:
            self._commit_directly()

    def _pick(self) -> Any:
        while True:
            sub = self.rng.choice(list(self.subs.values()))
            if sub.status != "cancelled":
                return sub

    def _action(self, sub: Any) -> tuple[str, dict[str, Any]]:
        if sub.status == "suspended":
            return "resume", {}
        roll = self.rng.random()
        if roll < 0.80:
            quantity = max(1, sub.quantity + self.rng.choice((-3, -2, -1, 1, 1, 2, 3, 5)))
            if quantity == sub.quantity:
                quantity += 1
            return "change_quantity", {"quantity": quantity}
        if roll < 0.88:
            return "suspend", {}
        if roll < 0.93:
            return "renew", {}
        if roll < 0.97 and not sub.parent_subscription_id and sub.origin_tenant_id:
            upgrade = self.refs[sub.product_id].sku == "E3"
            other = self.world.products["BP" if upgrade else "E3"]["id"]
            return ("upgrade" if upgrade else "downgrade"), {"product_id": other}
        if roll < 0.99 and sub.parent_subscription_id:
            return "cancel", {}
        return "change_quantity", {"quantity": sub.quantity + 1}

    def _act_through_service(
        self, sub: Any = None, action: str | None = None, extra: dict[str, Any] | None = None
    ) -> None:
        from functions.orders.schemas import SubscriptionAction

        if sub is None or action is None or extra is None:
            sub = self._pick()
            action, extra = self._action(sub)
            if self.rng.random() < 0.1:
                action, extra = "cancel", {}
        body = SubscriptionAction.model_validate({"action": action, **extra})
        updated, order = self.orders.act(self.principal, sub.id, body)
        self._record(updated, order.type)
        if action == "cancel" and not sub.parent_subscription_id:
            for addon in self.orders.subscriptions.addons(sub.tenant_id, sub.id).items:
                if addon.version != self.subs[addon.id].version:
                    self._record(addon, "addon_removed")

    def _commit_directly(self) -> None:
        """One change as ``OrderService.act`` makes it (the same domain functions, the same
        subscription item, written on the same version condition), without the service's reads
        and without the transaction: the subscription alone is put. Its stream record is the
        one the service's transaction makes; the child's own order, which the handler never
        reads, is left out (moto copies both tables on every transaction, which would make
        10,000 of them quadratic)."""
        from functions.core.clock import now_utc, rfc3339
        from functions.core.ids import new_id
        from functions.core.persistence import save
        from functions.orders import domain
        from functions.orders.adapters import SubscriptionModel

        sub = self._pick()
        action, extra = self._action(sub)
        now = rfc3339(now_utc())
        ref = self.refs[sub.product_id]
        if action == "change_quantity":
            updated, kind = domain.change_quantity(sub, extra["quantity"], self.today, now), action
        elif action in ("upgrade", "downgrade"):
            ref = self.refs[extra["product_id"]]
            price = self._buyer_price(sub.account_id, ref.id, sub.billing_cycle)
            updated, kind = domain.change_product(sub, ref, price, action, self.today, now)
        elif action == "suspend":
            updated, kind = domain.suspend(sub, self.today, now), domain.SUSPEND
        elif action == "resume":
            updated, kind = domain.resume(sub, self.today, now), domain.RESUME
        elif action == "renew":
            updated, kind = domain.renew(sub, self.today, now), domain.RENEW
        else:
            updated, kind = domain.cancel(sub, self.today, now), domain.ADDON_REMOVED
        order = domain.order_for(
            new_id("ord"),
            kind,
            updated,
            ref,
            effective=self.today,
            now=now,
            created_by="bench-admin",
            previous=sub,
        )
        recorded = domain.recorded(updated, order)
        save(SubscriptionModel.of(recorded))
        self._record(replace(recorded, version=sub.version + 1), kind)

    def _buyer_price(self, account_id: str, product_id: str, cycle: str) -> Any:
        key = (account_id, product_id, cycle)
        if key not in self.prices:
            tenant = self.orders.tenancy.tenant_of(self.principal)
            account = self.orders.tenancy.account(self.principal, account_id)
            product = self.orders.catalogue.products.get(tenant.id, product_id)
            assert product is not None
            self.prices[key] = self.orders.catalogue.buyer_price(tenant, account, product, cycle)[1]
        return self.prices[key]


# --- delivering the stream --------------------------------------------------------------------


class Stream:
    def __init__(self, table_name: str) -> None:
        import boto3

        from local.streams import stream_arn

        self.arn = stream_arn(boto3.client("dynamodb"), table_name)
        self.streams = boto3.client("dynamodbstreams")
        self.last: str | None = None

    def read(self) -> list[dict[str, Any]]:
        from local.streams import read_records

        records = read_records(self.streams, self.arn, after=self.last)
        if records:
            self.last = records[-1]["dynamodb"]["SequenceNumber"]
        return records


def not_raw(record: dict[str, Any]) -> bool:
    keys = record["dynamodb"].get("Keys", {})
    return bool(keys.get("tenant_id", {}).get("S") != RAW_TENANT)


def is_mirrored_change(record: dict[str, Any], world: World) -> bool:
    """The handler's R11/R13 test, on the raw image (a child's paid provider product)."""
    image = record["dynamodb"].get("NewImage") or {}
    return (
        image.get("tenant_id", {}).get("S") == world.child
        and image.get("origin_tenant_id", {}).get("S") == world.root
        and image.get("paid_once", {}).get("BOOL") is True
    )


def deliver(
    meter: Meter,
    stream: Stream,
    records: list[dict[str, Any]],
    world: World,
    between: Callable[[int], None] | None = None,
    restarts: frozenset[int] = frozenset(),
) -> list[Tally]:
    """Lambda-shaped batches through the real handler, one tally per batch; a fresh container
    (``composition.reset()``) before the batches numbered in ``restarts``; ``between(n)`` runs,
    unmeasured, after each batch with the number of batches still to come."""
    from functions import composition
    from functions.backorder.handlers import subscriptions_stream
    from local.streams import lambda_event

    tallies = []
    starts = range(0, len(records), BATCH_SIZE)
    for index, start in enumerate(starts):
        batch = records[start : start + BATCH_SIZE]
        event = lambda_event(batch, stream.arn)
        if index in restarts:
            composition.reset()
        tally = Tally(batches=1, records=len(batch))
        tally.changes = sum(is_mirrored_change(r, world) for r in batch)
        meter.tally = tally
        started = time.perf_counter()
        try:
            result = subscriptions_stream(event, None)
        finally:
            tally.wall_seconds = time.perf_counter() - started
            meter.tally = None
        if result["batchItemFailures"]:
            raise RuntimeError(f"the handler failed records: {result['batchItemFailures'][:3]}")
        tallies.append(tally)
        if between is not None:
            between(len(starts) - index - 1)
    return tallies


RAW_TENANT = "raw-baseline"


class RawBaseline:
    """Plain boto3 calls on the same moto, in slices between the handler's warm batches (so
    that the machine's load weighs on both alike): ``puts`` put_item of items like the handler's
    orders, and ``updates`` update_item replaying the handler's first mirror update (the same
    expression) over existing items, as most of the handler's are (an untimed first pass
    creates them; the timed one raises the source version so that the condition holds)."""

    def __init__(self, meter: Meter, puts: int, updates: int) -> None:
        import boto3

        self.meter = meter
        self.client = boto3.client("dynamodb")
        self.puts: list[dict[str, Any]] = []
        self.updates: list[dict[str, Any]] = []
        self.counts = (puts, updates)
        self.seconds = [0.0, 0.0]
        self.done = [0, 0]
        self.prepared = False

    def _prepare(self) -> None:
        meter, (puts, updates) = self.meter, self.counts
        assert meter.sample_order is not None and meter.sample_update is not None
        table = next(name for name, (base, _) in meter.tables.items() if base == "orders")
        self.puts = [
            {
                "TableName": table,
                "Item": {**meter.sample_order, "tenant_id": {"S": RAW_TENANT}, "id": {"S": f"{n}"}},
            }
            for n in range(puts)
        ]
        key = {"tenant_id": {"S": RAW_TENANT}}
        first = [
            {**meter.sample_update, "Key": {**key, "id": {"S": f"{n}"}}} for n in range(updates)
        ]
        for params in first:
            self.client.update_item(**params)
        self.updates = [newer_source_version(params) for params in first]

    def __call__(self, batches_left: int) -> None:
        if not self.prepared:
            self._prepare()
            self.prepared = True
        for kind, (pending, call) in enumerate(
            ((self.puts, self.client.put_item), (self.updates, self.client.update_item))
        ):
            share = math.ceil(len(pending) / (batches_left + 1))
            chunk, pending[:] = pending[:share], pending[share:]
            started = time.perf_counter()
            for params in chunk:
                call(**params)
            self.seconds[kind] += time.perf_counter() - started
            self.done[kind] += len(chunk)

    def rates(self) -> tuple[float, float]:
        return self.done[0] / self.seconds[0], self.done[1] / self.seconds[1]


def time_client_creation(runs: int = 3) -> float:
    """Seconds to make a botocore session and a DynamoDB client, as PynamoDB does per model."""
    import botocore.session

    started = time.perf_counter()
    for _ in range(runs):
        botocore.session.get_session().create_client("dynamodb", region_name=ENV["AWS_REGION"])
    return (time.perf_counter() - started) / runs


def newer_source_version(params: dict[str, Any]) -> dict[str, Any]:
    """The same mirror update one source version later (its condition and its SET)."""
    names = {v: k for k, v in params["ExpressionAttributeNames"].items()}
    name = re.escape(names["source_version"])
    condition = re.search(rf"{name}\s*<\s*(:\w+)", params["ConditionExpression"])
    assignment = re.search(rf"{name}\s*=\s*(:\w+)", params["UpdateExpression"])
    assert condition is not None and assignment is not None, "the mirror update changed shape"
    values = dict(params["ExpressionAttributeValues"])
    newer = {"N": str(int(values[assignment.group(1)]["N"]) + 1)}
    values[condition.group(1)] = values[assignment.group(1)] = newer
    return {**params, "ExpressionAttributeValues": values}


# --- the report ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cost:
    writes: float
    reads: float
    invocations: float
    duration: float
    seconds_per_batch: float

    @property
    def total(self) -> float:
        return self.writes + self.reads + self.invocations + self.duration


def cost_per_million(handler: Tally, changes: int) -> Cost:
    """USD per million mirrored changes, from everything the handler did for ``changes``."""
    per_change = 1e6 / changes
    own_seconds = handler.wall_seconds - handler.call_seconds - handler.meter_seconds
    lambda_seconds = (
        own_seconds * FULL_VCPU_MB / LAMBDA_MB + handler.total_requests * DYNAMODB_ROUND_TRIP_S
    )
    return Cost(
        writes=handler.write_units * USD_PER_WRITE_UNIT * per_change,
        reads=handler.read_units * USD_PER_READ_UNIT * per_change,
        invocations=handler.batches * USD_PER_INVOCATION * per_change,
        duration=lambda_seconds * LAMBDA_MB / 1024 * USD_PER_GB_SECOND * per_change,
        seconds_per_batch=lambda_seconds / handler.batches,
    )


def _per(n: float, d: int) -> str:
    return f"{n / d:8.3f}" if d else "       -"


@dataclass
class Run:
    traffic: Traffic
    first: Tally  # a fresh container's first batch, and the first sight of every customer
    restart: Tally  # a fresh container's first batch mid-stream (the customers are mirrored)
    warm: Tally
    echoes: Tally
    echo_records: int  # all of them; ``echoes`` may be a sample
    puts_per_second: float
    updates_per_second: float
    client_seconds: float  # to make one botocore session and DynamoDB client here
    sample_order: dict[str, Any]

    @property
    def changes(self) -> int:
        return self.first.changes + self.restart.changes + self.warm.changes

    def echoes_scaled(self, share: float = 1.0) -> Tally:
        """The echo tally as if every echo record had been delivered (they all take one path),
        or ``share`` of them."""
        sampled = self.echoes
        wanted = self.echo_records * share
        if not sampled.records or sampled.records == wanted:
            return sampled
        factor = wanted / sampled.records
        scaled = Tally()
        scaled.requests = Counter({k: round(v * factor) for k, v in sampled.requests.items()})
        scaled.seconds = Counter({k: v * factor for k, v in sampled.seconds.items()})
        scaled.units_by_target = Counter(
            {k: v * factor for k, v in sampled.units_by_target.items()}
        )
        scaled.item_bytes = Counter({k: v * factor for k, v in sampled.item_bytes.items()})
        scaled.largest_item = sampled.largest_item
        for name in (
            "write_units",
            "table_write_units",
            "read_units",
            "reported_units",
            "call_seconds",
            "meter_seconds",
            "wall_seconds",
            "records",
        ):
            setattr(scaled, name, getattr(sampled, name) * factor)
        scaled.batches = math.ceil(wanted / BATCH_SIZE)
        scaled.failed_conditions, scaled.clients = sampled.failed_conditions, sampled.clients
        return scaled


def report(run: Run) -> list[str]:
    """Print the figures; the limits they exceed, each as a message naming the figure."""
    first, restart, warm, changes = run.first, run.restart, run.warm, run.changes
    echoes = run.echoes_scaled()
    child = total([first, restart, warm])
    everything = total([child, echoes])
    world = run.traffic.world
    kinds = ", ".join(f"{k} {n:,}" for k, n in run.traffic.kinds.most_common())
    sampled = (
        f" ({run.echoes.records:,} of them delivered, the rest scaled)"
        if run.echoes.records < run.echo_records
        else ""
    )
    print(
        f"{changes:,} mirrored changes ({kinds}) in {child.records:,} child records"
        f", {len(world.customers)} customers ({world.lite_customers} under a lite reseller); "
        f"{run.echo_records:,} echo records{sampled}; batches of {BATCH_SIZE}"
    )
    columns = [
        ("first", first, first.changes),
        ("restart", restart, restart.changes),
        ("warm", warm, warm.changes),
        ("echoes", echoes, changes),
        ("all", everything, changes),
    ]
    print(
        "\nDynamoDB requests per mirrored change, handler only. first: a fresh container's first"
        " batch, also the\nfirst sight of every customer; restart: a fresh container mid-stream;"
        " warm: the other batches;\nechoes: the records of the mirrors, per change"
    )
    print(f"  {'':<12}" + "".join(f"{name:>11}" for name, _, _ in columns) + "      floor")
    for operation in sorted(everything.operations()):
        cells = "".join(f"   {_per(t.operations()[operation], n)}" for _, t, n in columns)
        print(f"  {operation:<12}{cells}")
    floor = {"writes": f"{WRITE_FLOOR}", "reads": f"≤ {READ_FLOOR}"}
    for label in ("writes", "reads"):
        cells = "".join(f"   {_per(getattr(t, label), n)}" for _, t, n in columns)
        print(f"  {label:<12}{cells}   {floor[label]:>8}")
    steady = total([warm, run.echoes_scaled(warm.changes / changes)])
    write_ratio = steady.writes / warm.changes / WRITE_FLOOR
    read_ratio = steady.reads / (warm.changes * READ_FLOOR)
    verdict = "met" if write_ratio <= 1 and read_ratio <= 1 else "NOT met"
    print(
        f"  warm with its echoes: {steady.total_requests / warm.changes:.3f} requests per change "
        f"= writes {write_ratio:.3f}× and reads {read_ratio:.3f}× the floor (bar ≤ 1.0×: "
        f"{verdict}); without the echoes: writes {warm.writes / warm.changes / WRITE_FLOOR:.3f}×,"
        f" reads {warm.reads / warm.changes / READ_FLOOR:.3f}×"
    )
    print("\n  requests by operation and table: first / restart / warm / echoes")
    for site in sorted(everything.requests, key=lambda s: -everything.requests[s]):
        if everything.requests[site]:
            counts = " / ".join(f"{t.requests[site]:,}" for t in (first, restart, warm, echoes))
            print(f"    {site[0] + ' ' + site[1]:<26} {counts}")
    if everything.failed_conditions:
        print(f"    failed conditions: {everything.failed_conditions}")
    print(
        f"  a fresh container: {first.wall_seconds:.2f} s and {restart.wall_seconds:.2f} s for "
        f"its first batch here (a warm one {warm.wall_seconds / warm.batches:.2f} s), with "
        f"{restart.clients} × {run.client_seconds * 1000:.0f} ms making a botocore session and "
        "client, one per table"
    )

    print("\ncapacity units per mirrored change (computed from payload sizes)")
    for name, t, n in columns:
        print(
            f"  {name:<10}  WRU {_per(t.write_units, n)}"
            f" (tables only {_per(t.table_write_units, n)})"
            f"   RRU {_per(t.read_units, n)}   (moto reports {_per(t.reported_units, n)})"
        )
    targets = sorted(everything.units_by_target.items(), key=lambda kv: kv[0])
    print(
        "  WRU by table and index: "
        + ", ".join(f"{target} {units / changes:.2f}" for target, units in targets)
    )
    sizes = ", ".join(
        f"{op} {table} {everything.item_bytes[(op, table)] / n:,.0f}"
        for (op, table), n in everything.requests.most_common()
        if n and everything.item_bytes[(op, table)]
    )
    order = run.sample_order
    copies = [name for name in ("account_key", "reseller_key") if name in order]
    print(
        f"  mean item bytes: {sizes} (1 WRU per started KB); a provider order's index keys: "
        f"{', '.join(copies)}"
        + (" (the same)" if order.get("account_key") == order.get("reseller_key") else "")
    )
    site = ("UpdateItem", "subscriptions")
    if everything.requests[site]:
        mean = everything.item_bytes[site] / everything.requests[site]
        table_units = everything.units_by_target["subscriptions"] / changes
        print(
            f"  the mirror update's item: mean {mean:,.0f} bytes, largest "
            f"{everything.largest_item[site]:,} (the subscriptions table: {table_units:.2f} WRU"
            " per change)"
        )
    wru = everything.write_units / changes
    verdict = "met" if wru <= MAX_WRU_PER_CHANGE else "NOT met"
    print(f"  WRU per mirrored change {wru:.3f} (limit ≤ {MAX_WRU_PER_CHANGE}: {verdict})")

    cost = cost_per_million(everything, changes)
    verdict = "met" if cost.total <= MAX_USD_PER_MILLION else "NOT met"
    print(
        f"\ncost per million mirrored changes, us-east-1 on-demand (Lambda {LAMBDA_MB} MB, "
        f"~{cost.seconds_per_batch * 1000:.0f} ms per batch*)"
    )
    print(
        f"  DynamoDB writes ${cost.writes:.2f} + reads ${cost.reads:.2f} + Lambda requests "
        f"${cost.invocations:.3f} + duration ${cost.duration:.2f} = ${cost.total:.2f} "
        f"(limit ≤ ${MAX_USD_PER_MILLION:.2f}: {verdict}); DynamoDB Streams reads by Lambda: free"
    )
    tables_only = everything.table_write_units * USD_PER_WRITE_UNIT * 1e6 / changes
    print(f"  (writes without the index copies would be ${tables_only:.2f})")
    print(
        f"  * handler time outside DynamoDB calls here × {FULL_VCPU_MB}/{LAMBDA_MB} (the CPU "
        f"share at {LAMBDA_MB} MB) + {DYNAMODB_ROUND_TRIP_S * 1000:.0f} ms per request (an "
        "assumed round trip); echo batches are invocations too"
    )

    handler_seconds = warm.wall_seconds - warm.meter_seconds
    rate = warm.records / handler_seconds
    ceiling = 1 / (1 / run.puts_per_second + 1 / run.updates_per_second)
    ms = ", ".join(
        f"{op} {warm.seconds[op] / n * 1000:.1f}" for op, n in warm.operations().most_common()
    )
    print("\nthroughput on this moto (in-process, one thread)")
    print(
        f"  handler {rate:,.0f} records/s ({warm.changes / handler_seconds:,.0f} mirrored "
        f"changes/s; warm batches, {warm.call_seconds / handler_seconds:.0%} of it inside "
        f"DynamoDB calls: ms per {ms})"
    )
    print(
        f"  raw boto3 put_item {run.puts_per_second:,.0f}/s → handler/put_item = "
        f"{rate / run.puts_per_second:.2f}; raw update_item of the same mirror update over an "
        f"existing item "
        f"{run.updates_per_second:,.0f}/s; one put + one update each = {ceiling:,.0f}/s → "
        f"handler/that = {rate / ceiling:.2f}"
    )
    failures = []
    if wru > MAX_WRU_PER_CHANGE:
        failures.append(
            f"write units per mirrored change {wru:.3f} > {MAX_WRU_PER_CHANGE} "
            "(MAX_WRU_PER_CHANGE; by table and index above)"
        )
    if cost.total > MAX_USD_PER_MILLION:
        failures.append(
            f"cost per million mirrored changes ${cost.total:.2f} > ${MAX_USD_PER_MILLION:.2f} "
            "(MAX_USD_PER_MILLION)"
        )
    return failures


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.backorder", description=__doc__)
    parser.add_argument("--changes", type=int, default=DEFAULT_CHANGES, help="mirrored changes")
    parser.add_argument(
        "--echoes",
        type=int,
        default=DEFAULT_ECHOES,
        help="echo records to deliver (the rest are scaled from them; 0: all)",
    )
    args = parser.parse_args(argv)
    if args.changes < 2 * BATCH_SIZE:
        parser.error(f"--changes must be at least {2 * BATCH_SIZE}")
    from moto import mock_aws

    with environment(ENV), mock_aws(), metered() as meter:
        from functions import composition
        from functions.core.persistence import create_tables
        from functions.orders.adapters import SubscriptionModel

        composition.reset()
        composition.container()  # binds the models
        create_tables(composition.models())
        create_queues(composition.container().settings)
        meter.learn(composition.models())
        started = time.perf_counter()
        world = World.build(direct=40, lite=10)
        traffic = Traffic(world, random.Random(SEED))
        traffic.generate(args.changes)
        stream = Stream(SubscriptionModel.Meta.table_name)
        records = stream.read()
        print(f"   (world and traffic generated in {time.perf_counter() - started:.1f} s)")

        started = time.perf_counter()
        baseline = RawBaseline(meter, RAW_PUTS, RAW_UPDATES)
        middle = len(records) // BATCH_SIZE // 2
        tallies = deliver(
            meter, stream, records, world, between=baseline, restarts=frozenset({0, middle})
        )
        echo_records = [r for r in stream.read() if not_raw(r)]
        wanted = args.echoes or len(echo_records)
        echoes = total(deliver(meter, stream, echo_records[:wanted], world))
        print(f"   (handler phase {time.perf_counter() - started:.1f} s)")
        puts, updates = baseline.rates()
        client_seconds = time_client_creation()
        assert meter.sample_order is not None
        run = Run(
            traffic=traffic,
            first=tallies[0],
            restart=tallies[middle],
            warm=total(tallies[1:middle] + tallies[middle + 1 :]),
            echoes=echoes,
            echo_records=len(echo_records),
            puts_per_second=puts,
            updates_per_second=updates,
            client_seconds=client_seconds,
            sample_order=meter.sample_order,
        )
        orders = total(tallies).requests[("PutItem", "orders")]
        if orders != run.changes:
            print(f"!! {orders} provider orders put for {run.changes} mirrored changes")
        failures = report(run)
        composition.reset()
    for failure in failures:
        print(f"bench backorder FAILED: {failure}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
