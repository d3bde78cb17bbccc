"""The storefront in a real browser (R27, R30): the journeys of issue 13 on the local platform
with the SPEC's demo (Cloud → Cloud Resell → Cloud Lite on Standard → X, Y; Z direct), each page
saved as a PNG under ``build/screenshots/``. Mail is read where the platform drops it (its state
folder's ``mail/``); the API is called over HTTP with tokens minted from the platform's secret.
"""

from __future__ import annotations

import json
import re
import struct
import time
import urllib.error
import urllib.request
import zlib
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from functions.core.auth import issue_token
from tests.browser.conftest import Platform, Shots

LINK = re.compile(r"https?://[^\s\"<]+/login/confirm\?token=[^\s\"<]+")


# --- the platform over HTTP ---------------------------------------------------------------------


class Client:
    def __init__(self, platform: Platform) -> None:
        self.url = platform.url
        self.secret = platform.secret
        self.mail = platform.state_dir / "mail"

    def token(self, role: str, tenant: str | None = None, account: str | None = None) -> str:
        return issue_token(
            self.secret, sub=f"{role}@test", role=role, tenant_id=tenant, account_id=account
        )

    def call(self, method: str, path: str, token: str, body: Any = None) -> tuple[int, Any]:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            self.url + path,
            data=data,
            method=method,
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=15) as response:
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"null")

    def ok(self, method: str, path: str, token: str, body: Any = None) -> Any:
        status, answer = self.call(method, path, token, body)
        assert 200 <= status < 300, (method, path, status, answer)
        return answer

    def link_for(self, email: str, after: float, timeout: float = 20.0) -> str:
        """The sign-in link of the newest mail to ``email`` dropped after ``after``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            mails = sorted(self.mail.glob("*"), key=lambda p: p.stat().st_mtime, reverse=True)
            for mail in mails:
                if mail.stat().st_mtime < after:
                    break
                text = mail.read_text(errors="replace")
                if email.lower() in text.lower() and (found := LINK.search(text)):
                    return found.group(0)
            time.sleep(0.2)
        raise AssertionError(f"no sign-in mail to {email} in {self.mail}")


@pytest.fixture(scope="module")
def api(platform: Platform) -> Client:
    return Client(platform)


@pytest.fixture(scope="module")
def demo(api: Client) -> dict[str, str]:
    """The demo's ids, found through the API."""
    (cloud,) = api.ok("GET", "/tenants", api.token("platform_admin"))["items"]
    cloud_admin = api.token("tenant_admin", cloud["id"])
    (resell,) = api.ok("GET", "/tenants", cloud_admin)["items"]
    resell_admin = api.token("tenant_admin", resell["id"])
    accounts = {
        a["name"]: a["id"] for a in api.ok("GET", "/accounts?limit=100", resell_admin)["items"]
    }
    return {
        "cloud": cloud["id"],
        "resell": resell["id"],
        "resell_admin": resell_admin,
        "lite": accounts["Cloud Lite"],
        "x": accounts["Cloud Customer X"],
        "z": accounts["Cloud End-Customer Z"],
    }


def png(rgb: tuple[int, int, int], width: int = 120, height: int = 40) -> bytes:
    """A plain PNG of one colour (stdlib only)."""
    row = b"\x00" + bytes(rgb) * width
    raw = zlib.compress(row * height)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", raw) + chunk(b"IEND", b"")


def sign_in(page: Page, shots: Shots, link: str, name: str) -> None:
    page.goto(link)
    expect(page.get_by_role("heading", level=1)).to_contain_text("Sign in")
    shots.save(page, f"{name}-confirm")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("status")).to_contain_text("You are signed in")


def orders_of(api: Client, demo: dict[str, str], account: str) -> list[dict[str, Any]]:
    token = api.token("customer", demo["resell"], account)
    return list(api.ok("GET", "/orders?limit=100", token)["items"])


