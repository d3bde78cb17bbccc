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
from functions.core.persistence import table_resource
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
    container.tenancy.units.save(replace(tenant, name="first writer"))
    with pytest.raises(ConcurrentUpdate):
        container.tenancy.units.save(replace(tenant, name="stale writer"))
    stored = tenants.get(tenant.id)
    assert stored is not None and stored.name == "first writer"


def test_r5_margin_alerts_over_a_stale_product_are_a_409_not_a_500(api: Api) -> None:
    """Two price changes on one product at once: the later alert write sees the product moved on
    (its version) and answers 409 (R29), never an unhandled error."""
    shop = Shop(api)
    catalogue = composition.container().catalogue
    product = catalogue.products.get(shop.tenant["id"], shop.e3["id"])
    assert product is not None
    catalogue.units.save(replace(product, name="renamed meanwhile"))
    with pytest.raises(ConcurrentUpdate):
        catalogue.products.set_margin_alerts(product, [])
    stored = catalogue.products.get(product.tenant_id, product.id)
    assert stored is not None and stored.name == "renamed meanwhile"


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
    with pytest.raises(ConcurrentUpdate), orders.units() as uow:
        uow.save(stale)
        uow.save(order)
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
                    "report_key",  # {tenant_id}#{YYYY-MM}
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


def _order(order_id: str, account_id: str, reseller_id: str | None) -> Any:
    from decimal import Decimal

    from functions.orders.domain import Order

    return Order(
        id=order_id,
        number=f"N-{order_id}",
        tenant_id="tnt_t",
        account_id=account_id,
        subscription_id="sub_s",
        type="new",
        date="2026-11-22",
        currency="EUR",
        lines=[],
        total=Decimal("1.00"),
        created_at="2026-11-22T10:00:00Z",
        created_by="t",
        price_list_id="prl_p",
        reseller_account_id=reseller_id,
    )


def test_r14_an_order_of_its_resellers_own_account_has_one_index_copy() -> None:
    """Issue 12: a provider's order of a mirrored change (bought by the tenant reseller account,
    in its own scope) and a lite reseller's own order are in ``by_account`` only; an order of a
    reseller's customer in both indexes; a direct customer's in ``by_account``."""
    from functions.backorder.domain import mirror_subscription, provider_order
    from functions.orders.adapters import OrderModel
    from tests.unit.test_backorder_domain import E3, LINK, SUB

    own = OrderModel.of(_order("ord_1", "acc_r", "acc_r"))
    customers = OrderModel.of(_order("ord_2", "acc_c", "acc_r"))
    direct = OrderModel.of(_order("ord_3", "acc_d", None))
    assert (own.account_key, own.reseller_key) == ("tnt_t#acc_r", None)
    assert (customers.account_key, customers.reseller_key) == ("tnt_t#acc_c", "tnt_t#acc_r")
    assert (direct.account_key, direct.reseller_key) == ("tnt_t#acc_d", None)

    mirror = mirror_subscription(LINK, SUB, E3, unit_price=SUB.unit_price, now="now")
    order = provider_order(LINK, SUB, mirror, E3, now="now")
    assert order.account_id == order.reseller_account_id == LINK.reseller_account_id
    item = OrderModel.of(order)
    assert item.account_key == f"{LINK.provider_tenant_id}#{LINK.reseller_account_id}"
    assert item.reseller_key is None


def test_r10_a_resellers_order_list_holds_its_own_and_its_customers_orders_in_id_order(
    aws: None,
) -> None:
    """``GET /orders`` as a reseller: its customers' orders (``by_reseller``) and its own
    (``by_account`` only), merged in id order over pages; one stored before its own orders left
    ``by_reseller`` (in both indexes) is listed once; others' orders are not listed."""
    from functions.core.persistence import put_if
    from functions.orders.adapters import OrderModel, OrderRepository

    plan = {
        "ord_01": ("acc_c", "acc_r"),
        "ord_02": ("acc_r", "acc_r"),
        "ord_03": ("acc_r", "acc_r"),
        "ord_04": ("acc_c", "acc_r"),
        "ord_05": ("acc_r", "acc_r"),
        "ord_06": ("acc_d", None),  # a direct customer's
        "ord_07": ("acc_c2", "acc_r2"),  # another reseller's customer's
        "ord_08": ("acc_r", "acc_r"),
        "ord_09": ("acc_c", "acc_r"),
    }
    for order_id, (account, reseller) in plan.items():
        assert put_if(OrderModel.of(_order(order_id, account, reseller)), None)
    legacy = OrderModel.of(_order("ord_10", "acc_r", "acc_r"))
    legacy.reseller_key = "tnt_t#acc_r"  # as written before: in both indexes
    legacy.save()
    expected = [o for o, (_, r) in plan.items() if r == "acc_r"] + ["ord_10"]
    repository = OrderRepository()
    for limit in (1, 2, 3, 4, 100):
        seen: list[str] = []
        cursor = None
        while True:
            page = repository.for_reseller("tnt_t", "acc_r", limit, cursor)
            assert len(page.items) == limit or page.next_cursor is None
            seen += [order.id for order in page.items]
            cursor = page.next_cursor
            if cursor is None:
                break
        assert seen == expected, limit
    everything = repository.for_reseller("tnt_t", "acc_r", 100, None)
    assert [o.reseller_account_id for o in everything.items] == ["acc_r"] * len(expected)
    assert [o.id for o in repository.for_reseller("tnt_t", "acc_r2", 10, None).items] == ["ord_07"]
    assert [o.id for o in repository.for_account("tnt_t", "acc_r", 10, None).items] == [
        "ord_02",
        "ord_03",
        "ord_05",
        "ord_08",
        "ord_10",
    ]
