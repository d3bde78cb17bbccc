"""The reconciliation run at scale (R33, docs/backorder.md "Reconciliation (R33)"): one child
tenant with N mirrored subscriptions (10,000 and 100,000 by default), compared with their
mirrors in the provider's BSS by a run of ``ReconciliationService`` on in-process moto. Printed:
DynamoDB requests by operation, read requests per subscription compared (goal ≤
``MAX_READS_PER_SUBSCRIPTION``: batched reads), the time ratio of the largest run to the
smallest against the size ratio (goal ≤ ``LINEAR_SLACK`` × the size ratio, ≤ 11 for 10,000 →
100,000), and the Scans (goal 0). The exit status is non-zero when a goal is missed or a run
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

moto, not DynamoDB: moto's Query sorts the whole table on every request and tests each item
against the key (``bench.billing.unsorted_tables`` says more); a run's pages would cost
O(table) each, quadratic in all. Here (``partition_queries``) a Query of a table's own key is
handed its partition's items (DynamoDB reads a key range), and a Query of an index the items of
its key found in one pass over the table (each request still walks the table once: the orphan
check's keys-only pages hold ``MIRRORS_PAGE`` keys, so there are few of them). Answers are the
same: Query sorts and checks what it gets itself.

    python -m bench reconciliation [--subs N ...] [--per-account N]
"""

from __future__ import annotations

import argparse
import contextvars
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
READ_OPERATIONS = ("GetItem", "BatchGetItem", "Query", "Scan", "TransactGetItems")

_QUERY_KEY: contextvars.ContextVar[Any] = contextvars.ContextVar("query_key", default=None)


@contextmanager
def partition_queries() -> Iterator[None]:
    """During a Query: a table's own key → its partition's items; an index's key → the items
    whose attributes equal it, in one pass (see the module's docstring)."""
    from moto.dynamodb.models.table import Table

    original_items, original_query = Table.all_items, Table.query

    def all_items(self: Any) -> list[Any]:
        key = _QUERY_KEY.get()
        if key and len(key) == 1 and key[0][0] == self.hash_key_attr and self.range_key_attr:
            return list(self.items.get(key[0][1], {}).values())
        if not self.range_key_attr:
            items = list(self.items.values())
        else:
            items = [item for hash_set in self.items.values() for item in hash_set.values()]
        if key:
            items = [i for i in items if all(_equal(i.attrs.get(a), v) for a, v in key)]
        return items

    def query(self: Any, *args: Any, **kwargs: Any) -> Any:
        token = _QUERY_KEY.set(kwargs.get("hash_key_conditions"))
        try:
            return original_query(self, *args, **kwargs)
        finally:
            _QUERY_KEY.reset(token)

    Table.all_items = all_items  # type: ignore[method-assign]
    Table.query = query  # type: ignore[method-assign]
    try:
        yield
    finally:
        Table.all_items, Table.query = original_items, original_query  # type: ignore[method-assign]


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
    run: Any  # ReconciliationRun
    pages: int

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


def measure(n: int, per_account: int) -> Result:
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
        try:
            with partition_queries():
                meter.tally = tally
                started = time.perf_counter()
                run = service.start(world.admin, world.child)
                handled = 0
                while pages.messages:
                    message = pages.messages.pop(0)
                    service.run_page(ReconciliationPage.model_validate(message))
                    handled += 1
                wall = time.perf_counter() - started
                meter.tally = None
        finally:
            gc.enable()
            gc.unfreeze()
        done = service.runs.get(run.tenant_id, run.id)
        composition.reset()
    return Result(n, tally, wall, setup, done, handled)


def report(result: Result) -> int:
    run = result.run
    ops = result.tally.operations()
    print(f"  set-up {result.setup_seconds:.1f} s; run {result.wall_seconds:.1f} s")
    print(f"  run {run.status}: {result.pages} pages, compared {run.compared}, found {run.counts}")
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
    size = large.subscriptions / small.subscriptions
    ratio = large.wall_seconds / small.wall_seconds
    goal = size * LINEAR_SLACK
    verdict = "met" if ratio <= goal else "NOT met"
    print(
        f"-- time ratio {large.subscriptions:,} / {small.subscriptions:,}: {ratio:.2f}"
        f" for a size ratio of {size:.0f} (goal ≤ {goal:.1f}): {verdict}"
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
    args = parser.parse_args(argv)
    if min(args.subs) < 1 or args.per_account < 1:
        parser.error("--subs and --per-account must be at least 1")
    results: list[Result] = []
    status = 0
    for n in sorted(args.subs):
        print(f"-- {n:,} subscriptions")
        results.append(measure(n, args.per_account))
        status |= report(results[-1])
        print()
    for small, large in itertools.pairwise(results):
        status |= compare(small, large)
    return status


if __name__ == "__main__":
    sys.exit(main())
