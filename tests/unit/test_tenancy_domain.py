"""Tenants and accounts (SPEC §1, R3, R12, R28), with no I/O."""

from __future__ import annotations

import pytest

from functions.core import domain
from functions.core.auth import Principal
from functions.core.domain import Account, TenantProfile
from functions.core.errors import BadRequest, Conflict

NOW = "2026-11-22T10:00:00Z"
PROFILE = TenantProfile("Cloud", "DE", "Europe/Berlin", 31, "EUR")
CLOUD = domain.new_root_tenant("tnt_cloud", PROFILE, created_at=NOW)


def account(account_id: str, kind: str = "customer", parent: Account | None = None) -> Account:
    return domain.new_account(
        CLOUD,
        account_id,
        name=account_id,
        kind=kind,
        parent=parent,
        currency=None,
        price_list_currency=None,
        created_at=NOW,
    )


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"country": "Germany"}, "country"),
        ({"time_zone": "Mars/Base"}, "time_zone"),
        ({"billing_day": 0}, "billing_day"),
        ({"billing_day": 32}, "billing_day"),
        ({"currency": "XYZ"}, "currency"),
    ],
)
def test_tenant_profile_is_validated(change: dict[str, object], field: str) -> None:
    from dataclasses import replace

    with pytest.raises(BadRequest) as error:
        domain.new_root_tenant("t", replace(PROFILE, **change), created_at=NOW)  # type: ignore[arg-type]
    assert error.value.field == field


def test_r3_r11_tenant_reseller_starts_without_back_ordering_in_list_currency() -> None:
    child, acc = domain.new_tenant_reseller(
        CLOUD,
        "tnt_cr",
        "acc_cr",
        TenantProfile("Cloud Resell", "DE", "Europe/Berlin", 1),
        price_list_currency="EUR",
        email=None,
        created_at=NOW,
    )
    assert (child.parent_id, child.backordering, child.currency) == ("tnt_cloud", False, "EUR")
    assert (acc.tenant_id, acc.kind, acc.child_tenant_id) == (
        "tnt_cloud",
        "tenant_reseller",
        "tnt_cr",
    )
    assert child.reseller_account_id == acc.id and acc.enable_reselling


def test_r2_tenant_reseller_currency_must_match_its_price_list() -> None:
    with pytest.raises(BadRequest) as error:
        domain.new_tenant_reseller(
            CLOUD,
            "t",
            "a",
            TenantProfile("R", "DE", "Europe/Berlin", 1, "USD"),
            price_list_currency="EUR",
            email=None,
            created_at=NOW,
        )
    assert (error.value.field, error.value.code) == ("currency", "currency_mismatch")


def test_lite_reseller_hierarchy_and_bill_to() -> None:
    lite = account("acc_lite", "lite_reseller")
    x = account("acc_x", parent=lite)
    z = account("acc_z")
    assert lite.enable_reselling and lite.reseller_scope == "acc_lite"
    assert (x.parent_account_id, x.bill_to_account_id, x.reseller_scope) == ("acc_lite",) * 3
    assert (z.bill_to_account_id, z.reseller_scope) == ("acc_z", None)
    with pytest.raises(BadRequest):
        account("acc_bad", parent=z)  # only under a lite reseller
    with pytest.raises(BadRequest):
        account("acc_bad", "lite_reseller", parent=lite)


def test_r2_account_currency_must_match_its_price_list() -> None:
    with pytest.raises(BadRequest) as error:
        domain.new_account(
            CLOUD,
            "a",
            name="a",
            kind="customer",
            parent=None,
            currency=None,
            price_list_currency="USD",
            created_at=NOW,
        )
    assert (error.value.field, error.value.code) == ("price_list_id", "currency_mismatch")


def test_r15_r20_a_mirrors_synced_and_billing_fields_are_locked() -> None:
    """Issue 11: a mirror is billed through its tenant reseller at the reseller's list (R20),
    so its price list and "separate invoices" are refused like its synced fields (R15)."""
    from dataclasses import replace

    mirror = replace(account("acc_m"), mirrored=True)
    for change in (
        {"email": "new@example.com"},
        {"separate_invoices": True},
        {"price_list_id": "p"},
    ):
        with pytest.raises(Conflict) as error:
            domain.update_account(mirror, change)
        assert (error.value.code, error.value.field) == ("locked_by_reseller", next(iter(change)))
    assert domain.update_account(account("acc_own"), {"separate_invoices": True}).separate_invoices


def test_r15_r16_nothing_opens_under_a_mirrored_lite_reseller() -> None:
    """Issue 11: an account under a mirror would be the provider's own sale to a reseller's
    customer, invoiced to the mirror (R16, R20): refused; the provider's own lite resellers
    stay open."""
    from dataclasses import replace

    own = account("acc_lite", "lite_reseller")
    assert account("acc_c", parent=own).parent_account_id == "acc_lite"
    with pytest.raises(Conflict) as error:
        account("acc_c", parent=replace(own, mirrored=True))
    assert (error.value.code, error.value.field) == ("locked_by_reseller", "parent_account_id")


def test_r28_account_scope_per_role() -> None:
    lite = account("acc_lite", "lite_reseller")
    x = account("acc_x", parent=lite)
    z = account("acc_z")
    admin = Principal("u", "tenant_admin", "tnt_cloud")
    reseller = Principal("u", "reseller", "tnt_cloud", "acc_lite")
    customer_x = Principal("u", "customer", "tnt_cloud", "acc_x")
    foreign = Principal("u", "tenant_admin", "tnt_other")
    assert all(domain.can_see_account(admin, a) for a in (lite, x, z))
    assert [domain.can_see_account(reseller, a) for a in (lite, x, z)] == [True, True, False]
    assert [domain.can_see_account(customer_x, a) for a in (lite, x, z)] == [False, True, False]
    assert not any(domain.can_see_account(foreign, a) for a in (lite, x, z))
