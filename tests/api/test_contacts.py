"""Contacts and notes on accounts (SPEC §9 paths; R15 allows them on mirrors, see
tests/integration/test_backorder.py): who may add and read them, their order, their limits."""

from __future__ import annotations

from typing import Any

from tests.conftest import Api, token


def ok(result: tuple[int, Any], status: int = 200) -> Any:
    code, body = result
    assert code == status, body
    return body


def shop(api: Api) -> dict[str, str]:
    tenant = ok(
        api.call(
            "POST",
            "/tenants",
            token("platform_admin"),
            {"name": "Cloud", "country": "DE", "time_zone": "Europe/Berlin", "currency": "EUR"},
        ),
        201,
    )
    admin = token("tenant_admin", tenant["id"])
    lite = ok(api.call("POST", "/accounts", admin, {"name": "Lite", "kind": "lite_reseller"}), 201)
    x = ok(
        api.call("POST", "/accounts", admin, {"name": "X", "parent_account_id": lite["id"]}), 201
    )
    return {
        "admin": admin,
        "x": x["id"],
        "as_x": token("customer", tenant["id"], x["id"]),
        "as_lite": token("reseller", tenant["id"], lite["id"]),
    }


def test_a_customer_keeps_its_own_contacts_and_its_reseller_sees_them(api: Api) -> None:
    s = shop(api)
    path = f"/accounts/{s['x']}/contacts"
    first = ok(
        api.call("POST", path, s["as_x"], {"name": "Xena", "role": "billing", "email": "x@x.io"}),
        201,
    )
    assert (first["role"], first["email"], first["created_by"]) == (
        "billing",
        "x@x.io",
        "customer-user",
    )
    second = ok(api.call("POST", path, s["as_lite"], {"name": "Xaver", "phone": "+49 30 1"}), 201)
    assert second["role"] == "primary"
    listed = ok(api.call("GET", path, s["admin"]))["items"]
    assert [c["name"] for c in listed] == ["Xena", "Xaver"]  # oldest first
    page = ok(api.call("GET", f"{path}?limit=1", s["as_x"]))
    rest = ok(api.call("GET", f"{path}?limit=1&cursor={page['next_cursor']}", s["as_x"]))
    assert [c["name"] for c in page["items"] + rest["items"]] == ["Xena", "Xaver"]
    removed = ok(api.call("DELETE", f"{path}/{first['id']}", s["as_x"]))
    assert removed["id"] == first["id"]
    assert [c["name"] for c in ok(api.call("GET", path, s["as_x"]))["items"]] == ["Xaver"]
    status, error = api.call("DELETE", f"{path}/{first['id']}", s["as_x"])
    assert (status, error["error"]["code"]) == (404, "not_found")


def test_notes_are_internal_newest_first_and_customers_cannot_read_them(api: Api) -> None:
    s = shop(api)
    path = f"/accounts/{s['x']}/notes"
    ok(api.call("POST", path, s["admin"], {"text": "Signed the EA"}), 201)
    ok(api.call("POST", path, s["admin"], {"text": "Wants Teams"}), 201)
    notes = ok(api.call("GET", path, s["admin"]))["items"]
    assert [(n["text"], n["author"]) for n in notes] == [
        ("Wants Teams", "tenant_admin-user"),
        ("Signed the EA", "tenant_admin-user"),
    ]
    for user in ("as_x", "as_lite"):  # staff only: for the others notes do not exist (issue 11)
        status, error = api.call("GET", path, s[user])
        assert (status, error["error"]["code"]) == (404, "not_found")
    status, error = api.call("POST", path, s["admin"], {"text": "   "})
    assert (status, error["error"]["details"]["field"]) == (400, "text")


def test_an_account_has_at_most_fifty_contacts(api: Api) -> None:
    s = shop(api)
    path = f"/accounts/{s['x']}/contacts"
    for n in range(50):
        ok(api.call("POST", path, s["admin"], {"name": f"Person {n}"}), 201)
    status, error = api.call("POST", path, s["admin"], {"name": "One too many"})
    assert (status, error["error"]["code"]) == (409, "too_many_contacts")
    assert len(ok(api.call("GET", f"{path}?limit=100", s["admin"]))["items"]) == 50