# --- the journeys -------------------------------------------------------------------------------


def test_r27_r30_a_provider_activates_standard_and_the_reseller_brands_its_storefront(
    api: Client, demo: dict[str, str], page: Page, shots: Shots, tmp_path: Path
) -> None:
    """Cloud Resell (Cloud Lite's provider) puts a new lite reseller on Standard; the emailed
    link signs its user in; it uploads a logo and sets colours; its storefront shows them."""
    admin = demo["resell_admin"]
    nova = api.ok(
        "POST",
        "/accounts",
        admin,
        {"name": "Nova Lite", "kind": "lite_reseller", "email": "user@nova.example"},
    )
    plans = api.ok("GET", f"/reseller-plans?account_id={nova['id']}", admin)["plans"]
    standard = next(p for p in plans if p["plan"] == "standard")
    before = time.time() - 1
    chosen = api.ok(
        "POST",
        "/reseller-plans",
        admin,
        {"account_id": nova["id"], "product_id": standard["product_id"]},
    )
    assert chosen["current_plan"] == "standard" and chosen["order"]["type"] == "new"
    link = api.link_for("user@nova.example", before)
    assert "/store/nova-lite/" in link
    sign_in(page, shots, link, "nova")
    shots.save(page, "nova-home")
    page.get_by_role("link", name="Branding").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Branding")
    page.get_by_label("Primary colour").fill("#0b5d3b")
    page.get_by_label("Accent colour").fill("#7a2e0e")
    page.get_by_role("button", name="Save branding").click()
    expect(page.get_by_role("status")).to_contain_text("branding is saved")
    logo = tmp_path / "logo.png"
    logo.write_bytes(png((11, 93, 59)))
    page.get_by_label(re.compile("^Logo")).set_input_files(str(logo))
    page.get_by_role("button", name="Upload logo").click()
    expect(page.get_by_role("status")).to_contain_text("logo is uploaded")
    shots.save(page, "nova-branding")
    page.goto(f"{api.url}/store/nova-lite/")
    brand = page.get_by_role("img", name=re.compile("Nova Lite logo"))
    expect(brand).to_be_visible()
    assert brand.evaluate("img => img.naturalWidth") == 120
    header = page.locator("header").first
    assert header.evaluate("e => getComputedStyle(e).backgroundColor") == "rgb(11, 93, 59)"
    shots.save(page, "nova-branded-home")
    # the provider's view through the API: the same storefront
    status, _ = api.call("GET", "/storefront", api.token("reseller", demo["resell"], nova["id"]))
    assert status == 200


