"""Back ordering on moto (R12-R18): real stream records of the subscriptions table, shaped as the
Lambda event source mapping delivers them, through the real handler."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError

from functions import composition
from functions.backorder.handlers import accounts_stream, backfill_jobs, subscriptions_stream
from local.streams import lambda_event, read_records, stream_arn
from tests.conftest import Api, token

E3_COST = {"monthly": "18.00"}


class Stream:
    """Reads a table's stream (the subscriptions' by default) and delivers it to its handler like
    Lambda would."""

    def __init__(self, table: str = "subscriptions", handler: Any = subscriptions_stream) -> None:
        self.handler = handler
        name = composition.container().settings.table_prefix + "-" + table
        self.arn = stream_arn(boto3.client("dynamodb"), name)
        self.streams = boto3.client("dynamodbstreams")
        self.last: str | None = None
        self.seen: list[dict[str, Any]] = []

    def new_records(self) -> list[dict[str, Any]]:
        records = read_records(self.streams, self.arn, after=self.last)
        if records:
            self.last = records[-1]["dynamodb"]["SequenceNumber"]
            self.seen.extend(records)
        return records

    def deliver(self, records: list[dict[str, Any]]) -> list[str]:
        """One batch; returns the sequence numbers the handler reported as failed."""
        result = self.handler(lambda_event(records, self.arn), None)
        return [f["itemIdentifier"] for f in result["batchItemFailures"]]

    def drain(self) -> None:
        """Deliver until no new records appear (mirrors cascade up tier by tier, R17)."""
        for _ in range(20):
            records = self.new_records()
            if not records:
                return
            assert self.deliver(records) == []
        raise AssertionError("the stream did not settle")


class QueueDrain:
    """Delivers a queue's messages to its handler like Lambda would, until empty."""

    def __init__(self, queue: str, handler: Any, *, rounds: int = 100) -> None:
        self.sqs = boto3.client("sqs")
        self.queue, self.handler, self.rounds = queue, handler, rounds
        name = composition.container().settings.queue_name(queue)
        self.url = self.sqs.get_queue_url(QueueName=name)["QueueUrl"]

    def drain(self) -> int:
        handled = 0
        for _ in range(self.rounds):
            messages = self.sqs.receive_message(QueueUrl=self.url, MaxNumberOfMessages=1).get(
                "Messages", []
            )
            if not messages:
                return handled
            event = {
                "Records": [
                    {
                        "messageId": m["MessageId"],
                        "receiptHandle": m["ReceiptHandle"],
                        "body": m["Body"],
                        "attributes": {},
                        "messageAttributes": {},
                        "eventSource": "aws:sqs",
                        "eventSourceARN": f"arn:aws:sqs:us-east-1:123456789012:{self.queue}",
                    }
                    for m in messages
                ]
            }
            assert self.handler(event, None)["batchItemFailures"] == []
            for m in messages:
                self.sqs.delete_message(QueueUrl=self.url, ReceiptHandle=m["ReceiptHandle"])
            handled += len(messages)
        raise AssertionError(f"the {self.queue} queue did not drain")


class Backfill(QueueDrain):
    """The backfill queue (R11)."""

    def __init__(self) -> None:
        from functions.backorder.schemas import BACKFILL_QUEUE

        super().__init__(BACKFILL_QUEUE, backfill_jobs)


def ok(result: tuple[int, Any], status: int = 200) -> Any:
    code, body = result
    assert code == status, body
    return body


def make_tier(api: Api, parent_admin: str, name: str, price_list_id: str) -> dict[str, Any]:
    child = ok(
        api.call(
            "POST",
            "/tenants",
            parent_admin,
            {
                "name": name,
                "country": "DE",
                "time_zone": "Europe/Berlin",
                "price_list_id": price_list_id,
            },
        ),
        201,
    )
    return child


def activate(api: Api, provider_admin: str, tenant_id: str) -> Any:
    """R11: the provider activates back ordering for its child."""
    return ok(api.call("POST", f"/tenants/{tenant_id}/backordering", provider_admin))


