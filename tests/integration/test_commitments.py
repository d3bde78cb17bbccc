"""R31 through the HTTP API (chalice test client on moto), with a patched clock: a product's
commitment policy (R4 on a copy), a subscription's commitment dates, the 409 bodies of refused
actions (nothing written), the scheduled downgrade, and the mirror carrying the same dates
(R13, R17). Purchases at 2026-02-10 12:00 Berlin (11:00 UTC)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from tests.conftest import Api, token, writes
from tests.integration.tiers import Clock, ok

NCE = {"term": "P1Y", "cancellation_window_hours": 168}
PLACE = {"country": "DE", "time_zone": "Europe/Berlin"}


class Market:
    """Cloud (NCE-E3 annual on NCE terms and monthly flexible; E1 cheaper, same terms; FLEX
    without a policy) → Cloud Resell (a tenant reseller, back ordering on) with customer Z."""

    def __init__(self, api: Api, clock: Clock) -> None:
        self.api, self.clock = api, clock
        clock.set("2026-02-10")
        self.cloud = self.post(
            token("platform_admin"), "/tenants", {"name": "Cloud", "currency": "EUR", **PLACE}
        )
        self.admin = token("tenant_admin", self.cloud["id"])
        self.e3 = self.product("NCE-E3", {"annual": NCE})
        self.e1 = self.product("NCE-E1", {"annual": NCE})
        self.flex = self.product("FLEX", None)
        self.resell_list = self.post(
            self.admin, "/pricelists", {"name": "Resell", "currency": "EUR"}
        )["id"]
        retail = self.post(
            self.admin, "/pricelists", {"name": "Retail", "currency": "EUR", "default": True}
        )["id"]
        for list_id in (self.resell_list, retail):
            for product, price in ((self.e3, "240.00"), (self.e1, "120.00"), (self.flex, "100.00")):
                self.post(
                    self.admin,
                    f"/pricelists/{list_id}/prices",
                    {"product_id": product["id"], "billing_cycle": "annual", "price": price},
                )
        self.customer = self.post(self.admin, "/accounts", {"name": "Direct Y"})["id"]

    def post(self, who: str, path: str, body: dict[str, Any]) -> Any:
        return ok(self.api.call("POST", path, who, body), 200, 201)

    def product(self, sku: str, commitments: dict[str, Any] | None) -> Any:
        body: dict[str, Any] = {
            "sku": sku,
            "name": sku,
            "type": "license",
            "unit": "seat",
            "billing_cycles": ["monthly", "annual"],
        }
        if commitments is not None:
            body["commitments"] = commitments
        return self.post(self.admin, "/products", body)

    def buy(
        self, product: Any, quantity: int = 10, who: str | None = None, account: str | None = None
    ) -> Any:
        body = {
            "account_id": account or self.customer,
            "product_id": product["id"],
            "billing_cycle": "annual",
            "quantity": quantity,
        }
        return self.post(who or self.admin, "/subscriptions", body)["subscription"]

    def after(self, hours: float) -> None:
        self.clock.now = datetime.fromisoformat("2026-02-10T11:00:00+00:00") + timedelta(
            hours=hours
        )

    def act(self, sub: Any, action: str, who: str | None = None, **extra: Any) -> tuple[int, Any]:
        return self.api.call(
            "POST",
            f"/subscriptions/{sub['id']}/actions",
            who or self.admin,
            {"action": action, **extra},
        )

    def get(self, sub: Any, who: str | None = None) -> Any:
        return ok(self.api.call("GET", f"/subscriptions/{sub['id']}", who or self.admin))


@pytest.fixture
def market(api: Api, monkeypatch: pytest.MonkeyPatch) -> Market:
    return Market(api, Clock(monkeypatch))


NCE_OUT = {
    "term": "P1Y",
    "cancellation_window_hours": 168,
    "refund": "prorated",
    "after_window": "refused",
    "penalty_percent": None,
    "seat_reduction": "within_window",
}


def test_r31_the_products_policy_in_the_api(market: Market) -> None:
    assert market.e3["commitments"] == {"annual": NCE_OUT}
    assert market.flex["commitments"] == {}
    got = ok(market.api.call("GET", f"/products/{market.e3['id']}", market.admin))
    assert got["commitments"] == {"annual": NCE_OUT}
    penalty = {
        "term": "P3Y",
        "cancellation_window_hours": 72,
        "after_window": "penalty",
        "penalty_percent": "25",
    }
    patched = ok(
        market.api.call(
            "PATCH",
            f"/products/{market.flex['id']}",
            market.admin,
            {"commitments": {"annual": penalty}},
        )
    )
    assert patched["commitments"]["annual"] == {
        **NCE_OUT,
        "term": "P3Y",
        "cancellation_window_hours": 72,
        "after_window": "penalty",
        "penalty_percent": "25",
    }
    cleared = ok(
        market.api.call(
            "PATCH", f"/products/{market.flex['id']}", market.admin, {"commitments": None}
        )
    )
    assert cleared["commitments"] == {}


@pytest.mark.parametrize(
    ("commitments", "field"),
    [
        ({"annual": {"term": "P2Y", "cancellation_window_hours": 1}}, "commitments.annual.term"),
        (
            {"monthly": {"term": "P1Y", "cancellation_window_hours": 1.5}},
            "commitments.monthly.cancellation_window_hours",
        ),
        (
            {"annual": {"term": "P1Y", "cancellation_window_hours": 1, "after_window": "penalty"}},
            "commitments.annual.penalty_percent",
        ),
        ({"annual": {"term": "P1M", "cancellation_window_hours": 1}}, "commitments.annual.term"),
    ],
)
def test_r31_r29_a_bad_policy_is_400_naming_its_field(
    market: Market, commitments: Any, field: str
) -> None:
    before = writes()
    status, body = market.api.call(
        "PATCH", f"/products/{market.flex['id']}", market.admin, {"commitments": commitments}
    )
    assert status == 400, body
    assert body["error"]["details"]["field"] == field
    assert writes() == before


def test_r31_r3_r4_a_copy_carries_the_policy_and_refuses_changing_it(market: Market) -> None:
    resell = market.post(
        market.admin,
        "/tenants",
        {"name": "Cloud Resell", "price_list_id": market.resell_list, **PLACE},
    )
    reseller = token("tenant_admin", resell["id"])
    copies = {p["sku"]: p for p in ok(market.api.call("GET", "/products", reseller))["items"]}
    copy = copies["NCE-E3"]
    assert copy["commitments"] == {"annual": NCE_OUT}
    before = writes()
    status, body = market.api.call(
        "PATCH",
        f"/products/{copy['id']}",
        reseller,
        {"commitments": {"annual": {**NCE, "cancellation_window_hours": 720}}},
    )
    assert status == 409 and body["error"]["code"] == "inherited_product", body
    assert body["error"]["details"]["field"] == "commitments"
    assert writes() == before


def test_r31_a_subscription_shows_its_commitment_dates(market: Market) -> None:
    sub = market.buy(market.e3)
    assert sub["commitment"] == NCE_OUT
    assert sub["term"] == "annual" and sub["end_date"] == "2027-02-09"
    assert sub["purchased_at"] == "2026-02-10T11:00:00Z"
    assert sub["term_end"] == "2027-02-09"
    assert sub["cancellable_until"] == "2026-02-17T11:00:00Z"
    assert sub["cancellable_from"] is None
    assert sub["refundable_quantity"] == [{"quantity": 10, "until": "2026-02-17T11:00:00Z"}]
    flexible = market.buy(market.flex)
    assert flexible["commitment"] is None and flexible["cancellable_until"] is None
    assert flexible["refundable_quantity"] == []


def test_r31_cancel_at_167_hours_is_refunded_at_169_refused_with_the_term_end(
    market: Market,
) -> None:
    early, late = market.buy(market.e3), market.buy(market.e3)
    market.after(167)
    done = ok(market.act(early, "cancel"))
    assert done["subscription"]["status"] == "cancelled"
    assert (done["order"]["type"], done["order"]["refund"], done["order"]["penalty"]) == (
        "cancel",
        "prorated",
        None,
    )
    market.after(169)
    shown = market.get(late)
    assert shown["cancellable_from"] == "2027-02-09"
    before = writes()
    status, body = market.act(late, "cancel")
    assert status == 409, body
    assert body["error"]["code"] == "outside_cancellation_window"
    assert body["error"]["details"] == {
        "possible_on": "2027-02-09",
        "term_end": "2027-02-09",
        "window_closed_at": "2026-02-17T11:00:00Z",
    }
    assert writes() == before
    assert market.get(late) == shown


def test_r31_seats_added_on_day_10_go_on_day_12_not_day_20(market: Market) -> None:
    sub = market.buy(market.e3)
    market.after(24 * 9)  # day 10
    added = ok(market.act(sub, "change_quantity", quantity=15))["subscription"]
    assert added["refundable_quantity"] == [{"quantity": 5, "until": "2026-02-26T11:00:00Z"}]
    market.after(24 * 11)  # day 12
    status, body = market.act(sub, "change_quantity", quantity=9)
    assert status == 409 and body["error"]["code"] == "seat_reduction_not_allowed", body
    assert body["error"]["details"]["minimum_quantity"] == 10
    reduced = ok(market.act(sub, "change_quantity", quantity=12))["subscription"]
    assert reduced["quantity"] == 12
    assert reduced["refundable_quantity"] == [{"quantity": 2, "until": "2026-02-26T11:00:00Z"}]
    market.after(24 * 19)  # day 20
    before = writes()
    status, body = market.act(sub, "change_quantity", quantity=11)
    assert status == 409 and body["error"]["code"] == "seat_reduction_not_allowed", body
    assert body["error"]["details"] == {
        "field": "quantity",
        "possible_on": "2027-02-09",
        "term_end": "2027-02-09",
        "quantity": 12,
        "minimum_quantity": 12,
        "refundable_quantity": 0,
    }
    assert writes() == before
    assert market.get(sub)["quantity"] == 12


def test_r31_upgrade_now_downgrade_at_renewal_auto_renew_off_any_time(market: Market) -> None:
    sub = market.buy(market.e1)
    market.after(24 * 30)
    upgraded = ok(market.act(sub, "upgrade", product_id=market.e3["id"]))
    assert upgraded["subscription"]["product_id"] == market.e3["id"]
    assert upgraded["order"]["status"] == "completed"
    scheduled = ok(market.act(sub, "downgrade", product_id=market.e1["id"]))
    assert scheduled["subscription"]["product_id"] == market.e3["id"]
    assert scheduled["subscription"]["unit_price"] == "240.00"
    assert scheduled["subscription"]["scheduled_change"] == {
        "type": "downgrade",
        "on": "2027-02-10",
        "product_id": market.e1["id"],
    }
    order = scheduled["order"]
    assert (order["type"], order["status"], order["date"]) == (
        "downgrade",
        "scheduled",
        "2027-02-10",
    )
    assert order["lines"][0]["product_id"] == market.e1["id"]
    assert order["lines"][0]["previous_product_id"] == market.e3["id"]
    off = ok(market.act(sub, "set_auto_renew", auto_renew=False))
    assert off["subscription"]["auto_renew"] is False
    assert off["order"]["type"] == "auto_renew_change"
    market.clock.set("2027-02-05")
    renewed = ok(market.act(sub, "renew"))["subscription"]
    assert renewed["product_id"] == market.e1["id"] and renewed["unit_price"] == "120.00"
    assert renewed["scheduled_change"] is None and renewed["end_date"] == "2028-02-09"


def test_r31_set_auto_renew_takes_only_its_field(market: Market) -> None:
    sub = market.buy(market.flex)
    status, body = market.act(sub, "set_auto_renew")
    assert status == 400 and body["error"]["details"]["field"] == "auto_renew", body
    status, body = market.act(sub, "cancel", auto_renew=False)
    assert status == 400 and body["error"]["details"]["field"] == "auto_renew", body


def test_r31_flexible_products_keep_todays_behaviour(market: Market) -> None:
    sub = market.buy(market.flex)
    market.after(24 * 100)
    assert ok(market.act(sub, "change_quantity", quantity=1))["subscription"]["quantity"] == 1
    cancelled = ok(market.act(sub, "cancel"))
    assert (
        cancelled["order"]["refund"] is None and cancelled["subscription"]["status"] == "cancelled"
    )


def test_r31_r13_the_mirror_carries_the_same_dates_and_stays_locked(market: Market) -> None:
    from local.runner import Runner

    resell = market.post(
        market.admin,
        "/tenants",
        {"name": "Cloud Resell", "price_list_id": market.resell_list, **PLACE},
    )
    market.post(market.admin, f"/tenants/{resell['id']}/backordering", {})
    reseller = token("tenant_admin", resell["id"])
    copies = {p["sku"]: p for p in ok(market.api.call("GET", "/products", reseller))["items"]}
    retail = market.post(
        reseller, "/pricelists", {"name": "Retail", "currency": "EUR", "default": True}
    )["id"]
    market.post(
        reseller,
        f"/pricelists/{retail}/prices",
        {"product_id": copies["NCE-E3"]["id"], "billing_cycle": "annual", "price": "300.00"},
    )
    z = market.post(reseller, "/accounts", {"name": "End-Customer Z"})["id"]
    sub = market.buy(copies["NCE-E3"], who=reseller, account=z)
    market.after(24 * 9)
    sub = ok(market.act(sub, "change_quantity", reseller, quantity=12))["subscription"]
    Runner().drain()
    mirrors = ok(
        market.api.call(
            "GET", f"/subscriptions?account_id={resell['reseller_account_id']}", market.admin
        )
    )
    items = mirrors["items"]
    if not items:  # the end customer's mirror sits under the reseller account
        items = [
            s
            for s in ok(market.api.call("GET", "/subscriptions", market.admin))["items"]
            if s["mirrored"]
        ]
    (mirror,) = [s for s in items if s["mirrored"]]
    for name in (
        "commitment",
        "purchased_at",
        "term_end",
        "cancellable_until",
        "cancellable_from",
        "refundable_quantity",
    ):
        assert mirror[name] == sub[name], name
    assert mirror["refundable_quantity"] == [{"quantity": 2, "until": "2026-02-26T11:00:00Z"}]
    status, body = market.act(mirror, "cancel")
    assert status == 409 and body["error"]["code"] == "locked_by_reseller", body
    status, body = market.act(mirror, "set_auto_renew", auto_renew=False)
    assert status == 409 and body["error"]["code"] == "locked_by_reseller", body


def test_r31_a_penalty_policy_cancels_after_the_window_and_the_order_says_what_is_owed(
    market: Market,
) -> None:
    """100.00 × 10 seats × 266 days left (2026-05-20 – 2027-02-09) / 365 × 25 % = 182.19."""
    policy = {**NCE, "after_window": "penalty", "penalty_percent": "25"}
    ok(
        market.api.call(
            "PATCH",
            f"/products/{market.flex['id']}",
            market.admin,
            {"commitments": {"annual": policy}},
        )
    )
    sub = market.buy(market.flex)
    assert sub["cancellable_from"] is None
    market.after(24 * 99)  # 2026-05-20, Berlin
    cancelled = ok(market.act(sub, "cancel"))
    assert cancelled["subscription"]["status"] == "cancelled"
    order = cancelled["order"]
    assert (order["refund"], order["penalty"], order["currency"]) == (None, "182.19", "EUR")


def test_r31_r5_a_providers_policy_change_reaches_the_copy(market: Market) -> None:
    from local.runner import Runner

    resell = market.post(
        market.admin,
        "/tenants",
        {"name": "Cloud Resell", "price_list_id": market.resell_list, **PLACE},
    )
    reseller = token("tenant_admin", resell["id"])
    Runner().drain()
    shorter = {"annual": {**NCE, "cancellation_window_hours": 72}}
    ok(
        market.api.call(
            "PATCH", f"/products/{market.e3['id']}", market.admin, {"commitments": shorter}
        )
    )
    Runner().drain()
    copies = {p["sku"]: p for p in ok(market.api.call("GET", "/products", reseller))["items"]}
    assert copies["NCE-E3"]["commitments"]["annual"]["cancellation_window_hours"] == 72


def child_with_downgrade_prices(market: Market) -> tuple[str, dict[str, Any], str]:
    """Cloud Resell (back ordering on) selling the copies of NCE-E3 at 300.00 and NCE-E1 at
    150.00 to its customer Z: its admin's token, the copies by SKU, Z's id."""
    resell = market.post(
        market.admin,
        "/tenants",
        {"name": "Cloud Resell", "price_list_id": market.resell_list, **PLACE},
    )
    market.post(market.admin, f"/tenants/{resell['id']}/backordering", {})
    reseller = token("tenant_admin", resell["id"])
    copies = {p["sku"]: p for p in ok(market.api.call("GET", "/products", reseller))["items"]}
    retail = market.post(
        reseller, "/pricelists", {"name": "Retail", "currency": "EUR", "default": True}
    )["id"]
    for sku, price in (("NCE-E3", "300.00"), ("NCE-E1", "150.00")):
        market.post(
            reseller,
            f"/pricelists/{retail}/prices",
            {"product_id": copies[sku]["id"], "billing_cycle": "annual", "price": price},
        )
    z = market.post(reseller, "/accounts", {"name": "End-Customer Z"})["id"]
    return reseller, copies, z


def test_r31_r14_a_scheduled_downgrade_is_a_scheduled_order_at_every_tier(market: Market) -> None:
    """The provider's own order of the child's scheduled downgrade: status ``scheduled``, dated
    at the renewal, for its own E1 at the reseller's price (120.00); the mirror shows it."""
    from local.runner import Runner

    reseller, copies, z = child_with_downgrade_prices(market)
    sub = market.buy(copies["NCE-E3"], who=reseller, account=z)
    market.after(24 * 30)
    done = ok(market.act(sub, "downgrade", reseller, product_id=copies["NCE-E1"]["id"]))
    assert (done["order"]["status"], done["order"]["date"]) == ("scheduled", "2027-02-10")
    Runner().drain()
    orders = ok(market.api.call("GET", "/orders", market.admin))["items"]
    (scheduled,) = [o for o in orders if o["type"] == "downgrade"]
    assert (scheduled["status"], scheduled["date"]) == ("scheduled", "2027-02-10")
    (line,) = scheduled["lines"]
    assert (line["product_id"], line["unit_price"], line["amount"]) == (
        market.e1["id"],
        "120.00",
        "1200.00",
    )
    assert line["previous_product_id"] == market.e3["id"]
    (mirror,) = [
        s
        for s in ok(market.api.call("GET", "/subscriptions", market.admin))["items"]
        if s["mirrored"]
    ]
    assert mirror["product_id"] == market.e3["id"]
    assert mirror["scheduled_change"] == {
        "type": "downgrade",
        "on": "2027-02-10",
        "product_id": market.e1["id"],
    }


