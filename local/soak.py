"""The soak test of the local platform (``make soak`` = ``python -m local.soak``; issue 11).

It starts a fresh ``python -m local.platform`` (what ``make run`` runs) as a subprocess on a free
port, with its own ``BSS_LOCAL_DIR`` (a temporary directory), ``RESET=1`` and a
``BSS_JWT_SECRET`` chosen here, so it mints its own tokens (``functions.core.auth.issue_token``)
and reads the demo's ids (SPEC §1) from the API. Then ``--clients`` storefront clients (threads,
each with its own keep-alive connection) act for ``--seconds`` on Cloud Resell's BSS as its
admin, its lite reseller Cloud Lite and their customers: new subscriptions (paid licences, a few
trials, pay-as-you-go plans), quantity changes on a shared pool (so clients race each other on
one subscription, as ten parallel changes did in issue 11), add-ons, cancels, usage records, and
list reads (``/subscriptions``, ``/orders``, ``/accounts``, ``/products``, ``/invoices``); one
billing run starts a third of the way in, and half way through ten threads change one
subscription at once. Every POST carries an ``Idempotency-Key``; a request that gets no answer
is counted ("no answer") and sent once more with the same key.

When the time is up it waits until the platform has drained: a last change (the probe) must
reach Cloud's BSS, and the checks below are repeated until they hold or ``--settle`` seconds
pass. What it checks, over HTTP only (the invariants of
``tests/integration/test_backorder_convergence.py``):

* no 5xx, and every request answered;
* every 200's order id is readable (``GET /orders/{id}`` as Cloud Resell's admin);
* one child order per version of every subscription (a change is committed over the version it
  read: two changes never start from the same state);
* every mirror equals its source: each paid subscription of Cloud Resell for one of Cloud's
  products has exactly one mirror in Cloud's BSS (``GET /subscriptions`` as Cloud's admin,
  matched by ``source.subscription_id``) with the same quantity, status, dates, billing cycle,
  term, auto-renew, characteristics and add-on link, Cloud's product, under the mirror of its
  account (itself under the mirror of its lite reseller, or Cloud Resell's account); nothing
  else is mirrored (trials are not);
* exactly one provider order per applied change: the orders of a mirror in Cloud's BSS are
  those of every version of its source, one each (their ids are derived from the source's
  version, ``functions.backorder.domain.provider_order_id``), each of the same type, date and
  quantity as the child's order of that version;
* every usage record of a mirrored subscription has its copy on the mirror (R25);
* the billing run finished, and the probe reached Cloud's BSS.

The replication lag is measured by polling a sample: a thread takes the latest applied change
of a mirrored subscription (up to four at a time), and polls Cloud's ``GET /orders/{id}`` for
the provider order of the version the child's answer showed until it answers 200 (every 10 ms
at first, then every 5 % of the time waited: a 5 % precision, and few polls when the lag is
long); the lag is the time from the child's 200 to that first 200. (The API's timestamps are
whole seconds: too coarse.) When another change commits in between, the answer shows the later
version, and the sample measures the lag of that one.

Prints the request count, the answers by status (and 4xx by error code), the lag p50/p99 and
PASS/FAIL per check; exits 1 if any check fails, 2 if the platform did not start. The
platform's log is kept (and shown) when something failed.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from functions.core.auth import CUSTOMER, PLATFORM_ADMIN, RESELLER, TENANT_ADMIN, issue_token

DEFAULT_CLIENTS = 20
DEFAULT_SECONDS = 120
#: how long the platform may take to start (the demo is loaded over HTTP first)
START_TIMEOUT_S = 180.0
#: how long the platform may take, once the clients stop, to deliver everything
SETTLE_TIMEOUT_S = 120.0
#: how long one request may take before it counts as not answered
REQUEST_TIMEOUT_S = 60.0
#: how often the lag sampler polls the provider at first (then every 5 % of the time waited)
LAG_POLL_S = 0.01
#: the burst of issue 11: this many parallel quantity changes on one subscription
BURST = 10
HOST = "127.0.0.1"
ROOT = Path(__file__).resolve().parents[1]

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


class SoakError(RuntimeError):
    """The soak could not run (the platform did not start, the demo is not there)."""


# --- HTTP -----------------------------------------------------------------------------------------


@dataclass
class Answer:
    status: int  # 0: no answer
    body: Any
    at: float  # time.monotonic() when it was read


class Stats:
    """Every answer, by status and (4xx) error code; the first 5xx kept to show."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests = 0
        self.statuses: Counter[int] = Counter()
        self.codes: Counter[str] = Counter()
        self.server_errors: list[str] = []
        self.no_answer: list[str] = []
        #: seconds from sending to the answer (or to giving up)
        self.latencies: list[float] = []

    def record(
        self, method: str, path: str, answer: Answer, error: str = "", sent: float = 0.0
    ) -> None:
        with self.lock:
            self.requests += 1
            if sent:
                self.latencies.append(answer.at - sent)
            self.statuses[answer.status] += 1
            if 400 <= answer.status < 500:
                code = _error_code(answer.body)
                self.codes[f"{answer.status} {code}"] += 1
            elif answer.status >= 500 and len(self.server_errors) < 10:
                self.server_errors.append(f"{method} {path} → {answer.status} {answer.body}")
            elif answer.status == 0 and len(self.no_answer) < 10:
                self.no_answer.append(f"{method} {path}: {error}")