class Reseller:
    """Cloud (root) → Cloud Resell (back ordering on), with SPEC §1's accounts in Cloud Resell."""

    def __init__(self, api: Api) -> None:
        self.api = api
        root = ok(
            api.call(
                "POST",
                "/tenants",
                token("platform_admin"),
                {"name": "Cloud", "country": "DE", "time_zone": "Europe/Berlin", "currency": "EUR"},
            ),
            201,
        )
        self.cloud = root["id"]
        self.cloud_admin = token("tenant_admin", self.cloud)
        ok(
            api.call(
                "POST", "/pricelists", self.cloud_admin, {"name": "Retail", "currency": "EUR"}
            ),
            201,
        )
        self.resell_list = self.post(
            self.cloud_admin, "/pricelists", {"name": "Resell", "currency": "EUR"}
        )["id"]
        self.e3 = self.post(
            self.cloud_admin,
            "/products",
            {
                "sku": "E3",
                "name": "Office 365 E3",
                "type": "license",
                "billing_cycles": ["monthly"],
                "unit": "seat",
                "costs": E3_COST,
            },
        )
        self.teams = self.post(
            self.cloud_admin,
            "/products",
            {
                "sku": "TEAMS",
                "name": "Teams",
                "type": "addon",
                "billing_cycles": ["monthly"],
                "unit": "seat",
                "addon_for": [self.e3["id"]],
            },
        )
        for product, price in ((self.e3, "23.50"), (self.teams, "6.00")):
            ok(
                api.call(
                    "POST",
                    f"/pricelists/{self.resell_list}/prices",
                    self.cloud_admin,
                    {"product_id": product["id"], "billing_cycle": "monthly", "price": price},
                )
            )
        child = make_tier(api, self.cloud_admin, "Cloud Resell", self.resell_list)
        self.resell = child["id"]
        self.reseller_account = child["reseller_account_id"]
        self.admin = token("tenant_admin", self.resell)
        retail = self.post(self.admin, "/pricelists", {"name": "Retail", "currency": "EUR"})
        catalogue = {p["sku"]: p for p in ok(api.call("GET", "/products", self.admin))["items"]}
        self.e3_copy, self.teams_copy = catalogue["E3"], catalogue["TEAMS"]
        self.own = self.post(
            self.admin,
            "/products",
            {
                "sku": "SUPPORT",
                "name": "Support",
                "type": "license",
                "billing_cycles": ["monthly"],
                "unit": "h",
            },
        )
        for product, amount in (
            (self.e3_copy, {"markup_percent": "20"}),
            (self.teams_copy, {"markup_percent": "50"}),
            (self.own, {"price": "99.00"}),
        ):
            ok(
                api.call(
                    "POST",
                    f"/pricelists/{retail['id']}/prices",
                    self.admin,
                    {"product_id": product["id"], "billing_cycle": "monthly", **amount},
                )
            )
        self.lite = self.post(
            self.admin, "/accounts", {"name": "Cloud Lite", "kind": "lite_reseller"}
        )
        self.x = self.post(
            self.admin,
            "/accounts",
            {"name": "Cloud Customer X", "parent_account_id": self.lite["id"]},
        )
        self.z = self.post(self.admin, "/accounts", {"name": "Cloud End-Customer Z"})

    def go_live(self) -> Any:
        return activate(self.api, self.cloud_admin, self.resell)

    def post(self, tok: str, path: str, body: dict[str, Any]) -> Any:
        return ok(self.api.call("POST", path, tok, body), 201)

    def subscribe(self, account: Any, product: Any, quantity: int = 10) -> Any:
        return self.post(
            self.admin,
            "/subscriptions",
            {
                "account_id": account["id"],
                "product_id": product["id"],
                "billing_cycle": "monthly",
                "quantity": quantity,
            },
        )["subscription"]

    def act(self, sub_id: str, action: str, **extra: Any) -> Any:
        return ok(
            self.api.call(
                "POST", f"/subscriptions/{sub_id}/actions", self.admin, {"action": action, **extra}
            )
        )

    def provider_orders(self) -> list[Any]:
        path = f"/orders?account_id={self.reseller_account}&limit=100"
        return ok(self.api.call("GET", path, self.cloud_admin))["items"]

    def provider_subscriptions(self) -> list[Any]:
        return ok(self.api.call("GET", "/subscriptions?limit=100", self.cloud_admin))["items"]


