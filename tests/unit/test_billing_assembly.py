"""An account's invoices of a run's period from facts loaded up front (``account_drafts``):
grouping by end customer (R20), existing invoices and nothing to bill (R24), one currency and
the totals (R23), the subscriptions' ledgers (R22), and a subscription rated at its prices (R7,
R21, R25). Pure domain on plain values: no tables, no moto."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from functions.core.domain import Account, Tenant
from functions.core.errors import Conflict
from functions.invoices import domain
from functions.invoices.domain import Facts, Line, LineKind, Period, RatingError
from functions.orders.domain import Subscription
from functions.pricelist.domain import Price, Product

D = Decimal
NOW = "2026-03-01T00:00:00Z"
RUN = domain.run_for(1, date(2026, 3, 1))  # March, in advance; February in arrears
MARCH, FEBRUARY = RUN.period, RUN.previous
JANUARY = Period(date(2026, 1, 1), date(2026, 2, 1))
TENANT = Tenant(
    id="ten",
    name="Cloud",
    parent_id=None,
    currency="EUR",
    country="DE",
    time_zone="Europe/Berlin",
    billing_day=1,
    created_at="2026-01-01T00:00:00Z",
)


def account(id: str, name: str, **changes: Any) -> Account:
    plain = Account(
        id=id, tenant_id="ten", name=name, kind="customer", currency="EUR", created_at=NOW
    )
    return replace(plain, **changes)


LITE = account("acc_l", "Lite", kind="reseller", address={"country": "AT"}, email="l@x.test")
XAVIER = account("acc_x", "Xavier", parent_account_id="acc_l")
ANNA = account("acc_y", "Anna", parent_account_id="acc_l")


def subscription(id: str, account_id: str, **changes: Any) -> Subscription:
    values: dict[str, Any] = {
        "id": id,
        "tenant_id": "ten",
        "account_id": account_id,
        "product_id": "p1",
        "quantity": 2,
        "billing_cycle": "monthly",
        "term": "monthly",
        "terms": 1,
        "status": "active",
        "start_date": "2026-03-01",
        "end_date": "2099-12-31",
        "auto_renew": True,
        "currency": "EUR",
        "unit_price": D("9.00"),
        "price_list_id": "prl",
        "created_at": NOW,
        "updated_at": NOW,
        "reseller_account_id": "acc_l",
    }
    return Subscription(**{**values, **changes})


def product(id: str, **changes: Any) -> Product:
    values: dict[str, Any] = {
        "id": id,
        "tenant_id": "ten",
        "sku": f"SKU-{id}",
        "name": f"Product {id}",
        "type": "license",
        "billing_cycles": ["monthly"],
        "unit": "seat",
        "created_at": NOW,
    }
    return Product(**{**values, **changes})


def price(product_id: str, **changes: Any) -> Price:
    values: dict[str, Any] = {
        "tenant_id": "ten",
        "price_list_id": "prl",
        "product_id": product_id,
        "billing_cycle": "monthly",
        "updated_at": NOW,
        "price": D("10.00"),
    }
    return Price(**{**values, **changes})


SUB_X, SUB_Y = subscription("sub_x", "acc_x"), subscription("sub_y", "acc_y")
FACTS = Facts(
    tenant=TENANT,
    billing=RUN,
    subs={"sub_x": SUB_X, "sub_y": SUB_Y},
    accounts={a.id: a for a in (LITE, XAVIER, ANNA)},
    ledgers={},
    products={"p1": product("p1")},
    prices={("prl", "p1", "monthly"): price("p1")},
    existing={},
)


def rate(sub: Subscription, issued: list[Line]) -> list[Line]:
    return domain.rated(FACTS, sub, issued)


def drafts(facts: Facts = FACTS, rate: domain.Rate = rate) -> list[domain.Draft]:
    return domain.account_drafts(facts, "run_1", "acc_l", ["sub_x", "sub_y"], rate, created_at=NOW)


def charge(period: Period, amount: str) -> Line:
    return Line(
        kind=LineKind.CHARGE,
        subscription_id="sub_x",
        period=period,
        start=period.start,
        end=period.end,
        quantity=D(2),
        unit_price=D("10.00"),
        proration=D("1.000000"),
        amount=D(amount),
        product_id="p1",
    )


# --- R20: who is billed, one invoice or one per end customer -------------------------------


def test_r20_a_resellers_customers_on_one_invoice_each_line_naming_its_end_customer() -> None:
    (draft,) = drafts()
    invoice = draft.invoice
    assert invoice.id == domain.invoice_id("ten", "acc_l", None, MARCH)
    assert (invoice.account_id, invoice.end_customer_id, invoice.run_id) == ("acc_l", None, "run_1")
    assert (invoice.status, invoice.currency, invoice.created_at) == (domain.DRAFT, "EUR", NOW)
    # in the order of the end customers' names: Anna before Xavier
    assert [(line.no, line.end_customer_name) for line in draft.lines] == [
        (1, "Anna"),
        (2, "Xavier"),
    ]
    assert [line.subscription_id for line in draft.lines] == ["sub_y", "sub_x"]
    assert {(line.kind, line.sku, line.product_name) for line in draft.lines} == {
        (LineKind.CHARGE, "SKU-p1", "Product p1")
    }
    assert invoice.issuer == {"tenant_id": "ten", "name": "Cloud", "country": "DE"}
    assert invoice.bill_to == {
        "account_id": "acc_l",
        "name": "Lite",
        "email": "l@x.test",
        "country": "AT",
        "address": {"country": "AT"},
        "accounting_number": None,
    }


def test_r20_separate_invoices_one_per_end_customer() -> None:
    separate = replace(
        FACTS, accounts={**FACTS.accounts, "acc_l": replace(LITE, separate_invoices=True)}
    )
    found = drafts(separate)
    assert [d.invoice.end_customer_id for d in found] == ["acc_y", "acc_x"]
    assert [d.invoice.id for d in found] == [
        domain.invoice_id("ten", "acc_l", customer, MARCH) for customer in ("acc_y", "acc_x")
    ]
    assert [[line.subscription_id for line in d.lines] for d in found] == [["sub_y"], ["sub_x"]]
    assert domain.end_customers(separate.accounts["acc_l"], ["sub_x", "sub_y"], FACTS.subs) == [
        "acc_x",
        "acc_y",
    ]
    assert domain.end_customers(LITE, ["sub_x", "sub_y"], FACTS.subs) == [None]


def test_r20_a_mirror_is_never_billed() -> None:
    mirror = replace(FACTS, accounts={**FACTS.accounts, "acc_l": replace(LITE, mirrored=True)})
    with pytest.raises(Conflict) as refused:
        drafts(mirror)
    assert refused.value.code == "locked_by_reseller"


def test_r24_an_account_gone_fails_alone_with_a_rating_error() -> None:
    gone = replace(FACTS, accounts={"acc_x": XAVIER, "acc_y": ANNA})
    with pytest.raises(RatingError, match="account acc_l is gone"):
        drafts(gone)


# --- R24: found again, never twice; nothing to bill, no invoice ------------------------------


def test_r24_an_invoice_of_the_period_that_exists_is_returned_as_it_is_not_rated() -> None:
    (draft,) = drafts()
    found = replace(FACTS, existing={draft.invoice.id: draft.invoice})

    def never(sub: Subscription, issued: list[Line]) -> list[Line]:
        raise AssertionError("an existing invoice is not rated again")

    assert drafts(found, never) == [domain.Draft(draft.invoice, [], {})]


def test_r24_nothing_to_bill_drafts_no_invoice() -> None:
    assert drafts(rate=lambda sub, issued: []) == []


# --- R23: one currency; totals ---------------------------------------------------------------


def test_r23_a_subscription_in_another_currency_than_the_account_fails_the_account() -> None:
    dollars = replace(FACTS, subs={**FACTS.subs, "sub_x": replace(SUB_X, currency="USD")})
    with pytest.raises(RatingError, match="sub_x is in USD, the account in EUR"):
        drafts(dollars)


def test_r23_the_totals_are_the_lines_and_the_bill_to_countrys_tax() -> None:
    (draft,) = drafts()
    assert [line.amount for line in draft.lines] == [D("20.00"), D("20.00")]
    invoice = draft.invoice
    assert (invoice.subtotal, invoice.tax_rate, invoice.tax, invoice.total) == (
        D("40.00"),
        D("0.20"),  # Austria, the bill-to's country
        D("8.00"),
        D("48.00"),
    )
    assert invoice.line_count == 2
    # no country on the account: the issuer's (Germany)
    nowhere = replace(FACTS, accounts={**FACTS.accounts, "acc_l": replace(LITE, address=None)})
    (draft,) = drafts(nowhere)
    assert (draft.invoice.bill_to["country"], draft.invoice.tax) == ("DE", D("7.60"))


# --- R22: the ledgers -----------------------------------------------------------------------


def test_r22_a_ledger_drops_closed_periods_and_this_invoices_lines_and_gains_the_new() -> None:
    (draft,) = drafts()
    this = draft.invoice.id
    closed, open_, rerated = charge(JANUARY, "20.00"), charge(FEBRUARY, "20.00"), charge(MARCH, "1")
    ledger = [("inv_jan", closed), ("inv_feb", open_), (this, rerated)]
    facts = replace(FACTS, ledgers={"sub_x": ledger})
    seen: dict[str, list[Line]] = {}

    def recording(sub: Subscription, issued: list[Line]) -> list[Line]:
        seen[sub.id] = issued
        return rate(sub, issued)

    (draft,) = drafts(facts, recording)
    # rated against every line but this invoice's own (rated anew)
    assert seen == {"sub_x": [closed, open_], "sub_y": []}
    march = [line for line in draft.lines if line.subscription_id == "sub_x"]
    assert [line.rated() for line in march] == [charge(MARCH, "20.00")]
    # January ended before the run's window (February on): dropped
    assert draft.ledgers == {
        "sub_x": [("inv_feb", open_), (this, charge(MARCH, "20.00"))],
        "sub_y": [(this, draft.lines[0].rated())],
    }


def test_r22_a_ledger_that_does_not_change_is_not_given() -> None:
    (draft,) = drafts()
    march = draft.lines[1].rated()  # sub_x's March, as issued
    facts = replace(FACTS, ledgers={"sub_x": [("inv_earlier", march)]})
    (draft,) = drafts(facts)
    assert [line.subscription_id for line in draft.lines] == ["sub_y"]
    assert set(draft.ledgers) == {"sub_y"}


# --- a subscription at its prices (R7, R21, R25) ---------------------------------------------


def test_r7_a_subscription_is_rated_at_its_lists_price_today_else_the_price_it_was_sold_at() -> (
    None
):
    assert domain.price_of(FACTS, SUB_X, "p1") == D("10.00")
    markup = replace(
        FACTS,
        products={"p1": product("p1", costs={"monthly": D("8.00")})},
        prices={("prl", "p1", "monthly"): price("p1", price=None, markup_percent=D("10"))},
    )
    assert domain.price_of(markup, SUB_X, "p1") == D("8.80")
    unlisted = replace(FACTS, prices={})
    assert domain.price_of(unlisted, SUB_X, "p1") == D("9.00")  # its unit price
    with pytest.raises(RatingError, match="no monthly price for p2"):
        domain.price_of(unlisted, SUB_X, "p2")


def test_r21_r22_a_recurring_subscription_is_charged_in_advance_prorated_from_its_start() -> None:
    late = replace(SUB_X, start_date="2026-03-10")
    (line,) = domain.rated(FACTS, late, [])
    # 22 of March's 31 days × 2 × 10.00
    assert (line.kind, line.start, line.end, line.amount) == (
        LineKind.CHARGE,
        date(2026, 3, 10),
        date(2026, 4, 1),
        D("14.19"),
    )
    assert not domain.metered(FACTS, late)


def test_r21_r25_a_metered_subscription_bills_the_previous_periods_usage() -> None:
    metered = replace(FACTS, products={"p1": product("p1", type="usage", unit="GB")})
    sub = replace(SUB_X, start_date="2026-02-01")
    assert domain.metered(metered, sub)
    (line,) = domain.rated(metered, sub, [], D("12.5"))
    assert (line.kind, line.period, line.quantity, line.amount) == (
        LineKind.USAGE,
        FEBRUARY,
        D("12.5"),
        D("125.00"),
    )
    assert domain.rated(metered, sub, [], D(0)) == []
