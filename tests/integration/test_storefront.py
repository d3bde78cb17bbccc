"""Reseller plans (R27) and the storefront pages (R30), through the Chalice test client on
in-process moto, with the event runner delivering the subscriptions stream (the plan's
provisioning) and moto's SES keeping the mail.

One world per module: distributor Cloud (the reseller add-on enabled by the platform) sells a
licence, an add-on and the three reseller plans; lite reseller Cloud Lite buys at its own list
and has customer X; Cloud Lite's rival Other Lite has customer W; Z buys directly. Tests run in
file order (pytest-xdist ``--dist loadfile``) and build on each other's plan changes.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import pytest

from tests.api.world import aws_env, ok
from tests.conftest import Api, token

MONTHLY = "monthly"


@dataclass
class Shop:
    api: Api
    cloud: str = ""
    admin: str = ""
    lite: str = ""
    other: str = ""
    x: str = ""
    w: str = ""
    z: str = ""
    products: dict[str, str] = field(default_factory=dict)


def _sent() -> list[dict[str, Any]]:
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.ses.models import ses_backends

    backend = ses_backends[DEFAULT_ACCOUNT_ID]["us-east-1"]
    return [
        {"to": m.destinations["ToAddresses"], "subject": m.subject, "body": m.body}
        for m in backend.sent_messages
    ]


def _drain() -> None:
    from local.runner import Runner

    Runner().drain()


@pytest.fixture(scope="module")
def shop() -> Iterator[Shop]:
    with aws_env() as api:
        s = Shop(api)
        platform = token("platform_admin")
        cloud = ok(
            api.call(
                "POST",
                "/tenants",
                platform,
                {"name": "Cloud", "country": "DE", "time_zone": "Europe/Berlin", "currency": "EUR"},
            )
        )
        s.cloud, s.admin = cloud["id"], token("tenant_admin", cloud["id"])

        def post(path: str, body: dict[str, Any], tok: str = s.admin) -> Any:
            return ok(api.call("POST", path, tok, body))

        for key, body in {
            "m365": {"sku": "M365", "name": "Microsoft 365", "type": "license", "costs": "10.00"},
            "basic": {"sku": "PLAN-B", "name": "Basic", "type": "reseller_plan", "plan": "basic"},
            "free": {"sku": "PLAN-F", "name": "Free", "type": "reseller_plan", "plan": "free"},
            "standard": {
                "sku": "PLAN-S",
                "name": "Standard",
                "type": "reseller_plan",
                "plan": "standard",
                "costs": "49.00",
            },
        }.items():
            costs = body.pop("costs", "0.00")
            s.products[key] = post(
                "/products",
                {**body, "billing_cycles": [MONTHLY], "unit": "user", "costs": {MONTHLY: costs}},
            )["id"]
        s.products["teams"] = post(
            "/products",
            {
                "sku": "TEAMS",
                "name": "Teams Phone",
                "type": "addon",
                "billing_cycles": [MONTHLY],
                "unit": "user",
                "costs": {MONTHLY: "5.00"},
                "addon_for": [s.products["m365"]],
            },
        )["id"]
        lists = {}
        for name, markup, default in (("Retail", "30", True), ("Lite list", "10", False)):
            lists[name] = post(
                "/pricelists", {"name": name, "currency": "EUR", "default": default}
            )["id"]
            for product in s.products.values():
                post(
                    f"/pricelists/{lists[name]}/prices",
                    {"product_id": product, "billing_cycle": MONTHLY, "markup_percent": markup},
                )
        for attr, name in (("lite", "Cloud Lite"), ("other", "Other Lite")):
            account = post(
                "/accounts",
                {
                    "name": name,
                    "kind": "lite_reseller",
                    "price_list_id": lists["Lite list"],
                    "email": f"user@{attr}.example",
                },
            )
            setattr(s, attr, account["id"])
        s.x = post(
            "/accounts",
            {"name": "Customer <X>", "parent_account_id": s.lite, "email": "it@x.example"},
        )["id"]
        s.w = post(
            "/accounts",
            {"name": "Customer W", "parent_account_id": s.other, "email": "it@w.example"},
        )["id"]
        s.z = post("/accounts", {"name": "Customer Z", "email": "it@z.example"})["id"]
        yield s


def as_reseller(s: Shop, account: str) -> str:
    return token("reseller", s.cloud, account)


def choose(s: Shop, product: str, tok: str | None = None, account: str | None = None) -> Any:
    body = {"product_id": s.products[product]}
    if account:
        body["account_id"] = account
    return s.api.call("POST", "/reseller-plans", tok or s.admin, body)


def page(s: Shop, path: str, cookie: str | None = None, host: str | None = None) -> Any:
    headers = {}
    if cookie:
        headers["Cookie"] = cookie
    if host:
        headers["Host"] = host
    return s.api.client.http.get(path, headers=headers)


def post_form(s: Shop, path: str, fields: dict[str, str], cookie: str | None) -> Any:
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    if cookie:
        headers["Cookie"] = cookie
    return s.api.client.http.post(path, headers=headers, body=urlencode(fields))


def text(response: Any) -> str:
    return response.body.decode() if isinstance(response.body, bytes) else str(response.body)


def cookie_of(response: Any) -> str:
    raw = response.headers.get("Set-Cookie", "")
    return raw.split(";")[0]


def csrf_of(response: Any) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', text(response))
    assert found, text(response)[:2000]
    return html.unescape(found.group(1))


def sign_in(s: Shop, alias: str, url: str) -> str:
    """Follow an emailed link: the confirmation page, then its button; the session cookie."""
    path = url.split("://", 1)[-1].split("/", 1)[1]
    confirm = page(s, "/" + path)
    assert confirm.status_code == 200, text(confirm)
    visitor = cookie_of(confirm)
    token_value = html.unescape(re.search(r'name="token" value="([^"]+)"', text(confirm)).group(1))
    done = post_form(
        s,
        f"/store/{alias}/login/confirm",
        {"token": token_value, "csrf": csrf_of(confirm)},
        visitor,
    )
    assert done.status_code == 303, text(done)
    return cookie_of(done)


def last_link(to: str) -> str:
    for message in reversed(_sent()):
        if to in message["to"]:
            found = re.search(r"https?://[^\s\"<]+/login/confirm\?token=[^\s\"<]+", message["body"])
            assert found, message
            return found.group(0)
    raise AssertionError(f"no mail to {to}: {_sent()}")


def fresh_link(s: Shop, alias: str, email: str) -> str:
    """A new sign-in link, asked for on the storefront's sign-in page."""
    login = page(s, f"/store/{alias}/login")
    sent = post_form(
        s, f"/store/{alias}/login", {"email": email, "csrf": csrf_of(login)}, cookie_of(login)
    )
    assert sent.status_code == 200, text(sent)
    return last_link(email)