def test_r30_customer_x_orders_changes_adds_and_cancels_on_cloud_lites_storefront(
    api: Client, demo: dict[str, str], page: Page, shots: Shots
) -> None:
    x_token = api.token("customer", demo["resell"], demo["x"])
    before_orders = {o["id"] for o in orders_of(api, demo, demo["x"])}
    page.goto(f"{api.url}/store/cloud-lite/login")
    shots.save(page, "login")
    before = time.time() - 1
    page.get_by_label("Email address").fill("it@customer-x.example")
    page.get_by_role("button", name="Email me a sign-in link").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Check your email")
    shots.save(page, "login-sent")
    sign_in(page, shots, api.link_for("it@customer-x.example", before), "x")
    shots.save(page, "catalogue")
    # Cloud Lite's prices (X's own, as the API gives them), not Cloud Resell's retail
    x_products = {p["name"]: p for p in api.ok("GET", "/products?limit=100", x_token)["items"]}
    z_token = api.token("customer", demo["resell"], demo["z"])
    z_products = {p["name"]: p for p in api.ok("GET", "/products?limit=100", z_token)["items"]}
    name = "Microsoft 365 Business Standard"
    card = page.locator("li.card", has_text=name).first
    mine = x_products[name]["prices"]["monthly"]
    retail = z_products[name]["prices"]["monthly"]
    assert mine != retail
    expect(card).to_contain_text(mine)
    expect(card).not_to_contain_text(retail)

    card.get_by_role("link", name=name).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(name)
    shots.save(page, "product")
    page.get_by_label("Billing cycle").select_option("monthly")
    page.get_by_label("Quantity").fill("2")
    page.get_by_label("Domain (optional)").fill("shop.customer-x.example")
    page.get_by_role("button", name="Order").click()
    expect(page.get_by_role("status")).to_contain_text("Your order is placed")
    expect(page.get_by_role("table")).to_contain_text("shop.customer-x.example")
    shots.save(page, "ordered")

    subs = api.ok("GET", "/subscriptions?limit=100", x_token)["items"]
    (sub,) = [s for s in subs if s["characteristics"].get("domain") == "shop.customer-x.example"]

    def step(action: str, expected: str) -> None:
        row = page.locator("tr", has_text="shop.customer-x.example")
        row.get_by_role("link", name=re.compile("^Manage")).click()
        expect(page.get_by_role("heading", level=1)).to_have_text(name)
        if action == "quantity":
            page.get_by_label("New quantity").fill("4")
            page.get_by_role("button", name="Change quantity").click()
        elif action == "addon":
            page.get_by_label("Add-on", exact=True).select_option(label="Teams Phone Standard")
            page.get_by_label("Add-on quantity").fill("4")
            shots.save(page, "subscription")
            page.get_by_role("button", name="Add add-on").click()
        else:
            page.get_by_role("button", name="Cancel subscription").click()
        expect(page.get_by_role("status")).to_contain_text(expected)
        shots.save(page, f"after-{action}")

    step("quantity", "quantity is changed")
    assert api.ok("GET", f"/subscriptions/{sub['id']}", x_token)["quantity"] == 4
    step("addon", "add-on is added")
    step("cancel", "subscription is cancelled")
    assert api.ok("GET", f"/subscriptions/{sub['id']}", x_token)["status"] == "cancelled"
    new = [o for o in orders_of(api, demo, demo["x"]) if o["id"] not in before_orders]
    assert sorted(o["type"] for o in new) == sorted(
        ["new", "quantity_change", "addon_added", "cancel", "addon_removed"]
    ), new  # one order per step (R9), the add-on's removal with the cancel


def test_r27_a_basic_resellers_storefront_is_not_active_and_points_to_its_provider(
    api: Client, demo: dict[str, str], page: Page, shots: Shots
) -> None:
    admin = demo["resell_admin"]
    basic = api.ok(
        "POST",
        "/accounts",
        admin,
        {"name": "Vega Lite", "kind": "lite_reseller", "email": "user@vega.example"},
    )
    plans = api.ok("GET", f"/reseller-plans?account_id={basic['id']}", admin)["plans"]
    by_plan = {p["plan"]: p["product_id"] for p in plans}
    api.ok(
        "POST", "/reseller-plans", admin, {"account_id": basic["id"], "product_id": by_plan["free"]}
    )
    deadline = time.monotonic() + 20
    reseller = api.token("reseller", demo["resell"], basic["id"])
    while api.call("GET", "/storefront", reseller)[0] != 200:
        assert time.monotonic() < deadline, "the Free plan was not provisioned"
        time.sleep(0.2)
    api.ok(
        "POST",
        "/reseller-plans",
        admin,
        {"account_id": basic["id"], "product_id": by_plan["basic"]},
    )
    while api.ok("GET", "/storefront", reseller)["status"] != "inactive":
        assert time.monotonic() < deadline, "the cancelled plan's storefront still serves"
        time.sleep(0.2)
    response = page.goto(f"{api.url}/store/vega-lite/")
    assert response is not None and response.status == 404
    expect(page.get_by_role("heading", level=1)).to_have_text("This storefront is not active")
    shots.save(page, "not-active")
    page.get_by_role("link", name=re.compile("Go to Cloud Resell")).click()
    expect(page).to_have_url(f"{api.url}/store/cloud-resell/")
    shots.save(page, "provider")


