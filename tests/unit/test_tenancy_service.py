"""``TenancyService`` on in-memory fakes (``tests/fakes.py``): tenants, tenant resellers (R3),
accounts in each role's scope (R28), mirrors (R15, R16), versions; no moto, no AWS."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from functions.core.domain import Account
from functions.core.errors import (
    ApiError,
    BadRequest,
    ConcurrentUpdate,
    Conflict,
    Forbidden,
    NotFound,
)
from functions.core.schemas import (
    CreateAccount,
    CreateContact,
    CreateTenant,
    UpdateAccount,
    UpdateTenant,
)
from tests.fakes import Fakes
from tests.unit.conftest_fakes import (
    ADMIN,
    CLOUD,
    CUSTOMER_X,
    E3,
    E5,
    LITE,
    LITE_USER,
    MIRROR,
    MIRROR_LITE,
    OTHER_LITE,
    PLATFORM,
    RESELL,
    RESELL_ACCOUNT,
    RESELL_ADMIN,
    RESELL_LIST,
    RETAIL,
    RIVAL,
    RIVAL_ADMIN,
    RIVAL_CUSTOMER,
    TEAMS,
    W,
    X,
    Y,
    Z,
    cloud,
    tenant,
)

PROFILE = {"country": "DE", "time_zone": "Europe/Berlin"}


def nothing_written(world: Fakes, writes: int = 0) -> bool:
    return world.tables.writes == writes and world.units.commits == 0


def ids(items: list[Any]) -> set[str]:
    return {item.id for item in items}


# --- tenants -------------------------------------------------------------------------------------


def test_r28_a_platform_admin_creates_a_root_tenant_in_one_write() -> None:
    world = cloud()
    body = CreateTenant.model_validate({"name": "Distri", **PROFILE, "currency": "EUR"})
    created = world.tenancy.create_tenant(PLATFORM, body)
    assert (created.parent_id, created.currency, created.version) == (None, "EUR", 1)
    assert [[type(e).__name__ for e in unit] for unit in world.units.committed] == [["Tenant"]]
    assert world.tenants.get(created.id) == created
    roots = world.tenancy.list_tenants(PLATFORM, 50, None).items
    assert ids(roots) == {CLOUD, RIVAL, created.id}  # roots only: not Cloud Resell


def test_r3_r11_a_tenant_reseller_comes_with_its_account_in_one_transaction_and_its_catalogue() -> (
    None
):
    """R3: the child tenant and its account in the provider's BSS are one commit; the
    assigned list's products are copied to the child with the list's prices as costs. R11:
    back ordering starts off."""
    world = cloud()
    body = CreateTenant.model_validate(
        {"name": "Cloud Resell 2", **PROFILE, "price_list_id": RETAIL}
    )
    child = world.tenancy.create_tenant(ADMIN, body)
    assert (child.parent_id, child.currency, child.backordering) == (CLOUD, "EUR", False)
    assert [[type(e).__name__ for e in unit] for unit in world.units.committed] == [
        ["Tenant", "Account"]
    ]
    account = world.tenancy.account(ADMIN, child.reseller_account_id or "")
    assert (account.kind, account.child_tenant_id, account.price_list_id) == (
        "tenant_reseller",
        child.id,
        RETAIL,
    )
    copies = {p.sku: p for p in world.products.all(child.id)}
    assert set(copies) == {"O365-E3", "O365-E5", "TEAMS-PHONE"}
    e3 = copies["O365-E3"]
    assert {c: str(a) for c, a in e3.costs.items()} == {"monthly": "20.00", "annual": "228.00"}
    assert (e3.origin_tenant_id, e3.origin_product_id) == (CLOUD, E3)
    assert copies["TEAMS-PHONE"].addon_for == [e3.id]  # the child's copy of E3, not Cloud's
    assert copies["O365-E5"].origin_product_id == E5 and copies["TEAMS-PHONE"].id != TEAMS


@pytest.mark.parametrize(
    ("change", "code", "field"),
    [
        ({}, "missing_field", "price_list_id"),
        ({"price_list_id": "prl_nobody"}, "unknown_price_list", "price_list_id"),
        ({"price_list_id": RETAIL, "currency": "USD"}, "currency_mismatch", "currency"),
    ],
)
def test_r3_r29_a_tenant_reseller_refused_is_not_half_made(
    change: dict[str, str], code: str, field: str
) -> None:
    """R29: a 400 naming the field, and nothing written: no tenant, account or catalogue."""
    world = cloud()
    body = CreateTenant.model_validate({"name": "Half Made", **PROFILE, **change})
    with pytest.raises(BadRequest) as refused:
        world.tenancy.create_tenant(ADMIN, body)
    assert (refused.value.code, refused.value.field) == (code, field)
    assert nothing_written(world)
    assert ids(world.tenancy.list_tenants(ADMIN, 50, None).items) == {RESELL}


def test_r28_a_tenant_is_seen_by_its_own_admin_and_its_providers_only() -> None:
    world = cloud()
    assert world.tenancy.get_tenant(ADMIN, RESELL).parent_id == CLOUD
    assert world.tenancy.get_tenant(RESELL_ADMIN, RESELL).id == RESELL
    assert world.tenancy.get_tenant(PLATFORM, CLOUD).id == CLOUD
    for caller, tenant_id in [
        (RESELL_ADMIN, CLOUD),  # not its provider's
        (RIVAL_ADMIN, RESELL),  # not another tree's
        (PLATFORM, RESELL),  # the platform sees roots only
        (ADMIN, "tnt_nobody"),
    ]:
        with pytest.raises(NotFound):
            world.tenancy.get_tenant(caller, tenant_id)
    assert ids(world.tenancy.list_tenants(ADMIN, 50, None).items) == {RESELL}
    assert world.tenancy.list_tenants(RIVAL_ADMIN, 50, None).items == []


def test_r5_a_provider_sets_its_childs_propagation_and_the_child_cannot() -> None:
    world = cloud()
    body = UpdateTenant.model_validate({"propagation": "partial", "overwrite_names": True})
    with pytest.raises(Forbidden) as refused:
        world.tenancy.update_tenant(RESELL_ADMIN, RESELL, body)
    assert refused.value.field == "tenant_id" and nothing_written(world)
    updated = world.tenancy.update_tenant(ADMIN, RESELL, body)
    assert (updated.propagation, updated.overwrite_names, updated.version) == ("partial", True, 2)
    assert world.units.commits == 1


def test_r24_every_tenant_is_reached_down_the_tree() -> None:
    """The billing schedule's walk (by the parent index, never a scan) reaches every tier."""
    world = cloud()
    world.tables.seed(tenant("tnt_grandchild", "Resell's Reseller", parent_id=RESELL))
    assert ids(list(world.tenancy.all_tenants())) == {CLOUD, RIVAL, RESELL, "tnt_grandchild"}


