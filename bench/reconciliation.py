"""The reconciliation run at scale (R33, docs/backorder.md "Reconciliation (R33)"): one child
tenant with N mirrored subscriptions (10,000 and 100,000 by default), compared with their
mirrors in the provider's BSS by a run of ``ReconciliationService`` on in-process moto. Printed:
DynamoDB requests by operation, read requests per subscription compared (goal ≤
``MAX_READS_PER_SUBSCRIPTION``: batched reads), the time ratio of the largest run to the
smallest against the size ratio (goal ≤ ``LINEAR_SLACK`` × the size ratio, ≤ 11 for 10,000 →
100,000; judged on the process's CPU time, the wall time's ratio printed beside it), and the
Scans (goal 0). The exit status is non-zero when a goal is missed or a run
finds drift where there is none.

The world: Cloud (root) → Cloud Resell (back ordering on), made through the API (the Chalice
test client, as the tests do); then N subscriptions to the provider's E3 in the child,
``--per-account`` (10) per customer, clones of one the storefront made, written with the models'
``batch_write()`` together with what the replicator makes of them (``domain.mirror_account``,
``domain.mirror_subscription`` and ``domain.provider_order``): a child in step with its
provider, so the run finds nothing and every request it makes is the comparison's own.

The run: ``ReconciliationService.start`` with an in-memory queue, then each page's message
handed to ``run_page`` until none is left, in-process and timed, every DynamoDB request counted
by ``bench/meter.py``. The records set aside are listed from moto's SQS (not DynamoDB: not
counted).

moto, not DynamoDB: moto's Query sorts the whole table on every request, tests each item
against the key, sorts the partition, then walks it from its first item to the page's start
(``bench.billing.unsorted_tables`` says more): O(n log n) per page, quadratic over a run's
pages (measured: 100,000 subscriptions took 20 times as long as 10,000). DynamoDB reads a page
from its start in the key range. Here (``partition_queries``) a plain page (a key, ascending,
no filter: moto hands every Query an always-true ``OpDefault`` filter and an empty list of range
conditions when it has none) is handed the partition's items from the page's start on, at most
``Limit`` + 1, from the partition (table or index) sorted once and kept until the next write to
its table (the run's own bookkeeping, in another table, keeps it); any other Query the items of
its key, found in one pass. moto still sorts and checks what it gets, so its
answers are the same. (moto's 1 MB page limit counts whole items, also on a keys-only index,
so the orphan check's index pages hold ~1,000 keys here, not the ~5,000 of DynamoDB.)

``--profile PREFIX`` profiles the measured part (``start`` and the pages, nothing of the
seeding) with cProfile, one file per size and phase: ``PREFIX.{n}.{phase}.prof`` (``start`` for
the run's creation and first message), for ``python -m pstats`` or snakeviz. The profiler's own
cost is in the times printed then: compare calls and time per subscription between sizes, not
the ratio.

    python -m bench reconciliation [--subs N ...] [--per-account N] [--profile PREFIX]
"""

from __future__ import annotations

import argparse
import bisect
import contextvars
import cProfile
import gc
import itertools
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

from bench.meter import ENV, SECRET, Tally, environment, metered

DEFAULT_SIZES = (10_000, 100_000)
PER_ACCOUNT = 10
#: batched: a Query page of ~1,000 and BatchGetItem of 100 keys per request
MAX_READS_PER_SUBSCRIPTION = 0.05
#: linear: the larger run may take at most this much more than the size ratio
LINEAR_SLACK = 1.1
_KEY_CONDITIONS = ("hash_key_conditions", "range_key_conditions")
READ_OPERATIONS = ("GetItem", "BatchGetItem", "Query", "Scan", "TransactGetItems")

_QUERY: contextvars.ContextVar[Any] = contextvars.ContextVar("query", default=None)
#: (table, index, key) → (sort keys, items) of a partition, sorted once while nothing writes
#: to its table
_SORTED: dict[tuple[str, str | None, Any], tuple[list[tuple[str, ...]], list[Any]]] = {}