# --- R27: eligibility -------------------------------------------------------------------------


def test_r27_a_tenant_has_its_own_storefront_from_its_creation(shop: Shop) -> None:
    front = ok(shop.api.call("GET", "/storefront", shop.admin))
    assert (front["alias"], front["plan"], front["status"]) == ("cloud", "tenant", "active")
    assert front["url"].endswith("/store/cloud/")


def test_r27_plans_need_the_providers_reseller_add_on(shop: Shop) -> None:
    status, body = choose(shop, "standard", account=shop.lite)
    assert status == 409 and body["error"]["code"] == "reseller_plans_disabled", body
    # the platform enables the add-on for its root tenant Cloud
    ok(
        shop.api.call(
            "PATCH", f"/tenants/{shop.cloud}", token("platform_admin"), {"reseller_plans": True}
        )
    )


def test_r27_only_a_lite_reseller_with_reselling_enabled_takes_a_plan(shop: Shop) -> None:
    status, body = choose(shop, "standard", account=shop.z)
    assert status == 409 and body["error"]["code"] == "reselling_not_enabled", body
    ok(shop.api.call("PATCH", f"/accounts/{shop.other}", shop.admin, {"enable_reselling": False}))
    status, body = choose(shop, "free", account=shop.other)
    assert status == 409 and body["error"]["details"]["field"] == "account_id", body
    ok(shop.api.call("PATCH", f"/accounts/{shop.other}", shop.admin, {"enable_reselling": True}))
    # POST /subscriptions refuses the same (R27 holds on every path)
    status, body = shop.api.call(
        "POST",
        "/subscriptions",
        shop.admin,
        {"account_id": shop.z, "product_id": shop.products["free"], "billing_cycle": MONTHLY},
    )
    assert status == 409 and body["error"]["code"] == "reselling_not_enabled", body