# --- accounts ------------------------------------------------------------------------------------


def test_r10_r28_a_lite_reseller_opens_customers_under_itself_only() -> None:
    world = cloud()
    created = world.tenancy.create_account(
        LITE_USER, CreateAccount.model_validate({"name": "Cloud Customer V"})
    )
    assert (created.parent_account_id, created.kind, created.currency) == (LITE, "customer", "EUR")
    assert created.bill_to_account_id == LITE and world.units.commits == 1
    refusals: list[tuple[dict[str, Any], type[ApiError]]] = [
        ({"parent_account_id": OTHER_LITE}, NotFound),  # another reseller's scope: hidden
        ({"kind": "lite_reseller"}, BadRequest),
        ({"price_list_id": RESELL_LIST}, Forbidden),
        ({"separate_invoices": True}, Forbidden),
    ]
    for change, error in refusals:
        body = CreateAccount.model_validate({"name": "Refused", **change})
        with pytest.raises(error):
            world.tenancy.create_account(LITE_USER, body)
    assert world.units.commits == 1


def test_r28_each_role_lists_the_accounts_in_its_scope() -> None:
    world = cloud()
    everyone = ids(world.tenancy.list_accounts(ADMIN, None, 100, None).items)
    assert {LITE, X, Y, Z, OTHER_LITE, W, MIRROR} <= everyone and RIVAL_CUSTOMER not in everyone
    assert ids(world.tenancy.list_accounts(LITE_USER, None, 100, None).items) == {X, Y}
    assert ids(world.tenancy.list_accounts(CUSTOMER_X, None, 100, None).items) == {X}
    assert ids(world.tenancy.list_accounts(ADMIN, OTHER_LITE, 100, None).items) == {W}
    assert ids(world.tenancy.list_accounts(RIVAL_ADMIN, None, 100, None).items) == {RIVAL_CUSTOMER}
    for caller, account_id in [(LITE_USER, OTHER_LITE), (CUSTOMER_X, LITE), (RIVAL_ADMIN, LITE)]:
        with pytest.raises(NotFound):
            world.tenancy.list_accounts(caller, account_id, 100, None)


@pytest.mark.parametrize(
    ("caller", "account_id"),
    [(CUSTOMER_X, Z), (CUSTOMER_X, LITE), (LITE_USER, Z), (LITE_USER, W), (RIVAL_ADMIN, X)],
)
def test_r28_an_account_outside_the_scope_is_a_404_as_if_absent(
    caller: Any, account_id: str
) -> None:
    world = cloud()
    with pytest.raises(NotFound) as hidden:
        world.tenancy.account(caller, account_id)
    with pytest.raises(NotFound) as absent:
        world.tenancy.account(caller, "acc_nobody")
    assert (hidden.value.code, hidden.value.message) == (absent.value.code, absent.value.message)