@contextmanager
def partition_queries() -> Iterator[None]:
    """A Query reads its key range, as DynamoDB does (see the module's docstring): a plain page
    (the key alone, ascending, no filter) is handed the partition's items from the page's start
    on, at most ``Limit`` + 1, from the partition sorted once and kept until a write; any other
    Query the items of its key, found in one pass over the table. moto sorts and checks what it
    gets, so the answers are the same."""
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.table import Table

    original_items, original_query = Table.all_items, Table.query
    writes = ("put_item", "update_item", "delete_item", "batch_write_item", "transact_write_items")
    originals = {name: getattr(DynamoDBBackend, name) for name in writes}

    def forgetting(name: str) -> Any:
        method = originals[name]

        def write(self: Any, *args: Any, **kwargs: Any) -> Any:
            table = kwargs.get("table_name", args[0] if args else None)
            if name == "transact_write_items" or not isinstance(table, str):
                _SORTED.clear()
            else:  # a write to one table keeps the other tables' partitions
                for cached in [k for k in _SORTED if k[0] == table]:
                    del _SORTED[cached]
            return method(self, *args, **kwargs)

        return write

    def all_items(self: Any) -> list[Any]:
        query = _QUERY.get()
        if query is None:
            return original_items(self)
        key, start, limit, index_name, plain = query
        if plain and key:
            keys, items = _partition(self, index_name, key)
            first = bisect.bisect_right(keys, _start_key(self, index_name, start)) if start else 0
            return items[first : first + limit + 1] if limit else items[first:]
        if not self.range_key_attr:
            found = list(self.items.values())
        else:
            found = [item for hash_set in self.items.values() for item in hash_set.values()]
        return [i for i in found if all(_equal(i.attrs.get(a), v) for a, v in key or [])]

    def query(self: Any, *args: Any, **kwargs: Any) -> Any:
        names = (
            "hash_key",
            "range_comparison",
            "range_objs",
            "limit",
            "exclusive_start_key",
            "scan_index_forward",
            "projection_expressions",
            "index_name",
            "consistent_read",
            "filter_expression",
        )
        given = dict(zip(names, args, strict=False)) | kwargs
        plain = (
            not given.get("range_comparison")
            and not given.get("range_key_conditions")
            and given.get("scan_index_forward", True) is not False
            and _no_filter(given.get("filter_expression"))
            and not {k for k in kwargs if k not in (*names, *_KEY_CONDITIONS)}
        )
        token = _QUERY.set(
            (
                given.get("hash_key_conditions"),
                given.get("exclusive_start_key"),
                given.get("limit"),
                given.get("index_name"),
                plain,
            )
        )
        try:
            return original_query(self, *args, **kwargs)
        finally:
            _QUERY.reset(token)

    Table.all_items = all_items  # type: ignore[method-assign]
    Table.query = query  # type: ignore[method-assign]
    for name in writes:
        setattr(DynamoDBBackend, name, forgetting(name))
    _SORTED.clear()
    try:
        yield
    finally:
        Table.all_items, Table.query = original_items, original_query  # type: ignore[method-assign]
        for name, method in originals.items():
            setattr(DynamoDBBackend, name, method)
        _SORTED.clear()


def _no_filter(expression: Any) -> bool:
    """moto hands every Query a filter: ``OpDefault`` (always true) when the request has none."""
    from moto.dynamodb.comparisons import OpDefault

    return expression is None or isinstance(expression, OpDefault)


def _sort_attributes(table: Any, index_name: str | None) -> tuple[str, ...]:
    """A partition's order: the index's range key (if any), then the table's."""
    names: list[str] = []
    if index_name:
        index = table.get_index(index_name)
        names += [k["AttributeName"] for k in index.schema if k["KeyType"] == "RANGE"]
    if table.range_key_attr and table.range_key_attr not in names:
        names.append(table.range_key_attr)
    return tuple(names)


def _value(item_value: Any) -> str:
    return "" if item_value is None else str(item_value.value)


def _partition(
    table: Any, index_name: str | None, key: list[tuple[str, Any]]
) -> tuple[list[tuple[str, ...]], list[Any]]:
    cache_key = (table.name, index_name, tuple((a, _value(v)) for a, v in key))
    if cache_key not in _SORTED:
        if not index_name and len(key) == 1 and key[0][0] == table.hash_key_attr:
            found = list(table.items.get(key[0][1], {}).values())
        else:
            found = [item for hash_set in table.items.values() for item in hash_set.values()]
            found = [i for i in found if all(_equal(i.attrs.get(a), v) for a, v in key)]
        attributes = _sort_attributes(table, index_name)
        pairs = sorted(
            ((tuple(_value(i.attrs.get(a)) for a in attributes), i) for i in found),
            key=lambda pair: pair[0],
        )
        _SORTED[cache_key] = ([k for k, _ in pairs], [i for _, i in pairs])
    return _SORTED[cache_key]


