"""R25 with back ordering, on moto through the API and the local runner: a use recorded in a
reseller tenant's BSS reaches the mirror of its subscription in the provider's BSS, once, so the
provider bills its reseller for it at its own price."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from local.runner import Runner
from tests.conftest import Api, token


def test_r25_usage_of_a_mirrored_subscription_reaches_its_mirror_once(api: Api) -> None:
    def post(who: str, path: str, body: dict[str, Any]) -> Any:
        status, answer = api.call("POST", path, who, body)
        assert status in (200, 201), answer
        return answer

    place = {"country": "DE", "time_zone": "Europe/Berlin"}
    cloud = post(token("platform_admin"), "/tenants", {"name": "Cloud", "currency": "EUR", **place})
    admin = token("tenant_admin", cloud["id"])
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
    post(
        admin,
        f"/pricelists/{resell_list}/prices",
        {"product_id": azure, "billing_cycle": "monthly", "price": "0.80"},
    )
    resell = post(
        admin, "/tenants", {"name": "Cloud Resell", "price_list_id": resell_list, **place}
    )
    post(admin, f"/tenants/{resell['id']}/backordering", {})
    reseller = token("tenant_admin", resell["id"])
    copy = api.call("GET", "/products", reseller)[1]["items"][0]["id"]
    retail = post(reseller, "/pricelists", {"name": "Retail", "currency": "EUR", "default": True})
    post(
        reseller,
        f"/pricelists/{retail['id']}/prices",
        {"product_id": copy, "billing_cycle": "monthly", "markup_percent": "25"},
    )
    z = post(reseller, "/accounts", {"name": "Customer Z"})["id"]
    sub = post(
        reseller,
        "/subscriptions",
        {"account_id": z, "product_id": copy, "billing_cycle": "monthly"},
    )["subscription"]["id"]
    runner = Runner()
    runner.drain()  # the subscription is mirrored into Cloud

    at = datetime.now(UTC).isoformat(timespec="seconds")  # after the start (R29)
    for key, quantity in (("m1", "10"), ("m1", "10"), ("m2", "2.5")):  # m1 twice: counted once
        post(
            reseller,
            "/usage",
            {
                "subscription_id": sub,
                "quantity": quantity,
                "unit": "EUR consumed",
                "at": at,
                "key": key,
            },
        )
    runner.drain()

    _, subs = api.call("GET", "/subscriptions", admin)
    [mirror] = [s for s in subs["items"] if s["mirrored"]]
    assert mirror["source"]["subscription_id"] == sub
    _, page = api.call("GET", f"/usage?subscription_id={mirror['id']}", admin)
    copied = sorted((r["source"]["key"], r["quantity"]) for r in page["items"])
    assert copied == [("m1", "10"), ("m2", "2.5")]
    assert all(r["source"]["tenant_id"] == resell["id"] for r in page["items"])
    # R15: the mirror's usage is its reseller's to report; Cloud's own report is refused
    status, error = api.call(
        "POST",
        "/usage",
        admin,
        {
            "subscription_id": mirror["id"],
            "quantity": "1",
            "unit": "EUR consumed",
            "at": "2026-11-22T11:00:00Z",
            "key": "cloud-1",
        },
    )
    assert (status, error["error"]["code"]) == (409, "locked_by_reseller")

    # delivered again (at least once, R18): nothing more
    from functions import composition
    from functions.invoices.adapters import UsageRepository

    replicator = composition.container().backorder
    for record in UsageRepository().page(resell["id"], sub, 10, None).items:
        assert replicator.replicate_usage(record) == "stale"
    _, again = api.call("GET", f"/usage?subscription_id={mirror['id']}", admin)
    assert len(again["items"]) == 2