def test_r28_a_stale_account_version_is_refused_and_the_other_write_kept(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Between the service's read and its write another request renames the account: the
    write, conditional on the version read, is a 409 ``concurrent_update``, never a lost
    update."""
    world = cloud()
    read = world.accounts.get

    def raced(tenant_id: str, account_id: str) -> Account | None:
        found = read(tenant_id, account_id)
        if found is not None and world.units.commits == 0:
            world.units.save(replace(found, name="Renamed elsewhere"))
        return found

    monkeypatch.setattr(world.accounts, "get", raced)
    body = UpdateAccount.model_validate({"email": "billing@z.example"})
    with pytest.raises(ConcurrentUpdate) as refused:
        world.tenancy.update_account(ADMIN, Z, body)
    assert (refused.value.status, refused.value.code) == (409, "concurrent_update")
    stored = read(CLOUD, Z)
    assert stored is not None
    assert (stored.name, stored.email, stored.version) == ("Renamed elsewhere", None, 2)
    assert world.units.commits == 1  # the other request's write only


def test_an_empty_or_unchanged_patch_writes_nothing() -> None:
    world = cloud()
    for change in ({}, {"name": "Cloud End-Customer Z"}):
        same = world.tenancy.update_account(ADMIN, Z, UpdateAccount.model_validate(change))
        assert same.version == 1
    assert nothing_written(world)
    renamed = world.tenancy.update_account(ADMIN, Z, UpdateAccount.model_validate({"name": "Zed"}))
    assert (renamed.name, renamed.version, world.units.commits) == ("Zed", 2, 1)


def test_r28_a_reseller_edits_its_customers_not_itself_nor_their_billing() -> None:
    world = cloud()
    for account_id, change in [
        (LITE, {"name": "Mine"}),  # its own account is kept by its tenant
        (X, {"separate_invoices": True}),
        (X, {"price_list_id": RETAIL}),
    ]:
        with pytest.raises(Forbidden):
            world.tenancy.update_account(
                LITE_USER, account_id, UpdateAccount.model_validate(change)
            )
    assert nothing_written(world)
    renamed = world.tenancy.update_account(
        LITE_USER, X, UpdateAccount.model_validate({"name": "X GmbH"})
    )
    assert (renamed.name, renamed.version) == ("X GmbH", 2)


def test_r3_r5_a_tenant_resellers_price_list_is_fixed_at_its_creation() -> None:
    world = cloud()
    body = UpdateAccount.model_validate({"price_list_id": RESELL_LIST})
    with pytest.raises(Conflict) as refused:
        world.tenancy.update_account(ADMIN, RESELL_ACCOUNT, body)
    assert (refused.value.code, refused.value.field) == ("tenant_price_list", "price_list_id")
    assert nothing_written(world)


# --- mirrors (R15, R16) -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"name": "Q by Cloud"}, "name"),
        ({"email": "q@cloud.example"}, "email"),
        ({"price_list_id": RETAIL}, "price_list_id"),
    ],
)
def test_r15_a_mirrors_synced_and_billing_fields_are_locked(
    change: dict[str, str], field: str
) -> None:
    world = cloud()
    with pytest.raises(Conflict) as refused:
        world.tenancy.update_account(ADMIN, MIRROR, UpdateAccount.model_validate(change))
    assert (refused.value.status, refused.value.code) == (409, "locked_by_reseller")
    assert refused.value.field == field and nothing_written(world)


def test_r15_the_provider_keeps_its_own_contacts_on_a_mirror() -> None:
    world = cloud()
    body = CreateContact.model_validate({"name": "Quinn", "role": "billing"})
    contact = world.tenancy.add_contact(ADMIN, MIRROR, body)
    listed = world.tenancy.contacts(ADMIN, MIRROR, 50, None).items
    assert [c.id for c in listed] == [contact.id] and contact.created_by == ADMIN.sub
    assert world.tenancy.contacts(ADMIN, Z, 50, None).items == []  # on that account only


def test_r15_r16_no_account_opens_under_a_mirrored_lite_reseller() -> None:
    """The hierarchy under a mirror is the reseller's: the provider opening a customer there
    is refused (409), nothing written."""
    world = cloud()
    body = CreateAccount.model_validate({"name": "Sneaky", "parent_account_id": MIRROR_LITE})
    with pytest.raises(Conflict) as refused:
        world.tenancy.create_account(ADMIN, body)
    assert (refused.value.code, refused.value.field) == ("locked_by_reseller", "parent_account_id")
    assert nothing_written(world)
