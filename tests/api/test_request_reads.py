"""What one request reads (issue 12): a listing reads its tenant once, not once per item.

A subscription's status and activation date are shown as of the tenant's today (R8), which
needs the tenant's time zone: a list of six subscriptions used to read the tenant six more times,
and an account hierarchy once per node."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from tests.api.test_storefront import Shop
from tests.conftest import Api


@pytest.fixture
def gets(monkeypatch: pytest.MonkeyPatch) -> Iterator[Counter[str]]:
    """The GetItem requests the app makes, counted by table (prefix left off)."""
    from botocore.client import BaseClient

    calls: Counter[str] = Counter()
    original = BaseClient._make_api_call

    def spy(self: Any, operation: str, params: Any) -> Any:
        if self.meta.service_model.service_name == "dynamodb" and operation == "GetItem":
            calls[params["TableName"].rsplit("-", 1)[-1]] += 1
        return original(self, operation, params)

    monkeypatch.setattr(BaseClient, "_make_api_call", spy)
    yield calls


def test_r8_a_list_of_six_subscriptions_reads_the_tenant_once(api: Api, gets: Counter[str]) -> None:
    shop = Shop(api)
    for _ in range(6):
        shop.subscribe(shop.x, shop.e3)
    gets.clear()
    listed = shop.ok("GET", "/subscriptions")["items"]
    assert len(listed) == 6 and {s["status"] for s in listed} == {"active"}
    assert gets["tenants"] <= 1, gets


def test_r12_an_account_hierarchy_reads_the_tenant_once_for_all_its_nodes(
    api: Api, gets: Counter[str]
) -> None:
    shop = Shop(api)
    customers = [
        shop.ok("POST", "/accounts", {"name": f"Buyer {n}", "parent_account_id": shop.lite["id"]})
        for n in range(4)
    ]
    for customer in customers:
        shop.subscribe(customer, shop.e3)
    gets.clear()
    tree = shop.ok("GET", f"/accounts/{shop.lite['id']}/hierarchy")
    assert len(tree["children"]) == 5  # Customer X and the four
    assert all(c["subscriptions"] for c in tree["children"] if c["name"].startswith("Buyer"))
    assert gets["tenants"] <= 1, gets


def test_r10_the_catalogue_with_costs_reads_the_tenant_once(api: Api, gets: Counter[str]) -> None:
    """A tenant admin's product list shows each product's costs in the tenant's currency."""
    shop = Shop(api)
    gets.clear()
    products = shop.ok("GET", "/products")["items"]
    assert len(products) == 3 and all(p["costs"] for p in products)
    assert gets["tenants"] <= 1, gets