def _start_key(table: Any, index_name: str | None, start: dict[str, Any]) -> tuple[str, ...]:
    values = []
    for name in _sort_attributes(table, index_name):
        raw = start.get(name) or {}
        values.append(str(next(iter(raw.values()), "")) if isinstance(raw, dict) else str(raw))
    return tuple(values)


def _equal(value: Any, wanted: Any) -> bool:
    return value is not None and bool(value == wanted)


class Pages:
    """The run's queue, in memory: the benchmark hands each message to ``run_page``."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []

    def send(self, body: dict[str, Any]) -> None:
        self.messages.append(dict(body))


@dataclass
class World:
    provider: str
    child: str
    admin: Any  # the provider's tenant admin (a Principal)


def ok(answer: tuple[int, Any], status: int = 200) -> Any:
    code, body = answer
    if code != status:
        raise RuntimeError(f"{code}: {body}")
    return body


def build_world() -> tuple[World, Any]:
    """Cloud → Cloud Resell with back ordering on, E3 on both lists, and one subscription the
    storefront made (the template of the clones)."""
    import json

    from chalice.test import Client

    from app import app
    from functions.core.auth import Principal, issue_token

    def tok(role: str, tenant: str | None = None) -> str:
        return issue_token(SECRET, sub=f"{role}-bench", role=role, tenant_id=tenant)

    def call(method: str, path: str, token: str, body: Any = None, status: int = 200) -> Any:
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
        payload = json.dumps(body).encode() if body is not None else b""
        answer = client.http.request(method, path, headers=headers, body=payload)
        text = answer.body.decode() if answer.body else ""
        return ok((answer.status_code, json.loads(text) if text else None), status)

    client = Client(app)

    root = call(
        "POST",
        "/tenants",
        tok("platform_admin"),
        {"name": "Cloud", "country": "DE", "time_zone": "Europe/Berlin", "currency": "EUR"},
        201,
    )
    cloud = tok("tenant_admin", root["id"])
    resell = call("POST", "/pricelists", cloud, {"name": "Resell", "currency": "EUR"}, 201)
    e3 = call(
        "POST",
        "/products",
        cloud,
        {
            "sku": "E3",
            "name": "Office 365 E3",
            "type": "license",
            "billing_cycles": ["monthly"],
            "unit": "seat",
            "costs": {"monthly": "18.00"},
        },
        201,
    )
    call(
        "POST",
        f"/pricelists/{resell['id']}/prices",
        cloud,
        {"product_id": e3["id"], "billing_cycle": "monthly", "price": "23.50"},
    )
    child = call(
        "POST",
        "/tenants",
        cloud,
        {
            "name": "Cloud Resell",
            "country": "DE",
            "time_zone": "Europe/Berlin",
            "price_list_id": resell["id"],
        },
        201,
    )
    call("POST", f"/tenants/{child['id']}/backordering", cloud)
    admin = tok("tenant_admin", child["id"])
    retail = call("POST", "/pricelists", admin, {"name": "Retail", "currency": "EUR"}, 201)
    (copy,) = call("GET", "/products", admin)["items"]
    call(
        "POST",
        f"/pricelists/{retail['id']}/prices",
        admin,
        {"product_id": copy["id"], "billing_cycle": "monthly", "markup_percent": "20"},
    )
    customer = call("POST", "/accounts", admin, {"name": "Template customer"}, 201)
    sub = call(
        "POST",
        "/subscriptions",
        admin,
        {
            "account_id": customer["id"],
            "product_id": copy["id"],
            "billing_cycle": "monthly",
            "quantity": 3,
        },
        201,
    )["subscription"]
    principal = Principal(sub="bench", role="tenant_admin", tenant_id=root["id"])
    return World(root["id"], child["id"], principal), (customer["id"], sub["id"], e3["id"])


def populate(world: World, template: tuple[str, str, str], n: int, per_account: int) -> None:
    """N clones of the template subscription, ``per_account`` per customer, with their mirror
    accounts, mirrors and provider orders, by batch writes."""
    from functions import composition
    from functions.backorder import domain
    from functions.core.adapters import AccountModel
    from functions.core.domain import Account
    from functions.core.ids import new_id
    from functions.core.persistence import to_entity
    from functions.orders.adapters import OrderModel, SubscriptionModel

    customer_id, sub_id, product_id = template
    replicator = composition.container().backorder
    link = replicator.link(world.child)
    assert link is not None
    product = replicator._product(link, product_id)
    price = replicator._price(link, product.id, "monthly")
    sub = SubscriptionModel.get(world.child, sub_id).entity()
    account = to_entity(AccountModel.get(world.child, customer_id), Account)
    # the template is mirrored too, as its stream record would have it
    replicator.replicate(sub)
    now = sub.updated_at
    with AccountModel.batch_write() as accounts:
        customers = []
        for a in range(-(-n // per_account)):
            customer = replace(
                account, id=new_id("acc"), name=f"Customer {a}", email=f"c{a}@example.com"
            )
            customers.append(customer)
            accounts.save(AccountModel.of(customer))
            mirror = domain.mirror_account(link, customer, parent_mirror_id=None, created_at=now)
            accounts.save(AccountModel.of(mirror))
    with SubscriptionModel.batch_write() as subs, OrderModel.batch_write() as orders:
        for i in range(n - 1):  # with the template: n
            clone = replace(sub, id=new_id("sub"), account_id=customers[i // per_account].id)
            subs.save(SubscriptionModel.of(clone))
            mirror = domain.mirror_subscription(
                link,
                clone,
                product,
                unit_price=price,
                now=now,
                account_mirror=domain.mirror_account_id(link, clone.account_id),
            )
            subs.save(SubscriptionModel.of(replace(mirror, version=1)))
            orders.save(OrderModel.of(domain.provider_order(link, clone, mirror, product, now=now)))


def empty_streams() -> None:
    from bench.billing import empty_streams as empty

    empty()


@dataclass
class Result:
    subscriptions: int
    tally: Tally
    wall_seconds: float
    setup_seconds: float
    cpu_seconds: float  # the process's CPU time of the run (other work on the machine aside)
    run: Any  # ReconciliationRun
    pages: int
    #: phase → (pages, CPU seconds) of the run's pages (``start``: the run's creation)
    phases: dict[str, tuple[int, float]]

    @property
    def reads(self) -> int:
        ops = self.tally.operations()
        return sum(ops[op] for op in READ_OPERATIONS)

    @property
    def reads_per_subscription(self) -> float:
        return self.reads / self.subscriptions

    @property
    def scans(self) -> int:
        return self.tally.operations()["Scan"]


class Phases:
    """The CPU time of each phase's pages and, with a profile, one cProfile per phase."""

    def __init__(self, profile: bool) -> None:
        self.profile = profile
        self.profiles: dict[str, cProfile.Profile] = {}
        self.times: dict[str, tuple[int, float]] = {}

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        profiler = self.profiles.setdefault(name, cProfile.Profile()) if self.profile else None
        started = time.process_time()
        if profiler is not None:
            profiler.enable()
        try:
            yield
        finally:
            if profiler is not None:
                profiler.disable()
            pages, seconds = self.times.get(name, (0, 0.0))
            self.times[name] = (pages + 1, seconds + time.process_time() - started)

    def dump(self, prefix: str, n: int) -> None:
        for name, profiler in self.profiles.items():
            profiler.dump_stats(f"{prefix}.{n}.{name}.prof")