def test_r27_basic_is_the_state_without_a_plan(shop: Shop) -> None:
    plans = ok(shop.api.call("GET", f"/reseller-plans?account_id={shop.lite}", shop.admin))
    assert plans["current_plan"] == "basic" and plans["storefront"] is None
    assert [p["plan"] for p in plans["plans"]] == ["basic", "free", "standard"]
    # at the reseller's own list (10 % over cost)
    assert {p["plan"]: p["prices"][MONTHLY] for p in plans["plans"]}["standard"] == "53.90"
    status, body = choose(shop, "basic", account=shop.lite)
    assert status == 409 and body["error"]["code"] == "unchanged", body


# --- R27: activation, provisioning, switching, cancelling ----------------------------------------


def test_r27_activation_provisions_a_storefront_and_mails_a_sign_in_link(shop: Shop) -> None:
    chosen = ok(choose(shop, "standard", account=shop.lite))
    assert chosen["current_plan"] == "standard" and chosen["order"]["type"] == "new"
    _drain()  # the subscriptions stream: the plan is provisioned
    front = ok(shop.api.call("GET", "/storefront", as_reseller(shop, shop.lite)))
    assert (front["alias"], front["plan"], front["status"]) == ("cloud-lite", "standard", "active")
    link = last_link("user@lite.example")
    assert "/store/cloud-lite/login/confirm?token=" in link
    _drain()  # a replay changes nothing and mails nothing more
    assert sum("user@lite.example" in m["to"] for m in _sent()) == 1
    # a second plan is refused: plans are switched
    status, body = shop.api.call(
        "POST",
        "/subscriptions",
        shop.admin,
        {"account_id": shop.lite, "product_id": shop.products["free"], "billing_cycle": MONTHLY},
    )
    assert status == 409 and body["error"]["code"] == "plan_exists", body


def test_r30_the_link_signs_in_once(shop: Shop) -> None:
    link = last_link("user@lite.example")
    cookie = sign_in(shop, "cloud-lite", link)
    assert cookie.startswith("bss_store=")
    home = page(shop, "/store/cloud-lite", cookie)
    assert "user@lite.example" in text(home)
    again = page(shop, "/" + link.split("://", 1)[1].split("/", 1)[1])
    assert again.status_code == 200  # the confirmation page itself signs nobody in
    token_value = re.search(r"token=(\S+)", link).group(1)
    reused = post_form(
        shop,
        "/store/cloud-lite/login/confirm",
        {"token": token_value, "csrf": csrf_of(again)},
        cookie_of(again),
    )
    assert reused.status_code == 410 and "used already" in text(reused)


def test_r30_a_forged_link_and_a_missing_csrf_token_are_refused(shop: Shop) -> None:
    link = last_link("user@lite.example")
    forged = link[:-3] + ("AAA" if not link.endswith("AAA") else "BBB")
    answer = page(shop, "/" + forged.split("://", 1)[1].split("/", 1)[1])
    assert answer.status_code == 400 and "not valid" in text(answer)
    login = page(shop, "/store/cloud-lite/login")
    refused = post_form(
        shop, "/store/cloud-lite/login", {"email": "it@x.example"}, cookie_of(login)
    )
    assert refused.status_code == 403 and "form has expired" in text(refused)


def test_r30_customers_sign_in_only_on_their_own_storefront(shop: Shop) -> None:
    before = len(_sent())
    for alias, email in (("cloud", "it@x.example"), ("cloud-lite", "it@w.example")):
        login = page(shop, f"/store/{alias}/login")
        sent = post_form(
            shop,
            f"/store/{alias}/login",
            {"email": email, "csrf": csrf_of(login)},
            cookie_of(login),
        )
        assert sent.status_code == 200 and "is on its way" in text(sent)  # the same answer
    assert len(_sent()) == before  # … but nothing was sent
    login = page(shop, "/store/cloud-lite/login")
    post_form(
        shop,
        "/store/cloud-lite/login",
        {"email": "IT@X.example", "csrf": csrf_of(login)},
        cookie_of(login),
    )
    assert len(_sent()) == before + 1 and "it@x.example" in _sent()[-1]["to"][0].lower()