def _error_code(body: Any) -> str:
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        return str(body["error"].get("code", "?"))
    return "?"


class Http:
    """JSON over one keep-alive connection (one per thread)."""

    def __init__(self, url: str, stats: Stats, timeout: float = REQUEST_TIMEOUT_S) -> None:
        parsed = urllib.parse.urlsplit(url)
        self.host = parsed.hostname or HOST
        self.port = parsed.port or 80
        self.stats = stats
        self.timeout = timeout
        self.connection: http.client.HTTPConnection | None = None

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()
            self.connection = None

    def _once(
        self, method: str, path: str, headers: dict[str, str], data: bytes | None
    ) -> tuple[Answer, str]:
        if self.connection is None:
            self.connection = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        try:
            self.connection.request(method, path, body=data, headers=headers)
            response = self.connection.getresponse()
            raw = response.read()
        except (OSError, http.client.HTTPException) as error:
            self.close()
            return Answer(0, None, time.monotonic()), f"{type(error).__name__}: {error}"
        at = time.monotonic()
        if response.getheader("Connection", "").lower() == "close":
            self.close()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw[:200].decode("utf-8", "replace")
        return Answer(response.status, body, at), ""

    def call(self, method: str, path: str, token: str | None = None, body: Any = None) -> Answer:
        """One request (a POST with an ``Idempotency-Key``); not answered, it is sent once more
        (same key) on a new connection. Both tries are counted."""
        headers = {"Accept": "application/json"}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        data = None
        if body is not None or method == "POST":
            data = json.dumps(body if body is not None else {}).encode()
            headers["Content-Type"] = "application/json"
        if method == "POST":
            headers["Idempotency-Key"] = uuid.uuid4().hex
        sent = time.monotonic()
        answer, error = self._once(method, path, headers, data)
        self.stats.record(method, path, answer, error, sent)
        if answer.status == 0:
            sent = time.monotonic()
            answer, error = self._once(method, path, headers, data)
            self.stats.record(method, path, answer, error, sent)
        return answer

    def items(self, path: str, token: str) -> list[dict[str, Any]]:
        """Every item of a paginated list; raises if a page is not a 200."""
        found: list[dict[str, Any]] = []
        cursor: str | None = None
        while True:
            query = {"limit": "100", **({"cursor": cursor} if cursor else {})}
            sep = "&" if "?" in path else "?"
            answer = self.call("GET", f"{path}{sep}{urllib.parse.urlencode(query)}", token)
            if answer.status != 200:
                raise SoakError(f"GET {path} answered {answer.status}: {answer.body}")
            found.extend(answer.body["items"])
            cursor = answer.body.get("next_cursor")
            if not cursor:
                return found


# --- the platform as a subprocess -----------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


