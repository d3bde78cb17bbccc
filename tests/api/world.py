"""Two tenants with data, built through the HTTP API only (the SPEC §1 demo shape), for the access
and input-contract suites (R28, R29).

Tenant A (root, EUR): three price lists (default EUR, resellers EUR, one in USD), products (a
license in both cycles, an add-on for it, a monthly-only license, a product only the resellers'
list offers), a lite reseller L ("Cloud Lite") with customers X and Y, a second lite reseller L2
with customer V, a direct customer Z, a tenant reseller C ("Cloud Resell") whose catalogue was
copied from A's default list (R3), subscriptions with add-ons, and their orders.
Tenant B (root, EUR): its own price list, products, a lite reseller with a customer, a direct
customer, subscriptions with an add-on, and orders.

``aws_env()`` is the module-scoped twin of the ``aws``/``api`` fixtures of ``tests/conftest.py``,
so a suite builds the world once and runs many read-only or refused requests against it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest

from tests.conftest import TEST_ENV, Api, billing_in_process, create_queues, token, writes


@contextmanager
def aws_env() -> Iterator[Api]:
    """Moto in-process with every BSS table, and the Chalice test client (module scope)."""
    from moto import mock_aws

    from functions import composition
    from functions.core.persistence import create_tables

    with pytest.MonkeyPatch.context() as mp:
        for name, value in TEST_ENV.items():
            mp.setenv(name, value)
        with mock_aws():
            composition.reset()
            composition.container()
            create_tables(composition.models())
            create_queues()
            billing_in_process()
            client = Api()
            try:
                yield client
            finally:
                client.close()
                composition.reset()


class CallFailed(AssertionError):
    pass


def ok(result: tuple[int, Any], *expected: int) -> Any:
    status, body = result
    if status not in (expected or (200, 201)):
        raise CallFailed(f"unexpected {status}: {body}")
    return body


@dataclass
class Tenant:
    """One tenant's ids and tokens."""

    id: str = ""
    price_list: str = ""  # the default list (direct customers)
    reseller_list: str = ""  # the lite resellers' list
    usd_list: str = ""
    base: str = ""  # license, monthly + annual
    addon: str = ""  # add-on for ``base``
    monthly_only: str = ""  # license sold monthly only
    reseller_only: str = ""  # in the resellers' list only
    lite: str = ""  # lite reseller L
    lite2: str = ""  # lite reseller L2
    x: str = ""  # customer under L
    y: str = ""  # customer under L
    v: str = ""  # customer under L2
    z: str = ""  # direct customer
    child: str = ""  # a tenant reseller (child tenant) of this tenant
    child_account: str = ""  # its account in this tenant's BSS
    sub_x: str = ""
    sub_x_addon: str = ""
    sub_y: str = ""
    sub_z: str = ""
    sub_z_addon: str = ""
    sub_v: str = ""
    order_x: str = ""
    order_y: str = ""
    order_z: str = ""
    order_v: str = ""
    contact_x: str = ""  # a contact of X
    contact_z: str = ""  # a contact of Z
    run: str = ""  # the billing run of the current period (R24)
    reconciliation: str = ""  # a reconciliation run of its child (R33; back ordering on)
    invoice_z: str = ""  # Z's invoice of it
    invoice_lite: str = ""  # L's invoice (for X's and Y's subscriptions, R20)
    # tokens: the tenant's admin, its child tenant's admin, and one user per account
    admin: str = ""
    child_admin: str = ""
    as_lite: str = ""  # reseller (L's user)
    as_lite2: str = ""  # reseller (L2's user)
    as_x: str = ""  # customer X
    as_y: str = ""
    as_v: str = ""
    as_z: str = ""

    def ids(self) -> set[str]:
        """Every id of this tenant's data (what another tenant must never see)."""
        return {
            value
            for name, value in vars(self).items()
            if value and not (name in ("admin", "child_admin") or name.startswith("as_"))
        }


@dataclass
class World:
    api: Api
    platform: str
    a: Tenant
    b: Tenant

    def counts(self) -> int:
        """The app's writes so far (``tests.conftest.writes``): the same after a refused
        request."""
        return writes()