def test_r30_a_customer_orders_changes_and_cancels_on_its_resellers_storefront(shop: Shop) -> None:
    cookie = sign_in(shop, "cloud-lite", last_link("IT@X.example"))
    home = text(page(shop, "/store/cloud-lite", cookie))
    assert "11.00" in home and "13.00" not in home  # Cloud Lite's list, not Cloud's retail
    assert "Customer &lt;X&gt;" in home and "Customer <X>" not in home  # escaped
    product = page(shop, f"/store/cloud-lite/products/{shop.products['m365']}", cookie)
    form = {
        "product_id": shop.products["m365"],
        "billing_cycle": MONTHLY,
        "quantity": "3",
        "domain": "x.example",
        "csrf": csrf_of(product),
        "form_key": re.search(r'name="form_key" value="([^"]+)"', text(product)).group(1),
    }
    ordered = post_form(shop, "/store/cloud-lite/orders", form, cookie)
    assert ordered.status_code == 303, text(ordered)
    again = post_form(shop, "/store/cloud-lite/orders", form, cookie)  # a double click
    assert (again.status_code, again.headers["Location"]) == (303, ordered.headers["Location"])
    x = token("customer", shop.cloud, shop.x)
    (sub,) = ok(shop.api.call("GET", "/subscriptions", x))["items"]
    assert (sub["quantity"], sub["characteristics"]) == (3, {"domain": "x.example"})
    assert ordered.headers["Location"] == "/store/cloud-lite/subscriptions?done=ordered"
    subs = page(shop, ordered.headers["Location"], cookie)
    assert "Your order is placed." in text(subs) and "x.example" in text(subs)
    detail = page(shop, f"/store/cloud-lite/subscriptions/{sub['id']}", cookie)
    assert detail.status_code == 200 and "Teams Phone" in text(detail)  # its add-on to take
    lite = sign_in(shop, "cloud-lite", fresh_link(shop, "cloud-lite", "user@lite.example"))
    assert page(shop, f"/store/cloud-lite/subscriptions/{sub['id']}", lite).status_code == 200
    z = sign_in(shop, "cloud", fresh_link(shop, "cloud", "it@z.example"))
    foreign = page(shop, f"/store/cloud/subscriptions/{sub['id']}", z)  # X's, as Z (R28)
    assert foreign.status_code == 404 and "x.example" not in text(foreign)
    csrf = csrf_of(detail)
    bad = post_form(
        shop,
        f"/store/cloud-lite/subscriptions/{sub['id']}",
        {"action": "change_quantity", "quantity": "0", "csrf": csrf},
        cookie,
    )
    assert bad.status_code == 400 and "quantity" in text(bad)  # a message, not a 500
    for fields in (
        {"action": "change_quantity", "quantity": "5"},
        {"action": "add_addon", "product_id": shop.products["teams"], "quantity": "5"},
        {"action": "cancel"},
    ):
        done = post_form(
            shop, f"/store/cloud-lite/subscriptions/{sub['id']}", {**fields, "csrf": csrf}, cookie
        )
        assert done.status_code == 303, text(done)
    orders = ok(shop.api.call("GET", "/orders", x))["items"]
    assert sorted(o["type"] for o in orders) == sorted(
        ["new", "quantity_change", "addon_added", "cancel", "addon_removed"]
    )


def test_r28_a_reseller_page_never_shows_another_resellers_customers(shop: Shop) -> None:
    cookie = sign_in(shop, "cloud-lite", fresh_link(shop, "cloud-lite", "user@lite.example"))
    customers = text(page(shop, "/store/cloud-lite/customers", cookie))
    assert "Customer &lt;X&gt;" in customers and "Customer W" not in customers
    # the session is Cloud Lite's storefront's: on another alias it signs nobody in
    other = page(shop, "/store/cloud/subscriptions", cookie)
    assert other.status_code in (302, 303) and "/store/cloud/login" in other.headers["Location"]


def test_r30_branding_is_standard_and_is_checked(shop: Shop) -> None:
    lite = as_reseller(shop, shop.lite)
    status, body = shop.api.call("PATCH", "/storefront", lite, {"primary_color": "#ffff00"})
    assert status == 400 and body["error"]["code"] == "low_contrast", body
    front = ok(
        shop.api.call(
            "PATCH",
            "/storefront",
            lite,
            {"primary_color": "#123456", "domain": "shop.lite.example"},
        )
    )
    assert (front["primary_color"], front["domain"]) == ("#123456", "shop.lite.example")
    css = page(shop, "/store/cloud-lite/theme.css")
    assert "#123456" in text(css)
    assert page(shop, "/store/cloud/theme.css").status_code == 200
    assert "#123456" not in text(page(shop, "/store/cloud/theme.css"))
    root = page(shop, "/", host="shop.lite.example")
    assert root.status_code == 302 and root.headers["Location"] == "/store/cloud-lite/"
    # on Cloud Lite's domain, another storefront is not served
    assert page(shop, "/store/cloud", host="shop.lite.example").status_code == 404


