"""Storefront behaviour through the HTTP API (chalice.test.Client on moto): R3, R8-R10, §9."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest

from tests.conftest import Api, token, writes


class Shop:
    """A root tenant with a retail list, a reseller list, two products and three accounts."""

    def __init__(self, api: Api) -> None:
        self.api = api
        status, tenant = api.call(
            "POST",
            "/tenants",
            token("platform_admin"),
            {"name": "Cloud", "country": "DE", "time_zone": "Europe/Berlin", "currency": "EUR"},
        )
        assert status == 201, tenant
        self.tenant = tenant
        self.admin = token("tenant_admin", tenant["id"])
        self.retail = self.ok("POST", "/pricelists", {"name": "Retail", "currency": "EUR"})
        self.reseller_list = self.ok("POST", "/pricelists", {"name": "Resell", "currency": "EUR"})
        self.e3 = self.product("O365-E3", "license", ["monthly", "annual"], {"monthly": "18.00"})
        self.e5 = self.product("O365-E5", "license", ["monthly"], {"monthly": "30.00"})
        self.teams = self.product(
            "TEAMS-PHONE", "addon", ["monthly"], {"monthly": "6.00"}, addon_for=[self.e3["id"]]
        )
        for product, cycle, amount in [
            (self.e3, "monthly", "20.00"),
            (self.e3, "annual", "228.00"),
            (self.e5, "monthly", "35.00"),
            (self.teams, "monthly", "8.00"),
        ]:
            self.price(self.retail, product, cycle, price=amount)
        self.price(self.reseller_list, self.e3, "monthly", markup_percent="5")
        self.lite = self.ok(
            "POST",
            "/accounts",
            {
                "name": "Cloud Lite",
                "kind": "lite_reseller",
                "price_list_id": self.reseller_list["id"],
            },
        )
        self.x = self.ok(
            "POST", "/accounts", {"name": "Customer X", "parent_account_id": self.lite["id"]}
        )
        self.z = self.ok("POST", "/accounts", {"name": "End-Customer Z"})

    def ok(self, method: str, path: str, body: Any = None, tok: str | None = None) -> Any:
        status, payload = self.api.call(method, path, tok or self.admin, body)
        assert status in (200, 201), (method, path, status, payload)
        return payload

    def product(
        self, sku: str, kind: str, cycles: list[str], costs: dict[str, str], **extra: Any
    ) -> Any:
        return self.ok(
            "POST",
            "/products",
            {
                "sku": sku,
                "name": sku,
                "type": kind,
                "billing_cycles": cycles,
                "unit": "seat",
                "costs": costs,
                **extra,
            },
        )

    def price(self, price_list: Any, product: Any, cycle: str, **amount: str) -> Any:
        return self.ok(
            "POST",
            f"/pricelists/{price_list['id']}/prices",
            {"product_id": product["id"], "billing_cycle": cycle, **amount},
        )

    def subscribe(self, account: Any, product: Any, tok: str | None = None, **extra: Any) -> Any:
        body = {
            "account_id": account["id"],
            "product_id": product["id"],
            "billing_cycle": "monthly",
            "quantity": 3,
            **extra,
        }
        return self.ok("POST", "/subscriptions", body, tok)

    def act(
        self, sub_id: str, action: str, tok: str | None = None, **extra: Any
    ) -> tuple[int, Any]:
        return self.api.call(
            "POST",
            f"/subscriptions/{sub_id}/actions",
            tok or self.admin,
            {"action": action, **extra},
        )


@pytest.fixture
def shop(api: Api) -> Shop:
    return Shop(api)


def today() -> date:
    from functions.core.clock import today_in

    return today_in("Europe/Berlin")


def test_r8_r9_new_subscription_writes_its_order_at_the_buyers_price(shop: Shop) -> None:
    created = shop.subscribe(shop.z, shop.e3)
    sub, order = created["subscription"], created["order"]
    start = today()
    assert sub["status"] == "active" and sub["start_date"] == start.isoformat()
    assert sub["activation_date"] == start.isoformat()
    assert sub["unit_price"] == "20.00" and sub["paid"] and sub["currency"] == "EUR"
    assert (order["type"], order["date"], order["total"]) == ("new", start.isoformat(), "60.00")
    assert order["subscription_id"] == sub["id"] and order["lines"][0]["quantity"] == 3
    listed = shop.ok("GET", f"/orders?account_id={shop.z['id']}")["items"]
    assert [o["id"] for o in listed] == [order["id"]]


def test_r2_r20_lite_reseller_customers_buy_at_the_lite_resellers_list(shop: Shop) -> None:
    order = shop.subscribe(shop.x, shop.e3)["order"]
    assert order["lines"][0]["unit_price"] == "18.90"  # cost 18.00 + 5 %
    assert order["price_list_id"] == shop.reseller_list["id"]


def test_r8_future_start_is_inactive_with_end_date_one_term_later(shop: Shop) -> None:
    start = today() + timedelta(days=20)
    sub = shop.subscribe(
        shop.z, shop.e3, start_date=start.isoformat(), billing_cycle="annual", quantity=1
    )["subscription"]
    assert sub["status"] == "inactive" and sub["activation_date"] is None
    expected_end = date(start.year + 1, start.month, min(start.day, 28)) - timedelta(days=1)
    if start.day > 28:  # an anniversary that exists in next year's month
        expected_end = start.replace(year=start.year + 1) - timedelta(days=1)
    assert sub["end_date"] == expected_end.isoformat()
    assert sub["unit_price"] == "228.00"


def test_r9_each_action_writes_exactly_one_order_in_the_same_transaction(shop: Shop) -> None:
    sub_id = shop.subscribe(shop.z, shop.e3)["subscription"]["id"]
    steps = [
        ("change_quantity", {"quantity": 5}, "quantity_change", "100.00"),
        ("upgrade", {"product_id": shop.e5["id"]}, "upgrade", "175.00"),
        ("downgrade", {"product_id": shop.e3["id"]}, "downgrade", "100.00"),
        ("suspend", {}, "suspend", "0.00"),
        ("resume", {}, "resume", "100.00"),
        ("renew", {}, "renew", "100.00"),
        ("cancel", {}, "cancel", "0.00"),
    ]
    for action, extra, order_type, total in steps:
        status, result = shop.act(sub_id, action, **extra)
        assert status == 200, (action, result)
        assert (result["order"]["type"], result["order"]["total"]) == (order_type, total)
    orders = shop.ok("GET", f"/orders?account_id={shop.z['id']}")["items"]
    assert [o["type"] for o in orders] == ["new"] + [s[2] for s in steps]
    final = shop.ok("GET", f"/subscriptions/{sub_id}")
    assert final["status"] == "cancelled" and final["version"] == 1 + len(steps)


def test_r8_invalid_transitions_are_409_and_change_nothing(shop: Shop) -> None:
    sub_id = shop.subscribe(shop.z, shop.e3)["subscription"]["id"]
    before = writes()
    status, error = shop.act(sub_id, "resume")
    assert status == 409 and error["error"]["code"] == "invalid_state"
    assert writes() == before


def test_r9_addons_are_child_subscriptions_removed_with_their_base(shop: Shop) -> None:
    base = shop.subscribe(shop.z, shop.e3)["subscription"]
    added = shop.ok(
        "POST",
        f"/subscriptions/{base['id']}/addons",
        {"product_id": shop.teams["id"], "quantity": 2},
    )
    addon = added["subscription"]
    assert addon["parent_subscription_id"] == base["id"] and added["order"]["type"] == "addon_added"
    assert added["order"]["total"] == "16.00"
    listed = shop.ok("GET", f"/subscriptions/{base['id']}/addons")["items"]
    assert [a["id"] for a in listed] == [addon["id"]]
    status, _ = shop.act(base["id"], "cancel")
    assert status == 200
    assert shop.ok("GET", f"/subscriptions/{addon['id']}")["status"] == "cancelled"
    types = sorted(o["type"] for o in shop.ok("GET", "/orders")["items"])
    assert types == ["addon_added", "addon_removed", "cancel", "new"]


def test_r9_addon_for_an_incompatible_base_is_refused(shop: Shop) -> None:
    base = shop.subscribe(shop.z, shop.e5)["subscription"]
    status, error = shop.api.call(
        "POST", f"/subscriptions/{base['id']}/addons", shop.admin, {"product_id": shop.teams["id"]}
    )
    assert status == 400 and error["error"]["details"]["field"] == "product_id"


def test_r10_customers_and_resellers_self_serve_in_their_scope(shop: Shop) -> None:
    tid = shop.tenant["id"]
    customer_x = token("customer", tid, shop.x["id"])
    reseller = token("reseller", tid, shop.lite["id"])
    products = shop.ok("GET", "/products", tok=customer_x)["items"]
    assert [(p["sku"], p["prices"]) for p in products] == [("O365-E3", {"monthly": "18.90"})]
    assert all(p["costs"] is None for p in products)  # costs are the tenant admin's
    own = shop.subscribe(shop.x, shop.e3, tok=customer_x)["subscription"]
    assert shop.ok("GET", "/subscriptions", tok=customer_x)["items"][0]["id"] == own["id"]
    assert shop.ok("GET", "/subscriptions", tok=reseller)["items"][0]["id"] == own["id"]
    status, _ = shop.act(own["id"], "change_quantity", tok=reseller, quantity=4)
    assert status == 200
    z_sub = shop.subscribe(shop.z, shop.e3)["subscription"]
    for tok in (customer_x, reseller):
        assert shop.api.call("GET", f"/subscriptions/{z_sub['id']}", tok)[0] == 404
        ids = [s["id"] for s in shop.ok("GET", "/subscriptions", tok=tok)["items"]]
        assert z_sub["id"] not in ids
    created = shop.ok("POST", "/accounts", {"name": "Customer Y"}, tok=reseller)
    assert created["parent_account_id"] == shop.lite["id"]


def test_r3_tenant_reseller_gets_the_lists_catalogue_at_list_prices_as_costs(shop: Shop) -> None:
    child = shop.ok(
        "POST",
        "/tenants",
        {
            "name": "Cloud Resell",
            "country": "DE",
            "time_zone": "Europe/Berlin",
            "price_list_id": shop.retail["id"],
        },
    )
    assert child["parent_id"] == shop.tenant["id"] and child["backordering"] is False
    account = shop.ok("GET", f"/accounts/{child['reseller_account_id']}")
    assert (account["kind"], account["child_tenant_id"]) == ("tenant_reseller", child["id"])
    assert account["price_list_id"] == shop.retail["id"]
    child_admin = token("tenant_admin", child["id"])
    catalogue = {p["sku"]: p for p in shop.ok("GET", "/products", tok=child_admin)["items"]}
    assert set(catalogue) == {"O365-E3", "O365-E5", "TEAMS-PHONE"}
    e3 = catalogue["O365-E3"]
    assert e3["costs"] == {"monthly": "20.00", "annual": "228.00"}
    assert e3["origin"] == {"tenant_id": shop.tenant["id"], "product_id": shop.e3["id"]}
    assert catalogue["TEAMS-PHONE"]["addon_for"] == [e3["id"]]  # mapped to the child's copy
    listed = shop.ok("GET", "/tenants")["items"]
    assert [t["id"] for t in listed] == [child["id"]]
    status, error = shop.api.call("PATCH", f"/products/{e3['id']}", child_admin, {"sku": "NEW"})
    assert (status, error["error"]["code"]) == (409, "inherited_product")
    renamed = shop.ok("PATCH", f"/products/{e3['id']}", {"name": "E3 by Cloud Resell"}, child_admin)
    assert renamed["name"] == "E3 by Cloud Resell"


def test_s9_idempotency_key_returns_the_first_answer_and_does_nothing_twice(shop: Shop) -> None:
    body = {"account_id": shop.z["id"], "product_id": shop.e3["id"], "billing_cycle": "monthly"}
    headers = {"Idempotency-Key": "order-42"}
    first = shop.api.call("POST", "/subscriptions", shop.admin, body, headers=headers)
    counts = writes()
    again = shop.api.call("POST", "/subscriptions", shop.admin, body, headers=headers)
    assert first == again and first[0] == 201
    assert writes() == counts
    status, error = shop.api.call(
        "POST", "/subscriptions", shop.admin, {**body, "quantity": 9}, headers=headers
    )
    assert (status, error["error"]["code"]) == (409, "idempotency_key_reused")
    # the key is scoped per caller: another caller's request under it is its own
    status, _ = shop.api.call(
        "POST",
        "/subscriptions",
        token("customer", shop.tenant["id"], shop.z["id"]),
        body,
        headers=headers,
    )
    assert status == 201


def test_s9_failed_request_keeps_nothing_so_its_retry_runs(shop: Shop) -> None:
    body = {
        "account_id": shop.z["id"],
        "product_id": shop.e3["id"],
        "billing_cycle": "annual",
        "quantity": 1,
    }
    headers = {"Idempotency-Key": "retry-me"}
    shop.ok(
        "POST",
        f"/pricelists/{shop.retail['id']}/prices",
        {"product_id": shop.e3["id"], "billing_cycle": "annual", "price": "228.00"},
    )
    shop.ok("PATCH", f"/products/{shop.e3['id']}", {"visible": True})
    status, _ = shop.api.call(
        "POST",
        "/subscriptions",
        token("customer", shop.tenant["id"], shop.z["id"]),
        {**body, "product_id": shop.e5["id"]},
        headers=headers,
    )
    assert status == 400  # E5 has no annual price: refused, nothing kept under the key
    status, created = shop.api.call(
        "POST",
        "/subscriptions",
        token("customer", shop.tenant["id"], shop.z["id"]),
        body,
        headers=headers,
    )
    assert status == 201 and created["subscription"]["billing_cycle"] == "annual"


def test_s9_cursor_pagination_walks_every_item_once(shop: Shop) -> None:
    for n in range(7):
        shop.ok("POST", "/accounts", {"name": f"Customer {n}"})
    seen: list[str] = []
    cursor = None
    while True:
        path = "/accounts?limit=3" + (f"&cursor={cursor}" if cursor else "")
        page = shop.ok("GET", path)
        assert len(page["items"]) <= 3
        seen += [a["id"] for a in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert len(seen) == len(set(seen)) == 10  # 7 + Cloud Lite, X, Z
    other = token("tenant_admin", "tnt_other")
    first = shop.ok("GET", "/accounts?limit=3")
    status, error = shop.api.call("GET", f"/accounts?limit=3&cursor={first['next_cursor']}", other)
    assert (status, error["error"]["details"]["field"]) == (400, "cursor")


def test_an_empty_patch_writes_nothing(shop: Shop) -> None:
    before = shop.ok("GET", f"/accounts/{shop.z['id']}")
    after = shop.ok("PATCH", f"/accounts/{shop.z['id']}", {})
    assert after["version"] == before["version"]
    same = shop.ok("PATCH", f"/products/{shop.e3['id']}", {"name": shop.e3["name"]})
    assert same["version"] == shop.e3["version"]


def test_r2_first_list_in_the_tenant_currency_becomes_the_default(shop: Shop) -> None:
    tenant = shop.ok("GET", f"/tenants/{shop.tenant['id']}")
    assert tenant["default_price_list_id"] == shop.retail["id"]
    usd = shop.ok("POST", "/pricelists", {"name": "USD", "currency": "USD"})
    assert usd["default"] is False
    promoted = shop.ok(
        "POST", "/pricelists", {"name": "Retail 2027", "currency": "EUR", "default": True}
    )
    assert promoted["default"] is True
    listed = {p["id"]: p["default"] for p in shop.ok("GET", "/pricelists")["items"]}
    assert [k for k, v in listed.items() if v] == [promoted["id"]]
