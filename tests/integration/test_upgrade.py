"""R19 on moto, through the HTTP API and the local runner: Cloud upgrades its lite reseller Cloud
Lite to a tenant reseller in four visible steps; a failed pre-check lists every problem and the
step is retried; afterwards Cloud's existing records are the mirrors of the new tenant's copies
(linked, not duplicated) and the provider bills on from them, with no gap and no double."""

from __future__ import annotations

from typing import Any

import pytest

from local.runner import Runner
from tests.conftest import Api, table_counts, token

PROFILE = {"country": "DE", "time_zone": "Europe/Berlin"}


class Cloud:
    """Cloud (root) with E3, a Teams add-on and Legacy in Cloud Lite's list; Cloud Lite's
    customers X (E3 + Teams, with a contact) and Y (Legacy, which Cloud then retires)."""

    def __init__(self, api: Api) -> None:
        self.api = api
        root = self.post(
            token("platform_admin"), "/tenants", {"name": "Cloud", "currency": "EUR", **PROFILE}
        )
        self.id = root["id"]
        self.admin = token("tenant_admin", self.id)
        self.e3 = self.product("E3", "license")
        self.teams = self.product("TEAMS", "addon", addon_for=[self.e3])
        self.legacy = self.product("LEGACY", "license")
        self.list = self.post(self.admin, "/pricelists", {"name": "Lite", "currency": "EUR"})["id"]
        for product, price in ((self.e3, "20.00"), (self.teams, "4.00"), (self.legacy, "9.00")):
            self.post(
                self.admin,
                f"/pricelists/{self.list}/prices",
                {"product_id": product, "billing_cycle": "monthly", "price": price},
            )
        self.lite = self.post(
            self.admin,
            "/accounts",
            {"name": "Cloud Lite", "kind": "lite_reseller", "price_list_id": self.list},
        )["id"]
        self.lite_user = token("reseller", self.id, self.lite)
        self.x = self.post(self.lite_user, "/accounts", {"name": "Customer X"})["id"]
        self.y = self.post(self.lite_user, "/accounts", {"name": "Customer Y"})["id"]
        self.post(self.admin, f"/accounts/{self.x}/contacts", {"name": "Xena", "role": "billing"})
        self.x_e3 = self.subscribe(self.x, self.e3, 10)
        self.x_teams = self.post(
            self.lite_user,
            f"/subscriptions/{self.x_e3}/addons",
            {"product_id": self.teams, "quantity": 10},
        )["subscription"]["id"]
        self.y_legacy = self.subscribe(self.y, self.legacy, 3)
        self.call("DELETE", f"/products/{self.legacy}", self.admin)  # Cloud retires Legacy

    def call(self, method: str, path: str, who: str, body: Any = None) -> Any:
        status, answer = self.api.call(method, path, who, body)
        assert status in (200, 201), (method, path, status, answer)
        return answer

    def post(self, who: str, path: str, body: dict[str, Any]) -> Any:
        return self.call("POST", path, who, body)

    def product(self, sku: str, kind: str, addon_for: list[str] | None = None) -> str:
        body = {
            "sku": sku,
            "name": sku.title(),
            "type": kind,
            "billing_cycles": ["monthly"],
            "unit": "seat",
            "addon_for": addon_for or [],
        }
        return str(self.post(self.admin, "/products", body)["id"])

    def subscribe(self, account: str, product: str, quantity: int) -> str:
        body = {
            "account_id": account,
            "product_id": product,
            "quantity": quantity,
            "billing_cycle": "monthly",
        }
        return str(self.post(self.lite_user, "/subscriptions", body)["subscription"]["id"])

    def upgrade(self) -> tuple[int, Any]:
        body = {"account_id": self.lite, **PROFILE}
        return self.api.call("POST", f"/tenants/{self.id}/upgrade", self.admin, body)

    def tenant(self) -> Any:
        """The tenant made for Cloud Lite, as Cloud sees it (its upgrade's step and problems)."""
        children = self.call("GET", "/tenants", self.admin)["items"]
        return next((t for t in children if t["upgrade_from"] == self.lite), None)


@pytest.fixture
def cloud(api: Api) -> Cloud:
    return Cloud(api)


def steps(state: Any) -> list[str]:
    return [step["status"] for step in state["steps"]]


def test_r19_a_failed_precheck_lists_every_problem_and_the_lite_reseller_orders_on(
    cloud: Cloud,
) -> None:
    assert cloud.tenant() is None
    status, error = cloud.upgrade()
    assert (status, error["error"]["code"]) == (409, "upgrade_precheck_failed")
    [problem] = error["error"]["details"]["problems"]
    assert (problem["subscription_id"], problem["field"], problem["code"]) == (
        cloud.y_legacy,
        "product_id",
        "not_in_catalogue",
    )
    tenant = cloud.tenant()
    assert (tenant["upgrade_step"], tenant["upgrade_problems"]) == (
        2,
        error["error"]["details"]["problems"],
    )
    assert (tenant["name"], tenant["parent_id"], tenant["backordering"]) == (
        "Cloud Lite",
        cloud.id,
        False,
    )
    # meanwhile Cloud Lite is still a lite reseller and goes on ordering through Cloud (R19)
    lite = cloud.call("GET", f"/accounts/{cloud.lite}", cloud.admin)
    assert lite["kind"] == "lite_reseller"
    cloud.subscribe(cloud.x, cloud.e3, 2)
    # the new tenant has its catalogue (R3), minus the retired product, and the customers
    new_admin = token("tenant_admin", tenant["id"])
    skus = sorted(p["sku"] for p in cloud.call("GET", "/products", new_admin)["items"])
    assert skus == ["E3", "TEAMS"]
    names = sorted(a["name"] for a in cloud.call("GET", "/accounts", new_admin)["items"])
    assert names == ["Customer X", "Customer Y"]
    assert cloud.call("GET", "/subscriptions", new_admin)["items"] == []  # step 3 wrote nothing


