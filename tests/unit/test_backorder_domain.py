"""Back-order projection rules (R11-R14, R17, R18), with no I/O."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from functions.backorder import domain
from functions.backorder.domain import Link, ProviderProduct
from functions.core.domain import Account
from functions.core.ids import derived_id
from functions.orders.domain import Subscription
from functions.pricelist.domain import Product

NOW = "2026-11-22T10:00:00Z"
LINK = Link("tnt_child", "tnt_prov", "acc_reseller", "prl_resell", "EUR", active=True)
E3 = ProviderProduct("prd_e3", "E3", "Office 365 E3", "tnt_root", "prd_root_e3")
SUB = Subscription(
    id="sub_x",
    tenant_id="tnt_child",
    account_id="acc_x",
    product_id="prd_copy",
    quantity=10,
    billing_cycle="monthly",
    term="monthly",
    terms=1,
    status="active",
    start_date="2026-11-01",
    end_date="2026-11-30",
    auto_renew=True,
    currency="EUR",
    unit_price=Decimal("27.03"),
    price_list_id="prl_child",
    created_at=NOW,
    updated_at=NOW,
    activation_date="2026-11-01",
    characteristics={"domain": "x.example"},
    origin_tenant_id="tnt_prov",
    origin_product_id="prd_e3",
    paid_once=True,
    last_change="quantity_change",
    last_change_date="2026-11-22",
    version=3,
)


def test_r13_only_paid_provider_subscriptions_after_activation_are_mirrored() -> None:
    assert domain.is_mirrored(LINK, SUB)
    assert not domain.is_mirrored(replace(LINK, active=False), SUB)  # R11: off until go-live
    assert not domain.is_mirrored(LINK, replace(SUB, origin_tenant_id=None, origin_product_id=None))
    assert not domain.is_mirrored(LINK, replace(SUB, paid_once=False, unit_price=Decimal(0)))
    # once paid, a later change to a free product is still a mirrored change
    assert domain.is_mirrored(LINK, replace(SUB, unit_price=Decimal(0)))


@given(st.text(min_size=1, max_size=30), st.integers(1, 10_000))
def test_r18_ids_are_deterministic_per_source_and_version(source_id: str, version: int) -> None:
    assert domain.mirror_subscription_id(LINK, source_id) == domain.mirror_subscription_id(
        LINK, source_id
    )
    assert domain.provider_order_id(LINK, source_id, version) != domain.provider_order_id(
        LINK, source_id, version + 1
    )
    other = replace(LINK, provider_tenant_id="tnt_other")
    assert domain.mirror_account_id(LINK, source_id) != domain.mirror_account_id(other, source_id)


def test_r12_account_copy_is_billed_to_the_tenant_reseller_in_its_currency() -> None:
    source = Account(
        id="acc_x",
        tenant_id="tnt_child",
        name="Cloud Customer X",
        kind="customer",
        currency="USD",
        created_at=NOW,
        parent_account_id="acc_lite",
        email="x@example.com",
        accounting_number="X-1",
    )
    lite = domain.mirror_account_id(LINK, "acc_lite")
    mirror = domain.mirror_account(LINK, source, parent_mirror_id=lite, created_at=NOW)
    assert (mirror.tenant_id, mirror.parent_account_id, mirror.bill_to_account_id) == (
        "tnt_prov",
        lite,
        "acc_reseller",
    )
    assert (mirror.name, mirror.email, mirror.accounting_number) == (
        "Cloud Customer X",
        "x@example.com",
        "X-1",
    )
    assert mirror.currency == "EUR" and mirror.mirrored
    assert mirror.source == {"tenant_id": "tnt_child", "account_id": "acc_x"}
    direct = domain.mirror_account(
        LINK, replace(source, parent_account_id=None), parent_mirror_id=None, created_at=NOW
    )
    assert direct.parent_account_id == "acc_reseller"


def test_r13_subscription_copy_is_one_to_one_but_priced_from_the_resellers_list() -> None:
    mirror = domain.mirror_subscription(LINK, SUB, E3, unit_price=Decimal("23.50"), now=NOW)
    same = (
        "quantity",
        "billing_cycle",
        "status",
        "start_date",
        "end_date",
        "activation_date",
        "auto_renew",
        "characteristics",
        "last_change",
        "last_change_date",
    )
    assert all(getattr(mirror, f) == getattr(SUB, f) for f in same)
    assert (mirror.product_id, mirror.unit_price, mirror.price_list_id) == (
        "prd_e3",
        Decimal("23.50"),
        "prl_resell",
    )
    assert (mirror.source_version, mirror.mirrored) == (3, True)
    assert mirror.account_id == domain.mirror_account_id(LINK, "acc_x")
    # R17: the mirror carries its own origin, so it flows on up
    assert (mirror.origin_tenant_id, mirror.origin_product_id) == ("tnt_root", "prd_root_e3")
    addon = domain.mirror_subscription(
        LINK,
        replace(SUB, id="sub_a", parent_subscription_id="sub_x"),
        E3,
        unit_price=Decimal("6"),
        now=NOW,
    )
    assert addon.parent_subscription_id == mirror.id


def test_r14_provider_order_is_its_own_at_the_effective_date_and_resellers_price() -> None:
    mirror = domain.mirror_subscription(LINK, SUB, E3, unit_price=Decimal("23.50"), now=NOW)
    order = domain.provider_order(LINK, SUB, mirror, E3, now=NOW)
    assert order.id == domain.provider_order_id(LINK, "sub_x", 3)
    assert (order.tenant_id, order.account_id, order.end_customer_account_id) == (
        "tnt_prov",
        "acc_reseller",
        mirror.account_id,
    )
    assert (order.type, order.date, order.total) == (
        "quantity_change",
        "2026-11-22",
        Decimal("235.00"),
    )
    cancelled = replace(SUB, last_change="cancel", status="cancelled", version=4)
    cancel_mirror = domain.mirror_subscription(
        LINK, cancelled, E3, unit_price=Decimal("23.50"), now=NOW
    )
    assert domain.provider_order(LINK, cancelled, cancel_mirror, E3, now=NOW).total == Decimal(0)


def copy_of_e3(cycles: list[str]) -> Product:
    """The new tenant's copy of E3 (R3), sold in ``cycles``."""
    return Product(
        id="prd_copy",
        tenant_id="tnt_new",
        sku="E3",
        name="E3",
        type="license",
        billing_cycles=cycles,
        unit="seat",
        created_at=NOW,
    )


