"""R31 billed at every tier (R9, R14, R20, R22): a three-tier cascade — Cloud (root) → Cloud
Resell (a tenant reseller buying at 240.00, back ordering on) → End-Customer Z (at 300.00) —
where Z's three annual commitments bought on 2026-02-10 (10 seats each, invoiced in advance on
the February run) end three ways, and each tier's orders and next invoice are checked by hand.

- NCE-E3 (`prorated`), cancelled at 167 h (2026-02-17): 358 of 365 days credited.
- FULL-E3 (`full`), cancelled on 2026-02-15: the whole term credited.
- PEN-E3 (`refused` → 25 % penalty), cancelled on 2026-02-20 after the window: the 355 days
  left credited and 25 % of their value charged as a fee."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from local.runner import Runner
from tests.conftest import Api, token
from tests.integration.tiers import Clock, invoices, ok, run

PLACE = {"country": "DE", "time_zone": "Europe/Berlin"}
WINDOW = {"term": "P1Y", "cancellation_window_hours": 168}
POLICIES = {
    "NCE-E3": {**WINDOW, "refund": "prorated"},
    "FULL-E3": {**WINDOW, "refund": "full"},
    "PEN-E3": {**WINDOW, "after_window": "penalty", "penalty_percent": "25"},
}


def post(api: Api, who: str, path: str, body: dict[str, Any]) -> Any:
    return ok(api.call("POST", path, who, body), 200, 201)


def lines_by_sku(invoice_list: list[dict[str, Any]]) -> dict[str, list[tuple[str, str]]]:
    found: dict[str, list[tuple[str, str]]] = {}
    for invoice in invoice_list:
        for line in invoice["lines"]:
            found.setdefault(line["sku"], []).append((line["kind"], line["amount"]))
    return found


def test_r31_r14_r22_refunds_and_a_penalty_cascade_through_every_tiers_orders_and_invoices(
    billing: tuple[Api, Clock],
) -> None:
    api, clock = billing
    clock.set("2026-02-10")
    cloud = post(
        api, token("platform_admin"), "/tenants", {"name": "Cloud", "currency": "EUR", **PLACE}
    )
    admin = token("tenant_admin", cloud["id"])
    resell_list = post(api, admin, "/pricelists", {"name": "Resell", "currency": "EUR"})["id"]
    for sku, policy in POLICIES.items():
        product = post(
            api,
            admin,
            "/products",
            {
                "sku": sku,
                "name": sku,
                "type": "license",
                "unit": "seat",
                "billing_cycles": ["annual"],
                "commitments": {"annual": policy},
            },
        )
        post(
            api,
            admin,
            f"/pricelists/{resell_list}/prices",
            {"product_id": product["id"], "billing_cycle": "annual", "price": "240.00"},
        )
    resell = post(
        api, admin, "/tenants", {"name": "Cloud Resell", "price_list_id": resell_list, **PLACE}
    )
    post(api, admin, f"/tenants/{resell['id']}/backordering", {})
    reseller = token("tenant_admin", resell["id"])
    copies = {p["sku"]: p["id"] for p in ok(api.call("GET", "/products", reseller))["items"]}
    retail = post(
        api, reseller, "/pricelists", {"name": "Retail", "currency": "EUR", "default": True}
    )
    for sku in POLICIES:
        post(
            api,
            reseller,
            f"/pricelists/{retail['id']}/prices",
            {"product_id": copies[sku], "billing_cycle": "annual", "price": "300.00"},
        )
    z = post(api, reseller, "/accounts", {"name": "End-Customer Z"})["id"]
    subs = {
        sku: post(
            api,
            reseller,
            "/subscriptions",
            {"account_id": z, "product_id": copies[sku], "billing_cycle": "annual", "quantity": 10},
        )["subscription"]
        for sku in POLICIES
    }
    Runner().drain()
    # February, in advance: Z 3 × 300.00 × 10, Cloud Resell 3 × 240.00 × 10 (whole year each)
    run(api, reseller, "2026-02-01")
    run(api, admin, "2026-02-01")
    assert lines_by_sku(invoices(api, reseller, z)) == {
        sku: [("charge", "3000.00")] for sku in POLICIES
    }
    provider_account = resell["reseller_account_id"]
    assert lines_by_sku(invoices(api, admin, provider_account)) == {
        sku: [("charge", "2400.00")] for sku in POLICIES
    }

    def cancel(sku: str, moment: datetime) -> dict[str, Any]:
        clock.now = moment
        return ok(
            api.call(
                "POST", f"/subscriptions/{subs[sku]['id']}/actions", reseller, {"action": "cancel"}
            )
        )["order"]

    full = cancel("FULL-E3", datetime(2026, 2, 15, 11, tzinfo=UTC))
    prorated = cancel("NCE-E3", datetime(2026, 2, 17, 10, tzinfo=UTC))  # 167 h
    penalty = cancel("PEN-E3", datetime(2026, 2, 20, 11, tzinfo=UTC))
    # Z's orders (R9): 3,000.00 × 355 / 365 × 25 % = 729.452… → 729.45
    assert [(o["refund"], o["penalty"]) for o in (prorated, full, penalty)] == [
        ("prorated", None),
        ("full", None),
        (None, "729.45"),
    ]
    Runner().drain()
    # the provider's own orders (R14), at the reseller's 240.00: 2,400.00 × 355/365 × 25 %
    # = 583.561… → 583.56
    orders = ok(api.call("GET", "/orders?limit=100", admin))["items"]
    upstream = {
        o["lines"][0]["sku"]: (o["refund"], o["penalty"]) for o in orders if o["type"] == "cancel"
    }
    assert upstream == {
        "NCE-E3": ("prorated", None),
        "FULL-E3": ("full", None),
        "PEN-E3": (None, "583.56"),
    }
    clock.set("2026-03-01")
    run(api, reseller, "2026-03-01")
    run(api, admin, "2026-03-01")
    # Z: 358/365 of 3,000.00 = 2,942.465… → 2,942.47; the whole 3,000.00; 355/365 of it =
    # 2,917.808… → 2,917.81 and the fee
    march = [i for i in invoices(api, reseller, z) if i["period_start"] == "2026-03-01"]
    assert _sorted(lines_by_sku(march)) == {
        "NCE-E3": [("credit", "-2942.47")],
        "FULL-E3": [("credit", "-3000.00")],
        "PEN-E3": [("credit", "-2917.81"), ("fee", "729.45")],
    }
    # Cloud Resell by Cloud: 2,353.97 (358 days), 2,400.00, 2,334.25 (355 days) and 583.56
    march_up = [
        i for i in invoices(api, admin, provider_account) if i["period_start"] == "2026-03-01"
    ]
    assert _sorted(lines_by_sku(march_up)) == {
        "NCE-E3": [("credit", "-2353.97")],
        "FULL-E3": [("credit", "-2400.00")],
        "PEN-E3": [("credit", "-2334.25"), ("fee", "583.56")],
    }
    fee = next(line for i in march_up for line in i["lines"] if line["kind"] == "fee")
    assert fee["description"].startswith("Cancellation fee: PEN-E3")
    assert sum(Decimal(i["subtotal"]) for i in march_up) == Decimal("-6504.66")


def _sorted(found: dict[str, list[tuple[str, str]]]) -> dict[str, list[tuple[str, str]]]:
    return {sku: sorted(pairs) for sku, pairs in found.items()}
