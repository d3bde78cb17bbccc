"""The storefront clients: what they do and how often, what they share (the subscriptions
made, the writes applied, the usage sent), and issue 11's burst of parallel changes."""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from local.soak.http import Answer, Http, Stats
from local.soak.world import Buyer, World

#: the burst of issue 11: this many parallel quantity changes on one subscription
BURST = 10

#: what a client does, and how often (weights)
OPERATIONS = {
    "subscribe": 12,
    "change_quantity": 26,
    "addon": 6,
    "cancel": 4,
    "usage": 8,
    "read": 40,
    "read_one": 4,
}
#: the list reads
LISTS = ("/subscriptions", "/orders", "/accounts", "/products", "/invoices")
#: Cloud's paid licences (demo keys) a storefront client buys
LICENCES = ("m365_basic", "m365_standard", "o365_e3", "exchange_p1")
TRIAL, ADDON, USAGE_PLAN = "m365_basic_trial", "teams_phone", "azure_plan"


@dataclass
class Sub:
    """A subscription the soak made."""

    id: str
    buyer: Buyer
    product: str  # Cloud Resell's product id
    cycle: str
    parent: str | None = None
    cancelled: bool = False


@dataclass(frozen=True)
class Applied:
    """A write answered 200/201: its order, the subscription and the version it showed."""

    what: str
    order_id: str
    subscription_id: str
    version: int
    mirrored: bool  # a paid subscription of one of Cloud's products (R13)
    at: float


class Shared:
    """What the clients share: the subscriptions made, the writes applied, the usage sent."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.subs: dict[str, Sub] = {}
        self.applied: list[Applied] = []
        self.usage_subs: set[str] = set()
        self.usage_recorded = 0
        self.changed = threading.Condition(self.lock)

    def add(self, sub: Sub) -> None:
        with self.lock:
            self.subs[sub.id] = sub

    def pick(self, rng: random.Random, test: Callable[[Sub], bool]) -> Sub | None:
        with self.lock:
            candidates = [s for s in self.subs.values() if test(s)]
        return rng.choice(candidates) if candidates else None

    def applied_write(self, applied: Applied) -> None:
        with self.changed:
            self.applied.append(applied)
            self.changed.notify_all()


def write(
    http: Http, world: World, shared: Shared, what: str, path: str, token: str, body: Any
) -> Answer:
    """A write of the soak; one answered 200/201 is recorded as applied, with its order."""
    answer = http.call("POST", path, token, body)
    if answer.status in (200, 201) and isinstance(answer.body, dict):
        sub, order = answer.body["subscription"], answer.body["order"]
        shared.applied_write(
            Applied(
                what,
                order["id"],
                sub["id"],
                int(sub["version"]),
                bool(sub["paid"]) and sub["product_id"] in world.origin,
                answer.at,
            )
        )
    return answer


class Client(threading.Thread):
    """One storefront client: its own connection, its own random choices."""

    def __init__(
        self, n: int, world: World, shared: Shared, stats: Stats, deadline: float, seed: int
    ) -> None:
        super().__init__(name=f"soak-client-{n}", daemon=True)
        self.world = world
        self.shared = shared
        self.http = Http(world.url, stats)
        self.deadline = deadline
        self.rng = random.Random(seed * 1000 + n)
        self.error: BaseException | None = None

    def run(self) -> None:
        operations, weights = zip(*OPERATIONS.items(), strict=True)
        try:
            while time.monotonic() < self.deadline:
                operation = self.rng.choices(operations, weights)[0]
                getattr(self, operation)()
        except BaseException as error:  # the soak reports it; a client never dies silently
            self.error = error
        finally:
            self.http.close()

    # who acts

    def actor(self, buyer: Buyer) -> str:
        """The buyer itself, its lite reseller or Cloud Resell's admin."""
        choices = [buyer.token, self.world.tokens["resell_admin"]]
        if buyer.lite:
            choices.append(self.world.tokens["lite"])
        return self.rng.choice(choices)

    def write(self, what: str, path: str, token: str, body: Any) -> Answer:
        return write(self.http, self.world, self.shared, what, path, token, body)

    # the operations

    def subscribe(self) -> None:
        buyer = self.rng.choice(self.world.buyers)
        roll = self.rng.random()
        if roll < 0.08:
            key, cycle, token = TRIAL, "monthly", self.actor(buyer)
        elif roll < 0.2:
            key, cycle, token = USAGE_PLAN, "monthly", self.world.tokens["resell_admin"]
        else:
            key = self.rng.choice(LICENCES)
            cycle, token = self.rng.choice(("monthly", "monthly", "annual")), self.actor(buyer)
        product = self.world.products[key]
        body = {
            "account_id": buyer.id,
            "product_id": product,
            "quantity": self.rng.randint(1, 25),
            "billing_cycle": cycle,
            "characteristics": {"soak": self.name},
        }
        answer = self.write("new", "/subscriptions", token, body)
        if answer.status == 201:
            sub_id = answer.body["subscription"]["id"]
            self.shared.add(Sub(sub_id, buyer, product, cycle))
            if key == USAGE_PLAN:
                with self.shared.lock:
                    self.shared.usage_subs.add(sub_id)

    def change_quantity(self) -> None:
        sub = self.shared.pick(self.rng, lambda s: not s.cancelled)
        if sub is None:
            return self.subscribe()
        body = {"action": "change_quantity", "quantity": self.rng.randint(1, 40)}
        self.write(
            "change_quantity", f"/subscriptions/{sub.id}/actions", self.actor(sub.buyer), body
        )
        return None

    def addon(self) -> None:
        base = self.shared.pick(
            self.rng,
            lambda s: not s.cancelled and s.parent is None and s.product in self.world.addon_for,
        )
        if base is None:
            return self.subscribe()
        body = {"product_id": self.world.products[ADDON], "quantity": self.rng.randint(1, 10)}
        answer = self.write(
            "addon", f"/subscriptions/{base.id}/addons", self.actor(base.buyer), body
        )
        if answer.status == 201:
            addon = answer.body["subscription"]
            self.shared.add(Sub(addon["id"], base.buyer, addon["product_id"], base.cycle, base.id))
        return None

    def cancel(self) -> None:
        sub = self.shared.pick(self.rng, lambda s: not s.cancelled)
        if sub is None:
            return None
        answer = self.write(
            "cancel",
            f"/subscriptions/{sub.id}/actions",
            self.actor(sub.buyer),
            {"action": "cancel"},
        )
        if answer.status == 200:
            with self.shared.lock:
                sub.cancelled = True
                for other in self.shared.subs.values():
                    if other.parent == sub.id:
                        other.cancelled = True
        return None

    def usage(self) -> None:
        with self.shared.lock:
            candidates = [s for s in self.shared.usage_subs if not self.shared.subs[s].cancelled]
        if not candidates:
            return self.subscribe()
        at = datetime.now(UTC) - timedelta(seconds=1)
        body = {
            "subscription_id": self.rng.choice(candidates),
            "quantity": f"{self.rng.randint(1, 5000) / 100:.2f}",
            "unit": "EUR consumed",
            "at": at.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "key": uuid.uuid4().hex,
        }
        answer = self.http.call("POST", "/usage", self.world.tokens["resell_admin"], body)
        if answer.status == 201:
            with self.shared.lock:
                self.shared.usage_recorded += 1
        return None

    def read(self) -> None:
        buyer = self.rng.choice(self.world.buyers)
        path = self.rng.choice(LISTS)
        self.http.call("GET", f"{path}?limit={self.rng.choice((10, 50, 100))}", self.actor(buyer))

    def read_one(self) -> None:
        with self.shared.lock:
            recent = self.shared.applied[-50:]
        if not recent:
            return self.read()
        applied = self.rng.choice(recent)
        token = self.world.tokens["resell_admin"]
        if self.rng.random() < 0.5:
            self.http.call("GET", f"/orders/{applied.order_id}", token)
        else:
            self.http.call("GET", f"/subscriptions/{applied.subscription_id}", token)
        return None


