"""``StorefrontService`` on the in-memory fakes (no moto): a plan's provisioning from its
subscription in any order (R27), who signs in where (R28, R30), single-use links, branding.

The seed example of ``conftest_fakes`` (Cloud, lite resellers Cloud Lite with X and Y and Other
Lite with W, direct Z, the mirror Q), with Cloud's reseller add-on on and its plan products."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from decimal import Decimal

import pytest

from functions.core.auth import CUSTOMER, RESELLER, Principal
from functions.core.errors import BadRequest, Conflict
from functions.orders.domain import CANCELLED, Subscription
from functions.storefront.domain import ACTIVE, INACTIVE, AliasEntry, Storefront
from functions.storefront.services import LinkRefused
from functions.storefront.tokens import LINK_SECONDS
from tests.storefront_fakes import Shop, build_shop
from tests.unit.conftest_fakes import (
    CLOUD,
    CREATED,
    LITE,
    MIRROR,
    OTHER_LITE,
    RESELL_LIST,
    Tables,
    W,
    X,
    Z,
    account,
    price,
    product,
    tenant,
)

FREE, STANDARD = "prd_plan_free", "prd_plan_standard"
LITE_USER = Principal("lite-user", RESELLER, CLOUD, LITE)


def seeded() -> Shop:
    tables = Tables()
    tables.seed(
        tenant(CLOUD, "Cloud", reseller_plans=True),
        product(
            FREE, "PLAN-F", ["monthly"], {"monthly": "0.00"}, type="reseller_plan", plan="free"
        ),
        product(
            STANDARD,
            "PLAN-S",
            ["monthly"],
            {"monthly": "49.00"},
            type="reseller_plan",
            plan="standard",
        ),
        price(RESELL_LIST, FREE, "monthly", markup="0"),
        price(RESELL_LIST, STANDARD, "monthly", markup="10"),
        account(
            LITE,
            "Cloud Lite",
            kind="lite_reseller",
            enable_reselling=True,
            price_list_id=RESELL_LIST,
            email="user@lite.example",
        ),
        account(X, "Cloud Customer X", parent_account_id=LITE, email="it@x.example"),
        account(Z, "Cloud End-Customer Z", email="it@z.example"),
        account(OTHER_LITE, "Other Lite", kind="lite_reseller", enable_reselling=True),
        account(W, "Customer W", parent_account_id=OTHER_LITE, email="it@w.example"),
        account(
            MIRROR,
            "Customer Q (mirror)",
            mirrored=True,
            email="it@x.example",
            source={"tenant_id": "tnt_other", "account_id": "acc_src"},
        ),
    )
    shop = build_shop(tables)
    cloud_front = Storefront(CLOUD, None, "cloud", "Cloud", "tenant", ACTIVE, CREATED, CREATED)
    with shop.fakes.units() as uow:
        uow.save(cloud_front)
        uow.save(AliasEntry(cloud_front))
    return shop


def plan_sub(product_id: str = STANDARD, version: int = 1, **changes: object) -> Subscription:
    sub = Subscription(
        id="sub_plan",
        tenant_id=CLOUD,
        account_id=LITE,
        product_id=product_id,
        quantity=1,
        billing_cycle="monthly",
        term="monthly",
        terms=1,
        status=ACTIVE,
        start_date=date.today().isoformat(),
        end_date="2999-12-31",
        auto_renew=True,
        currency="EUR",
        unit_price=Decimal("53.90"),
        price_list_id=RESELL_LIST,
        created_at=CREATED,
        updated_at=CREATED,
        reseller_account_id=LITE,
        version=version,
    )
    return replace(sub, **changes)  # type: ignore[arg-type]


def test_r27_a_plan_opens_the_resellers_storefront_once_with_one_mail() -> None:
    shop = seeded()
    assert shop.service.plan_changed(plan_sub()) == "activated"
    front = shop.storefronts.get(CLOUD, LITE)
    assert front is not None and (front.alias, front.plan, front.status) == (
        "cloud-lite",
        "standard",
        ACTIVE,
    )
    assert shop.storefronts.by_alias("cloud-lite") == front  # the claim is written with it
    assert [m["to"] for m in shop.mailer.sent] == ["user@lite.example"]
    assert "/store/cloud-lite/login/confirm?token=" in shop.mailer.sent[0]["text"]
    commits = shop.fakes.units.commits
    assert shop.service.plan_changed(plan_sub()) == "stale"  # a replay
    assert (len(shop.mailer.sent), shop.fakes.units.commits) == (1, commits)


def test_r27_changes_out_of_order_end_at_the_newest() -> None:
    shop = seeded()
    shop.service.plan_changed(plan_sub(version=1))
    cancelled = plan_sub(version=3, status=CANCELLED, cancellation_date="2026-01-01")
    assert shop.service.plan_changed(cancelled) == "deactivated"
    assert shop.service.plan_changed(plan_sub(FREE, version=2)) == "stale"  # older: no effect
    front = shop.storefronts.get(CLOUD, LITE)
    assert front is not None and (front.status, front.plan) == (INACTIVE, "basic")


def test_r27_other_subscriptions_are_not_plans() -> None:
    shop = seeded()
    customer_sub = plan_sub(account_id=X)  # a customer's: its reseller scope is Cloud Lite
    assert shop.service.plan_changed(customer_sub) == "skipped"
    assert shop.service.plan_changed(plan_sub(product_id="prd_e3")) == "skipped"
    assert shop.service.plan_changed(plan_sub(mirrored=True)) == "skipped"
    assert shop.mailer.sent == []


@pytest.mark.parametrize(
    "alias,email,signs_in",
    [
        ("cloud-lite", "user@lite.example", RESELLER),  # the reseller itself
        ("cloud-lite", "IT@X.example", CUSTOMER),  # its customer, any case
        ("cloud-lite", "it@w.example", None),  # another reseller's customer
        ("cloud-lite", "it@z.example", None),  # the tenant's direct customer
        ("cloud", "it@z.example", CUSTOMER),
        ("cloud", "it@x.example", None),  # Cloud Lite serves X now (and Q is a mirror)
        ("cloud", "it@w.example", CUSTOMER),  # Other Lite is on Basic
        ("cloud", "nobody@example.com", None),
    ],
)
def test_r30_who_gets_a_sign_in_link_where(alias: str, email: str, signs_in: str | None) -> None:
    shop = seeded()
    shop.service.plan_changed(plan_sub())
    shop.mailer.sent.clear()
    shop.service.request_link(shop.service.resolve(alias), email)
    assert len(shop.mailer.sent) == (0 if signs_in is None else 1)
    if signs_in is not None:
        token = shop.mailer.sent[0]["text"].split("token=")[1].split()[0]
        session = shop.service.redeem(shop.service.resolve(alias), token)
        assert session.role == signs_in and session.alias == alias


def test_r30_a_link_signs_in_once_until_it_expires_on_its_storefront_only() -> None:
    shop = seeded()
    shop.service.plan_changed(plan_sub())
    lite = shop.service.resolve("cloud-lite")
    token = shop.mailer.sent[0]["text"].split("token=")[1].split()[0]
    with pytest.raises(LinkRefused) as elsewhere:
        shop.service.redeem(shop.service.resolve("cloud"), token)
    assert elsewhere.value.reason == "forged"
    session = shop.service.redeem(lite, token)
    assert shop.service.session(lite, shop.service.session_cookie(session)) == session
    assert (
        shop.service.session(shop.service.resolve("cloud"), shop.service.session_cookie(session))
        is None
    )
    with pytest.raises(LinkRefused) as used:
        shop.service.redeem(lite, token)
    assert used.value.reason == "used"
    shop.service.request_link(lite, "it@x.example")
    late = shop.mailer.sent[-1]["text"].split("token=")[1].split()[0]
    shop.clock[0] += LINK_SECONDS
    with pytest.raises(LinkRefused) as expired:
        shop.service.redeem(lite, late)
    assert expired.value.reason == "expired"


def test_r30_a_new_tenants_storefront_takes_a_free_alias() -> None:
    shop = seeded()
    opened = shop.fakes.tenancy.opener
    assert opened is not None
    front, claim = opened(tenant("tnt_2", "Cloud"))  # "cloud" is taken
    assert isinstance(front, Storefront) and front.alias == "cloud-2"
    assert claim == AliasEntry(front)


def test_r27_r30_branding_is_standards_and_checked() -> None:
    shop = seeded()
    shop.service.plan_changed(plan_sub(FREE))
    with pytest.raises(Conflict):
        shop.service.set_branding(LITE_USER, primary_color="#123456")
    shop.service.plan_changed(plan_sub(STANDARD, version=2))
    with pytest.raises(BadRequest):
        shop.service.set_branding(LITE_USER, accent_color="#eeeeee")  # white text unreadable
    front = shop.service.set_branding(
        LITE_USER, primary_color="#123456", domain_name="Shop.Lite.example"
    )
    assert (front.branding.primary_color, front.branding.domain) == ("#123456", "shop.lite.example")
    assert shop.service.alias_of_host("shop.lite.example") == "cloud-lite"
    moved = shop.service.set_branding(LITE_USER, domain_name="www.lite.example")
    assert moved.branding.domain == "www.lite.example"
    assert shop.storefronts.by_domain("shop.lite.example") is None  # the old claim is released
    png = b"\x89PNG\r\n\x1a\n" + b"0" * 64
    logo = shop.service.set_logo(LITE_USER, png)
    assert shop.service.logo(logo) == (png, "image/png")


def test_r27_a_plan_stays_one_licence_without_add_ons() -> None:
    from types import SimpleNamespace

    shop = seeded()
    shop.fakes.tables.seed(plan_sub())
    more = SimpleNamespace(action="change_quantity", quantity=5, effective_date=None)
    with pytest.raises(BadRequest) as refused:
        shop.fakes.ordering.act(LITE_USER, "sub_plan", more)
    assert refused.value.field == "quantity"
    addon = SimpleNamespace(product_id="prd_teams", quantity=1, characteristics={})
    with pytest.raises(BadRequest) as no_addons:
        shop.fakes.ordering.add_addon(LITE_USER, "sub_plan", addon)
    assert no_addons.value.field == "subscription_id"


def test_r30_sign_in_requests_do_not_flood_a_mailbox() -> None:
    shop = seeded()
    lite = shop.service.resolve("cloud")
    for _ in range(6):
        shop.service.request_link(lite, "it@z.example")
    assert len(shop.mailer.sent) == 3  # MAX_LIVE_LINKS unused, unexpired links at once
    token = shop.mailer.sent[0]["text"].split("token=")[1].split()[0]
    shop.service.redeem(lite, token)  # a link used: another may be sent
    shop.service.request_link(lite, "it@z.example")
    assert len(shop.mailer.sent) == 4
    shop.clock[0] += LINK_SECONDS  # all expired: sent again
    shop.service.request_link(lite, "it@z.example")
    assert len(shop.mailer.sent) == 5