class PlatformProcess:
    """``python -m local.platform`` on a free port, fresh, its output in ``log_path``."""

    def __init__(self, directory: Path, secret: str) -> None:
        self.directory = directory
        self.secret = secret
        self.port = free_port()
        self.url = f"http://{HOST}:{self.port}"
        self.log_path = directory / "platform.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = START_TIMEOUT_S) -> float:
        env = {
            **os.environ,
            "PORT": str(self.port),
            "BSS_LOCAL_DIR": str(self.directory / "state"),
            "RESET": "1",
            "BSS_JWT_SECRET": self.secret,
            "PYTHONUNBUFFERED": "1",
        }
        started = time.monotonic()
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "local.platform"],
                cwd=ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = started + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SoakError(
                    f"the platform exited with {self.process.returncode}:\n{self.tail()}"
                )
            if _healthy(self.url):
                return time.monotonic() - started
            time.sleep(0.2)
        raise SoakError(f"the platform did not answer within {timeout:.0f} s:\n{self.tail()}")

    def stop(self) -> int | None:
        """Ctrl-C, as a person would; killed if it is not gone within 20 s."""
        if self.process is None or self.process.poll() is not None:
            return None if self.process is None else self.process.returncode
        self.process.send_signal(signal.SIGINT)
        try:
            return self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            return None

    def log(self) -> str:
        try:
            return self.log_path.read_text("utf-8", "replace")
        except OSError:
            return ""

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.log().splitlines()[-lines:])


def _healthy(url: str) -> bool:
    try:
        connection = http.client.HTTPConnection(HOST, urllib.parse.urlsplit(url).port, timeout=2)
        connection.request("GET", "/health")
        healthy = connection.getresponse().status == 200
        connection.close()
        return healthy
    except (OSError, http.client.HTTPException):
        return False


# --- the demo, as the API shows it ----------------------------------------------------------------


@dataclass(frozen=True)
class Buyer:
    """An account of Cloud Resell a client buys for, and who may act for it."""

    id: str
    lite: bool  # under Cloud Lite (its lite reseller may act too)
    token: str  # its customer's token


@dataclass
class World:
    url: str
    secret: str
    cloud_id: str = ""
    resell_id: str = ""
    reseller_account_id: str = ""  # Cloud Resell's account in Cloud's BSS
    lite_id: str = ""
    tokens: dict[str, str] = field(default_factory=dict)
    buyers: list[Buyer] = field(default_factory=list)
    #: Cloud Resell's product ids by demo key, and Cloud's product each is a copy of
    products: dict[str, str] = field(default_factory=dict)
    origin: dict[str, str] = field(default_factory=dict)
    addon_for: set[str] = field(default_factory=set)

    def mint(
        self, role: str, sub: str, tenant: str | None = None, account: str | None = None
    ) -> str:
        return issue_token(
            self.secret, sub=sub, role=role, tenant_id=tenant, account_id=account, ttl_seconds=86400
        )


def discover(http: Http, url: str, secret: str, buyers: int) -> World:
    """The demo's ids from the API, and ``buyers`` new accounts (half under Cloud Lite) to sell
    to besides X, Y and Z."""
    from local.demo import PRODUCTS

    world = World(url, secret)
    platform = world.mint(PLATFORM_ADMIN, "soak@platform.example")
    roots = {t["name"]: t for t in http.items("/tenants", platform)}
    if "Cloud" not in roots:
        raise SoakError(f"no demo tenant Cloud on the platform (root tenants: {sorted(roots)})")
    world.cloud_id = roots["Cloud"]["id"]
    cloud_admin = world.mint(TENANT_ADMIN, "soak@cloud.example", world.cloud_id)
    children = {t["name"]: t for t in http.items("/tenants", cloud_admin)}
    if "Cloud Resell" not in children:
        raise SoakError("no demo tenant Cloud Resell under Cloud")
    resell = children["Cloud Resell"]
    world.resell_id, world.reseller_account_id = resell["id"], resell["reseller_account_id"]
    if not resell.get("backordering"):
        raise SoakError("back ordering is not on for Cloud Resell (the demo activates it)")
    admin = world.mint(TENANT_ADMIN, "soak@cloud-resell.example", world.resell_id)
    accounts = {a["name"]: a for a in http.items("/accounts", admin)}
    world.lite_id = accounts["Cloud Lite"]["id"]
    lite = world.mint(RESELLER, "soak@cloud-lite.example", world.resell_id, world.lite_id)
    world.tokens = {"cloud_admin": cloud_admin, "resell_admin": admin, "lite": lite}

    by_sku = {p["sku"]: p for p in http.items("/products", admin)}
    for spec in PRODUCTS:
        product = by_sku.get(spec.sku)
        if product is None or not product.get("origin"):
            raise SoakError(f"Cloud Resell's catalogue lacks the copy of {spec.sku}")
        world.products[spec.key] = product["id"]
        world.origin[product["id"]] = product["origin"]["product_id"]
    world.addon_for = {world.products[key] for key in ("o365_e3", "m365_standard")}

    def buyer(account: dict[str, Any]) -> Buyer:
        token = world.mint(CUSTOMER, f"soak@{account['id']}", world.resell_id, account["id"])
        return Buyer(account["id"], account.get("parent_account_id") == world.lite_id, token)

    for name in ("Cloud Customer X", "Cloud Customer Y", "Cloud End-Customer Z"):
        world.buyers.append(buyer(accounts[name]))
    for n in range(buyers):
        under_lite = n % 2 == 0
        answer = http.call(
            "POST",
            "/accounts",
            lite if under_lite else admin,
            {"name": f"Soak customer {n + 1}", "email": f"it@soak-{n + 1}.example"},
        )
        if answer.status != 201:
            raise SoakError(f"POST /accounts answered {answer.status}: {answer.body}")
        world.buyers.append(buyer(answer.body))
    return world


