"""The three tiers of SPEC §1 with hand-computed prices, and the billing run in-process
(``local.billing``), shared by the billing and margin suites (R20-R26, R32)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.conftest import Api, token

BERLIN_NOON = 11  # 12:00 in Berlin (CET) in winter, as UTC hours


class Clock:
    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        from functions.core import clock

        self.now = datetime(2026, 1, 1, BERLIN_NOON, tzinfo=UTC)
        monkeypatch.setattr(clock, "now_utc", lambda: self.now)

    def set(self, day: str) -> None:
        self.now = datetime.fromisoformat(f"{day}T{BERLIN_NOON:02d}:00:00+00:00")


def ok(result: tuple[int, Any], *expected: int) -> Any:
    status, body = result
    assert status in (expected or (200, 201)), body
    return body


def run(api: Api, adm: str, period_start: str) -> dict[str, Any]:
    return ok(api.call("POST", "/billing-runs", adm, {"period_start": period_start}), 202)


def invoices(api: Api, adm: str, account_id: str) -> list[dict[str, Any]]:
    found = ok(api.call("GET", f"/invoices?account_id={account_id}", adm))["items"]
    return [ok(api.call("GET", f"/invoices/{i['id']}", adm)) for i in found]


@dataclass(frozen=True)
class Tiers:
    cloud: str
    admin: str  # Cloud's tenant admin token
    resell: str
    resell_account: str  # Cloud Resell's tenant reseller account in Cloud
    reseller: str  # Cloud Resell's tenant admin token
    copies: dict[str, str]  # Cloud Resell's copies by SKU
    lite: str
    x: str
    z: str


def three_tiers(api: Api, clock: Clock) -> Tiers:
    """Cloud (E3 at cost 20.00, Azure usage) → Cloud Resell (a tenant reseller buying at the
    Resell list, E3 22.00, Azure 0.80; back ordering on) → Cloud Lite (a lite reseller at Cloud
    Resell's Lite list, E3 26.00, Azure 0.90) → Customer X (4 × E3 and Azure, 100 units used in
    February); Cloud Resell's direct customer Z (2 × E3 at retail 30.00). Ordered on
    2026-02-10; the mirrors and the usage reach Cloud."""
    from local.runner import Runner

    clock.set("2026-02-10")
    place = {"country": "DE", "time_zone": "Europe/Berlin"}

    def post(who: str, path: str, body: dict[str, Any]) -> Any:
        return ok(api.call("POST", path, who, body), 200, 201)

    cloud = post(token("platform_admin"), "/tenants", {"name": "Cloud", "currency": "EUR", **place})
    admin = token("tenant_admin", cloud["id"])
    e3 = post(
        admin,
        "/products",
        {
            "sku": "E3",
            "name": "Office 365 E3",
            "type": "license",
            "unit": "seat",
            "billing_cycles": ["monthly"],
            "costs": {"monthly": "20.00"},
        },
    )["id"]
    azure = post(
        admin,
        "/products",
        {
            "sku": "AZURE",
            "name": "Azure plan",
            "type": "usage",
            "billing_cycles": ["monthly"],
            "unit": "EUR consumed",
        },
    )["id"]
    resell_list = post(admin, "/pricelists", {"name": "Resell", "currency": "EUR"})["id"]
    for product, price in ((e3, "22.00"), (azure, "0.80")):
        post(
            admin,
            f"/pricelists/{resell_list}/prices",
            {"product_id": product, "billing_cycle": "monthly", "price": price},
        )
    resell = post(
        admin, "/tenants", {"name": "Cloud Resell", "price_list_id": resell_list, **place}
    )
    post(admin, f"/tenants/{resell['id']}/backordering", {})
    reseller = token("tenant_admin", resell["id"])
    copies = {p["sku"]: p["id"] for p in ok(api.call("GET", "/products", reseller))["items"]}
    retail = post(reseller, "/pricelists", {"name": "Retail", "currency": "EUR", "default": True})
    lite_list = post(reseller, "/pricelists", {"name": "Lite", "currency": "EUR"})["id"]
    for list_id, sku, price in (
        (retail["id"], "E3", {"price": "30.00"}),
        (retail["id"], "AZURE", {"markup_percent": "25"}),
        (lite_list, "E3", {"price": "26.00"}),
        (lite_list, "AZURE", {"price": "0.90"}),
    ):
        post(
            reseller,
            f"/pricelists/{list_id}/prices",
            {"product_id": copies[sku], "billing_cycle": "monthly", **price},
        )
    lite = post(
        reseller,
        "/accounts",
        {"name": "Cloud Lite", "kind": "lite_reseller", "price_list_id": lite_list},
    )["id"]
    lite_tok = token("reseller", resell["id"], lite)
    x = post(lite_tok, "/accounts", {"name": "Customer X"})["id"]
    z = post(reseller, "/accounts", {"name": "End-Customer Z"})["id"]
    monthly = {"billing_cycle": "monthly"}
    post(
        lite_tok,
        "/subscriptions",
        {"account_id": x, "product_id": copies["E3"], "quantity": 4, **monthly},
    )
    metered = post(
        lite_tok, "/subscriptions", {"account_id": x, "product_id": copies["AZURE"], **monthly}
    )
    post(
        reseller,
        "/subscriptions",
        {"account_id": z, "product_id": copies["E3"], "quantity": 2, **monthly},
    )
    post(
        reseller,
        "/usage",
        {
            "subscription_id": metered["subscription"]["id"],
            "quantity": "100",
            "unit": "EUR consumed",
            "at": "2026-02-10T10:00:00Z",  # today: a use is not dated ahead (R29)
            "key": "feb",
        },
    )
    Runner().drain()  # mirrors (and the usage) reach Cloud
    return Tiers(
        cloud=cloud["id"],
        admin=admin,
        resell=resell["id"],
        resell_account=resell["reseller_account_id"],
        reseller=reseller,
        copies=copies,
        lite=lite,
        x=x,
        z=z,
    )