def burst(world: World, shared: Shared, stats: Stats, rng: random.Random) -> Counter[int]:
    """Issue 11's ten parallel quantity changes on one subscription, as Cloud Resell's admin.
    The subscription is the burst's own, ordered for it and shared with the clients only once
    the burst is over: a client cancelling or suspending it meanwhile would turn every change
    of the burst into a 409 ``invalid_state`` and hide what the burst is for."""
    buyer = rng.choice(world.buyers)
    licence = world.products[LICENCES[0]]
    http = Http(world.url, stats)
    body = {
        "account_id": buyer.id,
        "product_id": licence,
        "quantity": 10,
        "billing_cycle": "monthly",
        "characteristics": {"soak": "burst"},
    }
    answer = write(http, world, shared, "new", "/subscriptions", world.tokens["resell_admin"], body)
    http.close()
    if answer.status != 201:
        return Counter({-answer.status: 1})  # the burst could not start: the test says which
    sub = Sub(answer.body["subscription"]["id"], buyer, licence, "monthly")
    statuses: Counter[int] = Counter()
    lock = threading.Lock()
    barrier = threading.Barrier(BURST)

    def change(n: int) -> None:
        http = Http(world.url, stats)
        barrier.wait()
        body = {"action": "change_quantity", "quantity": 50 + n}
        path, token = f"/subscriptions/{sub.id}/actions", world.tokens["resell_admin"]
        answer = write(http, world, shared, "change_quantity", path, token, body)
        with lock:
            statuses[answer.status] += 1
        http.close()

    threads = [threading.Thread(target=change, args=(n,)) for n in range(BURST)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    shared.add(sub)
    return statuses
