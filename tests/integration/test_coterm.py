"""R31 co-terming (issue 15, item 4) through the HTTP API and a billing run (chalice test client
on moto, patched clock, Europe/Berlin): ``coterm`` on ``POST /subscriptions``, its 400/409s
naming the field (nothing written), and a co-termed subscription's first invoice prorated by
R22."""

from __future__ import annotations

from typing import Any

from tests.conftest import Api, writes
from tests.integration.test_commitments import Market
from tests.integration.tiers import Clock, invoices, ok, run


def buy(market: Market, product: Any, coterm: dict[str, Any] | None, **extra: Any) -> Any:
    body = {
        "account_id": market.customer,
        "product_id": product["id"],
        "billing_cycle": "annual",
        "quantity": 10,
        **({"coterm": coterm} if coterm is not None else {}),
        **extra,
    }
    return market.api.call("POST", "/subscriptions", market.admin, body)


def test_r31_r22_a_cotermed_subscriptions_first_invoice_is_prorated(
    billing: tuple[Api, Clock],
) -> None:
    """Bought 2026-02-10: E3 (NCE, annual, 10 × 240.00), term 2026-02-10 – 2027-02-09.
    Bought 2026-03-10: E3 again, co-termed with it → first term 2026-03-10 – 2027-02-09,
    renewing 2027-02-10; its annual period is [2026-02-10, 2027-02-10) (365 days), used from
    2026-03-10: 365 − 28 (Feb 10 – Mar 9) = 337 days → 240.00 × 10 × 337 / 365 = 2,215.890… →
    **2,215.89** (R22: the whole period's days, never the partial one's). FLEX (100.00, 1 seat)
    aligned to the month's end: 2026-03-10 – 2026-03-31, period [2025-04-01, 2026-04-01) (365
    days), used 22 days → 100.00 × 22 / 365 = 6.027… → **6.03**. The first one's full term:
    **2,400.00**. One invoice of the run of March (window Feb 1 – Apr 1)."""
    api, clock = billing
    market = Market(api, clock)
    first = ok(buy(market, market.e3, None))["subscription"]
    clock.set("2026-03-10")
    cotermed = ok(buy(market, market.e3, {"subscription_id": first["id"]}))["subscription"]
    assert (cotermed["start_date"], cotermed["end_date"], cotermed["coterm_end"]) == (
        "2026-03-10",
        "2027-02-09",
        "2027-02-09",
    )
    assert cotermed["term_end"] == "2027-02-09" and first["coterm_end"] is None
    month = ok(buy(market, market.flex, {"month_end": True}, quantity=1))["subscription"]
    assert (month["end_date"], month["coterm_end"], month["term_end"]) == (
        "2026-03-31",
        "2026-03-31",
        None,  # flexible: no commitment view; end_date is the aligned day
    )

    run(api, market.admin, "2026-03-01")
    (invoice,) = invoices(api, market.admin, market.customer)
    by_sub = {line["subscription_id"]: line for line in invoice["lines"]}
    assert {sid: by_sub[sid]["amount"] for sid in by_sub} == {
        first["id"]: "2400.00",
        cotermed["id"]: "2215.89",
        month["id"]: "6.03",
    }
    assert by_sub[cotermed["id"]]["proration"] == "0.923288"  # 337 / 365
    assert invoice["subtotal"] == "4621.92"

    # renewed explicitly: the next term is a full one from the aligned day's morrow (R8)
    clock.set("2027-02-01")
    renewed = ok(market.act(cotermed, "renew"))["subscription"]
    assert (renewed["end_date"], renewed["term_end"]) == ("2028-02-09", "2027-02-09")


def test_r31_coterm_refusals_name_the_field_and_write_nothing(api: Api, monkeypatch: Any) -> None:
    market = Market(api, Clock(monkeypatch))
    first = ok(buy(market, market.e3, None))["subscription"]
    other_account = market.post(market.admin, "/accounts", {"name": "Other"})["id"]
    theirs = ok(buy(market, market.e3, None, account_id=other_account))["subscription"]
    elsewhere = Market(api, market.clock)  # another tenant, its customer, its subscription
    foreign = ok(buy(elsewhere, elsewhere.e3, None))["subscription"]
    cancelled = ok(buy(market, market.flex, None))["subscription"]
    ok(market.act(cancelled, "cancel"))
    cases = [
        ({"month_end": True, "subscription_id": first["id"]}, 400, "coterm", "invalid_value"),
        ({}, 400, "coterm", "invalid_value"),
        ({"month_end": False}, 400, "coterm.month_end", "invalid_value"),
        ({"month_end": True, "end": "x"}, 400, "coterm.end", "unknown_field"),
        ({"subscription_id": theirs["id"]}, 400, "coterm.subscription_id", "unknown_subscription"),
        ({"subscription_id": foreign["id"]}, 400, "coterm.subscription_id", "unknown_subscription"),
        ({"subscription_id": cancelled["id"]}, 409, "coterm.subscription_id", "invalid_state"),
    ]
    for coterm, status, field, code in cases:
        before = writes()
        got, body = buy(market, market.e3, coterm)
        assert (got, body["error"]["details"].get("field"), body["error"]["code"]) == (
            status,
            field,
            code,
        ), coterm
        assert writes() == before
    # a subscription starting 2026-06-01 ends its term 2027-05-31: further than one full term
    # (to 2027-02-09) from today
    later = ok(buy(market, market.flex, None, start_date="2026-06-01"))["subscription"]
    got, body = buy(market, market.e3, {"subscription_id": later["id"]})
    assert (got, body["error"]["details"]["field"]) == (400, "coterm.subscription_id")
