"""Price-list propagation on moto (R4-R7): a provider's change reaching every tier, through the
HTTP API and the real streams, queue and Lambda functions, delivered by the local runner
(``local/runner.py``) as the event source mappings of ``infra/events.py`` would.

The world: Cloud (root) sells E3 through its "Resell" list to two tenant resellers: Cloud
Resell (full mode) and Partial Resell (partial mode, names overwritten); Cloud Resell sells its
copy on through "Resell-2" (a 10 % markup) to Sub Resell, a third tier."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest

from local.runner import Runner
from tests.conftest import Api, token


@dataclass
class World:
    api: Api
    runner: Runner
    root: str
    admin: str
    e3: str
    resell_list: str
    t1: str  # Cloud Resell (full)
    t1_admin: str
    t1_e3: str
    t1_retail: str
    t1_resell2: str
    partial: str
    partial_admin: str
    t2: str  # Sub Resell, under Cloud Resell
    t2_admin: str
    t2_e3: str

    def call(self, method: str, path: str, who: str, body: Any = None) -> Any:
        status, answer = self.api.call(method, path, who, body)
        assert status in (200, 201), (method, path, status, answer)
        return answer

    def product(self, who: str, product_id: str) -> Any:
        return self.call("GET", f"/products/{product_id}", who)

    def copy_of(self, who: str, tenant: str, origin: str) -> Any:
        products = self.call("GET", "/products?limit=100", who)["items"]
        [copy] = [p for p in products if (p["origin"] or {}).get("product_id") == origin]
        return copy


def create(api: Api, who: str, path: str, body: dict[str, Any]) -> Any:
    status, answer = api.call("POST", path, who, body)
    assert status == 201, (path, answer)
    return answer


def set_price(api: Api, who: str, price_list: str, body: dict[str, Any]) -> Any:
    status, answer = api.call("POST", f"/pricelists/{price_list}/prices", who, body)
    assert status in (200, 201), answer
    return answer


def tenant_reseller(api: Api, admin: str, name: str, price_list: str, **settings: Any) -> str:
    body = {
        "name": name,
        "country": "DE",
        "time_zone": "Europe/Berlin",
        "price_list_id": price_list,
    }
    return str(create(api, admin, "/tenants", {**body, **settings})["id"])


@pytest.fixture
def world(api: Api) -> World:
    platform = token("platform_admin")
    root = create(
        api,
        platform,
        "/tenants",
        {"name": "Cloud", "country": "DE", "time_zone": "Europe/Berlin", "currency": "EUR"},
    )["id"]
    admin = token("tenant_admin", root)
    e3 = create(
        api,
        admin,
        "/products",
        {
            "sku": "E3",
            "name": "Office 365 E3",
            "type": "license",
            "billing_cycles": ["monthly", "annual"],
            "unit": "seat",
            "costs": {"monthly": "15.00"},
        },
    )["id"]
    resell = create(api, admin, "/pricelists", {"name": "Resell", "currency": "EUR"})["id"]
    set_price(api, admin, resell, {"product_id": e3, "billing_cycle": "monthly", "price": "20.00"})
    t1 = tenant_reseller(api, admin, "Cloud Resell", resell)
    partial = tenant_reseller(
        api, admin, "Partial Resell", resell, propagation="partial", overwrite_names=True
    )
    t1_admin = token("tenant_admin", t1)
    t1_e3 = next(
        p["id"]
        for p in api.call("GET", "/products", t1_admin)[1]["items"]
        if p["origin"]["product_id"] == e3
    )
    t1_retail = create(api, t1_admin, "/pricelists", {"name": "Retail", "currency": "EUR"})["id"]
    set_price(
        api,
        t1_admin,
        t1_retail,
        {"product_id": t1_e3, "billing_cycle": "monthly", "price": "21.00"},
    )
    t1_resell2 = create(api, t1_admin, "/pricelists", {"name": "Resell-2", "currency": "EUR"})["id"]
    set_price(
        api,
        t1_admin,
        t1_resell2,
        {"product_id": t1_e3, "billing_cycle": "monthly", "markup_percent": "10"},
    )
    t2 = tenant_reseller(api, t1_admin, "Sub Resell", t1_resell2)
    t2_admin = token("tenant_admin", t2)
    t2_e3 = next(p["id"] for p in api.call("GET", "/products", t2_admin)[1]["items"])
    runner = Runner()
    runner.drain()  # the set-up's own records: nothing changes
    return World(
        api=api,
        runner=runner,
        root=root,
        admin=admin,
        e3=e3,
        resell_list=resell,
        t1=t1,
        t1_admin=t1_admin,
        t1_e3=t1_e3,
        t1_retail=t1_retail,
        t1_resell2=t1_resell2,
        partial=partial,
        partial_admin=token("tenant_admin", partial),
        t2=t2,
        t2_admin=t2_admin,
        t2_e3=t2_e3,
    )


def costs(world: World, who: str, product_id: str) -> dict[str, str]:
    return dict(world.product(who, product_id)["costs"])


def test_r5_r6_a_price_change_reaches_every_tier_markups_follow_fixed_prices_are_flagged(
    world: World,
) -> None:
    assert costs(world, world.t1_admin, world.t1_e3) == {"monthly": "20.00"}
    assert costs(world, world.t2_admin, world.t2_e3) == {"monthly": "22.00"}  # 20 + 10 %

    set_price(
        world.api,
        world.admin,
        world.resell_list,
        {"product_id": world.e3, "billing_cycle": "monthly", "price": "25.00"},
    )
    world.runner.drain()

    t1 = world.product(world.t1_admin, world.t1_e3)
    assert t1["costs"] == {"monthly": "25.00"}
    assert t1["costs_changed_at"] is not None  # R7: dated
    # R4/R5: Resell-2's markup follows the cost, and so does the third tier's cost (R6)
    prices = world.call("GET", f"/pricelists/{world.t1_resell2}/prices", world.t1_admin)
    assert [p["price"] for p in prices["items"]] == ["27.50"]
    assert costs(world, world.t2_admin, world.t2_e3) == {"monthly": "27.50"}
    # the partial-mode tenant gets the cost too
    partial = world.copy_of(world.partial_admin, world.partial, world.e3)
    assert partial["costs"] == {"monthly": "25.00"}
    # R5: the fixed retail price 21.00 is now below cost: flagged, not changed
    assert t1["margin_alerts"] == [
        {
            "price_list_id": world.t1_retail,
            "billing_cycle": "monthly",
            "price": "21.00",
            "cost": "25.00",
        }
    ]
    flagged = world.call("GET", "/products?margin_alert=true", world.t1_admin)["items"]
    assert [p["id"] for p in flagged] == [world.t1_e3]
    retail = world.call("GET", f"/pricelists/{world.t1_retail}/prices", world.t1_admin)["items"]
    assert [p["price"] for p in retail] == ["21.00"]
    # the reseller fixes its price: the alert clears at once
    set_price(
        world.api,
        world.t1_admin,
        world.t1_retail,
        {"product_id": world.t1_e3, "billing_cycle": "monthly", "price": "30.00"},
    )
    assert world.call("GET", "/products?margin_alert=true", world.t1_admin)["items"] == []
    assert world.product(world.t1_admin, world.t1_e3)["margin_alerts"] == []


def test_r5_a_product_and_a_cycle_added_reach_full_mode_tenants_only(world: World) -> None:
    bp = create(
        world.api,
        world.admin,
        "/products",
        {
            "sku": "BP",
            "name": "Business Premium",
            "type": "license",
            "billing_cycles": ["monthly"],
            "unit": "seat",
        },
    )["id"]
    set_price(
        world.api,
        world.admin,
        world.resell_list,
        {"product_id": bp, "billing_cycle": "monthly", "price": "30.00"},
    )
    set_price(
        world.api,
        world.admin,
        world.resell_list,
        {"product_id": world.e3, "billing_cycle": "annual", "price": "220.00"},
    )
    world.runner.drain()

    new = world.copy_of(world.t1_admin, world.t1, bp)
    assert (new["sku"], new["costs"]) == ("BP", {"monthly": "30.00"})
    e3 = world.product(world.t1_admin, world.t1_e3)
    assert (e3["billing_cycles"], e3["costs"]) == (
        ["monthly", "annual"],
        {"monthly": "20.00", "annual": "220.00"},
    )
    partial_products = world.call("GET", "/products", world.partial_admin)["items"]
    assert [p["sku"] for p in partial_products] == ["E3"]  # partial: purchase prices only
    assert partial_products[0]["billing_cycles"] == ["monthly"]
    # Sub Resell's list holds only what Cloud Resell put in it: BP is not offered there
    assert [p["sku"] for p in world.call("GET", "/products", world.t2_admin)["items"]] == ["E3"]


def test_r5_discontinued_and_renamed_products(world: World) -> None:
    # Cloud Resell names its copy its own way (R4)
    world.call("PATCH", f"/products/{world.t1_e3}", world.t1_admin, {"name": "Our E3"})
    world.call("PATCH", f"/products/{world.e3}", world.admin, {"name": "Microsoft 365 E3"})
    world.runner.drain()
    assert world.product(world.t1_admin, world.t1_e3)["name"] == "Our E3"  # kept
    # partial mode takes purchase prices only, whatever its options
    assert world.copy_of(world.partial_admin, world.partial, world.e3)["name"] == "Office 365 E3"
    # with the option on, names follow the provider's (full mode)
    world.call("PATCH", f"/tenants/{world.t1}", world.admin, {"overwrite_names": True})
    world.call("PATCH", f"/products/{world.e3}", world.admin, {"name": "Microsoft 365 E3 (new)"})
    world.runner.drain()
    assert world.product(world.t1_admin, world.t1_e3)["name"] == "Microsoft 365 E3 (new)"

    world.call("DELETE", f"/products/{world.e3}", world.admin)  # the provider retires it
    world.runner.drain()
    t1 = world.product(world.t1_admin, world.t1_e3)
    assert t1["status"] == "discontinued"
    t2 = world.product(world.t2_admin, world.t2_e3)
    assert t2["status"] == "discontinued"  # R6: on down the tiers
    # now the copy may be retired by the reseller (R4)
    assert world.call("DELETE", f"/products/{world.t1_e3}", world.t1_admin)["visible"] is False


def test_r4_refusals_on_a_copied_product(world: World) -> None:
    api, who, copy = world.api, world.t1_admin, world.t1_e3
    for field, value in (
        ("sku", "X"),
        ("type", "usage"),
        ("billing_cycles", ["monthly"]),
        ("unit", "user"),
        ("costs", {"monthly": "1.00"}),
        ("status", "discontinued"),
    ):
        status, error = api.call("PATCH", f"/products/{copy}", who, {field: value})
        assert (status, error["error"]["code"], error["error"]["details"]["field"]) == (
            409,
            "inherited_product",
            field,
        ), field
    status, error = api.call("DELETE", f"/products/{copy}", who)
    assert (status, error["error"]["code"]) == (409, "offered_by_provider")
    status, error = api.call(
        "POST",
        "/products",
        who,
        {
            "sku": "E3-X",
            "name": "E3 extra",
            "type": "addon",
            "billing_cycles": ["monthly"],
            "unit": "seat",
            "addon_for": [copy],
        },
    )
    assert (status, error["error"]["code"], error["error"]["details"]["field"]) == (
        409,
        "inherited_product",
        "addon_for",
    )
    # what it may change: name, description, categories, visibility
    changed = world.call(
        "PATCH",
        f"/products/{copy}",
        who,
        {"name": "E3 (ours)", "description": "d", "categories": ["x"], "visible": False},
    )
    assert (changed["name"], changed["visible"], changed["costs"]) == (
        "E3 (ours)",
        False,
        {"monthly": "20.00"},
    )
    # nothing changed by the refusals
    assert world.product(who, copy)["sku"] == "E3"


def test_r5_propagation_settings_are_the_providers(world: World) -> None:
    changed = world.call("PATCH", f"/tenants/{world.t1}", world.admin, {"propagation": "partial"})
    assert changed["propagation"] == "partial"
    status, error = world.api.call(
        "PATCH", f"/tenants/{world.t1}", world.t1_admin, {"propagation": "full"}
    )
    assert status == 403, error
    status, error = world.api.call(
        "PATCH", f"/tenants/{world.t1}", world.admin, {"propagation": "some"}
    )
    assert (status, error["error"]["details"]["field"]) == (400, "propagation")
    # a tenant reseller's list is fixed: its catalogue was copied from it (R3)
    account = world.call("GET", f"/tenants/{world.t1}", world.admin)["reseller_account_id"]
    other = create(world.api, world.admin, "/pricelists", {"name": "Other", "currency": "EUR"})[
        "id"
    ]
    status, error = world.api.call(
        "PATCH", f"/accounts/{account}", world.admin, {"price_list_id": other}
    )
    assert (status, error["error"]["code"]) == (409, "tenant_price_list")


def test_r6_a_duplicated_or_late_page_changes_nothing(world: World) -> None:
    from functions import composition
    from functions.pricelist.schemas import PriceChange

    propagator = composition.container().propagator
    change = PriceChange(
        provider_tenant_id=world.root, price_list_id=world.resell_list, product_id=world.e3
    )
    stale = propagator._offered(change)  # what a slow consumer read before the change
    assert stale is not None
    set_price(
        world.api,
        world.admin,
        world.resell_list,
        {"product_id": world.e3, "billing_cycle": "monthly", "price": "26.00"},
    )
    world.runner.drain()
    assert costs(world, world.t1_admin, world.t1_e3) == {"monthly": "26.00"}
    assert propagator.propagate_page(change) == 0  # a duplicate: nothing written
    assert propagator._apply(world.t1, stale, "2026-11-22T10:00:00Z") == 0  # late: refused
    assert costs(world, world.t1_admin, world.t1_e3) == {"monthly": "26.00"}
    assert Decimal(costs(world, world.t2_admin, world.t2_e3)["monthly"]) == Decimal("28.60")