def test_r19_four_steps_link_the_providers_records_no_duplicate_no_gap(cloud: Cloud) -> None:
    assert cloud.upgrade()[0] == 409
    # meanwhile Cloud Lite gains a customer W and sells it E3 (it goes on ordering, R19)
    w = cloud.post(cloud.lite_user, "/accounts", {"name": "Customer W"})["id"]
    w_e3 = cloud.subscribe(w, cloud.e3, 3)
    # the problem is resolved: Y's Legacy subscription is cancelled; the step is retried
    cloud.post(cloud.admin, f"/subscriptions/{cloud.y_legacy}/actions", {"action": "cancel"})
    before = table_counts()

    def orders() -> dict[str, str]:
        """Cloud's orders, as the tenant admin lists them: id → type."""
        page = cloud.call("GET", "/orders?limit=100", cloud.admin)
        assert page["next_cursor"] is None
        return {o["id"]: o["type"] for o in page["items"]}

    orders_before = orders()
    status, state = cloud.upgrade()
    assert status == 200, state
    assert (state["status"], steps(state)) == ("done", ["done"] * 4)
    new_id = state["tenant"]["id"]
    new_admin = token("tenant_admin", new_id)
    Runner().drain()  # the backfill and every stream

    # the new tenant: X and Y as direct customers, X's contact, X's subscriptions at cost
    accounts = {a["name"]: a for a in cloud.call("GET", "/accounts", new_admin)["items"]}
    x_new = accounts["Customer X"]
    assert x_new["parent_account_id"] is None
    contacts = cloud.call("GET", f"/accounts/{x_new['id']}/contacts", new_admin)["items"]
    assert [c["name"] for c in contacts] == ["Xena"]
    copies = cloud.call("GET", f"/subscriptions?account_id={x_new['id']}", new_admin)["items"]
    assert {(s["quantity"], s["unit_price"]) for s in copies} == {(10, "4.00"), (10, "20.00")}
    [base] = [s for s in copies if s["parent_subscription_id"] is None]
    [addon] = [s for s in copies if s["parent_subscription_id"] is not None]
    assert addon["parent_subscription_id"] == base["id"]

    # W, added during the upgrade, came along with its subscription
    w_copies = cloud.call(
        "GET", f"/subscriptions?account_id={accounts['Customer W']['id']}", new_admin
    )
    assert [s["quantity"] for s in w_copies["items"]] == [3]
    assert cloud.call("GET", f"/subscriptions/{w_e3}", cloud.admin)["mirrored"] is True

    # Cloud: the same records, now mirrors of the copies; nothing duplicated, no order made
    after = table_counts()
    assert after["subscriptions"] == before["subscriptions"] + len(copies) + 1
    assert orders() == orders_before
    x = cloud.call("GET", f"/accounts/{cloud.x}", cloud.admin)
    assert (x["mirrored"], x["source"]["account_id"]) == (True, x_new["id"])
    e3 = cloud.call("GET", f"/subscriptions/{cloud.x_e3}", cloud.admin)
    assert (e3["mirrored"], e3["source"]["subscription_id"], e3["quantity"]) == (
        True,
        base["id"],
        10,
    )
    assert e3["unit_price"] == "20.00"  # billed on at the same price: no gap, no double
    lite = cloud.call("GET", f"/accounts/{cloud.lite}", cloud.admin)
    assert lite["kind"] == "tenant_reseller"
    back = cloud.call("GET", f"/tenants/{new_id}/backordering", cloud.admin)
    assert (back["active"], back["backfill"]["status"]) == (True, "done")

    # from now on a change in the new tenant reaches the linked record (R13, R14)
    cloud.post(
        new_admin,
        f"/subscriptions/{base['id']}/actions",
        {"action": "change_quantity", "quantity": 12},
    )
    Runner().drain()
    assert cloud.call("GET", f"/subscriptions/{cloud.x_e3}", cloud.admin)["quantity"] == 12
    new_orders = {k: v for k, v in orders().items() if k not in orders_before}
    assert list(new_orders.values()) == ["quantity_change"]  # one, for the one change
    # and Cloud cannot change it any more (R15)
    status, error = cloud.api.call(
        "POST",
        f"/subscriptions/{cloud.x_e3}/actions",
        cloud.admin,
        {"action": "change_quantity", "quantity": 1},
    )
    assert (status, error["error"]["code"]) == (409, "locked_by_reseller")
    # a second run changes nothing
    assert cloud.upgrade()[0] == 200
    assert table_counts()["subscriptions"] == after["subscriptions"]


def test_r19_only_a_lite_reseller_of_the_callers_tenant(cloud: Cloud) -> None:
    status, error = cloud.api.call(
        "POST", f"/tenants/{cloud.id}/upgrade", cloud.admin, {"account_id": cloud.x, **PROFILE}
    )
    assert (status, error["error"]["code"]) == (400, "not_a_lite_reseller")
    other = token("tenant_admin", "tnt_other")
    status, _ = cloud.api.call(
        "POST", f"/tenants/{cloud.id}/upgrade", other, {"account_id": cloud.lite, **PROFILE}
    )
    assert status == 404