def test_r19_transfer_prechecks_list_every_problem_of_a_subscription() -> None:
    addon = replace(SUB, id="sub_addon", parent_subscription_id="sub_base", currency="USD")
    problems = domain.transfer_problems(addon, currency="EUR", copy=None, base_transferred=False)
    assert [(p["subscription_id"], p["field"], p["code"]) for p in problems] == [
        ("sub_addon", "currency", "currency_mismatch"),
        ("sub_addon", "product_id", "not_in_catalogue"),
        ("sub_addon", "parent_subscription_id", "base_not_transferred"),
    ]
    monthly_only = copy_of_e3(["annual"])
    [cycle] = domain.transfer_problems(
        SUB, currency="EUR", copy=monthly_only, base_transferred=True
    )
    assert (cycle["field"], cycle["code"]) == ("billing_cycle", "unsupported_billing_cycle")
    fine = copy_of_e3(["monthly"])
    assert domain.transfer_problems(SUB, currency="EUR", copy=fine, base_transferred=True) == []


def transfer(sub: Subscription) -> Subscription:
    """The new tenant's copy of one of the provider's subscriptions (step 3 of R19)."""
    return domain.transferred_subscription(
        "tnt_new",
        sub,
        account_id="acc_new_x",
        product_id="prd_new_e3",
        price_list_id="prl_new",
        unit_price=Decimal("20.00"),
        today="2026-11-22",
        now=NOW,
    )


