"""The seed example of SPEC §1 as domain entities on the in-memory fakes (``tests/fakes.py``),
for the service tests ``test_tenancy_service.py``, ``test_catalogue_service.py`` and
``test_order_service.py``: no moto, no AWS.

Distributor **Cloud** (EUR) sells O365-E3, O365-E5 and the TEAMS-PHONE add-on through its
"Retail" list (its default, for direct customers) and its "Resell" list (E3 at cost + 5 %),
which lite reseller **Cloud Lite** buys at. Under Cloud Lite: **Cloud Customer X** and **Y**;
**Cloud End-Customer Z** buys directly. **Other Lite** is a second lite reseller with customer
**W**. Tenant reseller **Cloud Resell** has its account in Cloud's BSS and a copy of E3; **Q**
is the mirror of one of its customers (R12) and **Resell Lite** the mirror of its lite reseller.
**Rival** (USD) is another root tenant with one customer and no price list yet.
"""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from typing import Any

from functions.core.auth import CUSTOMER, PLATFORM_ADMIN, RESELLER, TENANT_ADMIN, Principal
from functions.core.domain import Account, Tenant
from functions.pricelist.domain import Price, PriceList, Product
from tests.fakes import Fakes, Tables

CREATED = "2026-01-05T09:00:00Z"

CLOUD, RESELL, RIVAL = "tnt_cloud", "tnt_resell", "tnt_rival"
RETAIL, RESELL_LIST = "prl_retail", "prl_resell"
E3, E5, TEAMS, RESELL_E3 = "prd_e3", "prd_e5", "prd_teams", "prd_resell_e3"
LITE, X, Y, Z = "acc_lite", "acc_x", "acc_y", "acc_z"
OTHER_LITE, W = "acc_other_lite", "acc_w"
RESELL_ACCOUNT, MIRROR, MIRROR_LITE = "acc_resell", "acc_q", "acc_resell_lite"
RIVAL_CUSTOMER = "acc_rival_customer"

PLATFORM = Principal("platform-user", PLATFORM_ADMIN)
ADMIN = Principal("cloud-admin", TENANT_ADMIN, CLOUD)
RESELL_ADMIN = Principal("resell-admin", TENANT_ADMIN, RESELL)
RIVAL_ADMIN = Principal("rival-admin", TENANT_ADMIN, RIVAL)
LITE_USER = Principal("lite-user", RESELLER, CLOUD, LITE)
OTHER_LITE_USER = Principal("other-lite-user", RESELLER, CLOUD, OTHER_LITE)
CUSTOMER_X = Principal("x-user", CUSTOMER, CLOUD, X)
CUSTOMER_Z = Principal("z-user", CUSTOMER, CLOUD, Z)


def tenant(tenant_id: str, name: str, currency: str = "EUR", **extra: Any) -> Tenant:
    made = Tenant(tenant_id, name, None, currency, "DE", "Europe/Berlin", 1, CREATED)
    return replace(made, **extra)


def account(account_id: str, name: str, tenant_id: str = CLOUD, **extra: Any) -> Account:
    return replace(Account(account_id, tenant_id, name, "customer", "EUR", CREATED), **extra)


def product(
    product_id: str, sku: str, cycles: list[str], costs: dict[str, str], **extra: Any
) -> Product:
    made = Product(
        product_id,
        CLOUD,
        sku,
        sku,
        "license",
        cycles,
        "seat",
        CREATED,
        costs={cycle: Decimal(amount) for cycle, amount in costs.items()},
    )
    return replace(made, **extra)


def price(
    list_id: str, product_id: str, cycle: str, fixed: str | None = None, markup: str | None = None
) -> Price:
    return Price(
        tenant_id=CLOUD,
        price_list_id=list_id,
        product_id=product_id,
        billing_cycle=cycle,
        updated_at=CREATED,
        price=None if fixed is None else Decimal(fixed),
        markup_percent=None if markup is None else Decimal(markup),
    )


def cloud() -> Fakes:
    """The services on fakes holding the seed example."""
    tables = Tables()
    tables.seed(
        tenant(CLOUD, "Cloud", default_price_list_id=RETAIL),
        tenant(
            RESELL,
            "Cloud Resell",
            parent_id=CLOUD,
            reseller_account_id=RESELL_ACCOUNT,
        ),
        tenant(RIVAL, "Rival", "USD", country="US", time_zone="America/New_York"),
        PriceList(RETAIL, CLOUD, "Retail", "EUR", CREATED),
        PriceList(RESELL_LIST, CLOUD, "Resell", "EUR", CREATED),
        product(E3, "O365-E3", ["monthly", "annual"], {"monthly": "18.00"}),
        product(E5, "O365-E5", ["monthly"], {"monthly": "30.00"}),
        product(
            TEAMS, "TEAMS-PHONE", ["monthly"], {"monthly": "6.00"}, type="addon", addon_for=[E3]
        ),
        price(RETAIL, E3, "monthly", fixed="20.00"),
        price(RETAIL, E3, "annual", fixed="228.00"),
        price(RETAIL, E5, "monthly", fixed="35.00"),
        price(RETAIL, TEAMS, "monthly", fixed="8.00"),
        price(RESELL_LIST, E3, "monthly", markup="5"),
        account(
            LITE,
            "Cloud Lite",
            kind="lite_reseller",
            enable_reselling=True,
            price_list_id=RESELL_LIST,
        ),
        account(X, "Cloud Customer X", parent_account_id=LITE),
        account(Y, "Cloud Customer Y", parent_account_id=LITE),
        account(Z, "Cloud End-Customer Z"),
        account(OTHER_LITE, "Other Lite", kind="lite_reseller", enable_reselling=True),
        account(W, "Customer W", parent_account_id=OTHER_LITE),
        account(
            RESELL_ACCOUNT,
            "Cloud Resell",
            kind="tenant_reseller",
            enable_reselling=True,
            child_tenant_id=RESELL,
            price_list_id=RETAIL,
        ),
        account(
            MIRROR_LITE,
            "Resell Lite (mirror)",
            kind="lite_reseller",
            enable_reselling=True,
            mirrored=True,
            bill_to=RESELL_ACCOUNT,
            source={"tenant_id": RESELL, "account_id": "acc_their_lite"},
        ),
        account(
            MIRROR,
            "Customer Q (mirror)",
            mirrored=True,
            bill_to=RESELL_ACCOUNT,
            source={"tenant_id": RESELL, "account_id": "acc_their_q"},
        ),
        account(RIVAL_CUSTOMER, "Rival Customer", RIVAL, currency="USD"),
        product(
            RESELL_E3,
            "O365-E3",
            ["monthly", "annual"],
            {"monthly": "20.00", "annual": "228.00"},
            tenant_id=RESELL,
            origin_tenant_id=CLOUD,
            origin_product_id=E3,
        ),
    )
    return Fakes.build(tables)
