"""The demo data set of SPEC §1, loaded through the HTTP API (so it exercises the real thing).

Distributor **Cloud** (EUR, DE) sells Microsoft-like products — the Microsoft 365 and Office 365
licences and Teams Phone on NCE commitment terms (R31: a one-month term monthly, one year
annually; 168 hours to cancel with a prorated refund, refused after; seats removed only within
their order's window), Exchange Online (Plan 1) flexible; tenant reseller **Cloud Resell**
gets them through the "Cloud Resell list" (R3); inside Cloud Resell's BSS the lite reseller
**Cloud Lite** has customers **Cloud Customer X** and **Y**, and **Cloud End-Customer Z** buys
directly. At go-live, once all of that is set up, Cloud activates back ordering for Cloud
Resell (R11): the backfill mirrors Cloud Resell's paid sales of Cloud's products into Cloud's
BSS (Cloud Resell → Cloud Lite → X; Cloud Resell → Z), and from then on every change flows up
through the subscriptions stream. Before that, Cloud offers the reseller plans (R27: Basic,
Free, Standard), the add-on is enabled for Cloud and Cloud Resell, and Cloud Resell's admin
activates Standard for Cloud Lite: the subscriptions stream provisions Cloud Lite's white-label
storefront (R30; Cloud and Cloud Resell have theirs from their creation) and emails its
sign-in link; Cloud Lite then sets its colours. All of that needs the event runner
(``local/runner.py``) to be delivering; ``load`` waits for the storefront and the backfill.
Every POST carries an ``Idempotency-Key``; any failed call stops the load with the request and
the response.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from typing import Any

from functions.core.auth import CUSTOMER, PLATFORM_ADMIN, RESELLER, TENANT_ADMIN, issue_token

TOKEN_TTL_SECONDS = 12 * 3600

MONTHLY, ANNUAL = "monthly", "annual"


class DemoError(RuntimeError):
    """A call of the demo load failed: the message shows the request and the response."""


class HttpClient:
    """JSON over HTTP with urllib: the one thing the demo load talks to."""

    def __init__(self, base_url: str, timeout: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout

    def request(
        self,
        method: str,
        path: str,
        *,
        token: str | None = None,
        body: Any = None,
        idempotency_key: str | None = None,
    ) -> tuple[int, Any]:
        headers = {"Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        if idempotency_key is not None:
            headers["Idempotency-Key"] = idempotency_key
        req = urllib.request.Request(
            self.base_url + path, data=data, headers=headers, method=method
        )
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as response:
                status, raw = response.status, response.read()
        except urllib.error.HTTPError as error:
            status, raw = error.code, error.read()
        text = raw.decode("utf-8", "replace")
        try:
            payload = json.loads(text) if text else None
        except ValueError:
            payload = text
        return status, payload

    def call(
        self,
        method: str,
        path: str,
        *,
        token: str | None = None,
        body: Any = None,
        idempotency_key: str | None = None,
    ) -> Any:
        """The JSON answer of a 2xx; anything else raises ``DemoError`` showing both sides."""
        status, payload = self.request(
            method, path, token=token, body=body, idempotency_key=idempotency_key
        )
        if not 200 <= status < 300:
            sent = f"\n  body: {json.dumps(body)}" if body is not None else ""
            raise DemoError(
                f"demo data: {method} {path} answered {status}{sent}\n"
                f"  response: {json.dumps(payload, indent=2)}"
            )
        return payload

    def items(self, path: str, *, token: str) -> list[dict[str, Any]]:
        """Every item of a paginated list (``?limit=&cursor=`` → ``next_cursor``)."""
        items: list[dict[str, Any]] = []
        cursor: str | None = None
        while True:
            query = {"limit": "100", **({"cursor": cursor} if cursor else {})}
            sep = "&" if "?" in path else "?"
            page = self.call("GET", f"{path}{sep}{urllib.parse.urlencode(query)}", token=token)
            items.extend(page["items"])
            cursor = page.get("next_cursor")
            if not cursor:
                return items


# --- the catalogue -------------------------------------------------------------------------


@dataclass(frozen=True)
class ProductSpec:
    key: str
    sku: str
    name: str
    type: str
    cycles: tuple[str, ...]
    unit: str
    #: Cloud's purchase price per billing cycle (EUR; an annual price is per year)
    costs: dict[str, str]
    category: str
    addon_for: tuple[str, ...] = ()
    #: a ``reseller_plan`` product: the plan it grants (basic, free, standard; R27)
    plan: str | None = None
    #: R31: the commitment policy per billing cycle (none: flexible)
    commitments: dict[str, dict[str, Any]] = field(default_factory=dict)


def nce(term: str) -> dict[str, Any]:
    """R31: Microsoft's new-commerce terms: cancellable with a prorated refund for 168 hours
    after buying or renewing, refused after that until the term's last day; seats removed only
    within the window of the order that added them."""
    return {
        "term": term,
        "cancellation_window_hours": 168,
        "refund": "prorated",
        "after_window": "refused",
        "seat_reduction": "within_window",
    }


#: a licence sold monthly (one-month term) and annually (one-year term) on NCE terms
NCE = {MONTHLY: nce("P1M"), ANNUAL: nce("P1Y")}


PRODUCTS = (
    ProductSpec(
        "m365_basic",
        "CFQ7TTC0LH18",
        "Microsoft 365 Business Basic",
        "license",
        (MONTHLY, ANNUAL),
        "user",
        {MONTHLY: "5.40", ANNUAL: "54.00"},
        "Microsoft 365",
        commitments=NCE,
    ),
    ProductSpec(
        "m365_standard",
        "CFQ7TTC0LDPB",
        "Microsoft 365 Business Standard",
        "license",
        (MONTHLY, ANNUAL),
        "user",
        {MONTHLY: "11.25", ANNUAL: "112.50"},
        "Microsoft 365",
        commitments=NCE,
    ),
    ProductSpec(
        "o365_e3",
        "CFQ7TTC0LF8Q",
        "Office 365 E3",
        "license",
        (MONTHLY, ANNUAL),
        "user",
        {MONTHLY: "21.60", ANNUAL: "216.00"},
        "Office 365",
        commitments=NCE,
    ),
    ProductSpec(
        "exchange_p1",
        "CFQ7TTC0LH16",
        "Exchange Online (Plan 1)",
        "license",
        (MONTHLY, ANNUAL),
        "user",
        {MONTHLY: "3.60", ANNUAL: "36.00"},
        "Exchange",
    ),
    ProductSpec(
        "teams_phone",
        "CFQ7TTC0J1FV",
        "Teams Phone Standard",
        "addon",
        (MONTHLY, ANNUAL),
        "user",
        {MONTHLY: "7.20", ANNUAL: "72.00"},
        "Teams",
        addon_for=("o365_e3", "m365_standard"),
        commitments=NCE,
    ),
    ProductSpec(
        "azure_plan",
        "DZH318Z0BPS6",
        "Azure plan (consumption)",
        "usage",
        (MONTHLY,),
        "EUR consumed",
        {MONTHLY: "0.85"},
        "Azure",
    ),
    ProductSpec(
        "m365_basic_trial",
        "CFQ7TTC0LH18-TRIAL",
        "Microsoft 365 Business Basic (1-month trial)",
        "license",
        (MONTHLY,),
        "user",
        {MONTHLY: "0.00"},
        "Microsoft 365",
    ),
    # R27: the reseller plans Cloud offers its resellers' lite resellers (copied down the tree
    # like any product); Standard brings a white-label storefront with branding
    ProductSpec(
        "plan_basic",
        "BSS-PLAN-BASIC",
        "Reseller plan Basic",
        "reseller_plan",
        (MONTHLY,),
        "plan",
        {MONTHLY: "0.00"},
        "Reseller plans",
        plan="basic",
    ),
    ProductSpec(
        "plan_free",
        "BSS-PLAN-FREE",
        "Reseller plan Free",
        "reseller_plan",
        (MONTHLY,),
        "plan",
        {MONTHLY: "0.00"},
        "Reseller plans",
        plan="free",
    ),
    ProductSpec(
        "plan_standard",
        "BSS-PLAN-STANDARD",
        "Reseller plan Standard",
        "reseller_plan",
        (MONTHLY,),
        "plan",
        {MONTHLY: "49.00"},
        "Reseller plans",
        plan="standard",
    ),
)
#: the plan Cloud Resell's admin activates for Cloud Lite, and the colours Cloud Lite gives its
#: storefront (white text on both reads at 4.5:1 or better)
LITE_PLAN = "plan_standard"
LITE_COLORS = {"primary_color": "#0b5d3b", "accent_color": "#7a2e0e"}


@dataclass(frozen=True)
class ListSpec:
    """A price list: a markup % over cost for every product and cycle, but fixed prices where
    ``fixed`` names them (product key, cycle)."""

    key: str
    name: str
    markup: str
    fixed: dict[tuple[str, str], str] = field(default_factory=dict)
    default: bool = False


CLOUD_RETAIL = ListSpec(
    "cloud_retail",
    "Cloud Retail",
    "25",
    {("m365_basic_trial", MONTHLY): "0.00", ("azure_plan", MONTHLY): "1.00"},
    default=True,
)
CLOUD_RESELL_LIST = ListSpec(
    "cloud_resell_list",
    "Cloud Resell list",
    "10",
    {("o365_e3", MONTHLY): "23.50", ("m365_basic_trial", MONTHLY): "0.00"},
)
RESELL_RETAIL = ListSpec(
    "resell_retail",
    "Cloud Resell Retail",
    "30",
    {
        ("o365_e3", MONTHLY): "32.00",
        ("m365_basic_trial", MONTHLY): "0.00",
        ("azure_plan", MONTHLY): "1.00",
    },
    default=True,
)
LITE_LIST = ListSpec(
    "lite_list",
    "Cloud Lite reseller list",
    "15",
    {("teams_phone", MONTHLY): "9.50", ("m365_basic_trial", MONTHLY): "0.00"},
)


def _address(line1: str, postal_code: str, city: str) -> dict[str, str]:
    return {"line1": line1, "postal_code": postal_code, "city": city, "country": "DE"}


# --- the result ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Demo:
    """The ids of what the load created."""

    cloud_id: str
    resell_id: str
    #: Cloud Resell's tenant reseller account in Cloud's BSS
    resell_account_id: str
    lite_id: str
    x_id: str
    y_id: str
    z_id: str
    #: price list ids by ``ListSpec.key``
    price_lists: dict[str, str]
    #: product ids by ``ProductSpec.key``: Cloud's own, and Cloud Resell's copies
    cloud_products: dict[str, str]
    resell_products: dict[str, str]
    #: subscription ids: ``x_e3``, ``x_teams_phone``, ``z_standard``, ``y_trial`` and Cloud
    #: Lite's reseller plan ``lite_standard`` (R27)
    subscriptions: dict[str, str]
    #: Cloud Resell's back ordering in Cloud (``GET /tenants/{resell_id}/backordering``): active,
    #: with the R11 backfill's progress (``status``, ``mirrored``, …)
    backordering: dict[str, Any] = field(default_factory=dict)
    #: storefront aliases (R30) by key: ``cloud`` and ``resell`` (each tenant's own, opened with
    #: it), ``lite`` (Cloud Lite's, provisioned by its Standard plan); pages at
    #: ``/store/{alias}/``
    storefronts: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RoleToken:
    key: str
    role: str
    label: str
    token: str


def role_tokens(
    demo: Demo | None, secret: str, ttl_seconds: int = TOKEN_TTL_SECONDS
) -> list[RoleToken]:
    """A ready bearer token per role of the demo (only platform_admin without demo data)."""

    def mint(
        key: str,
        role: str,
        label: str,
        sub: str,
        tenant_id: str | None = None,
        account_id: str | None = None,
    ) -> RoleToken:
        token = issue_token(
            secret,
            sub=sub,
            role=role,
            tenant_id=tenant_id,
            account_id=account_id,
            ttl_seconds=ttl_seconds,
        )
        return RoleToken(key, role, label, token)

    tokens = [mint("platform_admin", PLATFORM_ADMIN, "platform admin", "admin@platform.example")]
    if demo is None:
        return tokens
    return [
        *tokens,
        mint("cloud_admin", TENANT_ADMIN, "Cloud", "admin@cloud.example", demo.cloud_id),
        mint(
            "resell_admin",
            TENANT_ADMIN,
            "Cloud Resell",
            "admin@cloud-resell.example",
            demo.resell_id,
        ),
        mint(
            "lite_reseller",
            RESELLER,
            "Cloud Lite (in Cloud Resell)",
            "user@cloud-lite.example",
            demo.resell_id,
            demo.lite_id,
        ),
        mint(
            "customer_x",
            CUSTOMER,
            "Cloud Customer X",
            "user@customer-x.example",
            demo.resell_id,
            demo.x_id,
        ),
        mint(
            "customer_z",
            CUSTOMER,
            "Cloud End-Customer Z",
            "user@customer-z.example",
            demo.resell_id,
            demo.z_id,
        ),
    ]


@dataclass(frozen=True)
class SignIn:
    """A demo user the banner prints a storefront sign-in link for (R30): the account (a
    ``Demo`` attribute, in Cloud Resell), the storefront (a ``Demo.storefronts`` key) and the
    role it signs in with there. The link goes to the account's email."""

    key: str
    label: str
    account: str
    storefront: str
    role: str


