"""R33 on moto: drift between a child tenant's records and their mirrors in its provider's BSS,
found by a reconciliation run (pages over SQS) and repaired through the replicator.

Every kind of drift is injected behind the replicator's back: a mirror deleted, a synced field
changed on a mirror, a stream record dropped (a change applied in the child whose record never
reached the replicator), a record set aside on the ``stream-failures`` queue, a source deleted
(a restore), and an account's change lost."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import boto3
import pytest

from functions import composition
from functions.backorder import domain
from functions.backorder.handlers import reconciliation_jobs
from functions.backorder.schemas import RECONCILIATION_QUEUE, STREAM_FAILURES_QUEUE
from functions.core.adapters import AccountModel
from functions.core.domain import Account
from functions.core.persistence import to_entity
from functions.orders.adapters import OrderModel, SubscriptionModel
from tests.conftest import Api, token
from tests.integration.test_backorder import QueueDrain, Reseller, Stream, ok


class Pages(QueueDrain):
    """The reconciliation queue (R33): a run's and a repair's pages."""

    def __init__(self) -> None:
        super().__init__(RECONCILIATION_QUEUE, reconciliation_jobs, rounds=1000)


def set_aside(records: list[dict[str, Any]], arn: str) -> None:
    """What the event source mapping sends to the on-failure queue after its retries."""
    sqs = boto3.client("sqs")
    name = composition.container().settings.queue_name(STREAM_FAILURES_QUEUE)
    url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
    first, last = records[0]["dynamodb"], records[-1]["dynamodb"]
    shard = boto3.client("dynamodbstreams").describe_stream(StreamArn=arn)["StreamDescription"][
        "Shards"
    ][0]["ShardId"]
    body = {
        "requestContext": {"condition": "RetryAttemptsExhausted", "approximateInvokeCount": 6},
        "version": "1.0",
        "DDBStreamBatchInfo": {
            "shardId": shard,
            "startSequenceNumber": first["SequenceNumber"],
            "endSequenceNumber": last["SequenceNumber"],
            "batchSize": len(records),
            "streamArn": arn,
        },
    }
    sqs.send_message(QueueUrl=url, MessageBody=json.dumps(body))


def failures_left() -> int:
    sqs = boto3.client("sqs")
    name = composition.container().settings.queue_name(STREAM_FAILURES_QUEUE)
    url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"])


def child_records(records: list[dict[str, Any]], tenant_id: str) -> int:
    return sum(1 for r in records if r["dynamodb"]["Keys"]["tenant_id"]["S"] == tenant_id)


def provider_orders(tenant_id: str) -> list[Any]:
    return [o.entity() for o in OrderModel.query(tenant_id)]


def reconcile(api: Api, admin: str, child: str) -> Any:
    run = ok(api.call("POST", "/reconciliation-runs", admin, {"child_tenant_id": child}), 202)
    assert run["status"] == "queued"
    Pages().drain()
    return ok(api.call("GET", f"/reconciliation-runs/{run['id']}?limit=100", admin))


def items_by(run: Any) -> dict[tuple[str, str, str], Any]:
    return {(i["kind"], i["record"], i["source_id"]): i for i in run["items"]}


@pytest.fixture
def world(api: Api) -> Reseller:
    reseller = Reseller(api)
    reseller.go_live()
    return reseller


def test_r33_every_kind_of_drift_is_found_named_and_repaired_once(world: Reseller) -> None:
    stream = Stream()
    accounts = Stream("accounts", handler=None)
    subs = [
        world.subscribe(account, world.e3_copy, 5 + n)
        for n, account in enumerate([world.x, world.z, world.x, world.z, world.x, world.z])
    ]
    own = world.subscribe(world.z, world.own, 2)  # never mirrored: never compared
    stream.drain()
    accounts.new_records()  # the accounts' stream is not under test here
    link = composition.container().backorder.link(world.resell)
    assert link is not None
    mirror = {s["id"]: domain.mirror_subscription_id(link, s["id"]) for s in subs}
    clean = reconcile(world.api, world.cloud_admin, world.resell)
    assert clean["status"] == "done"
    assert clean["counts"] == dict.fromkeys(
        ("missing", "stale", "orphan", "mismatch", "set_aside"), 0
    )
    assert clean["compared"]["subscriptions"] == 7 and clean["items"] == []
    orders_before = provider_orders(world.cloud)

    deleted, changed, dropped, aside, gone = subs[:5]
    # a mirror deleted
    SubscriptionModel.get(world.cloud, mirror[deleted["id"]]).delete()
    # a synced field changed behind the replicator (the same source version)
    item = SubscriptionModel.get(world.cloud, mirror[changed["id"]])
    item.update(actions=[SubscriptionModel.quantity.set(99)], add_version_condition=False)
    # a stream record dropped: the change is applied in the child, the record never delivered
    world.act(dropped["id"], "change_quantity", quantity=20)
    assert child_records(stream.new_records(), world.resell) == 1
    # a record set aside: delivered, failed after its retries, described on stream-failures
    world.act(aside["id"], "change_quantity", quantity=21)
    records = [
        r for r in stream.new_records() if r["dynamodb"]["Keys"]["tenant_id"]["S"] == world.resell
    ]
    set_aside(records, stream.arn)
    # a source gone (a restore): its mirror is an orphan
    SubscriptionModel.get(world.resell, gone["id"]).delete()
    stream.new_records()  # the REMOVE: nothing to mirror
    # an account's change lost, and a mirror account's field changed behind the replicator
    ok(world.api.call("PATCH", f"/accounts/{world.z['id']}", world.admin, {"name": "Z 2"}))
    accounts.new_records()
    x_mirror = domain.mirror_account_id(link, world.x["id"])
    AccountModel.get(world.cloud, x_mirror).update(
        actions=[AccountModel.email.set("behind@example.com")], add_version_condition=False
    )

    run = reconcile(world.api, world.cloud_admin, world.resell)
    found = items_by(run)
    assert set(found) == {
        ("missing", "subscription", deleted["id"]),
        ("mismatch", "subscription", changed["id"]),
        ("stale", "subscription", dropped["id"]),
        ("stale", "subscription", aside["id"]),
        ("orphan", "subscription", gone["id"]),
        ("stale", "account", world.z["id"]),
        ("mismatch", "account", world.x["id"]),
        ("set_aside", "subscription", aside["id"]),
    }
    assert found[("mismatch", "subscription", changed["id"])]["fields"] == ["quantity"]
    assert found[("stale", "subscription", dropped["id"])]["fields"] == ["quantity"]
    assert found[("stale", "account", world.z["id"])]["fields"] == ["name"]
    assert found[("mismatch", "account", world.x["id"])]["fields"] == ["email"]
    assert run["counts"] == {"missing": 1, "stale": 3, "orphan": 1, "mismatch": 2, "set_aside": 1}
    assert failures_left() == 1  # listed, not consumed
    stale_only = ok(
        world.api.call("GET", f"/reconciliation-runs/{run['id']}?kind=stale", world.cloud_admin)
    )
    assert {i["kind"] for i in stale_only["items"]} == {"stale"}

    repair = ok(
        world.api.call("POST", f"/reconciliation-runs/{run['id']}/repair", world.cloud_admin),
        202,
    )
    assert repair["status"] == "repair"
    Pages().drain()
    repaired = ok(
        world.api.call("GET", f"/reconciliation-runs/{run['id']}?limit=100", world.cloud_admin)
    )
    assert repaired["status"] == "repaired"
    assert repaired["repaired"] == 7
    assert repaired["repair_orders"] == 2  # the two lost changes, once each
    orders = provider_orders(world.cloud)
    new = [o for o in orders if o.id not in {b.id for b in orders_before}]
    assert sorted((o.source or {})["subscription_id"] for o in new) == sorted(
        [dropped["id"], aside["id"]]
    )
    assert all(o.created_by == "reconciliation" for o in new)
    assert all((o.source or {})["repair_run_id"] == run["id"] for o in new)
    assert len({o.id for o in orders}) == len(orders)

    # what the repair wrote flows up as mirrors do; the set-aside record redriven late is a no-op
    stream.drain()
    again = reconcile(world.api, world.cloud_admin, world.resell)
    assert again["items"] == [
        i for i in again["items"] if i["kind"] == "set_aside"
    ]  # only the record still on the failure queue is listed
    assert {k: v for k, v in again["counts"].items() if k != "set_aside"} == dict.fromkeys(
        ("missing", "stale", "orphan", "mismatch"), 0
    )
    closed = SubscriptionModel.get(world.cloud, mirror[gone["id"]]).entity()
    assert (closed.status, closed.last_change) == ("cancelled", domain.ORPHANED)
    assert own  # the reseller's own product is never mirrored nor compared as drift
    assert len(provider_orders(world.cloud)) == len(orders)


def test_r33_who_may_run_it(world: Reseller, api: Api) -> None:
    child_run = ok(
        api.call("POST", "/reconciliation-runs", world.admin, {"child_tenant_id": world.resell}),
        202,
    )
    assert child_run["child_tenant_id"] == world.resell
    # the child sees its own runs, not its provider's, and the other way round
    provider_run = ok(
        api.call(
            "POST", "/reconciliation-runs", world.cloud_admin, {"child_tenant_id": world.resell}
        ),
        202,
    )
    code, _ = api.call("GET", f"/reconciliation-runs/{provider_run['id']}", world.admin)
    assert code == 404
    code, _ = api.call("GET", f"/reconciliation-runs/{child_run['id']}", world.cloud_admin)
    assert code == 404
    # a root has nothing to reconcile; a stranger's child is not found
    code, body = api.call(
        "POST", "/reconciliation-runs", world.cloud_admin, {"child_tenant_id": world.cloud}
    )
    assert (code, body["error"]["code"]) == (409, "backordering_inactive")
    code, _ = api.call(
        "POST",
        "/reconciliation-runs",
        token("tenant_admin", "tnt_stranger"),
        {"child_tenant_id": world.resell},
    )
    assert code == 404
    # a repair before the run finished
    code, body = api.call(
        "POST", f"/reconciliation-runs/{provider_run['id']}/repair", world.cloud_admin
    )
    assert (code, body["error"]["code"]) == (409, "run_not_finished")


# --- the acceptance: every kind of drift in a tenant of 1,000 subscriptions -----------

SEEDED = 1000
PER_ACCOUNT = 10
INJECTED = 10  # subscriptions per kind of subscription drift
ACCOUNTS_INJECTED = 5  # accounts per kind of account drift


def seed(world: Reseller, n: int) -> tuple[list[Any], list[Any], set[str]]:
    """``n`` paid subscriptions to the provider's E3 in the child, ``PER_ACCOUNT`` per customer,
    clones of one the storefront made, each with what the replicator makes of it (its mirror
    account through the replicator; the mirror and the provider's order of its version as
    ``domain.mirror_subscription`` and ``domain.provider_order`` give them), all written with
    batch writes (moto's UpdateItem of a whole mirror takes ~0.07 s: 70 s for 1,000)."""
    from functions.core.ids import new_id

    template_sub = world.subscribe(world.z, world.e3_copy, 3)
    sub = SubscriptionModel.get(world.resell, template_sub["id"]).entity()
    SubscriptionModel.get(world.resell, template_sub["id"]).delete()  # not in the count
    account = AccountModel.get(world.resell, world.z["id"])
    customers = [
        replace(
            to_entity(account, Account),
            id=new_id("acc"),
            name=f"Customer {a}",
            email=f"c{a}@example.com",
            version=1,
        )
        for a in range(n // PER_ACCOUNT)
    ]
    subs = [
        replace(sub, id=new_id("sub"), account_id=customers[i // PER_ACCOUNT].id, version=1)
        for i in range(n)
    ]
    with AccountModel.batch_write() as batch:
        for customer in customers:
            batch.save(AccountModel.of(customer))
    replicator = composition.container().backorder
    link = replicator.link(world.resell)
    assert link is not None
    product = replicator._product(link, world.e3["id"])
    price = replicator._price(link, product.id, "monthly")
    now = sub.updated_at
    orders = set()
    with SubscriptionModel.batch_write() as mirrors, OrderModel.batch_write() as placed:
        for clone in subs:
            mirror = domain.mirror_subscription(
                link,
                clone,
                product,
                unit_price=price,
                now=now,
                account_mirror=replicator._ensure_account(link, clone.account_id),
            )
            mirrors.save(SubscriptionModel.of(replace(mirror, version=1)))
            order = domain.provider_order(link, clone, mirror, product, now=now)
            placed.save(OrderModel.of(order))
            orders.add(order.id)
    with SubscriptionModel.batch_write() as batch:
        for clone in subs:
            batch.save(SubscriptionModel.of(clone))
    return customers, subs, orders


class Latest:
    """The subscriptions' stream from now on (a LATEST iterator: the set-up's records unread)."""

    def __init__(self, stream: Stream) -> None:
        self.streams = stream.streams
        shards = self.streams.describe_stream(StreamArn=stream.arn)["StreamDescription"]["Shards"]
        self.iterator = self.streams.get_shard_iterator(
            StreamArn=stream.arn, ShardId=shards[-1]["ShardId"], ShardIteratorType="LATEST"
        )["ShardIterator"]

    def records(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        while True:
            page = self.streams.get_records(ShardIterator=self.iterator, Limit=1000)
            found += page["Records"]
            self.iterator = page["NextShardIterator"]
            if not page["Records"]:
                return found


def test_r33_a_thousand_subscriptions_every_drift_found_none_invented_all_repaired_once(
    world: Reseller, monkeypatch: pytest.MonkeyPatch
) -> None:
    from functions.backorder import services

    monkeypatch.setattr(services, "RECONCILE_PAGE", 600)  # two pages of subscriptions
    customers, subs, orders_before = seed(world, SEEDED)
    link = composition.container().backorder.link(world.resell)
    assert link is not None
    stream = Stream()
    latest = Latest(stream)  # from here on, the stream's records are never delivered
    groups = [subs[k * INJECTED : (k + 1) * INJECTED] for k in range(5)]
    deleted, changed, dropped, aside, gone = groups
    mirror = {s.id: domain.mirror_subscription_id(link, s.id) for s in subs}
    for s in deleted:
        SubscriptionModel.get(world.cloud, mirror[s.id]).delete()
    fields = {}
    for n, s in enumerate(changed):  # each a different synced field, at the same version
        name = domain.SYNCED_SUBSCRIPTION_FIELDS[n % 6]
        value: Any = {
            "status": "suspended",
            "start_date": "2020-01-01",
            "end_date": "2030-01-01",
            "activation_date": "2020-01-02",
            "cancellation_date": "2026-01-01",
            "auto_renew": False,
        }[name]
        item = SubscriptionModel.get(world.cloud, mirror[s.id])
        attribute = SubscriptionModel.get_attributes()[name]
        item.update(actions=[attribute.set(value)], add_version_condition=False)
        fields[s.id] = [name]
    for s in dropped + aside:  # changes applied in the child, their records never delivered
        world.act(s.id, "change_quantity", quantity=s.quantity + 2)
    records = latest.records()
    for s in aside:  # … and these set aside after their retries
        set_aside([r for r in records if r["dynamodb"]["Keys"]["id"]["S"] == s.id], stream.arn)
    for s in gone:  # a restore without them: their mirrors are orphans
        SubscriptionModel.get(world.resell, s.id).delete()
    renamed = customers[:ACCOUNTS_INJECTED]
    behind = customers[ACCOUNTS_INJECTED : 2 * ACCOUNTS_INJECTED]
    lost = customers[2 * ACCOUNTS_INJECTED : 3 * ACCOUNTS_INJECTED]
    for c in renamed:  # the accounts' stream is not delivered either: a lost change
        ok(world.api.call("PATCH", f"/accounts/{c.id}", world.admin, {"name": f"{c.name} 2"}))
    for c in behind:
        AccountModel.get(world.cloud, domain.mirror_account_id(link, c.id)).update(
            actions=[AccountModel.accounting_number.set("BEHIND")], add_version_condition=False
        )
    for c in lost:
        AccountModel.get(world.cloud, domain.mirror_account_id(link, c.id)).delete()

    run = reconcile(world.api, world.cloud_admin, world.resell)
    assert run["compared"] == {
        "subscriptions": SEEDED - INJECTED,  # the orphans' sources are gone
        "mirrors": SEEDED - INJECTED,  # the deleted mirrors are gone
        "accounts": len(customers) + 3,  # + Cloud Lite, X and Z
    }
    found = all_items(world, run["id"])
    expected = (
        {("missing", "subscription", s.id): [] for s in deleted}
        | {("mismatch", "subscription", s.id): fields[s.id] for s in changed}
        | {("stale", "subscription", s.id): ["quantity"] for s in dropped + aside}
        | {("orphan", "subscription", s.id): [] for s in gone}
        | {("set_aside", "subscription", s.id): [] for s in aside}
        | {("stale", "account", c.id): ["name"] for c in renamed}
        | {("mismatch", "account", c.id): ["accounting_number"] for c in behind}
        | {("missing", "account", c.id): [] for c in lost}
    )
    assert {key: item["fields"] for key, item in found.items()} == expected  # 100 %, no more
    assert run["counts"] == {
        "missing": INJECTED + ACCOUNTS_INJECTED,
        "stale": 2 * INJECTED + ACCOUNTS_INJECTED,
        "orphan": INJECTED,
        "mismatch": INJECTED + ACCOUNTS_INJECTED,
        "set_aside": INJECTED,
    }

    ok(world.api.call("POST", f"/reconciliation-runs/{run['id']}/repair", world.cloud_admin), 202)
    Pages().drain()
    repaired = ok(world.api.call("GET", f"/reconciliation-runs/{run['id']}", world.cloud_admin))
    drifted = len(expected) - INJECTED  # the set-aside records are listed, not repaired
    assert (repaired["status"], repaired["repaired"]) == ("repaired", drifted)
    assert repaired["repair_orders"] == 2 * INJECTED  # one per truly lost change
    outcomes = all_items(world, run["id"])
    assert {i["repair"] for k, i in outcomes.items() if k[0] != "set_aside"} == {"repaired"}

    orders = provider_orders(world.cloud)
    new = [o for o in orders if o.id not in orders_before]
    assert sorted((o.source or {})["subscription_id"] for o in new) == sorted(
        s.id for s in dropped + aside
    )
    assert {o.created_by for o in new} == {"reconciliation"}
    per_change = [
        ((o.source or {})["subscription_id"], (o.source or {})["version"]) for o in orders
    ]
    assert len(per_change) == len(set(per_change))  # no duplicate order of any change

    # a second run finds nothing left to repair; a repair asked again creates nothing
    again = reconcile(world.api, world.cloud_admin, world.resell)
    assert {k: v for k, v in again["counts"].items() if k != "set_aside"} == dict.fromkeys(
        ("missing", "stale", "orphan", "mismatch"), 0
    )
    ok(world.api.call("POST", f"/reconciliation-runs/{again['id']}/repair", world.cloud_admin), 202)
    Pages().drain()
    twice = ok(world.api.call("GET", f"/reconciliation-runs/{again['id']}", world.cloud_admin))
    assert (twice["status"], twice["repaired"], twice["repair_orders"]) == ("repaired", 0, 0)


def all_items(world: Reseller, run_id: str) -> dict[tuple[str, str, str], Any]:
    found: dict[tuple[str, str, str], Any] = {}
    cursor = None
    while True:
        path = f"/reconciliation-runs/{run_id}?limit=100" + (f"&cursor={cursor}" if cursor else "")
        page = ok(world.api.call("GET", path, world.cloud_admin))
        for item in page["items"]:
            key = (item["kind"], item["record"], item["source_id"])
            assert key not in found
            found[key] = item
        cursor = page["next_cursor"]
        if cursor is None:
            return found


def test_r33_the_daily_schedule_starts_one_run_per_child_and_day(world: Reseller) -> None:
    from datetime import UTC, datetime

    stream = Stream()
    sub = world.subscribe(world.z, world.e3_copy)
    stream.drain()
    service = composition.container().reconciliation
    on = datetime(2026, 12, 5, 1, 30, tzinfo=UTC)
    first = service.schedule(on)
    assert first == service.schedule(on)  # fired twice: the same run, started once
    assert Pages().drain() == 3  # its three phases' pages, each once
    (run,) = ok(world.api.call("GET", "/reconciliation-runs", world.cloud_admin))["items"]
    assert (run["id"], run["started_by"], run["status"]) == (first[0], "schedule", "done")
    assert run["compared"]["subscriptions"] == 1 and sub
    assert run["counts"] == dict.fromkeys(
        ("missing", "stale", "orphan", "mismatch", "set_aside"), 0
    )
    assert service.schedule(on.replace(day=6)) != first  # the next day's run


def test_r33_a_page_read_before_its_sent_mark_is_saved_still_advances_in_one_go(
    world: Reseller, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The run is marked ``sent`` after its page's message is sent, so a consumer fast enough
    reads the run before the mark. Its page used to fail with a ConcurrentUpdate (an ERROR line
    in the local platform's first minute, and the page retried): it now advances the run."""
    stream = Stream()
    world.subscribe(world.z, world.e3_copy)
    stream.drain()
    run = ok(
        world.api.call(
            "POST", "/reconciliation-runs", world.cloud_admin, {"child_tenant_id": world.resell}
        ),
        202,
    )
    runs = composition.container().reconciliation.runs
    marked = runs.get(world.cloud, run["id"])
    assert marked is not None and marked.sent and marked.version is not None
    before_the_mark = replace(marked, sent=False, version=marked.version - 1)
    reads = iter([before_the_mark])
    real_get = runs.get
    monkeypatch.setattr(runs, "get", lambda *key: next(reads, None) or real_get(*key))

    assert Pages().drain() == 3  # each phase's page once: none failed and came back
    done = ok(world.api.call("GET", f"/reconciliation-runs/{run['id']}", world.cloud_admin))
    assert (done["status"], done["compared"]["subscriptions"]) == ("done", 1)
