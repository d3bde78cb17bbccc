"""The local platform, end to end: ``python -m local.platform`` (what ``make run`` runs) as a
subprocess, called over real HTTP with tokens this test mints itself (SPEC §1 demo data, §9).

Ctrl-C (SIGINT) stops it with exit code 0; the same port can be used again right after. Back
ordering (SPEC §4) runs as in AWS: the demo activates it for Cloud Resell, and the platform's
event runner delivers the subscriptions stream, so a sale in Cloud Resell's BSS shows up in
Cloud's BSS within the 2 s of issue 3's demo bar."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

import pytest

from functions.core.auth import CUSTOMER, PLATFORM_ADMIN, RESELLER, TENANT_ADMIN, issue_token

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
SECRET = "e2e-local-platform-secret-0123456789abcdef"
START_TIMEOUT = 60.0  # the demo is loaded over HTTP first; slow on a busy 2-core machine
#: issue 3's demo bar: a sale in the reseller's BSS is in its provider's within 2 s
PROPAGATION_BAR_S = 2.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Running:
    process: subprocess.Popen[bytes]
    url: str
    log: IO[bytes]

    def output(self) -> str:
        self.log.flush()
        self.log.seek(0)
        return self.log.read().decode("utf-8", "replace")

    def interrupt(self) -> int:
        """Ctrl-C, as a person would; the exit code."""
        self.process.send_signal(signal.SIGINT)
        try:
            return self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            pytest.fail(f"the platform did not stop on SIGINT:\n{self.output()}")


def get(url: str, token: str | None = None) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def send(method: str, url: str, token: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    request = urllib.request.Request(url, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def fetch(url: str, accept: str = "text/html") -> tuple[int, str, bytes]:
    """A storefront page or file, without a token: status, content type, body."""
    request = urllib.request.Request(url, headers={"Accept": accept})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers.get("Content-Type", ""), response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers.get("Content-Type", ""), error.read()


def banner_of(running: Running) -> str:
    """The banner, once printed (just after /health answers)."""
    deadline = time.monotonic() + 10
    while "Ctrl-C stops." not in running.output():
        assert time.monotonic() < deadline, running.output()
        time.sleep(0.1)
    text = running.output()
    start = text.index("BSS local platform ready")
    return text[start : text.index("Ctrl-C stops.", start)]


def start(port: int, log: IO[bytes]) -> Running:
    env = {
        **os.environ,
        "PORT": str(port),
        "BSS_JWT_SECRET": SECRET,
        "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",  # as the Makefile exports it
        "PYTHONUNBUFFERED": "1",
        # a fresh demo in a state directory of the test's own, never the developer's .local/
        # (keeping state between runs is tests/e2e/test_restart.py's)
        "BSS_LOCAL_DIR": str(Path(log.name).parent / "local-state"),
        "RESET": "1",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "local.platform"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    running = Running(process, f"http://127.0.0.1:{port}", log)
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        if process.poll() is not None:
            pytest.fail(f"the platform exited with {process.returncode}:\n{running.output()}")
        try:
            if get(f"{running.url}/health")[0] == 200:
                return running
        except OSError:
            pass
        if time.monotonic() > deadline:
            process.kill()
            process.wait()
            pytest.fail(f"/health did not answer in {START_TIMEOUT:.0f} s:\n{running.output()}")
        time.sleep(0.2)


@pytest.fixture
def log(tmp_path: Path) -> Iterator[IO[bytes]]:
    with (tmp_path / "platform.log").open("w+b") as f:
        yield f


def mint(
    role: str, tenant_id: str | None = None, account_id: str | None = None, sub: str = "e2e"
) -> str:
    return issue_token(SECRET, sub=sub, role=role, tenant_id=tenant_id, account_id=account_id)


def by_name(items: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {item["name"]: item for item in items}


def test_make_run_serves_the_demo_data_and_stops_on_ctrl_c(log: IO[bytes]) -> None:
    port = free_port()
    running = start(port, log)
    try:
        url = running.url

        # The API describes itself, without a token.
        status, document = get(f"{url}/openapi.json")
        assert status == 200
        assert document["openapi"].startswith("3.")
        assert "/subscriptions/{subscription_id}" in document["paths"]

        # SPEC §1: distributor Cloud, tenant reseller Cloud Resell.
        status, page = get(f"{url}/tenants", mint(PLATFORM_ADMIN))
        assert status == 200
        cloud = by_name(page["items"])["Cloud"]
        assert (cloud["currency"], cloud["country"], cloud["time_zone"]) == (
            "EUR",
            "DE",
            "Europe/Berlin",
        )
        status, page = get(f"{url}/tenants", mint(TENANT_ADMIN, cloud["id"]))
        assert status == 200
        resell = by_name(page["items"])["Cloud Resell"]
        assert resell["parent_id"] == cloud["id"]

        # In Cloud Resell's BSS: Cloud Lite with X and Y under it; Z direct.
        resell_admin = mint(TENANT_ADMIN, resell["id"])
        status, page = get(f"{url}/accounts?limit=100", resell_admin)
        assert status == 200
        accounts = by_name(page["items"])
        lite = accounts["Cloud Lite"]
        x, y, z = (accounts[f"Cloud {n}"] for n in ("Customer X", "Customer Y", "End-Customer Z"))
        assert lite["kind"] == "lite_reseller"
        assert lite["enable_reselling"] is True
        assert x["parent_account_id"] == lite["id"]
        assert y["parent_account_id"] == lite["id"]
        assert z["parent_account_id"] is None
        assert z["kind"] == "customer"

        # Cloud Lite's user sees its own customers.
        status, page = get(f"{url}/accounts", mint(RESELLER, resell["id"], lite["id"]))
        assert status == 200
        assert set(by_name(page["items"])) == {"Cloud Customer X", "Cloud Customer Y"}

        # Customer X browses the catalogue at its prices.
        x_token = mint(CUSTOMER, resell["id"], x["id"], sub="x-user")
        status, page = get(f"{url}/products?limit=100", x_token)
        assert status == 200
        products = by_name(page["items"])
        e3 = products["Office 365 E3"]
        assert e3["currency"] == "EUR"
        assert e3["prices"]["monthly"]
        assert all(p["prices"] for p in page["items"])
        assert e3["costs"] is None  # costs are the tenant admin's only

        # X's subscription and its orders are X's, not Z's.
        status, page = get(f"{url}/subscriptions", x_token)
        assert status == 200
        base = [s for s in page["items"] if s["product_id"] == e3["id"]]
        assert len(base) == 1
        sub = base[0]
        assert (sub["quantity"], sub["billing_cycle"], sub["account_id"]) == (
            10,
            "monthly",
            x["id"],
        )
        status, addons = get(f"{url}/subscriptions/{sub['id']}/addons", x_token)
        assert status == 200
        assert [a["product_id"] for a in addons["items"]] == [
            products["Teams Phone Standard"]["id"]
        ]
        status, mine = get(f"{url}/subscriptions/{sub['id']}", x_token)
        assert (status, mine["id"]) == (200, sub["id"])
        status, orders = get(f"{url}/orders", x_token)
        assert status == 200
        sub_orders = [o for o in orders["items"] if o["subscription_id"] == sub["id"]]
        assert sub_orders
        assert all(o["account_id"] == x["id"] for o in orders["items"])

        z_token = mint(CUSTOMER, resell["id"], z["id"], sub="z-user")
        status, error = get(f"{url}/subscriptions/{sub['id']}", z_token)
        assert status == 404
        assert error["error"]["code"]
        status, _ = get(f"{url}/orders/{sub_orders[0]['id']}", z_token)
        assert status == 404
        status, page = get(f"{url}/subscriptions", z_token)
        assert status == 200
        assert page["items"]
        assert all(s["account_id"] == z["id"] for s in page["items"])
        assert sub["id"] not in {s["id"] for s in page["items"]}

        # R27, R30: Cloud Lite's Standard plan, provisioned before the platform was ready: its
        # storefront is active and branded (colours, the logo the platform set).
        status, plans = get(f"{url}/reseller-plans?account_id={lite['id']}", resell_admin)
        assert status == 200, plans
        assert plans["current_plan"] == "standard" and plans["subscription_id"]
        front = plans["storefront"]
        assert (front["alias"], front["status"], front["plan"]) == (
            "cloud-lite",
            "active",
            "standard",
        )
        assert (front["primary_color"], front["accent_color"], front["logo"]) == (
            "#0b5d3b",
            "#7a2e0e",
            True,
        )
        assert front["url"] == f"{url}/store/cloud-lite/"
        status, kind, html = fetch(f"{url}/store/cloud-lite/")
        assert (status, kind.split(";")[0]) == (200, "text/html"), html[:500]
        assert b"Cloud Lite" in html
        status, kind, png = fetch(f"{url}/store/cloud-lite/logo", "image/png,image/*")
        assert (status, kind, png[:8]) == (200, "image/png", b"\x89PNG\r\n\x1a\n")
        for alias in ("cloud", "cloud-resell"):  # every tenant's own, from its creation
            assert fetch(f"{url}/store/{alias}/")[0] == 200

        # The plan subscription is mirrored into Cloud like any paid one (R13): on Cloud's
        # Standard plan product.
        cloud_admin = mint(TENANT_ADMIN, cloud["id"], sub="cloud-admin")
        status, page = get(f"{url}/products?limit=100", cloud_admin)
        assert status == 200
        cloud_standard = by_name(page["items"])["Reseller plan Standard"]
        assert (cloud_standard["type"], cloud_standard["plan"]) == ("reseller_plan", "standard")
        status, page = get(f"{url}/subscriptions?limit=100", cloud_admin)
        assert status == 200
        mirrored = [s for s in page["items"] if s["product_id"] == cloud_standard["id"]]
        assert len(mirrored) == 1, page["items"]
        assert mirrored[0]["mirrored"] is True
        assert mirrored[0]["source"]["subscription_id"] == plans["subscription_id"]

        # The banner: the three storefronts and a fresh sign-in link per demo user; the welcome
        # mail of the provisioning is in the state directory's mail folder.
        banner = banner_of(running)
        assert "Storefronts" in banner
        for alias in ("cloud", "cloud-resell", "cloud-lite"):
            assert f" {url}/store/{alias}/ " in banner or f" {url}/store/{alias}/\n" in banner
        mail_dir = Path(log.name).parent / "local-state" / "mail"
        assert (
            "Sign-in links (single use, valid 15 min; a new one: the storefront's sign-in page, "
            f"mail lands in {mail_dir}/)"
        ) in banner
        links = re.findall(
            rf"^  ({re.escape(url)}/store/([a-z-]+)/login/confirm\?token=\S+)$", banner, re.M
        )
        assert [alias for _, alias in links] == ["cloud-lite", "cloud-lite", "cloud-resell"]
        for label in ("Cloud Lite's user", "Cloud Customer X", "Cloud End-Customer Z"):
            assert f"  # {label}" in banner
        status, kind, confirm = fetch(links[1][0])  # X's: the confirmation page, not used yet
        assert (status, kind.split(";")[0]) == (200, "text/html"), confirm[:500]
        welcome = [p for p in sorted(mail_dir.iterdir()) if "billing@cloud-lite.example" in p.name]
        assert welcome, sorted(mail_dir.iterdir())
        text = welcome[0].read_text(encoding="utf-8")
        assert "Subject: Your storefront Cloud Lite is ready" in text
        assert f"{url}/store/cloud-lite/login/confirm?token=" in text
    finally:
        code = running.interrupt()
    output = running.output()
    assert code == 0, output
    assert "Traceback" not in output, output
    assert '{"level"' not in output, "a JSON log line (Lambda's format) in the platform's output"
    assert "Stopped." in output


def test_a_second_start_on_the_same_port_works(log: IO[bytes]) -> None:
    port = free_port()
    first = start(port, log)
    assert first.interrupt() == 0, first.output()

    second = start(port, log)
    try:
        status, page = get(f"{second.url}/tenants", mint(PLATFORM_ADMIN))
        assert status == 200
        assert [t["name"] for t in page["items"]] == ["Cloud"]  # a fresh data set, not two
    finally:
        code = second.interrupt()
    assert code == 0, second.output()


def node(tree: dict[str, Any], *names: str) -> dict[str, Any]:
    """The node reached from ``tree`` by child names."""
    for name in names:
        tree = by_name(tree["children"])[name]
    return tree


def test_back_ordering_a_sale_in_cloud_resell_reaches_clouds_bss_within_2_s(
    log: IO[bytes], capsys: pytest.CaptureFixture[str]
) -> None:
    running = start(free_port(), log)
    try:
        url = running.url
        _, page = get(f"{url}/tenants", mint(PLATFORM_ADMIN))
        cloud = by_name(page["items"])["Cloud"]
        cloud_admin = mint(TENANT_ADMIN, cloud["id"], sub="cloud-admin")
        _, page = get(f"{url}/tenants", cloud_admin)
        resell = by_name(page["items"])["Cloud Resell"]
        resell_admin = mint(TENANT_ADMIN, resell["id"], sub="resell-admin")
        resell_account = resell["reseller_account_id"]

        # The demo went live: back ordering on, its backfill done before the platform was ready.
        status, state = get(f"{url}/tenants/{resell['id']}/backordering", cloud_admin)
        assert status == 200, state
        assert state["active"] is True
        assert state["backfill"]["status"] == "done"
        status, tree = get(f"{url}/accounts/{resell_account}/hierarchy", cloud_admin)
        assert status == 200, tree
        assert (tree["name"], tree["mirrored"]) == ("Cloud Resell", False)
        x_node = node(tree, "Cloud Lite", "Cloud Customer X")
        assert node(tree, "Cloud Lite")["mirrored"] and x_node["mirrored"]
        assert [s["quantity"] for s in x_node["subscriptions"]] == [10, 10]  # E3 + Teams Phone
        assert "Cloud End-Customer Z" in by_name(tree["children"])
        before = {s["id"] for s in x_node["subscriptions"]}

        # Cloud Resell's admin sells Business Basic to Cloud Customer X.
        _, page = get(f"{url}/accounts?limit=100", resell_admin)
        x = by_name(page["items"])["Cloud Customer X"]
        _, page = get(f"{url}/products?limit=100", resell_admin)
        basic = by_name(page["items"])["Microsoft 365 Business Basic"]
        _, page = get(f"{url}/products?limit=100", cloud_admin)
        cloud_basic = by_name(page["items"])["Microsoft 365 Business Basic"]
        sale = {
            "account_id": x["id"],
            "product_id": basic["id"],
            "quantity": 3,
            "billing_cycle": "monthly",
        }
        status, created = send("POST", f"{url}/subscriptions", resell_admin, sale)
        assert status == 201, created
        sold = time.monotonic()
        sub = created["subscription"]

        # It appears in Cloud's BSS under Cloud Resell → Cloud Lite → Cloud Customer X.
        mirror_node = None
        while mirror_node is None and time.monotonic() - sold < PROPAGATION_BAR_S:
            _, tree = get(f"{url}/accounts/{resell_account}/hierarchy", cloud_admin)
            subs = node(tree, "Cloud Lite", "Cloud Customer X")["subscriptions"]
            mirror_node = next((s for s in subs if s["id"] not in before), None)
            if mirror_node is None:
                time.sleep(0.02)
        propagation = time.monotonic() - sold
        with capsys.disabled():
            print(
                f"\n[back ordering] a sale in Cloud Resell reached Cloud's BSS in "
                f"{propagation * 1000:.0f} ms (bar: {PROPAGATION_BAR_S:.0f} s)"
            )
        assert mirror_node is not None, f"not mirrored within {PROPAGATION_BAR_S} s"
        assert (mirror_node["product_id"], mirror_node["quantity"]) == (cloud_basic["id"], 3)
        assert mirror_node["mirrored"] is True
        status, mirror = get(f"{url}/subscriptions/{mirror_node['id']}", cloud_admin)
        assert status == 200, mirror
        assert mirror["mirrored"] is True
        assert mirror["source"]["subscription_id"] == sub["id"]

        # Cloud cannot act on the mirror (R15): 409 locked_by_reseller, record unchanged.
        status, error = send(
            "POST",
            f"{url}/subscriptions/{mirror['id']}/actions",
            cloud_admin,
            {"action": "change_quantity", "quantity": 1},
        )
        assert (status, error["error"]["code"]) == (409, "locked_by_reseller")
        assert get(f"{url}/subscriptions/{mirror['id']}", cloud_admin) == (200, mirror)

        # One provider order per change (R14), also after a second change and a pause.
        def provider_orders() -> list[dict[str, Any]]:
            status, page = get(f"{url}/orders?account_id={resell_account}&limit=100", cloud_admin)
            assert status == 200, page
            return [o for o in page["items"] if o["subscription_id"] == mirror["id"]]

        assert [o["type"] for o in provider_orders()] == ["new"]
        status, changed = send(
            "POST",
            f"{url}/subscriptions/{sub['id']}/actions",
            resell_admin,
            {"action": "change_quantity", "quantity": 5},
        )
        assert status == 200, changed
        changed_at = time.monotonic()
        while time.monotonic() - changed_at < PROPAGATION_BAR_S:
            if get(f"{url}/subscriptions/{mirror['id']}", cloud_admin)[1]["quantity"] == 5:
                break
            time.sleep(0.02)
        second = time.monotonic() - changed_at
        with capsys.disabled():
            print(f"[back ordering] a quantity change followed in {second * 1000:.0f} ms")
        assert get(f"{url}/subscriptions/{mirror['id']}", cloud_admin)[1]["quantity"] == 5
        time.sleep(0.5)  # a duplicate would show up by now
        orders = provider_orders()
        assert sorted(o["type"] for o in orders) == ["new", "quantity_change"]
        assert all(o["end_customer_account_id"] == mirror["account_id"] for o in orders)
    finally:
        code = running.interrupt()
    output = running.output()
    assert code == 0, output
    assert "Traceback" not in output, output
    assert "set aside" not in output, output  # nothing went to the on-failure queue
    assert "subscriptions_stream ← local-subscriptions stream" in output  # the banner says so


def test_price_propagation_cloud_changes_cloud_resells_list_costs_markups_and_alerts_follow(
    log: IO[bytes], capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 4's demo flow (R5): Cloud changes two prices of Cloud Resell's list; Cloud Resell's
    costs change, its markup price follows, and its fixed price now below cost is flagged."""
    running = start(free_port(), log)
    try:
        url = running.url
        _, page = get(f"{url}/tenants", mint(PLATFORM_ADMIN))
        cloud = by_name(page["items"])["Cloud"]
        cloud_admin = mint(TENANT_ADMIN, cloud["id"], sub="cloud-admin")
        _, page = get(f"{url}/tenants", cloud_admin)
        resell = by_name(page["items"])["Cloud Resell"]
        resell_admin = mint(TENANT_ADMIN, resell["id"], sub="resell-admin")
        _, page = get(f"{url}/pricelists?limit=100", cloud_admin)
        resell_list = by_name(page["items"])["Cloud Resell list"]
        _, page = get(f"{url}/products?limit=100", cloud_admin)
        cloud_products = by_name(page["items"])
        _, page = get(f"{url}/products?limit=100", resell_admin)
        copies = by_name(page["items"])
        e3, exchange = copies["Office 365 E3"], copies["Exchange Online (Plan 1)"]
        assert (e3["costs"]["monthly"], exchange["costs"]["monthly"]) == ("23.50", "3.96")
        _, page = get(f"{url}/pricelists?limit=100", resell_admin)
        retail = by_name(page["items"])["Cloud Resell Retail"]
        assert get(f"{url}/products?margin_alert=true", resell_admin)[1]["items"] == []

        changed = time.monotonic()
        for name, price in (("Office 365 E3", "33.00"), ("Exchange Online (Plan 1)", "5.00")):
            status, answer = send(
                "POST",
                f"{url}/pricelists/{resell_list['id']}/prices",
                cloud_admin,
                {
                    "product_id": cloud_products[name]["id"],
                    "billing_cycle": "monthly",
                    "price": price,
                },
            )
            assert status in (200, 201), answer

        def costs() -> tuple[str, str]:
            e3_now = get(f"{url}/products/{e3['id']}", resell_admin)[1]
            exchange_now = get(f"{url}/products/{exchange['id']}", resell_admin)[1]
            return e3_now["costs"]["monthly"], exchange_now["costs"]["monthly"]

        while costs() != ("33.00", "5.00") and time.monotonic() - changed < 10:
            time.sleep(0.05)
        took = time.monotonic() - changed
        with capsys.disabled():
            print(
                f"\n[price propagation] Cloud's change reached Cloud Resell in {took * 1000:.0f} ms"
            )
        assert costs() == ("33.00", "5.00")
        # the markup price (30 % over cost) follows; the fixed 32.00 stays, flagged
        _, prices = get(f"{url}/pricelists/{retail['id']}/prices?limit=100", resell_admin)
        monthly = {
            p["product_id"]: p["price"] for p in prices["items"] if p["billing_cycle"] == "monthly"
        }
        assert (monthly[exchange["id"]], monthly[e3["id"]]) == ("6.50", "32.00")
        _, flagged = get(f"{url}/products?margin_alert=true", resell_admin)
        assert [p["name"] for p in flagged["items"]] == ["Office 365 E3"]
        assert flagged["items"][0]["margin_alerts"] == [
            {
                "price_list_id": retail["id"],
                "billing_cycle": "monthly",
                "price": "32.00",
                "cost": "33.00",
            }
        ]
    finally:
        code = running.interrupt()
    output = running.output()
    assert code == 0, output
    assert "Traceback" not in output, output
    assert "price_changes ← local-price-changes" in output  # the banner says so