def measure(n: int, per_account: int, profile: str | None = None) -> Result:
    import boto3
    from moto import mock_aws

    with environment(ENV), mock_aws(), metered() as meter:
        from functions import composition
        from functions.backorder.schemas import ReconciliationPage
        from functions.core.persistence import create_tables
        from local.runner import create_queues

        composition.reset()
        container = composition.container()
        create_tables(composition.models())
        meter.learn(composition.models())
        create_queues(boto3.client("sqs"), container.settings.table_prefix)
        started = time.perf_counter()
        world, template = build_world()
        populate(world, template, n, per_account)
        empty_streams()
        service = container.reconciliation
        pages = Pages()
        service.queue = pages  # type: ignore[assignment]
        gc.collect()
        gc.freeze()  # moto's tables are not a Lambda's heap
        gc.disable()
        setup = time.perf_counter() - started
        tally = Tally()
        phases = Phases(profile is not None)
        try:
            with partition_queries():
                meter.tally = tally
                started, cpu_started = time.perf_counter(), time.process_time()
                with phases.phase("start"):
                    run = service.start(world.admin, world.child)
                handled = 0
                while pages.messages:
                    message = pages.messages.pop(0)
                    with phases.phase(str(message["phase"])):
                        service.run_page(ReconciliationPage.model_validate(message))
                    handled += 1
                wall = time.perf_counter() - started
                cpu = time.process_time() - cpu_started
                meter.tally = None
        finally:
            gc.enable()
            gc.unfreeze()
        done = service.runs.get(run.tenant_id, run.id)
        composition.reset()
    if profile is not None:
        phases.dump(profile, n)
    return Result(n, tally, wall, setup, cpu, done, handled, phases.times)


