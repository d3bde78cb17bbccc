"""R34 on moto, through the HTTP API and the real streams, queue and functions (the local
runner): a proposed change of a price list simulated over three tiers against figures computed
by hand, writing nothing; then the same entries published (R5, R6: propagation runs) and
everything the simulation predicted — each copy's cost, the moved markup prices, the margin
alerts, the change of each child's next invoice (the invoice preview, R26) — is what happened.

The world (SPEC §1's three tiers, back ordering on at each, R11-R17):
- Cloud (EUR) sells E3 (cost 15.00) and Backup (cost 2.00) through "Resell": E3 monthly a
  fixed 20.00, Backup a markup of 50 % (3.00). Cloud Resell has "Resell".
- Cloud Resell: its copies cost 20.00 and 3.00; its "Retail" list (the default) sells them at
  a fixed 21.00 and 3.50, its "Resell-2" at markups of 10 % (22.00) and 20 % (3.60). Sub
  Resell has "Resell-2". Its direct customer Z has 3 seats of E3.
- Sub Resell: its copies cost 22.00 and 3.60; its "Retail" sells them at a fixed 25.00 and
  5.00. Its customer X has 4 seats of E3 and 4 of Backup.
- Mirrors: in Cloud's BSS under Cloud Resell: E3 × 3 (Z), E3 × 4 and Backup × 4 (X); in Cloud
  Resell's BSS under Sub Resell: E3 × 4 and Backup × 4 (X).

The proposal: E3 monthly at a fixed 25.00, Backup at a markup of 100 % (4.00).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest

from local.runner import Runner
from tests.conftest import Api, table_counts, token, writes

MONTHLY = {"billing_cycle": "monthly"}


@dataclass
class World:
    api: Api
    runner: Runner
    cloud: str
    admin: str
    e3: str
    backup: str
    resell: str  # Cloud's list assigned to Cloud Resell
    t1: str
    t1_admin: str
    t1_account: str  # Cloud Resell's account in Cloud's BSS
    t1_e3: str
    t1_backup: str
    t1_retail: str
    t1_resell2: str
    t2: str
    t2_admin: str
    t2_account: str  # Sub Resell's account in Cloud Resell's BSS
    t2_e3: str
    t2_backup: str
    t2_retail: str

    def call(self, method: str, path: str, who: str, body: Any = None) -> Any:
        status, answer = self.api.call(method, path, who, body)
        assert status in (200, 201, 202), (method, path, status, answer)
        return answer

    def product(self, who: str, product_id: str) -> Any:
        return self.call("GET", f"/products/{product_id}", who)

    def prices(self, who: str, price_list: str) -> dict[str, str]:
        items = self.call("GET", f"/pricelists/{price_list}/prices", who)["items"]
        return {p["product_id"]: p["price"] for p in items}

    def preview(self, who: str, account: str) -> Any:
        return self.call("GET", f"/invoices/preview?account_id={account}", who)


def copy_of(api: Api, who: str, origin: str) -> str:
    status, answer = api.call("GET", "/products", who)
    assert status == 200, answer
    [copy] = [p["id"] for p in answer["items"] if (p["origin"] or {}).get("product_id") == origin]
    return str(copy)


@pytest.fixture
def world(api: Api) -> World:
    def call(method: str, path: str, who: str, body: Any = None) -> Any:
        status, answer = api.call(method, path, who, body)
        assert status in (200, 201, 202), (method, path, status, answer)
        return answer

    def price(who: str, price_list: str, product: str, **how: str) -> None:
        call(
            "POST",
            f"/pricelists/{price_list}/prices",
            who,
            {"product_id": product, **MONTHLY, **how},
        )

    def tenant_reseller(who: str, name: str, price_list: str) -> dict[str, Any]:
        body = {"name": name, "country": "DE", "time_zone": "Europe/Berlin"}
        child = call("POST", "/tenants", who, {**body, "price_list_id": price_list})
        call("POST", f"/tenants/{child['id']}/backordering", who)  # R11: sales flow up
        return dict(child)

    def license_(who: str, sku: str, cost: str) -> str:
        body = {"sku": sku, "name": sku, "type": "license", "billing_cycles": ["monthly"]}
        body |= {"unit": "seat", "costs": {"monthly": cost}}
        return str(call("POST", "/products", who, body)["id"])

    platform = token("platform_admin")
    cloud = call(
        "POST",
        "/tenants",
        platform,
        {"name": "Cloud", "country": "DE", "time_zone": "Europe/Berlin", "currency": "EUR"},
    )["id"]
    admin = token("tenant_admin", cloud)
    e3, backup = license_(admin, "E3", "15.00"), license_(admin, "BACKUP", "2.00")
    resell = call("POST", "/pricelists", admin, {"name": "Resell", "currency": "EUR"})["id"]
    price(admin, resell, e3, price="20.00")
    price(admin, resell, backup, markup_percent="50")

    t1 = tenant_reseller(admin, "Cloud Resell", resell)
    t1_admin = token("tenant_admin", t1["id"])
    t1_e3, t1_backup = copy_of(api, t1_admin, e3), copy_of(api, t1_admin, backup)
    retail = {"name": "Retail", "currency": "EUR", "default": True}
    t1_retail = call("POST", "/pricelists", t1_admin, retail)["id"]
    price(t1_admin, t1_retail, t1_e3, price="21.00")
    price(t1_admin, t1_retail, t1_backup, price="3.50")
    t1_resell2 = call("POST", "/pricelists", t1_admin, {"name": "Resell-2", "currency": "EUR"})[
        "id"
    ]
    price(t1_admin, t1_resell2, t1_e3, markup_percent="10")
    price(t1_admin, t1_resell2, t1_backup, markup_percent="20")

    t2 = tenant_reseller(t1_admin, "Sub Resell", t1_resell2)
    t2_admin = token("tenant_admin", t2["id"])
    t2_e3, t2_backup = copy_of(api, t2_admin, t1_e3), copy_of(api, t2_admin, t1_backup)
    t2_retail = call("POST", "/pricelists", t2_admin, retail)["id"]
    price(t2_admin, t2_retail, t2_e3, price="25.00")
    price(t2_admin, t2_retail, t2_backup, price="5.00")

    z = call("POST", "/accounts", t1_admin, {"name": "Cloud End-Customer Z"})["id"]
    call(
        "POST",
        "/subscriptions",
        t1_admin,
        {"account_id": z, "product_id": t1_e3, "quantity": 3, **MONTHLY},
    )
    x = call("POST", "/accounts", t2_admin, {"name": "Cloud Customer X"})["id"]
    for product in (t2_e3, t2_backup):
        call(
            "POST",
            "/subscriptions",
            t2_admin,
            {"account_id": x, "product_id": product, "quantity": 4, **MONTHLY},
        )
    runner = Runner()
    runner.drain()  # the sales mirrored up both tiers (R17)
    # this period is invoiced: each preview is of the next, a whole period (R21, R26)
    call("POST", "/billing-runs", admin, {})
    call("POST", "/billing-runs", t1_admin, {})
    runner.drain()
    return World(
        api=api,
        runner=runner,
        cloud=cloud,
        admin=admin,
        e3=e3,
        backup=backup,
        resell=resell,
        t1=t1["id"],
        t1_admin=t1_admin,
        t1_account=t1["reseller_account_id"],
        t1_e3=t1_e3,
        t1_backup=t1_backup,
        t1_retail=t1_retail,
        t1_resell2=t1_resell2,
        t2=t2["id"],
        t2_admin=t2_admin,
        t2_account=t2["reseller_account_id"],
        t2_e3=t2_e3,
        t2_backup=t2_backup,
        t2_retail=t2_retail,
    )


def proposal(world: World) -> list[dict[str, str]]:
    return [
        {"product_id": world.e3, **MONTHLY, "price": "25.00"},
        {"product_id": world.backup, **MONTHLY, "markup_percent": "100"},
    ]


def alert(product: str, price_list: str, price: str, cost: str) -> dict[str, str]:
    return {
        "product_id": product,
        "price_list_id": price_list,
        "billing_cycle": "monthly",
        "currency": "EUR",
        "price": price,
        "cost": cost,
    }


def move(price_list: str, product: str, before: str | None, after: str) -> dict[str, str | None]:
    return {
        "price_list_id": price_list,
        "product_id": product,
        "billing_cycle": "monthly",
        "currency": "EUR",
        "before": before,
        "after": after,
    }


def by_subscription_product(next_invoice: dict[str, Any]) -> list[tuple[str, int, str, str, str]]:
    return sorted(
        (s["product_id"], s["quantity"], s["price_before"], s["price_after"], s["change"])
        for s in next_invoice["subscriptions"]
    )


def test_r34_the_simulation_over_three_tiers_against_hand_computed_figures(world: World) -> None:
    status, answer = world.api.call(
        "POST", f"/pricelists/{world.resell}/simulate", world.admin, {"entries": proposal(world)}
    )
    assert status == 200, answer
    assert (answer["price_list_id"], answer["currency"], answer["truncated"]) == (
        world.resell,
        "EUR",
        False,
    )
    owner, t1, t2 = answer["tenants"]

    # tier 0, Cloud: its list's own prices move (20.00 → 25.00; 2.00 × 1.5 → × 2)
    assert (owner["tenant_id"], owner["tier"], owner["next_invoice"]) == (world.cloud, 0, None)
    assert owner["moved_prices"] == [
        move(world.resell, world.e3, "20.00", "25.00"),
        move(world.resell, world.backup, "3.00", "4.00"),
    ]
    assert owner["margin_alerts_raised"] == owner["margin_alerts_cleared"] == []

    # tier 1, Cloud Resell (via Resell)
    assert (t1["tenant_id"], t1["name"], t1["tier"]) == (world.t1, "Cloud Resell", 1)
    assert (t1["provider_tenant_id"], t1["price_list_id"]) == (world.cloud, world.resell)
    assert sorted(
        (c["origin_product_id"], c["change"], c["costs_before"], c["costs_after"])
        for c in t1["copies"]
    ) == sorted(
        [
            (world.e3, "updated", {"monthly": "20.00"}, {"monthly": "25.00"}),
            (world.backup, "updated", {"monthly": "3.00"}, {"monthly": "4.00"}),
        ]
    )
    # Resell-2's markups follow: 25.00 × 1.10 = 27.50; 4.00 × 1.20 = 4.80
    assert sorted(t1["moved_prices"], key=lambda m: m["product_id"]) == sorted(
        [
            move(world.t1_resell2, world.t1_e3, "22.00", "27.50"),
            move(world.t1_resell2, world.t1_backup, "3.60", "4.80"),
        ],
        key=lambda m: str(m["product_id"]),
    )
    # Retail's fixed 21.00 and 3.50 fall below the new costs 25.00 and 4.00
    assert sorted(t1["margin_alerts_raised"], key=lambda a: a["product_id"]) == sorted(
        [
            alert(world.t1_e3, world.t1_retail, "21.00", "25.00"),
            alert(world.t1_backup, world.t1_retail, "3.50", "4.00"),
        ],
        key=lambda a: a["product_id"],
    )
    # Cloud's next invoice to it: E3 3 × 5.00 + 4 × 5.00, Backup 4 × 1.00 = 39.00
    assert t1["next_invoice"]["currency"] == "EUR"
    assert t1["next_invoice"]["change"] == "39.00"
    assert by_subscription_product(t1["next_invoice"]) == sorted(
        [
            (world.e3, 3, "20.00", "25.00", "15.00"),
            (world.e3, 4, "20.00", "25.00", "20.00"),
            (world.backup, 4, "3.00", "4.00", "4.00"),
        ]
    )

    # tier 2, Sub Resell (via Resell-2): costs 27.50 and 4.80; its fixed 25.00 is below 27.50
    # (5.00 is not below 4.80); Cloud Resell's next invoice: 4 × 5.50 + 4 × 1.20 = 26.80
    assert (t2["tenant_id"], t2["tier"], t2["price_list_id"]) == (world.t2, 2, world.t1_resell2)
    assert sorted((c["origin_product_id"], c["costs_after"]) for c in t2["copies"]) == sorted(
        [(world.t1_e3, {"monthly": "27.50"}), (world.t1_backup, {"monthly": "4.80"})]
    )
    assert t2["moved_prices"] == []
    assert t2["margin_alerts_raised"] == [alert(world.t2_e3, world.t2_retail, "25.00", "27.50")]
    assert t2["next_invoice"]["change"] == "26.80"
    assert by_subscription_product(t2["next_invoice"]) == sorted(
        [
            (world.t1_e3, 4, "22.00", "27.50", "22.00"),
            (world.t1_backup, 4, "3.60", "4.80", "4.80"),
        ]
    )
    assert answer["totals"] == {
        "tenants": 2,
        "tenants_skipped": 0,
        "copies_changed": 4,
        "moved_prices": 4,
        "margin_alerts_raised": 3,
        "margin_alerts_cleared": 0,
        "next_invoices": [{"currency": "EUR", "amount": "65.80"}],
    }


def test_r34_a_simulation_writes_nothing(world: World) -> None:
    """Not a write to any table (the meter on the app's DynamoDB client), no item anywhere
    (every table counted), no message to propagate; an ``Idempotency-Key`` is not kept (a
    simulation changes nothing, SPEC §9)."""
    items = table_counts()
    before = writes()
    for headers in (None, {"Idempotency-Key": "simulate-1"}):
        status, answer = world.api.call(
            "POST",
            f"/pricelists/{world.resell}/simulate",
            world.admin,
            {"entries": proposal(world)},
            headers=headers,
        )
        assert status == 200, answer
    assert writes() == before
    assert table_counts() == items
    assert world.runner.drain() == 1  # one round, nothing delivered
    assert world.product(world.t1_admin, world.t1_e3)["costs"] == {"monthly": "20.00"}


def test_r34_r5_r6_publishing_the_same_entries_does_what_the_simulation_said(
    world: World,
) -> None:
    simulated = world.call(
        "POST", f"/pricelists/{world.resell}/simulate", world.admin, {"entries": proposal(world)}
    )
    owner, t1, t2 = simulated["tenants"]
    previews = {
        "t1": world.preview(world.admin, world.t1_account),
        "t2": world.preview(world.t1_admin, world.t2_account),
    }

    published = world.call(
        "POST", f"/pricelists/{world.resell}/prices", world.admin, {"entries": proposal(world)}
    )
    assert [(p["product_id"], p["price"]) for p in published["items"]] == [
        (world.e3, "25.00"),
        (world.backup, "4.00"),
    ]
    world.runner.drain()  # R5, R6: the streams and the queue, every tier

    # the list's own prices
    assert world.prices(world.admin, world.resell) == {
        m["product_id"]: m["after"] for m in owner["moved_prices"]
    }
    # each copy's cost
    for who, tier in ((world.t1_admin, t1), (world.t2_admin, t2)):
        for copy in tier["copies"]:
            assert world.product(who, copy["product_id"])["costs"] == copy["costs_after"]
    # the moved markup prices
    resell2 = world.prices(world.t1_admin, world.t1_resell2)
    for moved in t1["moved_prices"]:
        assert resell2[moved["product_id"]] == moved["after"]
    # the margin alerts raised: what each copy now carries
    for who, tier in ((world.t1_admin, t1), (world.t2_admin, t2)):
        carried = [
            {**a, "product_id": p["id"], "currency": "EUR"}
            for p in world.call("GET", "/products?margin_alert=true", who)["items"]
            for a in p["margin_alerts"]
        ]
        key = lambda a: (a["product_id"], a["price_list_id"], a["billing_cycle"])  # noqa: E731
        assert sorted(carried, key=key) == sorted(tier["margin_alerts_raised"], key=key)
    # the next invoices: each preview moved by the predicted change, line by line
    after = {
        "t1": world.preview(world.admin, world.t1_account),
        "t2": world.preview(world.t1_admin, world.t2_account),
    }
    for name, tier in (("t1", t1), ("t2", t2)):
        old, new = previews[name], after[name]
        assert old["period_start"] == new["period_start"]  # the same, whole period
        change = Decimal(new["subtotal"]) - Decimal(old["subtotal"])
        assert str(change) == tier["next_invoice"]["change"], name
        predicted = tier["next_invoice"]["subscriptions"]
        for preview, side in ((old, "price_before"), (new, "price_after")):
            rated = {line["subscription_id"]: line["unit_price"] for line in preview["lines"]}
            assert rated == {s["subscription_id"]: s[side] for s in predicted}, (name, side)


def test_r34_a_list_assigned_to_nobody_reaches_nobody(world: World) -> None:
    other = world.call("POST", "/pricelists", world.admin, {"name": "Other", "currency": "EUR"})
    answer = world.call(
        "POST",
        f"/pricelists/{other['id']}/simulate",
        world.admin,
        {"entries": [{"product_id": world.e3, **MONTHLY, "price": "30.00"}]},
    )
    [owner] = answer["tenants"]
    assert owner["moved_prices"] == [move(other["id"], world.e3, None, "30.00")]
    assert answer["totals"]["tenants"] == 0 and answer["totals"]["next_invoices"] == []


def test_r34_the_bounds_say_truncated(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """At most ``MAX_TENANTS`` tenants (breadth first) and ``MAX_SUBSCRIPTIONS`` subscriptions
    are read; a bound reached says ``truncated``, and what was read is reported."""
    from functions.pricelist.services import Simulator

    monkeypatch.setattr(Simulator, "MAX_TENANTS", 1)
    answer = world.call(
        "POST", f"/pricelists/{world.resell}/simulate", world.admin, {"entries": proposal(world)}
    )
    assert [t["tenant_id"] for t in answer["tenants"]] == [world.cloud, world.t1]
    assert answer["truncated"] is True and answer["limits"]["tenants"] == 1
    assert answer["tenants"][1]["next_invoice"]["change"] == "39.00"

    monkeypatch.setattr(Simulator, "MAX_TENANTS", 100)
    monkeypatch.setattr(Simulator, "MAX_SUBSCRIPTIONS", 2)
    answer = world.call(
        "POST", f"/pricelists/{world.resell}/simulate", world.admin, {"entries": proposal(world)}
    )
    t1 = answer["tenants"][1]
    assert answer["truncated"] is True and t1["next_invoice"]["truncated"] is True
    assert len(t1["next_invoice"]["subscriptions"]) <= 2


def test_r34_r5_the_overwrite_option_predicted_and_done(world: World) -> None:
    """Cloud's "Resell" is its default (retail) list too; with ``overwrite_sell_prices`` on,
    Cloud Resell's default list's fixed prices become Cloud's retail ones after the change
    (21.00 → 25.00, 3.50 → 4.00): predicted, then done by propagation."""
    world.call("PATCH", f"/tenants/{world.t1}", world.admin, {"overwrite_sell_prices": True})
    simulated = world.call(
        "POST", f"/pricelists/{world.resell}/simulate", world.admin, {"entries": proposal(world)}
    )
    t1 = simulated["tenants"][1]
    retail = [m for m in t1["moved_prices"] if m["price_list_id"] == world.t1_retail]
    assert sorted(retail, key=lambda m: str(m["product_id"])) == sorted(
        [
            move(world.t1_retail, world.t1_e3, "21.00", "25.00"),
            move(world.t1_retail, world.t1_backup, "3.50", "4.00"),
        ],
        key=lambda m: str(m["product_id"]),
    )
    world.call(
        "POST", f"/pricelists/{world.resell}/prices", world.admin, {"entries": proposal(world)}
    )
    world.runner.drain()
    assert world.prices(world.t1_admin, world.t1_retail) == {
        m["product_id"]: m["after"] for m in retail
    }
    resell2 = world.prices(world.t1_admin, world.t1_resell2)
    for moved in t1["moved_prices"]:
        if moved["price_list_id"] == world.t1_resell2:
            assert resell2[moved["product_id"]] == moved["after"]