def _tenant(api: Api, platform: str, name: str, *, full: bool) -> Tenant:
    t = Tenant()
    body = {"name": name, "country": "DE", "time_zone": "Europe/Berlin", "currency": "EUR"}
    t.id = ok(api.call("POST", "/tenants", platform, body), 201)["id"]
    t.admin = adm = token("tenant_admin", t.id)

    def post(path: str, body: dict[str, Any], tok: str = adm) -> Any:
        return ok(api.call("POST", path, tok, body), 200, 201)

    t.price_list = post("/pricelists", {"name": "Default", "currency": "EUR", "default": True})[
        "id"
    ]
    t.reseller_list = post("/pricelists", {"name": "Resellers", "currency": "EUR"})["id"]
    t.usd_list = post("/pricelists", {"name": "Dollars", "currency": "USD"})["id"]
    license_ = {"type": "license", "unit": "seat"}
    t.base = post(
        "/products",
        {
            **license_,
            "sku": "O365-E3",
            "name": "Office 365 E3",
            "billing_cycles": ["monthly", "annual"],
            "costs": {"monthly": "20.00", "annual": "220.00"},
        },
    )["id"]
    t.addon = post(
        "/products",
        {
            "sku": "BACKUP",
            "name": "Backup",
            "type": "addon",
            "unit": "seat",
            "billing_cycles": ["monthly", "annual"],
            "addon_for": [t.base],
            "costs": {"monthly": "2.00"},
        },
    )["id"]
    t.monthly_only = post(
        "/products",
        {**license_, "sku": "AZ-M", "name": "Azure plan", "billing_cycles": ["monthly"]},
    )["id"]
    t.reseller_only = post(
        "/products",
        {**license_, "sku": "RES-1", "name": "Reseller special", "billing_cycles": ["monthly"]},
    )["id"]
    prices = [
        (t.price_list, t.base, "monthly", {"price": "25.00"}),
        (t.price_list, t.base, "annual", {"price": "270.00"}),
        (t.price_list, t.addon, "monthly", {"markup_percent": "50"}),
        (t.price_list, t.monthly_only, "monthly", {"price": "10.00"}),
        (t.reseller_list, t.base, "monthly", {"price": "22.00"}),
        (t.reseller_list, t.addon, "monthly", {"price": "2.50"}),
        (t.reseller_list, t.reseller_only, "monthly", {"price": "8.00"}),
        (t.usd_list, t.base, "monthly", {"price": "27.00"}),
    ]
    for list_id, product, cycle, price in prices:
        post(
            f"/pricelists/{list_id}/prices",
            {"product_id": product, "billing_cycle": cycle, **price},
        )
    account = {"kind": "lite_reseller", "price_list_id": t.reseller_list}
    t.lite = post("/accounts", {"name": f"{name} Lite", **account})["id"]
    t.as_lite = lite_tok = token("reseller", t.id, t.lite)
    t.x = post("/accounts", {"name": f"{name} Customer X"}, lite_tok)["id"]
    t.as_x = token("customer", t.id, t.x)
    t.z = post("/accounts", {"name": f"{name} End-Customer Z", "email": "z@example.com"})["id"]
    t.as_z = token("customer", t.id, t.z)

    monthly = {"billing_cycle": "monthly"}
    created = post(
        "/subscriptions",
        {"account_id": t.x, "product_id": t.base, "quantity": 5, **monthly},
        lite_tok,
    )
    t.sub_x, t.order_x = created["subscription"]["id"], created["order"]["id"]
    t.sub_x_addon = post(f"/subscriptions/{t.sub_x}/addons", {"product_id": t.addon}, lite_tok)[
        "subscription"
    ]["id"]
    created = post(
        "/subscriptions",
        {"account_id": t.z, "product_id": t.base, "quantity": 3, **monthly},
        t.as_z,
    )
    t.sub_z, t.order_z = created["subscription"]["id"], created["order"]["id"]
    t.sub_z_addon = post(f"/subscriptions/{t.sub_z}/addons", {"product_id": t.addon}, t.as_z)[
        "subscription"
    ]["id"]
    t.contact_x = post(f"/accounts/{t.x}/contacts", {"name": "Xavier", "role": "billing"})["id"]
    t.contact_z = post(f"/accounts/{t.z}/contacts", {"name": "Zoe"}, t.as_z)["id"]
    post(f"/accounts/{t.x}/notes", {"text": "Renewal call in March"})  # staff only (issue 11)
    if not full:
        return t

    t.y = post("/accounts", {"name": f"{name} Customer Y"}, lite_tok)["id"]
    t.as_y = token("customer", t.id, t.y)
    t.lite2 = post("/accounts", {"name": f"{name} Other Lite", **account})["id"]
    t.as_lite2 = lite2_tok = token("reseller", t.id, t.lite2)
    t.v = post("/accounts", {"name": f"{name} Customer V"}, lite2_tok)["id"]
    t.as_v = token("customer", t.id, t.v)
    created = post(
        "/subscriptions",
        {"account_id": t.y, "product_id": t.reseller_only, **monthly},
        t.as_y,
    )
    t.sub_y, t.order_y = created["subscription"]["id"], created["order"]["id"]
    created = post(
        "/subscriptions",
        {"account_id": t.v, "product_id": t.base, "quantity": 2, **monthly},
        lite2_tok,
    )
    t.sub_v, t.order_v = created["subscription"]["id"], created["order"]["id"]
    child = post(
        "/tenants",
        {
            "name": f"{name} Resell",
            "country": "DE",
            "time_zone": "Europe/Berlin",
            "price_list_id": t.price_list,
            "email": "resell@example.com",
        },
    )
    t.child, t.child_account = child["id"], child["reseller_account_id"]
    t.child_admin = token("tenant_admin", t.child)
    ok(api.call("POST", f"/tenants/{t.child}/backordering", adm))  # R11, for R33's run
    t.reconciliation = ok(
        api.call("POST", "/reconciliation-runs", adm, {"child_tenant_id": t.child}), 202
    )["id"]
    t.run = ok(api.call("POST", "/billing-runs", adm, {}), 202)["id"]
    invoices = ok(api.call("GET", "/invoices", adm))["items"]
    by_account = {invoice["account_id"]: invoice["id"] for invoice in invoices}
    t.invoice_z, t.invoice_lite = by_account[t.z], by_account[t.lite]
    return t


def build_world(api: Api) -> World:
    platform = token("platform_admin")
    a = _tenant(api, platform, "Cloud", full=True)
    b = _tenant(api, platform, "Other", full=False)
    return World(api=api, platform=platform, a=a, b=b)


@contextmanager
def world_env() -> Iterator[World]:
    """A fresh moto world with tenants A and B (use from a module-scoped fixture)."""
    with aws_env() as api:
        yield build_world(api)