# --- the clients ----------------------------------------------------------------------------------


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
        answer = self.http.call("POST", path, token, body)
        if answer.status in (200, 201) and isinstance(answer.body, dict):
            sub, order = answer.body["subscription"], answer.body["order"]
            self.shared.applied_write(
                Applied(
                    what,
                    order["id"],
                    sub["id"],
                    int(sub["version"]),
                    bool(sub["paid"]) and sub["product_id"] in self.world.origin,
                    answer.at,
                )
            )
        return answer

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


@dataclass
class _Sample:
    change: Applied
    order_id: str  # the provider's order it becomes
    due: float = 0.0  # when to poll next


class OrdersTable:
    """Cloud's orders as its table on the platform's moto server holds them: where the lag
    sampler looks, so its polls do not wait in the API's queue behind the clients' requests
    (``local.platform.API_CONCURRENCY``) and the lag is the replication's alone."""

    def __init__(self, endpoint: str, cloud_id: str) -> None:
        import boto3

        from functions.orders.adapters import OrderModel
        from local.platform import TABLE_PREFIX, _region

        self.endpoint = endpoint
        self.table = f"{TABLE_PREFIX}-{OrderModel.base_name}"
        self.cloud_id = cloud_id
        self.dynamodb = boto3.session.Session(
            aws_access_key_id="local", aws_secret_access_key="local", region_name=_region()
        ).client("dynamodb", endpoint_url=endpoint)

    def has(self, order_id: str) -> bool:
        key = {"tenant_id": {"S": self.cloud_id}, "id": {"S": order_id}}
        return "Item" in self.dynamodb.get_item(TableName=self.table, Key=key)


def moto_endpoint(log: str) -> str | None:
    """The moto server's address, from the platform's banner (``AWS  http://…``)."""
    found = re.search(r"^\s*AWS\s+(http://\S+)", log, re.MULTILINE)
    return found.group(1) if found else None


