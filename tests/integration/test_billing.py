"""The billing run end to end through the API (R20-R26), with the state machine's steps run
in-process (``local.billing``): hand-computed invoices per tier, re-runs that change nothing,
gapless numbers under failures, documents and email.

The tenant's "today" is set by patching the clock that ``today_in`` reads, so changes land on
the days the cases need."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from tests.conftest import Api, token
from tests.integration.tiers import Clock, invoices, ok, run, three_tiers


def setup_tenant(api: Api) -> dict[str, str]:
    """A root tenant (billing day 1, Berlin, DE) with a license at 25.00 (default list) and
    22.00 (resellers' list), a direct customer Z, a lite reseller L with a customer X."""
    platform = token("platform_admin")
    body = {"name": "Cloud", "country": "DE", "time_zone": "Europe/Berlin", "currency": "EUR"}
    tenant = ok(api.call("POST", "/tenants", platform, {**body, "billing_day": 1}), 201)["id"]
    adm = token("tenant_admin", tenant)

    def post(path: str, body: dict[str, Any], tok: str = adm) -> Any:
        return ok(api.call("POST", path, tok, body), 200, 201)

    default = post("/pricelists", {"name": "Default", "currency": "EUR", "default": True})["id"]
    resellers = post("/pricelists", {"name": "Resellers", "currency": "EUR"})["id"]
    product = post(
        "/products",
        {
            "sku": "O365-E3",
            "name": "Office 365 E3",
            "type": "license",
            "unit": "seat",
            "billing_cycles": ["monthly", "annual"],
            "costs": {"monthly": "20.00", "annual": "220.00"},
        },
    )["id"]
    for list_id, cycle, price in (
        (default, "monthly", "25.00"),
        (default, "annual", "270.00"),
        (resellers, "monthly", "22.00"),
    ):
        post(
            f"/pricelists/{list_id}/prices",
            {"product_id": product, "billing_cycle": cycle, "price": price},
        )
    address = {"line1": "Hauptstr. 1", "city": "Berlin", "postal_code": "10115", "country": "DE"}
    z = post("/accounts", {"name": "End-Customer Z", "email": "z@example.com", "address": address})
    lite = post(
        "/accounts",
        {"name": "Cloud Lite", "kind": "lite_reseller", "price_list_id": resellers},
    )["id"]
    x = post("/accounts", {"name": "Customer X"}, token("reseller", tenant, lite))["id"]
    return {"tenant": tenant, "admin": adm, "product": product, "z": z["id"], "lite": lite, "x": x}


def subscribe(api: Api, who: str, account: str, product: str, *, quantity: int = 1) -> str:
    """A monthly subscription ordered now; its id."""
    body = {
        "account_id": account,
        "product_id": product,
        "quantity": quantity,
        "billing_cycle": "monthly",
    }
    return str(ok(api.call("POST", "/subscriptions", who, body), 201)["subscription"]["id"])


def amounts(invoice: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [(line["kind"], line["quantity"], line["amount"]) for line in invoice["lines"]]


def test_r22_mid_month_start_then_quantity_up_credits_and_recharges(
    billing: tuple[Api, Clock],
) -> None:
    api, clock = billing
    clock.set("2026-01-15")
    t = setup_tenant(api)
    adm = t["admin"]
    sub = subscribe(api, adm, t["z"], t["product"], quantity=3)

    done = run(api, adm, "2026-01-01")
    assert done["status"] == "queued" and done["attempt"] == 1
    january = invoices(api, adm, t["z"])
    assert len(january) == 1
    # 15 Jan → 1 Feb: 17 of January's 31 days × 3 × 25.00 = 41.129… → 41.13 (R22)
    assert amounts(january[0]) == [("charge", "3", "41.13")]
    # tax 19 % of 41.13 = 7.8147 → 7.81 once; total 48.94 (R23)
    assert (january[0]["subtotal"], january[0]["tax"], january[0]["total"]) == (
        "41.13",
        "7.81",
        "48.94",
    )
    assert january[0]["number"] == "INV-000001" and january[0]["status"] == "issued"

    clock.set("2026-01-20")
    ok(
        api.call(
            "POST",
            f"/subscriptions/{sub}/actions",
            adm,
            {"action": "change_quantity", "quantity": 5},
        )
    )
    clock.set("2026-02-01")
    run(api, adm, "2026-02-01")
    february = [i for i in invoices(api, adm, t["z"]) if i["period_start"] == "2026-02-01"]
    assert len(february) == 1
    # the old 3 seats credited for 20 Jan → 1 Feb (12/31 × 75 = 29.03), the new 5 charged for
    # the same days (12/31 × 125 = 48.39), then February in advance: 5 × 25.00
    assert amounts(february[0]) == [
        ("credit", "3", "-29.03"),
        ("charge", "5", "48.39"),
        ("charge", "5", "125.00"),
    ]
    credit = february[0]["lines"][0]
    assert credit["credits"] == january[0]["lines"][0]["key"]  # linked to what it corrects
    assert february[0]["subtotal"] == "144.36" and february[0]["tax"] == "27.43"
    assert february[0]["total"] == "171.79" and february[0]["number"] == "INV-000002"


def test_r20_lite_reseller_is_billed_at_its_list_naming_the_end_customer(
    billing: tuple[Api, Clock],
) -> None:
    api, clock = billing
    clock.set("2026-03-01")
    t = setup_tenant(api)
    lite_tok = token("reseller", t["tenant"], t["lite"])
    subscribe(api, lite_tok, t["x"], t["product"], quantity=2)
    run(api, t["admin"], "2026-03-01")
    assert invoices(api, t["admin"], t["x"]) == []  # the lite reseller is billed, not X
    (invoice,) = invoices(api, t["admin"], t["lite"])
    (line,) = invoice["lines"]
    assert (line["end_customer_name"], line["unit_price"], line["amount"]) == (
        "Customer X",
        "22.00",
        "44.00",
    )


def test_r24_three_runs_of_a_period_give_the_same_invoices_and_gapless_numbers(
    billing: tuple[Api, Clock],
) -> None:
    api, clock = billing
    clock.set("2026-03-01")
    t = setup_tenant(api)
    adm = t["admin"]
    for account in (t["z"], t["lite"]):
        tok = adm if account == t["z"] else token("reseller", t["tenant"], t["lite"])
        target = t["z"] if account == t["z"] else t["x"]
        subscribe(api, tok, target, t["product"])
    seen = []
    for attempt in (1, 2, 3):
        started = run(api, adm, "2026-03-01")
        assert started["attempt"] == attempt
        listed = ok(api.call("GET", "/invoices", adm))["items"]
        seen.append(sorted((i["id"], i["number"], i["total"]) for i in listed))
        status = ok(api.call("GET", f"/billing-runs/{started['id']}", adm))
        assert status["status"] == "completed" and status["invoices"] == 2
    assert seen[0] == seen[1] == seen[2]
    (listed_run,) = ok(api.call("GET", "/billing-runs", adm))["items"]
    assert (listed_run["attempt"], listed_run["status"]) == (3, "completed")
    assert sorted(number for _, number, _ in seen[0]) == ["INV-000001", "INV-000002"]


def test_r26_document_and_email(billing: tuple[Api, Clock]) -> None:
    import boto3

    api, clock = billing
    clock.set("2026-03-01")
    t = setup_tenant(api)
    adm = t["admin"]
    subscribe(api, adm, t["z"], t["product"])
    run(api, adm, "2026-03-01")
    (invoice,) = invoices(api, adm, t["z"])
    assert invoice["document_url"].endswith(f"/invoices/{invoice['id']}/document")
    response = api.client.http.request(
        "GET",
        f"/invoices/{invoice['id']}/document",
        headers={
            "Authorization": f"Bearer {token('customer', t['tenant'], t['z'])}",
            "Accept": "application/pdf",  # API Gateway answers binary only when asked for
        },
    )
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/pdf"
    assert response.body.startswith(b"%PDF")
    sent = boto3.client("ses").get_send_quota()["SentLast24Hours"]
    assert sent == 1


def test_r20_r25_three_tiers_each_bill_at_their_own_prices(billing: tuple[Api, Clock]) -> None:
    """Cloud → Cloud Resell (a tenant reseller, back ordering on) → Cloud Lite (a lite
    reseller in Cloud Resell) → Customer X; and Cloud Resell's direct customer Z. Each tier's
    March invoice is checked against that tier's prices, by hand."""
    api, clock = billing
    t = three_tiers(api, clock)
    cloud, admin, reseller, lite, z = t.cloud, t.admin, t.reseller, t.lite, t.z
    resell = {"id": t.resell, "reseller_account_id": t.resell_account}

    clock.set("2026-03-01")
    run(api, reseller, "2026-03-01")
    run(api, admin, "2026-03-01")

    # Cloud Resell bills Cloud Lite at the Lite list: 19 of February's 28 days × 4 × 26.00 =
    # 70.571… → 70.57, March 4 × 26.00, February's usage 100 × 0.90
    (to_lite,) = invoices(api, reseller, lite)
    assert [(ln["end_customer_name"], ln["kind"], ln["amount"]) for ln in to_lite["lines"]] == [
        ("Customer X", "charge", "70.57"),
        ("Customer X", "charge", "104.00"),
        ("Customer X", "usage", "90.00"),
    ]
    assert (to_lite["subtotal"], to_lite["tax"], to_lite["total"]) == ("264.57", "50.27", "314.84")
    # … and Z at its retail list: 19/28 × 2 × 30.00 = 40.71, March 60.00
    (to_z,) = invoices(api, reseller, z)
    assert sorted(ln["amount"] for ln in to_z["lines"]) == ["40.71", "60.00"]

    # Cloud bills Cloud Resell at the Resell list, one line per end-customer subscription:
    # X: 19/28 × 4 × 22.00 = 59.71, 88.00; usage 100 × 0.80 = 80.00; Z: 29.86, 44.00
    (to_resell,) = invoices(api, admin, resell["reseller_account_id"])
    got = sorted((ln["end_customer_name"], ln["amount"]) for ln in to_resell["lines"])
    assert got == [
        ("Customer X", "59.71"),
        ("Customer X", "80.00"),
        ("Customer X", "88.00"),
        ("End-Customer Z", "29.86"),
        ("End-Customer Z", "44.00"),
    ]
    assert to_resell["subtotal"] == "301.57" and to_resell["number"] == "INV-000001"
    # Cloud Resell reads what Cloud bills it, and only that of Cloud's invoices
    (received,) = ok(api.call("GET", "/invoices?received=true", reseller))["items"]
    assert (received["id"], received["issuer"]["tenant_id"]) == (to_resell["id"], cloud)
    assert (
        ok(api.call("GET", f"/invoices/{received['id']}", reseller))["total"]
        == (to_resell["total"])
    )
    status, _ = api.call("POST", f"/invoices/{received['id']}/void", reseller)
    assert status == 404  # the provider's to void, not the reseller's
    assert ok(api.call("GET", "/invoices?received=true", admin))["items"] == []  # a root


def test_r24_numbers_stay_gapless_when_an_account_and_a_numbering_fail(
    billing: tuple[Api, Clock], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failing account is reported and skipped (the others are invoiced and numbered); a
    numbering transaction that fails writes nothing (the retry numbers on); the next run
    invoices the account that failed, with the next number."""
    from functions import composition
    from functions.invoices.services import BillingService, RatingError

    api, clock = billing
    clock.set("2026-03-01")
    t = setup_tenant(api)
    adm = t["admin"]
    customers = [t["z"]] + [
        ok(api.call("POST", "/accounts", adm, {"name": f"Customer {n}"}), 201)["id"]
        for n in range(4)
    ]
    for account in customers:
        subscribe(api, adm, account, t["product"])
    broken = customers[2]
    rate = BillingService._rate

    def failing_rate(self: BillingService, rating: Any, sub: Any, issued: Any) -> Any:
        if sub.account_id == broken:
            raise RatingError("injected: the price is gone")
        return rate(self, rating, sub, issued)

    repository = composition.container().billing.repository
    issue = repository.issue
    calls = {"n": 0}

    def flaky_issue(tenant_id: str, last: int, invoices: Any) -> bool:
        calls["n"] += 1
        if calls["n"] == 1:
            raise ConnectionError("injected: the transaction did not reach DynamoDB")
        return issue(tenant_id, last, invoices)

    monkeypatch.setattr(BillingService, "_rate", failing_rate)
    monkeypatch.setattr(repository, "issue", flaky_issue)
    first = run(api, adm, "2026-03-01")
    status = ok(api.call("GET", f"/billing-runs/{first['id']}", adm))
    assert status["status"] == "completed_with_failures"
    assert status["failures"] == [{"account_id": broken, "error": "injected: the price is gone"}]
    numbers = sorted(i["number"] for i in ok(api.call("GET", "/invoices", adm))["items"])
    assert numbers == ["INV-000001", "INV-000002", "INV-000003", "INV-000004"]

    monkeypatch.setattr(BillingService, "_rate", rate)
    second = run(api, adm, "2026-03-01")
    assert second["attempt"] == 2
    status = ok(api.call("GET", f"/billing-runs/{first['id']}", adm))
    assert status["status"] == "completed" and status["invoices"] == 5
    listed = ok(api.call("GET", "/invoices", adm))["items"]
    assert sorted(i["number"] for i in listed) == [f"INV-00000{n}" for n in range(1, 6)]
    assert {i["account_id"]: i["number"] for i in listed}[broken] == "INV-000005"


def test_r26_preview_is_the_next_invoice_and_writes_nothing(billing: tuple[Api, Clock]) -> None:
    from tests.conftest import writes

    api, clock = billing
    clock.set("2026-03-10")
    t = setup_tenant(api)
    adm = t["admin"]
    subscribe(api, adm, t["z"], t["product"], quantity=2)
    before = writes()
    as_z = token("customer", t["tenant"], t["z"])
    preview = ok(api.call("GET", f"/invoices/preview?account_id={t['z']}", as_z))
    assert writes() == before
    # March is not invoiced yet: 10 Mar → 1 Apr, 22 of 31 days × 2 × 25.00 = 35.48
    assert (preview["period_start"], preview["subtotal"]) == ("2026-03-01", "35.48")
    assert preview["tax"] == "6.74" and preview["total"] == "42.22"
    run(api, adm, "2026-03-01")
    after = ok(api.call("GET", f"/invoices/preview?account_id={t['z']}", as_z))
    assert (after["period_start"], after["subtotal"]) == ("2026-04-01", "50.00")


def test_r20_separate_invoices_give_one_invoice_per_end_customer(
    billing: tuple[Api, Clock],
) -> None:
    api, clock = billing
    clock.set("2026-03-01")
    t = setup_tenant(api)
    adm = t["admin"]
    ok(api.call("PATCH", f"/accounts/{t['lite']}", adm, {"separate_invoices": True}))
    lite_tok = token("reseller", t["tenant"], t["lite"])
    y = ok(api.call("POST", "/accounts", lite_tok, {"name": "Customer Y"}), 201)["id"]
    for customer, quantity in ((t["x"], 1), (y, 3)):
        subscribe(api, lite_tok, customer, t["product"], quantity=quantity)
    run(api, adm, "2026-03-01")
    found = invoices(api, adm, t["lite"])
    got = sorted(
        (i["end_customer_id"], [ln["end_customer_name"] for ln in i["lines"]], i["subtotal"])
        for i in found
    )
    assert got == sorted([(t["x"], ["Customer X"], "22.00"), (y, ["Customer Y"], "66.00")])
    # the reseller reads its own invoices; its customer X reads none (X is not billed)
    assert len(ok(api.call("GET", "/invoices", lite_tok))["items"]) == 2
    as_x = token("customer", t["tenant"], t["x"])
    assert ok(api.call("GET", "/invoices", as_x))["items"] == []


def test_r21_annual_subscription_is_billed_for_its_year_on_the_anniversary_run(
    billing: tuple[Api, Clock],
) -> None:
    api, clock = billing
    clock.set("2026-03-15")
    t = setup_tenant(api)
    adm = t["admin"]
    ok(
        api.call(
            "POST",
            "/subscriptions",
            adm,
            {
                "account_id": t["z"],
                "product_id": t["product"],
                "quantity": 2,
                "billing_cycle": "annual",
                "term": "annual",
            },
        ),
        201,
    )
    clock.set("2026-04-01")
    run(api, adm, "2026-04-01")
    (april,) = invoices(api, adm, t["z"])
    (line,) = april["lines"]
    # the year from 15 Mar 2026, in advance: 2 × 270.00
    assert (line["start"], line["end"], line["amount"]) == ("2026-03-15", "2027-03-15", "540.00")
    clock.set("2026-05-01")
    run(api, adm, "2026-05-01")
    assert len(invoices(api, adm, t["z"])) == 1  # nothing more until the anniversary


def test_r24_a_period_more_than_one_ahead_is_refused(billing: tuple[Api, Clock]) -> None:
    api, clock = billing
    clock.set("2026-03-10")
    t = setup_tenant(api)
    status, error = api.call("POST", "/billing-runs", t["admin"], {"period_start": "2026-05-01"})
    assert (status, error["error"]["code"]) == (400, "future_period")
    status, error = api.call("POST", "/billing-runs", t["admin"], {"period_start": "2026-03-02"})
    assert (status, error["error"]["details"]["field"]) == (400, "period_start")
    assert ok(api.call("POST", "/billing-runs", t["admin"], {"period_start": "2026-04-01"}), 202)


def test_r24_the_daily_schedule_starts_the_runs_of_tenants_whose_period_begins_today(
    billing: tuple[Api, Clock],
) -> None:
    from functions import composition

    api, clock = billing
    clock.set("2026-03-01")
    t = setup_tenant(api)
    subscribe(api, t["admin"], t["z"], t["product"])
    service = composition.container().billing
    # 1 March 00:15 UTC is 01:15 in Berlin: the tenant's period begins today
    started = service.schedule(datetime(2026, 3, 1, 0, 15, tzinfo=UTC))
    assert started == [ok(api.call("GET", "/billing-runs", t["admin"]))["items"][0]["id"]]
    assert len(invoices(api, t["admin"], t["z"])) == 1
    # the same day again (EventBridge delivers at least once): the run is done, nothing new
    service.schedule(datetime(2026, 3, 1, 0, 15, tzinfo=UTC))
    assert len(invoices(api, t["admin"], t["z"])) == 1
    assert service.schedule(datetime(2026, 3, 2, 0, 15, tzinfo=UTC)) == []


def test_r22_a_backdated_change_is_prorated_from_its_effective_date(
    billing: tuple[Api, Clock],
) -> None:
    """A tenant admin backdates a quantity change (``effective_date``) into an invoiced
    period: the next run credits the old quantity and charges the new from that day."""
    api, clock = billing
    clock.set("2026-04-01")
    t = setup_tenant(api)
    adm = t["admin"]
    sub = ok(
        api.call(
            "POST",
            "/subscriptions",
            adm,
            {
                "account_id": t["z"],
                "product_id": t["product"],
                "quantity": 2,
                "billing_cycle": "monthly",
                "start_date": "2026-04-01",
            },
        ),
        201,
    )["subscription"]["id"]
    run(api, adm, "2026-04-01")
    clock.set("2026-05-03")
    action = {"action": "change_quantity", "quantity": 6, "effective_date": "2026-04-21"}
    order = ok(api.call("POST", f"/subscriptions/{sub}/actions", adm, action))["order"]
    assert order["date"] == "2026-04-21"
    run(api, adm, "2026-05-01")
    (may,) = [i for i in invoices(api, adm, t["z"]) if i["period_start"] == "2026-05-01"]
    # 21 Apr → 1 May: 10 of April's 30 days; 2 seats credited (10/30 × 50 = 16.67), 6 charged
    # (10/30 × 150 = 50.00), then May: 6 × 25.00
    assert amounts(may) == [
        ("credit", "2", "-16.67"),
        ("charge", "6", "50.00"),
        ("charge", "6", "150.00"),
    ]
    # too far back (before the previous period), and not a customer's to backdate
    too_early = {**action, "quantity": 7, "effective_date": "2026-03-31"}
    status, error = api.call("POST", f"/subscriptions/{sub}/actions", adm, too_early)
    assert (status, error["error"]["details"]["field"]) == (400, "effective_date")
    as_z = token("customer", t["tenant"], t["z"])
    status, error = api.call(
        "POST", f"/subscriptions/{sub}/actions", as_z, {**action, "quantity": 7}
    )
    assert (status, error["error"]["code"]) == (400, "not_allowed")


def test_r26_a_voided_invoice_keeps_its_number_and_its_days_are_billed_again(
    billing: tuple[Api, Clock],
) -> None:
    api, clock = billing
    clock.set("2026-03-01")
    t = setup_tenant(api)
    adm = t["admin"]
    subscribe(api, adm, t["z"], t["product"])
    run(api, adm, "2026-03-01")
    (march,) = invoices(api, adm, t["z"])
    voided = ok(api.call("POST", f"/invoices/{march['id']}/void", adm))
    assert (voided["status"], voided["number"]) == ("void", "INV-000001")
    status, error = api.call("POST", f"/invoices/{march['id']}/void", adm)
    assert (status, error["error"]["code"]) == (409, "invalid_state")
    run(api, adm, "2026-04-01")  # March again (not invoiced any more) and April in advance
    (april,) = [i for i in invoices(api, adm, t["z"]) if i["period_start"] == "2026-04-01"]
    assert [(ln["period_start"], ln["amount"]) for ln in april["lines"]] == [
        ("2026-03-01", "25.00"),
        ("2026-04-01", "25.00"),
    ]
    assert april["number"] == "INV-000002"
    as_z = token("customer", t["tenant"], t["z"])
    status, _ = api.call("POST", f"/invoices/{april['id']}/void", as_z)
    assert status == 403
