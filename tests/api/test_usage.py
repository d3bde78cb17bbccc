"""R25 through the API: usage records, counted once per deduplication key."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from tests.conftest import Api, token


@pytest.fixture
def metered(api: Api) -> dict[str, Any]:
    """Cloud with an Azure plan (usage, "EUR consumed") sold to customer Z, and a license."""

    def post(who: str, path: str, body: dict[str, Any]) -> Any:
        status, answer = api.call("POST", path, who, body)
        assert status in (200, 201), answer
        return answer

    platform = token("platform_admin")
    cloud = post(
        platform,
        "/tenants",
        {"name": "Cloud", "country": "DE", "time_zone": "Europe/Berlin", "currency": "EUR"},
    )["id"]
    admin = token("tenant_admin", cloud)
    products = {}
    for sku, kind, unit in (("AZURE", "usage", "EUR consumed"), ("E3", "license", "seat")):
        body = {"sku": sku, "name": sku, "type": kind, "billing_cycles": ["monthly"], "unit": unit}
        products[sku] = post(admin, "/products", body)["id"]
    retail = post(admin, "/pricelists", {"name": "Retail", "currency": "EUR", "default": True})
    for sku, price in (("AZURE", "0.85"), ("E3", "20.00")):
        post(
            admin,
            f"/pricelists/{retail['id']}/prices",
            {"product_id": products[sku], "billing_cycle": "monthly", "price": price},
        )
    z = post(admin, "/accounts", {"name": "Customer Z"})["id"]
    subs = {
        sku: post(
            admin,
            "/subscriptions",
            {"account_id": z, "product_id": products[sku], "billing_cycle": "monthly"},
        )["subscription"]["id"]
        for sku in products
    }
    return {"admin": admin, "z": token("customer", cloud, z), **subs}


def just_now() -> datetime:
    """Now, to the second (a use may not be dated before its subscription's start: R29)."""
    return datetime.now(UTC).replace(microsecond=0)


def use(key: str = "meter-1", quantity: str = "12.5", **extra: str) -> dict[str, str]:
    return {
        "quantity": quantity,
        "unit": "EUR consumed",
        "at": just_now().astimezone(timezone(timedelta(hours=1))).isoformat(),  # +01:00
        "key": key,
        **extra,
    }


def test_r25_the_same_key_twice_is_counted_once(api: Api, metered: dict[str, Any]) -> None:
    body = {"subscription_id": metered["AZURE"], **use()}
    status, first = api.call("POST", "/usage", metered["admin"], body)
    assert status == 201, first
    assert (first["quantity"], first["at"], first["unit"]) == (
        "12.5",
        datetime.fromisoformat(body["at"]).astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "EUR consumed",
    )
    status, again = api.call("POST", "/usage", metered["admin"], body)
    assert (status, again) == (201, first)  # a retry: the stored record, nothing new
    api.call("POST", "/usage", metered["admin"], {**body, **use("meter-2", "0.5")})
    status, page = api.call("GET", f"/usage?subscription_id={metered['AZURE']}", metered["z"])
    assert status == 200, page
    assert [(r["key"], r["quantity"]) for r in page["items"]] == [
        ("meter-1", "12.5"),
        ("meter-2", "0.5"),
    ]


def test_r25_the_same_key_with_another_use_is_a_409_and_changes_nothing(
    api: Api, metered: dict[str, Any]
) -> None:
    body = {"subscription_id": metered["AZURE"], **use()}
    api.call("POST", "/usage", metered["admin"], body)
    status, error = api.call("POST", "/usage", metered["admin"], {**body, "quantity": "13"})
    assert (status, error["error"]["code"], error["error"]["details"]["field"]) == (
        409,
        "usage_key_reused",
        "key",
    )
    _, page = api.call("GET", f"/usage?subscription_id={metered['AZURE']}", metered["admin"])
    assert [r["quantity"] for r in page["items"]] == ["12.5"]


@pytest.mark.parametrize(
    ("sku", "change", "field", "code"),
    [
        ("AZURE", {"unit": "hours"}, "unit", "unit_mismatch"),
        ("E3", {}, "subscription_id", "not_metered"),
        ("AZURE", {"at": "2026-11-22T10:00:00"}, "at", None),  # no offset
        ("AZURE", {"quantity": "-1"}, "quantity", None),
    ],
)
def test_r25_bad_usage_is_refused_naming_the_field(
    api: Api,
    metered: dict[str, Any],
    sku: str,
    change: dict[str, str],
    field: str,
    code: str | None,
) -> None:
    body = {"subscription_id": metered[sku], **use(), **change}
    status, error = api.call("POST", "/usage", metered["admin"], body)
    assert (status, error["error"]["details"]["field"]) == (400, field), error
    if code:
        assert error["error"]["code"] == code
