"""Issue 11, finding 1: a mirrored hierarchy is closed to its provider (R15, R16, R20).

In the provider's BSS a reseller's customers and lite resellers are mirrors: the provider bills
the tenant reseller for them (R20) and never sells to them (R16), so nobody but the replicator
may open accounts, subscriptions or add-ons under a mirror, and a mirror's billing settings are
not the provider's to change (R15). A tenant reseller's own account in the provider's BSS is
not a mirror: its price list is fixed (R3) and "separate invoices" is the provider's setting,
which billing honours (one invoice per end customer).
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Api, token, writes
from tests.integration.test_backorder import Reseller, Stream, ok


@pytest.fixture
def mirrored(api: Api) -> Any:
    """Cloud → Cloud Resell (live), X under Cloud Lite buying E3: Cloud holds the mirrors."""
    world = Reseller(api)
    world.go_live()
    world.subscribe(world.x, world.e3_copy, 4)
    Stream().drain()
    x_mirror = next(
        s for s in world.provider_subscriptions() if s["source"]["tenant_id"] == world.resell
    )["account_id"]
    lite_mirror = ok(api.call("GET", f"/accounts/{x_mirror}", world.cloud_admin))[
        "parent_account_id"
    ]
    world.x_mirror, world.lite_mirror = x_mirror, lite_mirror
    return world


def refused(result: tuple[int, Any], field: str | None = None) -> None:
    status, body = result
    assert (status, body["error"]["code"]) == (409, "locked_by_reseller"), body
    if field is not None:
        assert body["error"].get("field", body["error"].get("details", {}).get("field")) == field


def test_r15_r16_the_provider_cannot_open_an_account_under_a_mirror(mirrored: Any) -> None:
    world, api = mirrored, mirrored.api
    before = writes()
    for kind in ("customer", "lite_reseller"):
        body = {"name": "Poached", "kind": kind, "parent_account_id": world.lite_mirror}
        refused(api.call("POST", "/accounts", world.cloud_admin, body), "parent_account_id")
    assert writes() == before  # nothing written
    # the provider's own hierarchy stays open to it
    own_lite = world.post(
        world.cloud_admin, "/accounts", {"name": "Cloud's Lite", "kind": "lite_reseller"}
    )
    world.post(
        world.cloud_admin,
        "/accounts",
        {"name": "Its customer", "parent_account_id": own_lite["id"]},
    )


def test_r15_r16_a_reseller_token_naming_a_mirror_sells_nothing(mirrored: Any) -> None:
    """A ``reseller`` token for the mirror of Cloud Lite in Cloud's tenant: it can see its
    mirrored customers, but can neither add customers nor order for them or for itself."""
    world, api = mirrored, mirrored.api
    as_mirror = token("reseller", world.cloud, world.lite_mirror)
    before = writes()
    refused(api.call("POST", "/accounts", as_mirror, {"name": "Poached"}), "parent_account_id")
    for account in (world.x_mirror, world.lite_mirror):
        body = {
            "account_id": account,
            "product_id": world.e3["id"],
            "billing_cycle": "monthly",
            "quantity": 1,
        }
        refused(api.call("POST", "/subscriptions", as_mirror, body), "account_id")
    assert writes() == before
    children = ok(api.call("GET", "/accounts", as_mirror))["items"]
    assert [a["id"] for a in children] == [world.x_mirror]


@pytest.mark.parametrize(
    ("field", "value"), [("separate_invoices", True), ("price_list_id", "retail")]
)
def test_r15_r20_a_mirrors_billing_settings_are_not_the_providers(
    mirrored: Any, field: str, value: Any
) -> None:
    """A mirror is billed through its tenant reseller at the reseller's list (R20): a price list
    or "separate invoices" on it would be accepted and silently ignored, so it is refused."""
    world, api = mirrored, mirrored.api
    if value == "retail":
        value = world.resell_list
    for account in (world.x_mirror, world.lite_mirror):
        before = ok(api.call("GET", f"/accounts/{account}", world.cloud_admin))
        refused(api.call("PATCH", f"/accounts/{account}", world.cloud_admin, {field: value}), field)
        assert ok(api.call("GET", f"/accounts/{account}", world.cloud_admin)) == before


def test_r20_separate_invoices_on_the_tenant_reseller_gives_one_invoice_per_end_customer(
    mirrored: Any,
) -> None:
    """The tenant reseller's own account is the provider's: "separate invoices" there is the
    provider's setting, and the next run bills each end customer of the reseller apart."""
    world, api = mirrored, mirrored.api
    world.subscribe(world.z, world.e3_copy, 2)
    Stream().drain()
    patched = api.call(
        "PATCH",
        f"/accounts/{world.reseller_account}",
        world.cloud_admin,
        {"separate_invoices": True},
    )
    assert ok(patched)["separate_invoices"] is True
    ok(api.call("POST", "/billing-runs", world.cloud_admin, {}), 202)
    invoices = ok(api.call("GET", "/invoices", world.cloud_admin))["items"]
    mine = [i for i in invoices if i["account_id"] == world.reseller_account]
    assert len(mine) == 2
    assert {i["end_customer_id"] for i in mine} == {
        s["account_id"] for s in world.provider_subscriptions()
    }


def test_r20_a_provider_never_invoices_a_mirror_even_for_records_from_before_the_lock(
    mirrored: Any,
) -> None:
    """Records made under a mirror before this rule (an account and a subscription of the
    provider's own under the mirror of Cloud Lite) are not invoiced to the mirror: the run
    names the account among its failures for a person to sort out."""
    from dataclasses import replace

    from functions import composition
    from functions.core.domain import Account

    world, api = mirrored, mirrored.api
    tenancy = composition.container().tenancy
    lite = tenancy.accounts.get(world.cloud, world.lite_mirror)
    assert isinstance(lite, Account)
    legacy = replace(
        lite,
        id="acc-legacy-under-mirror",
        name="Poached before the lock",
        kind="customer",
        parent_account_id=lite.id,
        enable_reselling=False,
        mirrored=False,
        source=None,
        bill_to=None,
        source_version=None,
        price_list_id=world.resell_list,
        version=None,
    )
    tenancy.units.save(legacy)
    world.post(
        world.cloud_admin,
        "/subscriptions",
        {
            "account_id": legacy.id,
            "product_id": world.e3["id"],
            "billing_cycle": "monthly",
            "quantity": 1,
        },
    )
    run = ok(api.call("POST", "/billing-runs", world.cloud_admin, {}), 202)
    invoices = ok(api.call("GET", "/invoices", world.cloud_admin))["items"]
    assert world.lite_mirror not in {i["account_id"] for i in invoices}
    assert world.reseller_account in {i["account_id"] for i in invoices}  # the mirrors' bill
    status = ok(api.call("GET", f"/billing-runs/{run['id']}", world.cloud_admin))
    assert [f["account_id"] for f in status["failures"]] == [world.lite_mirror]
