"""The margin report (R32) over the three tiers of ``tiers.three_tiers``, against the invoices
of ``test_billing.test_r20_r25_three_tiers_each_bill_at_their_own_prices`` computed by hand:

Cloud Resell's March invoices (its revenue): to Cloud Lite for X — E3 70.57 + 104.00, Azure
90.00; to Z — E3 40.71 + 60.00. Cloud's invoice to Cloud Resell (its cost), one line per end
customer subscription: X's E3 59.71 + 88.00, X's Azure 80.00, Z's E3 29.86 + 44.00.
Cloud (a root) has its own cost: E3 at 20.00 a seat, Azure none."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest

from tests.conftest import Api
from tests.integration.tiers import Clock, Tiers, invoices, ok, run, three_tiers


def raw(api: Api, path: str, who: str, accept: str) -> tuple[int, str, dict[str, str]]:
    headers = {"Authorization": f"Bearer {who}", "Accept": accept}
    response = api.client.http.request("GET", path, headers=headers)
    return response.status_code, response.body.decode(), dict(response.headers)


def report(api: Api, who: str, query: str = "") -> dict[str, Any]:
    return ok(api.call("GET", f"/reports/margin?period=2026-03{query}", who))


def figures(line: dict[str, Any]) -> tuple[str, str, str, str | None, bool]:
    return line["revenue"], line["cost"], line["margin"], line["margin_percent"], line["negative"]


def march(billing: tuple[Api, Clock]) -> tuple[Api, Tiers]:
    api, clock = billing
    tiers = three_tiers(api, clock)
    clock.set("2026-03-01")
    run(api, tiers.reseller, "2026-03-01")
    run(api, tiers.admin, "2026-03-01")
    return api, tiers


def test_r32_a_tenant_reseller_sees_revenue_cost_and_margin_per_subscription(
    billing: tuple[Api, Clock],
) -> None:
    api, t = march(billing)
    body = report(api, t.reseller)
    assert (body["period"], body["currency"], body["group_by"]) == ("2026-03", "EUR", None)
    # revenue 365.28 = 264.57 (to Cloud Lite) + 100.71 (to Z); cost 301.57, Cloud's invoice
    assert figures(body["totals"]) == ("365.28", "301.57", "63.71", "17.44", False)
    assert body["totals"]["billed_cost"] == "301.57" and body["totals"]["own_cost"] == "0.00"
    rows = {(r["customer_name"], r["sku"]): r for r in body["items"]}
    assert figures(rows[("Customer X", "E3")]) == ("174.57", "147.71", "26.86", "15.39", False)
    assert figures(rows[("Customer X", "AZURE")]) == ("90.00", "80.00", "10.00", "11.11", False)
    assert figures(rows[("End-Customer Z", "E3")]) == ("100.71", "73.86", "26.85", "26.66", False)
    assert rows[("Customer X", "E3")]["reseller_name"] == "Cloud Lite"
    assert rows[("End-Customer Z", "E3")]["reseller_id"] == "direct"
    assert rows[("Customer X", "E3")]["subscription_id"] in {
        line["subscription_id"] for i in invoices(api, t.reseller, t.lite) for line in i["lines"]
    }
    assert len(body["items"]) == 3 and body["next_cursor"] is None


def test_r32_the_rows_reconcile_with_the_issued_invoices(billing: tuple[Api, Clock]) -> None:
    """Sum of revenue = the tenant's issued invoice lines; sum of cost = the lines its provider
    billed it (read back through the invoices API, not assumed)."""
    api, t = march(billing)
    issued = invoices(api, t.reseller, t.lite) + invoices(api, t.reseller, t.z)
    billed = ok(api.call("GET", "/invoices?received=true", t.reseller))["items"]
    received = [ok(api.call("GET", f"/invoices/{i['id']}", t.reseller)) for i in billed]
    rows = report(api, t.reseller)["items"]
    assert sum(float(r["revenue"]) for r in rows) == sum(
        float(line["amount"]) for i in issued for line in i["lines"]
    )
    assert round(sum(float(r["cost"]) for r in rows), 2) == round(
        sum(float(line["amount"]) for i in received for line in i["lines"]), 2
    )


def test_r32_grouped_by_reseller_customer_and_product(billing: tuple[Api, Clock]) -> None:
    api, t = march(billing)
    by_reseller = report(api, t.reseller, "&group_by=reseller")
    assert figures(by_reseller["totals"])[:3] == ("365.28", "301.57", "63.71")
    groups = {g["name"]: (figures(g), g["subscriptions"]) for g in by_reseller["items"]}
    assert groups == {
        "Cloud Lite": (("264.57", "227.71", "36.86", "13.93", False), 2),
        "Direct": (("100.71", "73.86", "26.85", "26.66", False), 1),
    }
    by_customer = report(api, t.reseller, "&group_by=customer")
    assert {g["id"]: figures(g)[:3] for g in by_customer["items"]} == {
        t.x: ("264.57", "227.71", "36.86"),
        t.z: ("100.71", "73.86", "26.85"),
    }
    by_product = report(api, t.reseller, "&group_by=product")
    assert {g["id"]: figures(g)[:3] for g in by_product["items"]} == {
        t.copies["E3"]: ("275.28", "221.57", "53.71"),
        t.copies["AZURE"]: ("90.00", "80.00", "10.00"),
    }


def test_r32_a_root_tenant_counts_its_own_product_cost(billing: tuple[Api, Clock]) -> None:
    """Cloud's revenue is its invoice to Cloud Resell (301.57); its cost is E3's own cost,
    20.00 a seat: X 19/28 × 4 × 20.00 = 54.29 + 80.00, Z 19/28 × 2 × 20.00 = 27.14 + 40.00."""
    api, t = march(billing)
    body = report(api, t.admin)
    assert figures(body["totals"]) == ("301.57", "201.43", "100.14", "33.21", False)
    assert body["totals"]["own_cost"] == "201.43" and body["totals"]["billed_cost"] == "0.00"
    rows = {(r["customer_name"], r["sku"]): figures(r)[:3] for r in body["items"]}
    assert rows == {
        ("Customer X", "E3"): ("147.71", "134.29", "13.42"),
        ("Customer X", "AZURE"): ("80.00", "0.00", "80.00"),
        ("End-Customer Z", "E3"): ("73.86", "67.14", "6.72"),
    }
    (reseller,) = report(api, t.admin, "&group_by=reseller")["items"]
    assert (reseller["id"], reseller["name"]) == (t.resell_account, "Cloud Resell")


def test_r32_pages_and_csv(billing: tuple[Api, Clock]) -> None:
    api, t = march(billing)
    first = report(api, t.reseller, "&limit=2")
    assert len(first["items"]) == 2 and first["totals"] is not None and first["next_cursor"]
    second = report(api, t.reseller, f"&limit=2&cursor={first['next_cursor']}")
    assert len(second["items"]) == 1 and second["totals"] is None
    assert second["next_cursor"] is None
    assert {r["subscription_id"] for r in first["items"] + second["items"]} == {
        r["subscription_id"] for r in report(api, t.reseller)["items"]
    }
    status, text, headers = raw(
        api, "/reports/margin?period=2026-03&group_by=reseller", t.reseller, "text/csv"
    )
    assert status == 200 and headers["Content-Type"].startswith("text/csv")
    table = list(csv.DictReader(io.StringIO(text)))
    assert [(r["name"], r["revenue"], r["cost"], r["margin"]) for r in table] == [
        ("Total", "365.28", "301.57", "63.71"),
        ("Cloud Lite", "264.57", "227.71", "36.86"),
        ("Direct", "100.71", "73.86", "26.85"),
    ]
    # curl's */* gets JSON: a CSV is a download asked for by name
    status, text, headers = raw(api, "/reports/margin?period=2026-03", t.reseller, "*/*")
    assert status == 200 and headers["Content-Type"] == "application/json"
    status, text, _ = raw(api, "/reports/margin?period=2026-03", t.reseller, "text/html")
    assert status == 406 and '"field":"Accept"' in text


def test_r32_a_page_is_one_read_and_a_month_without_runs_is_empty(
    billing: tuple[Api, Clock], monkeypatch: pytest.MonkeyPatch
) -> None:
    from botocore.client import BaseClient

    api, t = march(billing)
    calls: list[str] = []
    original = BaseClient._make_api_call

    def spy(self: Any, operation: str, params: Any) -> Any:
        if self.meta.service_model.service_name == "dynamodb":
            calls.append(operation)
        return original(self, operation, params)

    monkeypatch.setattr(BaseClient, "_make_api_call", spy)
    report(api, t.reseller, "&group_by=customer")
    assert calls == ["Query"]
    empty = ok(api.call("GET", "/reports/margin?period=2026-01", t.reseller))
    assert (empty["items"], empty["totals"], empty["currency"]) == ([], None, "EUR")


def test_r32_a_negative_margin_is_flagged(billing: tuple[Api, Clock]) -> None:
    """Cloud Resell's Lite list sells E3 at 21.00, below its 22.00 cost: X's E3 is flagged."""
    api, clock = billing
    t = three_tiers(api, clock)
    lite_list = ok(api.call("GET", f"/accounts/{t.lite}", t.reseller))["price_list_id"]
    body = {"product_id": t.copies["E3"], "billing_cycle": "monthly", "price": "21.00"}
    ok(api.call("POST", f"/pricelists/{lite_list}/prices", t.reseller, body))
    clock.set("2026-03-01")
    run(api, t.reseller, "2026-03-01")
    run(api, t.admin, "2026-03-01")
    rows = {(r["customer_name"], r["sku"]): r for r in report(api, t.reseller)["items"]}
    x_e3 = rows[("Customer X", "E3")]
    # X's E3 was ordered at 26.00 in February (R9: the order's price); March is billed at the
    # list's 21.00: 4 × 21.00 = 84.00 and 19/28 × 4 × 21.00 = 57.00 (R7: the price read now)
    assert x_e3["negative"] is True and x_e3["margin"].startswith("-")
    assert rows[("End-Customer Z", "E3")]["negative"] is False


def test_r28_r29_each_tenant_reads_its_own_report_and_bad_queries_are_named(
    billing: tuple[Api, Clock],
) -> None:
    from tests.conftest import token

    api, t = march(billing)
    cloud_ids = {r["subscription_id"] for r in report(api, t.admin)["items"]}
    resell_ids = {r["subscription_id"] for r in report(api, t.reseller)["items"]}
    assert cloud_ids and resell_ids and not cloud_ids & resell_ids  # mirrors have their own ids
    for who in (token("reseller", t.resell, t.lite), token("customer", t.resell, t.z)):
        status, body = api.call("GET", "/reports/margin?period=2026-03", who)
        assert status == 403, body
    for query, field in [
        ("period=2026-13", "period"),
        ("period=March", "period"),
        ("", "period"),
        ("period=2026-03&group_by=tenant", "group_by"),
        ("period=2026-03&limit=0", "limit"),
    ]:
        status, body = api.call("GET", f"/reports/margin?{query}", t.reseller)
        assert status == 400 and body["error"]["details"]["field"] == field, (query, body)