def report(result: Result) -> int:
    run = result.run
    ops = result.tally.operations()
    print(
        f"  set-up {result.setup_seconds:.1f} s; run {result.wall_seconds:.1f} s"
        f" ({result.cpu_seconds:.1f} s of CPU)"
    )
    print(f"  run {run.status}: {result.pages} pages, compared {run.compared}, found {run.counts}")
    for phase, (pages, seconds) in result.phases.items():
        each = seconds / result.subscriptions * 1e6
        print(
            f"    {phase:<14}{pages:>5} pages {seconds:>8.1f} s of CPU"
            f" ({each:.0f} µs a subscription)"
        )
    print("  DynamoDB requests by operation and table:")
    for (operation, table), count in sorted(result.tally.requests.items()):
        print(f"    {operation:<16}{table:<40}{count:>8}")
    print(
        f"  read requests per subscription compared: {result.reads_per_subscription:.4f}"
        f" (goal ≤ {MAX_READS_PER_SUBSCRIPTION}); Scans: {ops['Scan']} (goal 0)"
    )
    status = 0
    if result.reads_per_subscription > MAX_READS_PER_SUBSCRIPTION:
        print("  NOT met: reads per subscription")
        status = 1
    if result.scans:
        print("  NOT met: a Scan")
        status = 1
    if run.status != "done" or any(run.counts.values()):
        print("  NOT met: the run did not finish clean (drift where there is none)")
        status = 1
    if run.compared.get("subscriptions") != result.subscriptions:
        print("  NOT met: not every subscription was compared")
        status = 1
    return status


def compare(small: Result, large: Result) -> int:
    """The goal is judged on the process's CPU time: a run of half an hour on a shared machine
    has its wall time stretched by whatever else runs (both are printed)."""
    size = large.subscriptions / small.subscriptions
    ratio = large.cpu_seconds / small.cpu_seconds
    wall = large.wall_seconds / small.wall_seconds
    goal = size * LINEAR_SLACK
    verdict = "met" if ratio <= goal else "NOT met"
    print(
        f"-- time ratio {large.subscriptions:,} / {small.subscriptions:,}: {ratio:.2f} of CPU"
        f" time ({wall:.2f} of wall time) for a size ratio of {size:.0f} (goal ≤ {goal:.1f}):"
        f" {verdict}"
    )
    return 0 if ratio <= goal else 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.reconciliation", description=__doc__)
    parser.add_argument(
        "--subs",
        type=int,
        nargs="+",
        default=list(DEFAULT_SIZES),
        help="subscriptions in the child, one run each (default: 10000 100000)",
    )
    parser.add_argument("--per-account", type=int, default=PER_ACCOUNT, help="subscriptions each")
    parser.add_argument(
        "--profile",
        metavar="PREFIX",
        help="cProfile the measured part into PREFIX.{n}.{phase}.prof (slows the run)",
    )
    args = parser.parse_args(argv)
    if min(args.subs) < 1 or args.per_account < 1:
        parser.error("--subs and --per-account must be at least 1")
    results: list[Result] = []
    status = 0
    for n in sorted(args.subs):
        print(f"-- {n:,} subscriptions")
        results.append(measure(n, args.per_account, args.profile))
        status |= report(results[-1])
        print()
    for small, large in itertools.pairwise(results):
        status |= compare(small, large)
    return status


if __name__ == "__main__":
    sys.exit(main())