def test_r27_switching_and_cancelling_the_plan(shop: Shop) -> None:
    switched = ok(choose(shop, "free", tok=as_reseller(shop, shop.lite)))
    assert switched["order"]["type"] == "downgrade" and switched["current_plan"] == "free"
    _drain()
    front = ok(shop.api.call("GET", "/storefront", as_reseller(shop, shop.lite)))
    assert front["plan"] == "free" and front["primary_color"] != "#123456"  # Free: no branding
    status, body = shop.api.call(
        "PATCH", "/storefront", as_reseller(shop, shop.lite), {"accent_color": "#123456"}
    )
    assert status == 409 and body["error"]["code"] == "plan_required", body
    cancelled = ok(choose(shop, "basic", account=shop.lite))
    assert cancelled["order"]["type"] == "cancel" and cancelled["current_plan"] == "basic"
    _drain()
    gone = page(shop, "/store/cloud-lite")
    assert gone.status_code == 404 and "not active" in text(gone)
    assert 'href="/store/cloud/"' in text(gone)  # its customers go to the provider's
    assert page(shop, "/store/no-such-shop").status_code == 404


def test_r30_pages_carry_a_content_security_policy(shop: Shop) -> None:
    response = page(shop, "/store/cloud")
    assert response.status_code == 200
    assert "default-src 'none'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Frame-Options"] == "DENY"
    assert (
        "HttpOnly" in response.headers["Set-Cookie"]
        and "SameSite=Lax" in response.headers["Set-Cookie"]
    )


def test_r30_the_frameworks_answers_under_store_are_pages(shop: Shop) -> None:
    wrong_method = page(shop, "/store/cloud/logout")
    assert wrong_method.status_code == 405 and "text/html" in wrong_method.headers["Content-Type"]
    assert "POST" in wrong_method.headers["Allow"]
    not_a_form = shop.api.client.http.post(
        "/store/cloud/logout", headers={"Content-Type": "application/json"}, body=b"{}"
    )
    assert not_a_form.status_code == 415 and "Form not readable" in text(not_a_form)
    assert "default-src 'none'" in not_a_form.headers["Content-Security-Policy"]
    # the API keeps its error object
    assert "application/json" in page(shop, "/reseller-plans").headers["Content-Type"]


def test_r30_a_custom_domain_with_a_trailing_dot_is_the_same_domain(shop: Shop) -> None:
    assert page(shop, "/store/cloud", host="shop.lite.example.").status_code == 404
    cached = page(shop, "/store/cloud/theme.css")
    assert "Set-Cookie" not in cached.headers  # shared caches get no visitor's seed


def test_r31_a_committed_subscriptions_page_shows_its_dates(shop: Shop) -> None:
    """R31: the page of a subscription bought on a commitment shows the term's last day and
    until when a cancellation is refunded (the window's close)."""
    nce = ok(
        shop.api.call(
            "POST",
            "/products",
            shop.admin,
            {
                "sku": "NCE-M",
                "name": "NCE monthly",
                "type": "license",
                "billing_cycles": [MONTHLY],
                "unit": "user",
                "costs": {MONTHLY: "10.00"},
                "commitments": {MONTHLY: {"term": "P1M", "cancellation_window_hours": 168}},
            },
        )
    )
    retail = ok(shop.api.call("GET", "/pricelists", shop.admin))["items"]
    (retail_id,) = [p["id"] for p in retail if p["name"] == "Retail"]
    ok(
        shop.api.call(
            "POST",
            f"/pricelists/{retail_id}/prices",
            shop.admin,
            {"product_id": nce["id"], "billing_cycle": MONTHLY, "price": "12.00"},
        )
    )
    sub = ok(
        shop.api.call(
            "POST",
            "/subscriptions",
            shop.admin,
            {"account_id": shop.z, "product_id": nce["id"], "billing_cycle": MONTHLY},
        )
    )["subscription"]
    z = sign_in(shop, "cloud", fresh_link(shop, "cloud", "it@z.example"))
    detail = text(page(shop, f"/store/cloud/subscriptions/{sub['id']}", z))
    assert f"<dd>{sub['term_end']}</dd>" in detail
    assert "Cancellable with refund until" in detail and sub["cancellable_until"] in detail