@pytest.fixture
def world(api: Api) -> Reseller:
    reseller = Reseller(api)
    reseller.go_live()
    return reseller


def sales(world: Reseller) -> dict[str, Any]:
    """X: E3 ×10 with a Teams add-on, quantity to 12, add-on removed; Z: the reseller's own
    product (never mirrored)."""
    base = world.subscribe(world.x, world.e3_copy)
    addon = world.post(
        world.admin,
        f"/subscriptions/{base['id']}/addons",
        {"product_id": world.teams_copy["id"], "quantity": 10},
    )["subscription"]
    world.act(base["id"], "change_quantity", quantity=12)
    world.act(addon["id"], "cancel")
    own = world.subscribe(world.z, world.own, 2)
    return {"base": base, "addon": addon, "own": own}


def test_r12_r13_r14_sales_appear_in_the_providers_bss_with_the_hierarchy(world: Reseller) -> None:
    stream = Stream()
    subs = sales(world)
    stream.drain()
    mirrors = {m["source"]["subscription_id"]: m for m in world.provider_subscriptions()}
    assert set(mirrors) == {subs["base"]["id"], subs["addon"]["id"]}  # not the own product
    base = mirrors[subs["base"]["id"]]
    assert (base["product_id"], base["quantity"], base["unit_price"]) == (
        world.e3["id"],
        12,
        "23.50",
    )
    assert base["mirrored"] and base["status"] == "active"
    addon = mirrors[subs["addon"]["id"]]
    assert addon["parent_subscription_id"] == base["id"] and addon["status"] == "cancelled"
    # R12: Cloud Resell → Cloud Lite → X, billed to the tenant reseller
    x_mirror = ok(world.api.call("GET", f"/accounts/{base['account_id']}", world.cloud_admin))
    lite_mirror = ok(
        world.api.call("GET", f"/accounts/{x_mirror['parent_account_id']}", world.cloud_admin)
    )
    assert (x_mirror["name"], lite_mirror["name"]) == ("Cloud Customer X", "Cloud Lite")
    assert lite_mirror["parent_account_id"] == world.reseller_account
    assert x_mirror["mirrored"] and x_mirror["bill_to_account_id"] == world.reseller_account
    # R14: one order of the provider's own per mirrored change, at the reseller's prices
    orders = world.provider_orders()
    assert sorted(o["type"] for o in orders) == sorted(
        ["new", "addon_added", "quantity_change", "addon_removed"]
    )
    change = next(o for o in orders if o["type"] == "quantity_change")
    assert (change["total"], change["end_customer_account_id"]) == ("282.00", x_mirror["id"])