class LagSampler(threading.Thread):
    """Samples the replication lag: takes the latest applied change of a mirrored subscription
    (up to ``pending`` at a time) and polls for the provider order of the version the child's
    answer showed until it is there: every ``LAG_POLL_S`` at first, then every 5 % of the time
    waited so far (a precision of 5 %, and few polls when the lag is long). It looks in Cloud's
    orders table (``store``) when the platform's banner names its moto server, else asks
    Cloud's API (``GET /orders/{id}``), whose answer also waits in the API's queue."""

    def __init__(
        self,
        world: World,
        shared: Shared,
        stats: Stats,
        store: OrdersTable | None = None,
        pending: int = 4,
    ) -> None:
        super().__init__(name="soak-lag", daemon=True)
        self.world = world
        self.shared = shared
        self.http = Http(world.url, stats)
        self.store = store
        self.pending = pending
        self.polls = 0
        self.lags: list[float] = []
        #: samples whose order had not appeared when the sampler was stopped
        self.unfinished = 0
        self.stopping = threading.Event()
        self._seen = 0

    def stop(self) -> None:
        self.stopping.set()
        with self.shared.changed:
            self.shared.changed.notify_all()
        self.join(timeout=REQUEST_TIMEOUT_S)

    def run(self) -> None:
        token = self.world.tokens["cloud_admin"]
        waiting: list[_Sample] = []
        while not self.stopping.is_set():
            if len(waiting) < self.pending:
                change = self._latest()
                if change is not None:
                    order_id = provider_order_id(self.world, change.subscription_id, change.version)
                    waiting.append(_Sample(change, order_id))
            for sample in [s for s in waiting if s.due <= time.monotonic()]:
                self.polls += 1
                if self.store is not None:
                    try:
                        found = self.store.has(sample.order_id)
                    except Exception:  # moto busy or gone: the next poll tells
                        found = False
                    at = time.monotonic()
                else:
                    answer = self.http.call("GET", f"/orders/{sample.order_id}", token)
                    found, at = answer.status == 200, answer.at
                if found:
                    self.lags.append(at - sample.change.at)
                    waiting.remove(sample)
                else:
                    waited = time.monotonic() - sample.change.at
                    sample.due = time.monotonic() + max(LAG_POLL_S, waited / 20)
            now = time.monotonic()
            pause = min((s.due for s in waiting), default=now + 0.5) - now
            with self.shared.changed:
                if len(waiting) >= self.pending or len(self.shared.applied) == self._seen:
                    self.shared.changed.wait(max(0.0, min(pause, 0.5)))
        self.unfinished = len(waiting)
        self.http.close()

    def _latest(self) -> Applied | None:
        """The latest change not seen yet of a mirrored subscription (the others are skipped)."""
        with self.shared.lock:
            fresh = self.shared.applied[self._seen :]
            self._seen = len(self.shared.applied)
        return next((change for change in reversed(fresh) if change.mirrored), None)


def provider_order_id(world: World, subscription_id: str, version: int) -> str:
    """The id Cloud's BSS gives the order of one version of a Cloud Resell subscription."""
    from functions.backorder.domain import Link
    from functions.backorder.domain import provider_order_id as derived

    link = Link(world.resell_id, world.cloud_id, world.reseller_account_id, None, "EUR", True)
    return derived(link, subscription_id, version)


