"""The demo as the API shows it: its tenants, accounts and products, the tokens the soak
mints for their roles, the accounts it sells to, and the id Cloud's BSS gives a mirrored order."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from functions.core.auth import CUSTOMER, PLATFORM_ADMIN, RESELLER, TENANT_ADMIN, issue_token
from local.soak.http import Http, SoakError


@dataclass(frozen=True)
class Buyer:
    """An account of Cloud Resell a client buys for, and who may act for it."""

    id: str
    lite: bool  # under Cloud Lite (its lite reseller may act too)
    token: str  # its customer's token


@dataclass
class World:
    url: str
    secret: str
    cloud_id: str = ""
    resell_id: str = ""
    reseller_account_id: str = ""  # Cloud Resell's account in Cloud's BSS
    lite_id: str = ""
    tokens: dict[str, str] = field(default_factory=dict)
    buyers: list[Buyer] = field(default_factory=list)
    #: Cloud Resell's product ids by demo key, and Cloud's product each is a copy of
    products: dict[str, str] = field(default_factory=dict)
    origin: dict[str, str] = field(default_factory=dict)
    addon_for: set[str] = field(default_factory=set)

    def mint(
        self, role: str, sub: str, tenant: str | None = None, account: str | None = None
    ) -> str:
        return issue_token(
            self.secret, sub=sub, role=role, tenant_id=tenant, account_id=account, ttl_seconds=86400
        )


def discover(http: Http, url: str, secret: str, buyers: int) -> World:
    """The demo's ids from the API, and ``buyers`` new accounts (half under Cloud Lite) to sell
    to besides X, Y and Z."""
    from local.demo import PRODUCTS

    world = World(url, secret)
    platform = world.mint(PLATFORM_ADMIN, "soak@platform.example")
    roots = {t["name"]: t for t in http.items("/tenants", platform)}
    if "Cloud" not in roots:
        raise SoakError(f"no demo tenant Cloud on the platform (root tenants: {sorted(roots)})")
    world.cloud_id = roots["Cloud"]["id"]
    cloud_admin = world.mint(TENANT_ADMIN, "soak@cloud.example", world.cloud_id)
    children = {t["name"]: t for t in http.items("/tenants", cloud_admin)}
    if "Cloud Resell" not in children:
        raise SoakError("no demo tenant Cloud Resell under Cloud")
    resell = children["Cloud Resell"]
    world.resell_id, world.reseller_account_id = resell["id"], resell["reseller_account_id"]
    if not resell.get("backordering"):
        raise SoakError("back ordering is not on for Cloud Resell (the demo activates it)")
    admin = world.mint(TENANT_ADMIN, "soak@cloud-resell.example", world.resell_id)
    accounts = {a["name"]: a for a in http.items("/accounts", admin)}
    world.lite_id = accounts["Cloud Lite"]["id"]
    lite = world.mint(RESELLER, "soak@cloud-lite.example", world.resell_id, world.lite_id)
    world.tokens = {"cloud_admin": cloud_admin, "resell_admin": admin, "lite": lite}

    by_sku = {p["sku"]: p for p in http.items("/products", admin)}
    for spec in PRODUCTS:
        product = by_sku.get(spec.sku)
        if product is None or not product.get("origin"):
            raise SoakError(f"Cloud Resell's catalogue lacks the copy of {spec.sku}")
        world.products[spec.key] = product["id"]
        world.origin[product["id"]] = product["origin"]["product_id"]
    world.addon_for = {world.products[key] for key in ("o365_e3", "m365_standard")}

    def buyer(account: dict[str, Any]) -> Buyer:
        token = world.mint(CUSTOMER, f"soak@{account['id']}", world.resell_id, account["id"])
        return Buyer(account["id"], account.get("parent_account_id") == world.lite_id, token)

    for name in ("Cloud Customer X", "Cloud Customer Y", "Cloud End-Customer Z"):
        world.buyers.append(buyer(accounts[name]))
    for n in range(buyers):
        under_lite = n % 2 == 0
        answer = http.call(
            "POST",
            "/accounts",
            lite if under_lite else admin,
            {"name": f"Soak customer {n + 1}", "email": f"it@soak-{n + 1}.example"},
        )
        if answer.status != 201:
            raise SoakError(f"POST /accounts answered {answer.status}: {answer.body}")
        world.buyers.append(buyer(answer.body))
    return world


def provider_order_id(world: World, subscription_id: str, version: int) -> str:
    """The id Cloud's BSS gives the order of one version of a Cloud Resell subscription."""
    from functions.backorder.domain import Link
    from functions.backorder.domain import provider_order_id as derived

    link = Link(world.resell_id, world.cloud_id, world.reseller_account_id, None, "EUR", True)
    return derived(link, subscription_id, version)