SIGN_INS = (
    SignIn("lite_reseller", "Cloud Lite's user (reseller)", "lite_id", "lite", RESELLER),
    SignIn("customer_x", "Cloud Customer X (Cloud Lite's customer)", "x_id", "lite", CUSTOMER),
    SignIn(
        "customer_z", "Cloud End-Customer Z (Cloud Resell's customer)", "z_id", "resell", CUSTOMER
    ),
)
#: who sets Cloud Lite's logo (``local/logo.py``; no JSON route: the platform calls the service)
LITE_USER = "user@cloud-lite.example"


# --- the load ------------------------------------------------------------------------------


class _Loader:
    def __init__(self, client: HttpClient, secret: str, backfill_timeout: float) -> None:
        self.http = client
        self.secret = secret
        self.backfill_timeout = backfill_timeout

    def token(
        self, role: str, sub: str, tenant_id: str | None = None, account_id: str | None = None
    ) -> str:
        return issue_token(
            self.secret,
            sub=sub,
            role=role,
            tenant_id=tenant_id,
            account_id=account_id,
            ttl_seconds=600,
        )

    def post(self, path: str, token: str, body: dict[str, Any], key: str) -> dict[str, Any]:
        result: dict[str, Any] = self.http.call(
            "POST", path, token=token, body=body, idempotency_key=f"demo-{key}"
        )
        return result

    def price_list(
        self, token: str, spec: ListSpec, products: dict[str, str], costs: dict[str, set[str]]
    ) -> str:
        """Create the list and price every product in every cycle the tenant has a cost for."""
        created = self.post(
            "/pricelists",
            token,
            {"name": spec.name, "currency": "EUR", "default": spec.default},
            f"pricelist-{spec.key}",
        )
        for product in PRODUCTS:
            for cycle in product.cycles:
                if cycle not in costs[product.key]:
                    continue
                fixed = spec.fixed.get((product.key, cycle))
                body: dict[str, Any] = {"product_id": products[product.key], "billing_cycle": cycle}
                if fixed is not None:
                    body["price"] = fixed
                else:
                    body["markup_percent"] = spec.markup
                self.post(
                    f"/pricelists/{created['id']}/prices",
                    token,
                    body,
                    f"price-{spec.key}-{product.key}-{cycle}",
                )
        return str(created["id"])

    def load(self) -> Demo:
        platform = self.token(PLATFORM_ADMIN, "admin@platform.example")

        # Distributor Cloud and its catalogue.
        cloud = self.post(
            "/tenants",
            platform,
            {
                "name": "Cloud",
                "country": "DE",
                "time_zone": "Europe/Berlin",
                "currency": "EUR",
                "billing_day": 1,
            },
            "tenant-cloud",
        )
        cloud_admin = self.token(TENANT_ADMIN, "admin@cloud.example", cloud["id"])
        cloud_products: dict[str, str] = {}
        for spec in PRODUCTS:
            created = self.post(
                "/products",
                cloud_admin,
                {
                    "sku": spec.sku,
                    "name": spec.name,
                    "type": spec.type,
                    "billing_cycles": list(spec.cycles),
                    "unit": spec.unit,
                    "categories": [spec.category],
                    "costs": spec.costs,
                    "addon_for": [cloud_products[key] for key in spec.addon_for],
                    **({"plan": spec.plan} if spec.plan else {}),
                    **({"commitments": spec.commitments} if spec.commitments else {}),
                },
                f"product-{spec.key}",
            )
            cloud_products[spec.key] = created["id"]
        cloud_costs = {spec.key: set(spec.costs) for spec in PRODUCTS}
        lists = {
            spec.key: self.price_list(cloud_admin, spec, cloud_products, cloud_costs)
            for spec in (CLOUD_RETAIL, CLOUD_RESELL_LIST)
        }

        # Tenant reseller Cloud Resell: its catalogue is copied from the list (R3).
        resell = self.post(
            "/tenants",
            cloud_admin,
            {
                "name": "Cloud Resell",
                "country": "DE",
                "time_zone": "Europe/Berlin",
                "price_list_id": lists[CLOUD_RESELL_LIST.key],
                "email": "billing@cloud-resell.example",
            },
            "tenant-cloud-resell",
        )
        resell_admin = self.token(TENANT_ADMIN, "admin@cloud-resell.example", resell["id"])
        by_sku = {p["sku"]: p for p in self.http.items("/products", token=resell_admin)}
        missing = [spec.sku for spec in PRODUCTS if spec.sku not in by_sku]
        if missing:
            raise DemoError(f"demo data: Cloud Resell's catalogue lacks the copies of {missing}")
        resell_products = {spec.key: by_sku[spec.sku]["id"] for spec in PRODUCTS}
        resell_costs = {spec.key: set(by_sku[spec.sku]["costs"] or {}) for spec in PRODUCTS}
        for list_spec in (RESELL_RETAIL, LITE_LIST):
            lists[list_spec.key] = self.price_list(
                resell_admin, list_spec, resell_products, resell_costs
            )

        # Cloud Resell's accounts: lite reseller Cloud Lite (X, Y under it) and direct Z.
        lite = self.post(
            "/accounts",
            resell_admin,
            {
                "name": "Cloud Lite",
                "kind": "lite_reseller",
                "price_list_id": lists[LITE_LIST.key],
                "email": "billing@cloud-lite.example",
                "accounting_number": "CL-1001",
                "address": _address("Hafenstraße 12", "20457", "Hamburg"),
            },
            "account-cloud-lite",
        )
        lite_user = self.token(RESELLER, LITE_USER, resell["id"], lite["id"])
        customers = {}
        for key, name, street, postal_code, city in (
            ("x", "Cloud Customer X", "Leopoldstraße 5", "80802", "München"),
            ("y", "Cloud Customer Y", "Königsallee 30", "40212", "Düsseldorf"),
        ):
            customers[key] = self.post(
                "/accounts",
                lite_user,  # the lite reseller's own user creates its customers
                {
                    "name": name,
                    "email": f"it@customer-{key}.example",
                    "address": _address(street, postal_code, city),
                },
                f"account-customer-{key}",
            )
        z = self.post(
            "/accounts",
            resell_admin,
            {
                "name": "Cloud End-Customer Z",
                "email": "it@customer-z.example",
                "accounting_number": "CZ-2001",
                "address": _address("Friedrichstraße 100", "10117", "Berlin"),
            },
            "account-customer-z",
        )

        # Subscriptions, ordered by the buyers themselves over the storefront (R10).
        x_user = self.token(CUSTOMER, "user@customer-x.example", resell["id"], customers["x"]["id"])
        z_user = self.token(CUSTOMER, "user@customer-z.example", resell["id"], z["id"])
        x_e3 = self.post(
            "/subscriptions",
            x_user,
            {
                "account_id": customers["x"]["id"],
                "product_id": resell_products["o365_e3"],
                "quantity": 10,
                "billing_cycle": MONTHLY,
                "characteristics": {"domain": "customer-x.example"},
            },
            "subscription-x-e3",
        )["subscription"]
        x_teams = self.post(
            f"/subscriptions/{x_e3['id']}/addons",
            x_user,
            {"product_id": resell_products["teams_phone"], "quantity": 10},
            "addon-x-teams-phone",
        )["subscription"]
        z_standard = self.post(
            "/subscriptions",
            z_user,
            {
                "account_id": z["id"],
                "product_id": resell_products["m365_standard"],
                "quantity": 5,
                "billing_cycle": ANNUAL,
                "characteristics": {"domain": "customer-z.example"},
            },
            "subscription-z-standard",
        )["subscription"]
        y_trial = self.post(
            "/subscriptions",
            lite_user,  # the lite reseller orders for its customer
            {
                "account_id": customers["y"]["id"],
                "product_id": resell_products["m365_basic_trial"],
                "quantity": 25,
                "billing_cycle": MONTHLY,
                "auto_renew": False,
            },
            "subscription-y-trial",
        )["subscription"]

        # Reseller plans (R27): Cloud's provider (the platform admin) and Cloud, Cloud Resell's,
        # enable the reseller add-on; Cloud Resell's admin activates Standard for Cloud Lite.
        # Its storefront is provisioned by the subscriptions stream (with a sign-in email);
        # then Cloud Lite brands it. Before go-live, so the backfill mirrors the plan into
        # Cloud's BSS like any paid subscription (R13).
        self.enable_plans(cloud["id"], platform)
        self.enable_plans(resell["id"], cloud_admin)
        plan = self.post(
            "/reseller-plans",
            resell_admin,
            {"account_id": lite["id"], "product_id": resell_products[LITE_PLAN]},
            "reseller-plan-cloud-lite",
        )
        if not plan.get("subscription_id"):
            raise DemoError(f"demo data: Cloud Lite's plan has no subscription: {plan}")
        lite_front = self.storefront_ready(lite_user, "Cloud Lite")
        self.http.call("PATCH", "/storefront", token=lite_user, body=LITE_COLORS)
        storefronts = {
            "cloud": self.http.call("GET", "/storefront", token=cloud_admin)["alias"],
            "resell": self.http.call("GET", "/storefront", token=resell_admin)["alias"],
            "lite": lite_front["alias"],
        }

        # Go-live: Cloud activates back ordering for Cloud Resell (R11); the backfill is queued.
        self.activate_backordering(resell["id"], cloud_admin)
        backordering = self.backfilled(resell["id"], cloud_admin)

        return Demo(
            cloud_id=cloud["id"],
            resell_id=resell["id"],
            resell_account_id=resell["reseller_account_id"],
            lite_id=lite["id"],
            x_id=customers["x"]["id"],
            y_id=customers["y"]["id"],
            z_id=z["id"],
            price_lists=lists,
            cloud_products=cloud_products,
            resell_products=resell_products,
            subscriptions={
                "x_e3": x_e3["id"],
                "x_teams_phone": x_teams["id"],
                "z_standard": z_standard["id"],
                "y_trial": y_trial["id"],
                "lite_standard": plan["subscription_id"],
            },
            backordering=backordering,
            storefronts=storefronts,
        )

    def enable_plans(self, tenant_id: str, provider: str) -> None:
        """R27: the reseller add-on of ``tenant_id``, switched on by its provider."""
        self.http.call(
            "PATCH", f"/tenants/{tenant_id}", token=provider, body={"reseller_plans": True}
        )

    def storefront_ready(self, reseller: str, name: str) -> dict[str, Any]:
        """The reseller's storefront once the plan's provisioning opened it (the event runner
        delivers the subscriptions stream to ``plans_stream``): 404 until then."""
        deadline = time.monotonic() + self.backfill_timeout
        while True:
            status, answer = self.http.request("GET", "/storefront", token=reseller)
            if status == 200 and isinstance(answer, dict) and answer.get("status") == "active":
                return answer
            if status not in (200, 404):
                raise DemoError(
                    f"demo data: GET /storefront as {name}'s user answered {status}\n"
                    f"  response: {json.dumps(answer, indent=2)}"
                )
            if time.monotonic() > deadline:
                raise DemoError(
                    f"demo data: {name}'s storefront was not provisioned within "
                    f"{self.backfill_timeout:.0f} s of its plan's activation (is the event runner "
                    "delivering the subscriptions stream to plans_stream?)\n"
                    f"  GET /storefront answered {status}: {json.dumps(answer, indent=2)}"
                )
            time.sleep(0.05)

    def activate_backordering(self, tenant_id: str, provider_admin: str) -> dict[str, Any]:
        result: dict[str, Any] = self.http.call(
            "POST",
            f"/tenants/{tenant_id}/backordering",
            token=provider_admin,
            idempotency_key=f"demo-backordering-{tenant_id}-{time.monotonic_ns()}",
        )
        return result

    def backfilled(self, tenant_id: str, provider_admin: str) -> dict[str, Any]:
        """The child's back ordering once its backfill is done (the event runner delivers it)."""
        deadline = time.monotonic() + self.backfill_timeout
        while True:
            state: dict[str, Any] = self.http.call(
                "GET", f"/tenants/{tenant_id}/backordering", token=provider_admin
            )
            if (state.get("backfill") or {}).get("status") == "done":
                return state
            if time.monotonic() > deadline:
                raise DemoError(
                    f"demo data: the back-ordering backfill of tenant {tenant_id} did not finish "
                    f"within {self.backfill_timeout:.0f} s (is the event runner delivering the "
                    f"backfill queue?)\n  state: {json.dumps(state, indent=2)}"
                )
            time.sleep(0.05)


def load(base_url: str, secret: str, *, backfill_timeout: float = 30.0) -> Demo:
    """Load the demo data set through the API at ``base_url`` (tokens signed with ``secret``);
    the event runner must be delivering, as the back-ordering backfill is waited for (at most
    ``backfill_timeout`` seconds)."""
    return _Loader(HttpClient(base_url), secret, backfill_timeout).load()