def test_billing_run_on_the_state_machine_invoices_each_tier_and_a_rerun_changes_nothing(
    log: IO[bytes],
) -> None:
    """Issue 5 (R20, R24, R26) over HTTP: ``POST /billing-runs`` starts the state machine of
    ``infra/billing_run.asl.json`` on moto; the run completes, Cloud Resell's customers and lite
    reseller and Cloud's tenant reseller account are invoiced with gapless numbers and PDFs, and
    running the period again gives the same invoices."""
    running = start(free_port(), log)
    try:
        url = running.url
        _, page = get(f"{url}/tenants", mint(PLATFORM_ADMIN))
        cloud = by_name(page["items"])["Cloud"]
        cloud_admin = mint(TENANT_ADMIN, cloud["id"], sub="cloud-admin")
        _, page = get(f"{url}/tenants", cloud_admin)
        resell = by_name(page["items"])["Cloud Resell"]
        resell_admin = mint(TENANT_ADMIN, resell["id"], sub="resell-admin")

        def bill(admin: str) -> list[tuple[str, str, str, str]]:
            status, started = send("POST", f"{url}/billing-runs", admin, {})
            assert status == 202, started
            deadline = time.monotonic() + 60
            while True:
                _, run = get(f"{url}/billing-runs/{started['id']}", admin)
                if run["status"] in ("completed", "completed_with_failures"):
                    break
                assert time.monotonic() < deadline, run
                time.sleep(0.2)
            assert run["status"] == "completed" and run["failed_accounts"] == 0, run
            _, listed = get(f"{url}/invoices?limit=100", admin)
            return sorted(
                (i["account_id"], i["number"], i["total"], i["status"]) for i in listed["items"]
            )

        for admin in (resell_admin, cloud_admin):
            first = bill(admin)
            assert first, "the demo's subscriptions are billed"
            count = len(first)
            assert sorted(n for _, n, _, _ in first) == [
                f"INV-{k:06d}" for k in range(1, count + 1)
            ]
            assert bill(admin) == first  # R24: the same period again, nothing new
        # R32: Cloud Resell's margin report reconciles with both tiers' issued invoices
        _, runs = get(f"{url}/billing-runs", resell_admin)
        month = runs["items"][0]["period_start"][:7]
        _, report = get(f"{url}/reports/margin?period={month}&group_by=reseller", resell_admin)
        _, sold = get(f"{url}/invoices?limit=100", resell_admin)
        _, bought = get(f"{url}/invoices?received=true&limit=100", resell_admin)
        totals = report["totals"]
        assert Decimal(totals["revenue"]) == sum(Decimal(i["subtotal"]) for i in sold["items"])
        assert Decimal(totals["billed_cost"]) == sum(
            Decimal(i["subtotal"]) for i in bought["items"]
        )
        assert Decimal(totals["margin"]) == Decimal(totals["revenue"]) - Decimal(totals["cost"])
        assert {g["name"] for g in report["items"]} >= {"Cloud Lite", "Direct"}
        _, listed = get(f"{url}/invoices?limit=1", cloud_admin)
        invoice = listed["items"][0]
        request = urllib.request.Request(
            f"{url}/invoices/{invoice['id']}/document",
            headers={"Authorization": f"Bearer {cloud_admin}", "Accept": "application/pdf"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.read().startswith(b"%PDF")
    finally:
        code = running.interrupt()
    output = running.output()
    assert code == 0, output
    assert "Traceback" not in output, output


def test_bss_against_make_run_logs_in_with_its_tokens_and_shows_the_tree(
    log: IO[bytes], tmp_path: Path
) -> None:
    """Issue 16: the operator CLI as a subprocess against the running platform: `bss login
    --local` takes the URL and cloud_admin's token the platform saved, `bss tree --json` shows
    Cloud, its child Cloud Resell and the mirrored accounts."""
    running = start(free_port(), log)
    try:
        assert "bss login --local" in banner_of(running)
        env = {
            **os.environ,
            "BSS_LOCAL_DIR": str(Path(log.name).parent / "local-state"),
            "BSS_CONFIG": str(tmp_path / "credentials.json"),
        }
        for name in ("BSS_URL", "BSS_TOKEN"):
            env.pop(name, None)

        def bss(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [sys.executable, "-m", "cli", *args],
                cwd=ROOT,
                env=env,
                capture_output=True,
                text=True,
                timeout=60,
            )

        login = bss("login", "--local")
        assert login.returncode == 0, login.stderr
        shown = bss("tree", "--json")
        assert shown.returncode == 0, shown.stderr
        tree = json.loads(shown.stdout)
        assert tree["tenant"]["name"] == "Cloud"
        assert [t["name"] for t in tree["child_tenants"]] == ["Cloud Resell"]
        assert any(n["account"]["mirrored"] for n in _nodes(tree["accounts"]))
    finally:
        code = running.interrupt()
    assert code == 0, running.output()


def _nodes(forest: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return forest + [n for node in forest for n in _nodes(node["children"])]