def test_r28_r30_urls_forged_links_replays_and_forms_without_csrf_are_refused(
    api: Client, demo: dict[str, str], page: Page, shots: Shots, platform: Platform
) -> None:
    before = time.time() - 1
    page.goto(f"{api.url}/store/cloud-lite/login")
    page.get_by_label("Email address").fill("billing@cloud-lite.example")
    page.get_by_role("button", name="Email me a sign-in link").click()
    link = api.link_for("billing@cloud-lite.example", before)
    sign_in(page, shots, link, "lite")
    page.get_by_role("link", name="Customers").click()
    expect(page.get_by_role("table")).to_contain_text("Cloud Customer X")
    expect(page.get_by_role("table")).not_to_contain_text("Cloud End-Customer Z")
    shots.save(page, "customers")
    # a page the storefront lacks is a page too (the gateway's answer, not the API's JSON)
    response = page.goto(f"{api.url}/store/cloud-lite/no-such-page")
    assert response is not None and response.status == 404
    expect(page.get_by_role("heading", level=1)).to_have_text("Page not found")
    # another storefront's pages by editing the URL: its session is not valid there

    page.goto(f"{api.url}/store/cloud-resell/customers")
    expect(page).to_have_url(re.compile(r"/store/cloud-resell/login"))
    # Z's subscription (Cloud Resell's direct customer) through Cloud Lite's form: not found
    z_subs = api.ok("GET", "/subscriptions", api.token("customer", demo["resell"], demo["z"]))[
        "items"
    ]
    page.goto(f"{api.url}/store/cloud-lite/subscriptions")
    csrf = page.locator("input[name=csrf]").first.get_attribute("value")
    answer = page.request.post(
        f"{api.url}/store/cloud-lite/subscriptions/{z_subs[0]['id']}",
        form={"action": "cancel", "csrf": csrf or ""},
    )
    assert answer.status == 404
    # the same form without its CSRF token
    answer = page.request.post(
        f"{api.url}/store/cloud-lite/subscriptions/{z_subs[0]['id']}", form={"action": "cancel"}
    )
    assert answer.status == 403 and "form has expired" in answer.text()
    # the used link again, and a forged one
    page.goto(link)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("This sign-in link was used already")
    shots.save(page, "replayed-link")
    forged = link[:-4] + ("AAAA" if not link.endswith("AAAA") else "BBBB")
    response = page.goto(forged)
    assert response is not None and response.status == 400
    expect(page.get_by_role("heading", level=1)).to_have_text("This sign-in link is not valid")
    shots.save(page, "forged-link")
    # the platform's access log shows the pages, never a link's token
    assert "/login/confirm?token=…" in platform.output()
    assert link.split("token=")[1] not in platform.output()


def test_r30_pages_are_accessible_and_readable_on_a_phone(
    api: Client, phone_page: Page, shots: Shots
) -> None:
    page = phone_page
    page.goto(f"{api.url}/store/cloud-lite/")
    assert page.locator("html").get_attribute("lang") == "en"
    assert page.locator("h1").count() == 1
    page.keyboard.press("Tab")  # the first stop skips to the content
    expect(page.locator(":focus")).to_have_attribute("href", "#main")
    width = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
    assert width[0] <= width[1], width  # no sideways scrolling
    shots.save(page, "phone-catalogue")
    page.goto(f"{api.url}/store/cloud-lite/login")
    expect(page.get_by_label("Email address")).to_be_visible()
    shots.save(page, "phone-login")
    # every control of the page has a label
    unlabelled = page.evaluate(
        """() => [...document.querySelectorAll('input:not([type=hidden]), select, textarea')]
            .filter(e => !(e.labels && e.labels.length)).map(e => e.name)"""
    )
    assert unlabelled == []
