"""Persistence on moto: optimistic versions, all-or-nothing transactions, no Scan, one set of
table definitions."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from datetime import date
from typing import Any

import pytest

from functions import composition
from functions.core.errors import ConcurrentUpdate
from functions.core.persistence import save, table_resource, transaction
from functions.orders.domain import ProductRef, order_for
from tests.api.test_storefront import Shop
from tests.conftest import Api, table_counts


@pytest.fixture
def dynamodb_calls(monkeypatch: pytest.MonkeyPatch) -> Iterator[Counter[str]]:
    """Every DynamoDB operation the code makes, counted by name."""
    from botocore.client import BaseClient

    calls: Counter[str] = Counter()
    original = BaseClient._make_api_call

    def spy(self: Any, operation: str, params: Any) -> Any:
        if self.meta.service_model.service_name == "dynamodb":
            calls[operation] += 1
        return original(self, operation, params)

    monkeypatch.setattr(BaseClient, "_make_api_call", spy)
    yield calls


def test_no_request_path_scans(api: Api, dynamodb_calls: Counter[str]) -> None:
    """Every route of a full storefront flow is served by Get/Query/Batch/Put/Transact only."""
    shop = Shop(api)
    sub = shop.subscribe(shop.x, shop.e3)["subscription"]
    shop.act(sub["id"], "change_quantity", quantity=4)
    for path in (
        "/accounts",
        "/products",
        "/subscriptions",
        "/orders",
        "/pricelists",
        "/tenants",
        f"/pricelists/{shop.retail['id']}/prices",
        f"/subscriptions/{sub['id']}/addons",
    ):
        shop.ok("GET", path)
    assert dynamodb_calls["Scan"] == 0
    assert dynamodb_calls["TransactWriteItems"] >= 2  # each order with its subscription


def test_stale_write_is_a_409_never_a_lost_update(api: Api) -> None:
    shop = Shop(api)
    container = composition.container()
    tenants = container.tenancy.tenants
    tenant = tenants.get(shop.tenant["id"])
    assert tenant is not None
    save(tenants.model(replace(tenant, name="first writer")))
    with pytest.raises(ConcurrentUpdate):
        save(tenants.model(replace(tenant, name="stale writer")))
    stored = tenants.get(tenant.id)
    assert stored is not None and stored.name == "first writer"


def test_a_failed_transaction_writes_nothing(api: Api) -> None:
    """R9's order and its subscription change land together or not at all."""
    shop = Shop(api)
    created = shop.subscribe(shop.z, shop.e3)
    orders = composition.container().orders
    sub = orders.subscriptions.get(shop.tenant["id"], created["subscription"]["id"])
    assert sub is not None
    shop.act(sub.id, "change_quantity", quantity=9)  # the stored version moves on
    before = table_counts()
    stale = replace(sub, quantity=1)
    ref = ProductRef(shop.e3["id"], "O365-E3", "O365-E3", "license", ["monthly"], [])
    order = order_for(
        "ord_stale",
        "quantity_change",
        stale,
        ref,
        effective=date(2026, 11, 22),
        now="now",
        created_by="t",
        previous=sub,
    )
    with pytest.raises(ConcurrentUpdate), transaction(composition.container().settings) as tx:
        tx.save(orders.subscriptions.model(stale))
        tx.save(orders.orders.model(order))
    assert table_counts() == before
    current = orders.subscriptions.get(shop.tenant["id"], sub.id)
    assert current is not None and current.quantity == 9


def test_tables_on_moto_match_the_definitions_infra_uses(aws: None) -> None:
    """Tests, the local platform and infra/ create tables from the same models."""
    for model in composition.models():
        described = model.describe_table()
        resource = table_resource(model, model.Meta.table_name)["Properties"]
        keys = sorted((k["AttributeName"], k["KeyType"]) for k in described["KeySchema"])
        assert keys == sorted((k["AttributeName"], k["KeyType"]) for k in resource["KeySchema"])
        for kind in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes"):
            indexes = {i["IndexName"] for i in described.get(kind, [])}
            assert indexes == {i["IndexName"] for i in resource.get(kind, [])}, model.base_name
        streamed = described.get("StreamSpecification", {}).get("StreamEnabled", False)
        assert streamed == model.streamed, model.base_name
        for key in resource["KeySchema"]:  # R28: every partition key leads with a tenant id
            if key["KeyType"] == "HASH":
                assert key["AttributeName"] in (
                    "tenant_id",
                    "id",
                    "list_key",  # {tenant_id}#{price_list_id}
                    "key",  # {tenant_id}#…
                    "subscription_key",  # {tenant_id}#{subscription_id}
                    "invoice_key",  # {tenant_id}#{invoice_id}
                    "run_key",  # {tenant_id}#{run_id}
                )


def test_the_write_meter_sees_the_apps_writes_and_not_a_refusal(api: Api) -> None:
    """``writes()``, what the suites use for "a refused request wrote nothing" (R29), moves
    with every committed write (a tenant's creation is a transaction with its catalogue) and
    stays put for a refused request, though its Idempotency-Key was claimed and released."""
    from tests.conftest import token, writes

    platform = token("platform_admin")
    body = {"name": "Metered", "country": "DE", "time_zone": "Europe/Berlin", "currency": "EUR"}
    before = writes()
    assert api.call("POST", "/tenants", platform, body)[0] == 201
    created = writes()
    assert created > before
    status, _ = api.call(
        "POST", "/tenants", platform, {**body, "country": "Germany"}, {"Idempotency-Key": "k1"}
    )
    assert status == 400 and writes() == created