def burst(world: World, shared: Shared, stats: Stats, rng: random.Random) -> Counter[int]:
    """Issue 11's ten parallel quantity changes on one subscription, as Cloud Resell's admin."""
    sub = shared.pick(rng, lambda s: not s.cancelled and s.product in world.origin)
    if sub is None:
        return Counter()
    statuses: Counter[int] = Counter()
    lock = threading.Lock()
    barrier = threading.Barrier(BURST)

    def change(n: int) -> None:
        http = Http(world.url, stats)
        barrier.wait()
        body = {"action": "change_quantity", "quantity": 50 + n}
        answer = http.call(
            "POST", f"/subscriptions/{sub.id}/actions", world.tokens["resell_admin"], body
        )
        if answer.status == 200:
            applied = Applied(
                "change_quantity",
                answer.body["order"]["id"],
                sub.id,
                int(answer.body["subscription"]["version"]),
                True,
                answer.at,
            )
            shared.applied_write(applied)
        with lock:
            statuses[answer.status] += 1
        http.close()

    threads = [threading.Thread(target=change, args=(n,)) for n in range(BURST)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return statuses


# --- the checks -----------------------------------------------------------------------------------


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


# --- the soak -------------------------------------------------------------------------------------


@dataclass
class Result:
    clients: int
    seconds: float
    load: Stats  # the clients' requests (the billing run's start and the burst included)
    sampling: Stats  # the lag sampler's polls
    checking: Stats  # set-up, probe and checks
    lags: list[float]
    lag_unfinished: int  # sampled changes not in Cloud's BSS yet when sampling stopped
    lag_where: str  # where the sampler looked
    lag_polls: int
    #: the writes answered 200/201 by kind (new, change_quantity, addon, cancel, usage)
    writes: Counter[str]
    checks: list[Check]
    burst: Counter[int]
    log_notes: dict[str, int]
    startup_s: float

    @property
    def passed(self) -> bool:
        return all(check.passed for check in self.checks)


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[max(0, min(98, int(q) - 1))]


def run_soak(
    clients: int,
    seconds: float,
    *,
    seed: int | None = None,
    settle_s: float = SETTLE_TIMEOUT_S,
    keep: bool = False,
    out: Callable[[str], None] = print,
) -> Result:
    seed = random.randrange(1_000_000) if seed is None else seed
    directory = Path(tempfile.mkdtemp(prefix="bss-soak-"))
    secret = secrets.token_urlsafe(36)
    platform = PlatformProcess(directory, secret)
    out(f"soak: {clients} clients × {seconds:.0f} s, seed {seed}; starting a fresh platform …")
    ok = False
    try:
        startup = platform.start()
        out(f"soak: platform ready at {platform.url} in {startup:.1f} s (log {platform.log_path})")
        result = _soak(platform, secret, clients, seconds, seed, settle_s, startup, out)
        ok = result.passed
        return result
    finally:
        code = platform.stop()
        if code not in (0, None):
            out(f"soak: the platform exited with {code} on Ctrl-C")
        if ok and not keep:
            shutil.rmtree(directory, ignore_errors=True)
        else:
            out(f"soak: kept {directory} (platform.log)")


def _soak(
    platform: PlatformProcess,
    secret: str,
    clients: int,
    seconds: float,
    seed: int,
    settle_s: float,
    startup: float,
    out: Callable[[str], None],
) -> Result:
    load, sampling, checking = Stats(), Stats(), Stats()
    http = Http(platform.url, checking)
    world = discover(http, platform.url, secret, buyers=max(4, clients // 2))
    shared = Shared()
    rng = random.Random(seed)

    endpoint = moto_endpoint(platform.log())
    store = OrdersTable(endpoint, world.cloud_id) if endpoint else None
    sampler = LagSampler(world, shared, sampling, store)
    sampler.start()
    started = time.monotonic()
    deadline = started + seconds
    workers = [Client(n, world, shared, load, deadline, seed) for n in range(clients)]
    for worker in workers:
        worker.start()

    time.sleep(max(0.0, started + seconds / 3 - time.monotonic()))
    admin = Http(platform.url, load)
    answer = admin.call("POST", "/billing-runs", world.tokens["resell_admin"], {})
    admin.close()
    run_id = answer.body["id"] if answer.status == 202 else None
    out(f"soak: billing run started ({answer.status}) at {time.monotonic() - started:.0f} s")
    time.sleep(max(0.0, started + seconds / 2 - time.monotonic()))
    burst_statuses = burst(world, shared, load, rng)
    out(f"soak: burst of {BURST} parallel quantity changes: {dict(sorted(burst_statuses.items()))}")
    for worker in workers:
        worker.join()
    elapsed = time.monotonic() - started
    out(f"soak: load done after {elapsed:.0f} s ({load.requests} requests); settling …")

    crashed = [f"{w.name}: {w.error!r}" for w in workers if w.error is not None]
    probe_check, _ = probe(http, world, shared, settle_s)
    settle_until = time.monotonic() + settle_s
    while True:
        try:
            convergence = check_convergence(http, world, shared)
        except SoakError as error:  # a list the checks read did not answer 200
            convergence = [Check("the checks read both BSSs", False, str(error)[:300])]
        if all(c.passed for c in convergence) or time.monotonic() > settle_until:
            break
        time.sleep(1.0)
    sampler.stop()
    checks = [
        check_orders_readable(http, world, shared),
        *convergence,
        probe_check,
        billing_run(http, world, run_id, settle_s),
        Check("every client ran to the end", not crashed, "", _problems(crashed)),
    ]
    everything = (load, sampling, checking)
    server_errors = sum(n for st in everything for code, n in st.statuses.items() if code >= 500)
    unanswered = sum(st.statuses.get(0, 0) for st in everything)
    shown = [line for st in everything for line in st.server_errors + st.no_answer]
    checks.insert(
        0,
        Check(
            "no 5xx and every request answered",
            server_errors == 0 and unanswered == 0,
            f"{server_errors} 5xx, {unanswered} not answered, of "
            f"{sum(st.requests for st in everything)} requests",
            _problems(shown),
        ),
    )
    log = platform.log()
    notes = {
        "tracebacks": log.count("Traceback (most recent call last)"),
        "STUCK": log.count("STUCK"),
        "set aside": log.count("set aside"),
    }
    http.close()
    return Result(
        clients=clients,
        seconds=elapsed,
        load=load,
        sampling=sampling,
        checking=checking,
        lags=sampler.lags,
        lag_unfinished=sampler.unfinished,
        lag_where=f"Cloud's orders table on {endpoint}" if endpoint else "Cloud's API",
        lag_polls=sampler.polls,
        writes=Counter(a.what for a in shared.applied) + Counter(usage=shared.usage_recorded),
        checks=checks,
        burst=burst_statuses,
        log_notes=notes,
        startup_s=startup,
    )


def _statuses(statuses: Counter[int]) -> str:
    return ", ".join(f"{'no answer' if s == 0 else s}: {n}" for s, n in sorted(statuses.items()))


def report(result: Result) -> str:
    load = result.load
    lines = [
        "",
        f"soak: {result.clients} clients for {result.seconds:.0f} s "
        f"(platform started in {result.startup_s:.1f} s)",
        f"  requests        {load.requests} by the clients "
        f"({load.requests / max(result.seconds, 1):.1f}/s); besides, "
        f"{result.lag_polls} lag polls and {result.checking.requests} API requests for set-up "
        "and checks",
        f"  by status       {_statuses(load.statuses)}",
        f"  answered in     p50 {percentile(load.latencies, 50):.3f} s, "
        f"p99 {percentile(load.latencies, 99):.3f} s, max {max(load.latencies, default=0):.3f} s",
        "  applied         " + ", ".join(f"{what}: {n}" for what, n in result.writes.most_common()),
    ]
    if load.codes:
        lines.append(
            "  4xx by code     " + ", ".join(f"{c}: {n}" for c, n in load.codes.most_common())
        )
    lines.append(f"  set-up, checks  {_statuses(result.checking.statuses)}")
    if result.sampling.requests:
        lines.append(f"  lag polls (API) {_statuses(result.sampling.statuses)}")
    if result.lags:
        lines.append(
            f"  replication lag p50 {percentile(result.lags, 50):.3f} s, "
            f"p99 {percentile(result.lags, 99):.3f} s, max {max(result.lags):.3f} s "
            f"({len(result.lags)} sampled changes: the child's 200 → Cloud's order of it in "
            f"{result.lag_where}; polled every 10 ms, then 5 % of the wait; "
            f"{result.lag_unfinished} unfinished)"
        )
    else:
        lines.append("  replication lag: no sample")
    lines.append(
        f"  burst           {BURST} parallel quantity changes on one subscription: "
        + ", ".join(f"{s}: {n}" for s, n in sorted(result.burst.items()))
    )
    lines.append(
        "  platform log    " + ", ".join(f"{n} {what}" for what, n in result.log_notes.items())
    )
    lines.append("  checks")
    for check in result.checks:
        detail = f" ({check.detail})" if check.detail else ""
        lines.append(f"    {'PASS' if check.passed else 'FAIL'}  {check.name}{detail}")
        lines += [f"            {problem}" for problem in check.problems]
    lines.append("PASS" if result.passed else "FAIL")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m local.soak",
        description="N concurrent storefront clients for T seconds against a fresh local "
        "platform, then the back-ordering invariants checked over HTTP (issue 11).",
    )
    parser.add_argument("--clients", type=int, default=DEFAULT_CLIENTS, help="default 20")
    parser.add_argument("--seconds", type=float, default=DEFAULT_SECONDS, help="default 120")
    parser.add_argument("--seed", type=int, default=None, help="the clients' random choices")
    parser.add_argument(
        "--settle",
        type=float,
        default=SETTLE_TIMEOUT_S,
        help="seconds the platform may take to deliver everything after the load (default 120)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the platform's log and state")
    args = parser.parse_args(argv)
    if args.clients < 1 or args.seconds <= 0:
        parser.error("--clients and --seconds must be positive")
    try:
        result = run_soak(
            args.clients, args.seconds, seed=args.seed, settle_s=args.settle, keep=args.keep
        )
    except SoakError as error:
        print(f"soak: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("soak: interrupted", file=sys.stderr)
        return 130
    print(report(result), flush=True)
    return 0 if result.passed else 1


if __name__ == "__main__":
    sys.exit(main())