def test_r18_duplicated_reordered_and_replayed_records_change_nothing(world: Reseller) -> None:
    stream = Stream()
    subs = sales(world)
    stream.drain()
    before = (world.provider_subscriptions(), world.provider_orders())
    records = list(stream.seen)
    assert stream.deliver(list(reversed(records))) == []  # an older version after a newer one
    assert stream.deliver(records + records) == []  # everything twice
    assert stream.deliver(records[len(records) // 2 :]) == []  # a replay from a checkpoint
    after = (world.provider_subscriptions(), world.provider_orders())
    assert [o["id"] for o in after[1]] == [o["id"] for o in before[1]]
    base = next(m for m in after[0] if m["source"]["subscription_id"] == subs["base"]["id"])
    assert base["quantity"] == 12 and base["version"] == next(
        m["version"] for m in before[0] if m["id"] == base["id"]
    )


def test_r18_a_failing_record_is_reported_and_converges_on_retry(
    world: Reseller, monkeypatch: pytest.MonkeyPatch
) -> None:
    stream = Stream()
    sales(world)
    records = stream.new_records()
    repository = composition.container().backorder.repository
    real_put = repository.put_order_once
    calls = {"n": 0}

    def flaky(order: Any) -> bool:
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("DynamoDB throttled")
        return real_put(order)

    monkeypatch.setattr(repository, "put_order_once", flaky)
    failed = stream.deliver(records)
    assert len(failed) == 1  # reported, not swallowed; the others went on
    monkeypatch.setattr(repository, "put_order_once", real_put)
    first = next(i for i, r in enumerate(records) if r["dynamodb"]["SequenceNumber"] == failed[0])
    assert stream.deliver(records[first:]) == []  # Lambda retries from the lowest failure
    assert len(world.provider_orders()) == 4


def test_r15_r16_mirrors_are_locked_in_the_providers_bss(world: Reseller) -> None:
    stream = Stream()
    subs = sales(world)
    stream.drain()
    base = next(
        m
        for m in world.provider_subscriptions()
        if m["source"]["subscription_id"] == subs["base"]["id"]
    )
    for action, extra in [
        ("change_quantity", {"quantity": 1}),
        ("suspend", {}),
        ("renew", {}),
        ("cancel", {}),
        ("upgrade", {"product_id": world.e3["id"]}),
    ]:
        status, error = world.api.call(
            "POST",
            f"/subscriptions/{base['id']}/actions",
            world.cloud_admin,
            {"action": action, **extra},
        )
        assert (status, error["error"]["code"]) == (409, "locked_by_reseller"), action
    status, error = world.api.call(
        "POST",
        f"/subscriptions/{base['id']}/addons",
        world.cloud_admin,
        {"product_id": world.teams["id"]},
    )
    assert (status, error["error"]["code"]) == (409, "locked_by_reseller")
    status, error = world.api.call(
        "POST",
        "/subscriptions",
        world.cloud_admin,
        {
            "account_id": base["account_id"],
            "product_id": world.e3["id"],
            "billing_cycle": "monthly",
        },
    )
    assert (status, error["error"]["code"]) == (409, "locked_by_reseller")  # R16
    status, error = world.api.call(
        "PATCH", f"/accounts/{base['account_id']}", world.cloud_admin, {"name": "Renamed"}
    )
    assert (status, error["error"]["code"]) == (409, "locked_by_reseller")
    unchanged = ok(world.api.call("GET", f"/subscriptions/{base['id']}", world.cloud_admin))
    assert unchanged == base
    # R15: contacts and notes are the provider's own, allowed on a mirror
    mirror_account = base["account_id"]
    contact = world.post(
        world.cloud_admin,
        f"/accounts/{mirror_account}/contacts",
        {"name": "Account manager at X", "role": "commercial"},
    )
    world.post(world.cloud_admin, f"/accounts/{mirror_account}/notes", {"text": "Upsell Teams"})
    contacts = ok(world.api.call("GET", f"/accounts/{mirror_account}/contacts", world.cloud_admin))
    notes = ok(world.api.call("GET", f"/accounts/{mirror_account}/notes", world.cloud_admin))
    assert [c["id"] for c in contacts["items"]] == [contact["id"]]
    assert [n["text"] for n in notes["items"]] == ["Upsell Teams"]
    source_contacts = ok(world.api.call("GET", f"/accounts/{world.x['id']}/contacts", world.admin))
    assert source_contacts["items"] == []  # not pushed down to the reseller


def test_r11_nothing_flows_up_before_activation_then_the_backfill_mirrors_it(
    api: Api,
) -> None:
    world = Reseller(api)
    stream = Stream()
    subs = sales(world)
    stream.drain()
    assert world.provider_orders() == [] and world.provider_subscriptions() == []
    activation = world.go_live()
    assert activation["tenant"]["backordering"] is True
    assert activation["activated_at"] == activation["tenant"]["backordering_activated_at"]
    assert activation["backfill"]["status"] == "queued"  # off the request path
    assert world.provider_orders() == []
    Backfill().drain()
    state = ok(world.api.call("GET", f"/tenants/{world.resell}/backordering", world.cloud_admin))
    assert state["backfill"]["status"] == "done"
    assert state["backfill"]["mirrored"] == 2  # E3 and its add-on; never the own product
    mirrors = {m["source"]["subscription_id"]: m for m in world.provider_subscriptions()}
    assert set(mirrors) == {subs["base"]["id"], subs["addon"]["id"]}
    assert mirrors[subs["base"]["id"]]["quantity"] == 12
    assert sorted(o["type"] for o in world.provider_orders()) == ["new", "new"]
    again = world.go_live()  # a no-op once the backfill is done: nothing doubles
    assert again["activated_at"] == activation["activated_at"]
    assert again["backfill"] == state["backfill"]
    assert Backfill().drain() == 0
    assert len(world.provider_orders()) == 2
    world.act(subs["base"]["id"], "change_quantity", quantity=15)  # from now on: the stream
    stream.drain()
    assert sorted(o["type"] for o in world.provider_orders()) == ["new", "new", "quantity_change"]


def test_r12_r15_the_provider_sees_the_hierarchy_of_its_reseller(world: Reseller) -> None:
    stream = Stream()
    subs = sales(world)
    stream.drain()
    tree = ok(
        world.api.call("GET", f"/accounts/{world.reseller_account}/hierarchy", world.cloud_admin)
    )
    assert (tree["name"], tree["kind"], tree["mirrored"]) == (
        "Cloud Resell",
        "tenant_reseller",
        False,
    )
    [lite] = tree["children"]
    [x] = lite["children"]
    assert (lite["name"], lite["mirrored"], x["name"]) == ("Cloud Lite", True, "Cloud Customer X")
    assert x["source"] == {"tenant_id": world.resell, "account_id": world.x["id"]}
    assert {s["quantity"] for s in x["subscriptions"]} == {12, 10}
    assert all(s["mirrored"] for s in x["subscriptions"])
    own_view = ok(world.api.call("GET", f"/accounts/{world.lite['id']}/hierarchy", world.admin))
    assert [c["name"] for c in own_view["children"]] == ["Cloud Customer X"]
    assert not own_view["mirrored"] and subs["base"]["id"] in {
        s["id"] for s in own_view["children"][0]["subscriptions"]
    }


def sub_tier(
    api: Api, upper_admin: str, upper_product: dict[str, Any], name: str, price: str
) -> tuple[str, str, dict[str, Any]]:
    """A child tenant ``name`` of the upper tier, buying its ``upper_product`` at ``price``
    (monthly), back ordering on: its id, its admin's token and its copy of the product."""
    price_list = ok(
        api.call("POST", "/pricelists", upper_admin, {"name": f"{name} list", "currency": "EUR"}),
        201,
    )
    ok(
        api.call(
            "POST",
            f"/pricelists/{price_list['id']}/prices",
            upper_admin,
            {"product_id": upper_product["id"], "billing_cycle": "monthly", "price": price},
        )
    )
    tier = make_tier(api, upper_admin, name, price_list["id"])
    activate(api, upper_admin, tier["id"])
    admin = token("tenant_admin", tier["id"])
    return tier["id"], admin, ok(api.call("GET", "/products", admin))["items"][0]


def retail_customer(api: Api, admin: str, product: dict[str, Any], price: str) -> dict[str, Any]:
    """A retail list selling ``product`` at ``price`` (monthly) and its customer, Deep Customer."""
    retail = ok(api.call("POST", "/pricelists", admin, {"name": "R", "currency": "EUR"}), 201)
    ok(
        api.call(
            "POST",
            f"/pricelists/{retail['id']}/prices",
            admin,
            {"product_id": product["id"], "billing_cycle": "monthly", "price": price},
        )
    )
    return ok(api.call("POST", "/accounts", admin, {"name": "Deep Customer"}), 201)


def test_r17_a_sale_four_tiers_down_reaches_the_root_with_its_hierarchy(world: Reseller) -> None:
    """root (Cloud) → T1 (Cloud Resell) → T2 → T3: each tier prices the mirror at its child's
    list and writes its own order."""
    api = world.api
    upper_admin, upper_product = world.admin, world.e3_copy
    tiers = [world.resell]
    for depth in (2, 3):
        tier_id, upper_admin, upper_product = sub_tier(
            api, upper_admin, upper_product, f"T{depth}", f"{20 + depth}.00"
        )
        tiers.append(tier_id)
    customer = retail_customer(api, upper_admin, upper_product, "40.00")
    stream = Stream()
    ok(
        api.call(
            "POST",
            "/subscriptions",
            upper_admin,
            {
                "account_id": customer["id"],
                "product_id": upper_product["id"],
                "billing_cycle": "monthly",
                "quantity": 4,
            },
        ),
        201,
    )
    stream.drain()
    # every tier above T3 holds one mirror and one order, priced at its child's list
    expected = {tiers[1]: "23.00", tiers[0]: "22.00", world.cloud: "23.50"}
    for tenant_id, price in expected.items():
        admin = token("tenant_admin", tenant_id)
        mirrors = [
            s for s in ok(api.call("GET", "/subscriptions", admin))["items"] if s["mirrored"]
        ]
        assert [(m["quantity"], m["unit_price"]) for m in mirrors] == [(4, price)], tenant_id
        orders = [
            o
            for o in ok(api.call("GET", "/orders", admin))["items"]
            if o["created_by"] == "back-ordering"
        ]
        assert [o["type"] for o in orders] == ["new"], tenant_id
    root_mirror = next(s for s in world.provider_subscriptions() if s["mirrored"])
    names = []
    account = ok(api.call("GET", f"/accounts/{root_mirror['account_id']}", world.cloud_admin))
    while account["mirrored"]:
        names.append(account["name"])
        account = ok(
            api.call("GET", f"/accounts/{account['parent_account_id']}", world.cloud_admin)
        )
    assert names == ["Deep Customer", "T3", "T2"] and account["id"] == world.reseller_account


def test_r12_a_mirrored_accounts_synced_fields_follow_its_source(world: Reseller) -> None:
    """Name, email, accounting number and address follow; an older record replayed after a
    newer one changes nothing (R18); an account never sold to gets no mirror."""
    accounts, subscriptions = Stream("accounts", accounts_stream), Stream()
    accounts.drain()
    world.subscribe(world.x, world.e3_copy)
    subscriptions.drain()
    for name in ("X Renamed", "X GmbH"):
        ok(world.api.call("PATCH", f"/accounts/{world.x['id']}", world.admin, {"name": name}))
    ok(
        world.api.call(
            "PATCH",
            f"/accounts/{world.x['id']}",
            world.admin,
            {"email": "billing@x.example", "accounting_number": "D-4711"},
        )
    )
    ok(world.api.call("PATCH", f"/accounts/{world.z['id']}", world.admin, {"name": "Z2"}))
    records = accounts.new_records()
    assert accounts.deliver(records) == []
    assert accounts.deliver(list(reversed(records))) == []  # replayed, oldest last

    def mirrors() -> dict[str, Any]:
        listed = ok(world.api.call("GET", "/accounts?limit=100", world.cloud_admin))["items"]
        return {a["source"]["account_id"]: a for a in listed if a["mirrored"]}

    mirror = mirrors()[world.x["id"]]
    assert (mirror["name"], mirror["email"], mirror["accounting_number"]) == (
        "X GmbH",
        "billing@x.example",
        "D-4711",
    )
    assert world.z["id"] not in mirrors()  # R12: copied on its first paid subscription only
    assert mirror["currency"] == "EUR"
    assert mirror["bill_to_account_id"] == world.reseller_account


def test_r11_the_backfill_runs_page_by_page_and_a_duplicate_or_lost_message_is_harmless(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    from functions.backorder import services

    monkeypatch.setattr(services, "BACKFILL_PAGE", 2)
    world = Reseller(api)
    for quantity in range(1, 6):
        world.subscribe(world.z, world.e3_copy, quantity)
    world.go_live()
    queue = Backfill()
    [first] = queue.sqs.receive_message(QueueUrl=queue.url)["Messages"]
    event = {"Records": [{"messageId": "m1", "body": first["Body"], "attributes": {}}]}
    assert backfill_jobs(event, None)["batchItemFailures"] == []
    assert backfill_jobs(event, None)["batchItemFailures"] == []  # delivered twice: no-op
    queue.sqs.delete_message(QueueUrl=queue.url, ReceiptHandle=first["ReceiptHandle"])
    # the second page's message is lost; asking again re-sends it
    queue.sqs.purge_queue(QueueUrl=queue.url)
    state = ok(world.api.call("GET", f"/tenants/{world.resell}/backordering", world.cloud_admin))
    assert (state["backfill"]["status"], state["backfill"]["pages"]) == ("running", 1)
    world.go_live()
    assert queue.drain() == 2  # pages 2 and 3 (of 2, 2 and 1 subscriptions)
    state = ok(world.api.call("GET", f"/tenants/{world.resell}/backordering", world.cloud_admin))
    assert state["backfill"]["status"] == "done"
    assert (state["backfill"]["processed"], state["backfill"]["mirrored"]) == (5, 5)
    orders = world.provider_orders()
    assert len(orders) == 5 and {o["type"] for o in orders} == {"new"}
    assert sorted(m["quantity"] for m in world.provider_subscriptions()) == [1, 2, 3, 4, 5]


def test_r11_a_backfill_that_crashes_before_queueing_its_next_page_resumes_on_retry(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The page is saved, then sending the next page's message fails: the message fails, SQS
    delivers it again, and the retry sends the next page instead of redoing this one."""
    from functions.backorder import services
    from functions.core.queues import Queue

    monkeypatch.setattr(services, "BACKFILL_PAGE", 2)
    world = Reseller(api)
    for quantity in range(1, 4):
        world.subscribe(world.z, world.e3_copy, quantity)
    world.go_live()
    queue = Backfill()
    [first] = queue.sqs.receive_message(QueueUrl=queue.url)["Messages"]
    event = {"Records": [{"messageId": "m1", "body": first["Body"], "attributes": {}}]}
    send = Queue.send

    def unreachable(self: Queue, body: Any) -> None:
        raise ConnectionError("SQS unreachable")

    monkeypatch.setattr(Queue, "send", unreachable)
    with pytest.raises(BatchProcessingError):  # the whole batch failed: Lambda retries it
        backfill_jobs(event, None)
    monkeypatch.setattr(Queue, "send", send)
    assert backfill_jobs(event, None)["batchItemFailures"] == []  # the retry: re-sends page 2
    queue.sqs.delete_message(QueueUrl=queue.url, ReceiptHandle=first["ReceiptHandle"])
    assert queue.drain() == 1
    state = ok(world.api.call("GET", f"/tenants/{world.resell}/backordering", world.cloud_admin))
    assert (state["backfill"]["status"], state["backfill"]["pages"]) == ("done", 2)
    assert len(world.provider_orders()) == 3


def test_r11_a_backfill_page_whose_sent_mark_moved_under_it_still_advances_in_one_go(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The job changes between the page's read and its save (the sender marks it ``next_sent``
    after sending, so a fast consumer reads it before): the page is not lost as a "duplicate",
    and it no longer fails to be redone either (an ERROR line in ``make run``'s first seconds):
    it advances the job as it now is; the message delivered again is a no-op."""
    from dataclasses import replace

    from functions.backorder.services import Replicator

    world = Reseller(api)
    world.subscribe(world.z, world.e3_copy)
    world.go_live()
    queue = Backfill()
    [message] = queue.sqs.receive_message(QueueUrl=queue.url)["Messages"]
    event = {"Records": [{"messageId": "m1", "body": message["Body"], "attributes": {}}]}
    service = composition.container().backordering
    replicate = Replicator.replicate

    def bump_then_replicate(self: Replicator, sub: Any) -> str:
        monkeypatch.setattr(Replicator, "replicate", replicate)
        job = service.jobs.get(world.cloud, _job_id(world))
        assert job is not None
        service.jobs.save(replace(job, next_sent=not job.next_sent))
        return replicate(self, sub)

    monkeypatch.setattr(Replicator, "replicate", bump_then_replicate)
    assert backfill_jobs(event, None)["batchItemFailures"] == []
    state = ok(world.api.call("GET", f"/tenants/{world.resell}/backordering", world.cloud_admin))
    assert (state["backfill"]["status"], state["backfill"]["mirrored"]) == ("done", 1)
    assert backfill_jobs(event, None)["batchItemFailures"] == []  # delivered again: a no-op
    assert len(world.provider_orders()) == 1


def _job_id(world: Reseller) -> str:
    from functions.backorder.services import backfill_job_id

    child = composition.container().tenancy.tenants.get(world.resell)
    assert child is not None
    return backfill_job_id(child)