def test_r31_r14_the_daily_renewal_applies_a_due_downgrade_at_every_tier(market: Market) -> None:
    """The child's auto-renewing NCE-E3 (300.00) downgraded to NCE-E1 (150.00) on day 30 waits
    for 2027-02-10; the daily ``renewal_schedule`` of that day (01:05 UTC, 02:05 in Berlin)
    writes the renewal: E1 at 150.00 for term 2 (to 2028-02-09), a ``renew`` order dated
    2027-02-10 by ``renewal-schedule``; run again, it finds nothing. The mirror follows (Cloud's
    E1) with the provider's own renew order at the reseller's 120.00 × 10 = 1,200.00."""
    from functions import composition
    from local.runner import Runner

    reseller, copies, z = child_with_downgrade_prices(market)
    sub = market.buy(copies["NCE-E3"], who=reseller, account=z)
    market.after(24 * 30)
    ok(market.act(sub, "downgrade", reseller, product_id=copies["NCE-E1"]["id"]))
    Runner().drain()
    orders = composition.container().orders
    market.clock.now = datetime.fromisoformat("2027-02-09T23:05:00+00:00")  # 00:05 in Berlin
    assert orders.renew_due(market.clock.now) == {"renewed": 1}
    renewed = market.get(sub, reseller)
    assert (renewed["product_id"], renewed["unit_price"], renewed["end_date"]) == (
        copies["NCE-E1"]["id"],
        "150.00",
        "2028-02-09",
    )
    assert renewed["scheduled_change"] is None
    assert renewed["cancellable_until"] == "2027-02-16T23:00:00Z"  # the new term's window
    assert orders.renew_due(market.clock.now) == {"renewed": 0}
    mine = ok(market.api.call("GET", f"/orders?account_id={z}", reseller))["items"]
    (renewal,) = [o for o in mine if o["type"] == "renew"]
    assert (renewal["date"], renewal["created_by"], renewal["total"]) == (
        "2027-02-10",
        "renewal-schedule",
        "1500.00",
    )
    Runner().drain()
    (mirror,) = [
        s
        for s in ok(market.api.call("GET", "/subscriptions", market.admin))["items"]
        if s["mirrored"]
    ]
    assert (mirror["product_id"], mirror["scheduled_change"], mirror["end_date"]) == (
        market.e1["id"],
        None,
        "2028-02-09",
    )
    upstream = ok(market.api.call("GET", "/orders?limit=100", market.admin))["items"]
    (provider_renewal,) = [o for o in upstream if o["type"] == "renew"]
    (line,) = provider_renewal["lines"]
    assert (provider_renewal["date"], line["product_id"], line["amount"]) == (
        "2027-02-10",
        market.e1["id"],
        "1200.00",
    )