def test_r19_a_transferred_subscription_continues_the_providers_and_orders_nothing() -> None:
    copy = transfer(
        replace(SUB, tenant_id="tnt_prov", id="sub_prov", parent_subscription_id="sub_base")
    )
    assert (copy.tenant_id, copy.upstream_id, copy.last_change, copy.version) == (
        "tnt_new",
        "sub_prov",
        domain.TRANSFER,
        None,
    )
    assert (copy.quantity, copy.start_date, copy.end_date) == (
        SUB.quantity,
        SUB.start_date,
        SUB.end_date,
    )
    assert copy.parent_subscription_id == transfer(replace(SUB, id="sub_base")).id
    link = replace(LINK, upgraded=True)
    assert domain.subscription_mirror_id(link, replace(copy, version=1)) == "sub_prov"
    linked = domain.linked_subscription(
        replace(SUB, tenant_id="tnt_prov", id="sub_prov"),
        replace(copy, version=1),
        today="2026-11-22",
    )
    assert (linked.mirrored, linked.source_version, linked.last_change) == (
        True,
        1,
        domain.TRANSFER,
    )


@pytest.mark.parametrize(
    ("step", "failed", "overall", "statuses"),
    [
        (0, False, "not_started", ["pending"] * 4),
        (0, True, "failed", ["failed", "pending", "pending", "pending"]),
        (2, False, "in_progress", ["done", "done", "pending", "pending"]),
        (2, True, "failed", ["done", "done", "failed", "pending"]),
        (4, False, "done", ["done"] * 4),
    ],
)
def test_r19_an_upgrade_shows_each_step_and_where_it_stopped(
    step: int, failed: bool, overall: str, statuses: list[str]
) -> None:
    status, steps = domain.upgrade_progress(step, failed)
    assert status == overall
    assert [s[2] for s in steps] == statuses
    assert [s[1] for s in steps] == list(domain.UPGRADE_STEPS)


def test_r19_r31_a_transferred_scheduled_downgrade_goes_to_the_new_tenants_copy() -> None:
    """The provider's subscription waits for a downgrade to its E1 (``prd_e1`` at 15.00, on
    2026-12-01); the new tenant's copy waits for the downgrade to the new tenant's copy of E1
    (the id ``derived_id("prd", "tnt_new", "prd_e1")``, as E3's copy), at its price there."""
    waiting = {
        "type": "downgrade",
        "on": "2026-12-01",
        "product_id": "prd_e1",
        "origin_tenant_id": "tnt_top",
        "origin_product_id": "prd_top_e1",
        "unit_price": "15.00",
    }
    provider_sub = replace(SUB, tenant_id="tnt_prov", id="sub_prov", scheduled_change=waiting)
    copy = domain.transferred_subscription(
        "tnt_new",
        provider_sub,
        account_id="acc_new_x",
        product_id=domain.transferred_product_id("tnt_new", provider_sub.product_id),
        price_list_id="prl_new",
        unit_price=Decimal("20.00"),
        today="2026-11-22",
        now=NOW,
        scheduled_unit_price=Decimal("12.50"),
    )
    assert copy.product_id == derived_id("prd", "tnt_new", "prd_copy")
    assert copy.scheduled_change == {
        "type": "downgrade",
        "on": "2026-12-01",
        "product_id": derived_id("prd", "tnt_new", "prd_e1"),
        "origin_tenant_id": "tnt_prov",
        "origin_product_id": "prd_e1",
        "unit_price": "12.50",
    }
    assert (copy.origin_tenant_id, copy.origin_product_id) == ("tnt_prov", "prd_copy")
    unpriced = transfer(provider_sub).scheduled_change
    assert unpriced is not None and unpriced["unit_price"] == "15.00"
    # the pre-check names a scheduled product the new tenant lacks
    [missing] = domain.transfer_problems(
        provider_sub, currency="EUR", copy=copy_of_e3(["monthly"]), base_transferred=True
    )
    assert (missing["field"], missing["code"]) == (
        "scheduled_change.product_id",
        "not_in_catalogue",
    )
    assert (
        domain.transfer_problems(
            provider_sub,
            currency="EUR",
            copy=copy_of_e3(["monthly"]),
            base_transferred=True,
            scheduled_copy=copy_of_e3(["monthly"]),
        )
        == []
    )
