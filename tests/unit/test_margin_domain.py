"""The margin report's rules (R32), pure: rows from issued invoice lines, a root's own cost by
the line's own proration, sums per group that add up to the total, margin and its percent."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from functions.invoices.domain import Invoice, InvoiceLine, LineKind, margin

D = Decimal


def invoice(account_id: str, status: str = "issued", **bill_to: Any) -> Invoice:
    return Invoice(
        id=f"inv-{account_id}-{status}",
        tenant_id="t",
        run_id="run",
        account_id=account_id,
        currency="EUR",
        period_start="2026-03-01",
        period_end="2026-04-01",
        status=status,
        issuer={},
        bill_to={"name": account_id.title(), **bill_to},
        subtotal=D(0),
        tax_rate=D(0),
        tax=D(0),
        total=D(0),
        line_count=0,
        created_at="2026-03-01T00:00:00Z",
    )


def line(
    sub: str,
    amount: str,
    *,
    kind: LineKind = LineKind.CHARGE,
    quantity: str = "4",
    start: str = "2026-02-10",
    end: str = "2026-03-01",
    customer: str = "x",
    product: str = "e3",
) -> InvoiceLine:
    return InvoiceLine(
        no=1,
        kind=kind,
        subscription_id=sub,
        product_id=product,
        sku=product.upper(),
        product_name=f"Product {product}",
        end_customer_id=customer,
        end_customer_name=f"Customer {customer}",
        description="",
        period_start="2026-02-01",
        period_end="2026-03-01",
        start=start,
        end=end,
        quantity=D(quantity),
        unit_price=D("26.00"),
        proration=D(1),
        amount=D(amount),
        key=f"{sub}:{amount}",
    )


def test_r32_r22_own_cost_is_prorated_like_the_line_and_a_credit_is_negative() -> None:
    # 19 of February's 28 days × 4 seats × 20.00 = 54.2857… → 54.29 (R22, R23)
    assert margin.line_cost(line("s", "70.57"), D("20.00"), "EUR") == D("54.29")
    credit = line("s", "-70.57", kind=LineKind.CREDIT)
    assert margin.line_cost(credit, D("20.00"), "EUR") == D("-54.29")
    usage = line("s", "90.00", kind=LineKind.USAGE, quantity="100")
    assert margin.line_cost(usage, D("0.75"), "EUR") == D("75.00")


def test_r32_revenue_sums_a_subscriptions_lines_of_issued_invoices_only() -> None:
    sold = {"s1": margin.sold("s1", "x", "lite", "e3"), "s2": margin.sold("s2", "z", None, "e3")}
    rows = margin.revenue_rows(
        "EUR",
        [
            (invoice("lite"), [line("s1", "70.57"), line("s1", "104.00")]),
            (invoice("z"), [line("s2", "40.71", customer="z")]),
            (invoice("lite", status="draft"), [line("s1", "999.00")]),
        ],
        sold,
        {"s2": D("20.00")},
    )
    # s2's own product costs 20.00: 19/28 × 4 × 20.00 = 54.29; s1's product is a copy (none)
    assert [(r.subscription_id, r.amount, r.own_cost, r.lines) for r in rows] == [
        ("s1", D("174.57"), D(0), 2),
        ("s2", D("40.71"), D("54.29"), 1),
    ]
    assert rows[0].reseller_name == "Lite"  # the reseller billed for it names it (R20)
    assert (rows[1].reseller_id, rows[1].reseller_name) == (margin.DIRECT, "Direct")


def test_r32_cost_follows_the_mirror_to_its_source_and_keeps_own_purchases() -> None:
    """A provider's line of a mirror counts for the child's subscription it mirrors; a line of
    no mirror (the child's own plan) is a purchase row, so the costs add up to the bill."""
    rows = margin.cost_rows(
        [(invoice("resell"), [line("m1", "59.71"), line("m1", "88.00"), line("p1", "49.00")])],
        sources={"m1": "s1"},
        sold_as={"s1": margin.sold("s1", "x", "lite", "e3-copy")},
        names={"x": "Customer X", "lite": "Cloud Lite"},
        purchases={"e3": "e3-copy"},
    )
    assert [(r.subscription_id, r.amount, r.purchase, r.product_id) for r in rows] == [
        ("p1", D("49.00"), True, "e3-copy"),
        ("s1", D("147.71"), False, "e3-copy"),
    ]
    assert (rows[1].customer_name, rows[1].reseller_name) == ("Customer X", "Cloud Lite")
    assert sum(r.amount for r in rows) == D("196.71")


def test_r32_margin_percent_and_the_negative_flag() -> None:
    f = margin.Figures(revenue=D("174.57"), billed_cost=D("147.71"), own_cost=D(0))
    assert (f.margin, f.margin_percent, f.negative) == (D("26.86"), D("15.39"), False)
    loss = margin.Figures(revenue=D("84.00"), billed_cost=D("88.00"), own_cost=D(0))
    assert (loss.margin, loss.margin_percent, loss.negative) == (D("-4.00"), D("-4.76"), True)
    nothing = margin.Figures(revenue=D(0), billed_cost=D("49.00"), own_cost=D(0))
    assert (nothing.margin_percent, nothing.negative) == (None, True)


amounts = st.decimals(min_value=-1000, max_value=1000, places=2, allow_nan=False)
rows_strategy = st.lists(
    st.builds(
        lambda n, c, r, p, amount, own: margin.Row(
            side=margin.REVENUE,
            subscription_id=f"s{n}",
            customer_id=f"c{c}",
            reseller_id=f"r{r}",
            product_id=f"p{p}",
            amount=amount,
            own_cost=own,
            currency="EUR",
        ),
        st.integers(0, 10_000),
        st.integers(0, 5),
        st.integers(0, 3),
        st.integers(0, 4),
        amounts,
        amounts,
    ),
    max_size=40,
    unique_by=lambda r: r.subscription_id,
)


@given(rows_strategy)
def test_r32_every_grouping_adds_up_to_the_total(rows: list[margin.Row]) -> None:
    groups = margin.summaries(margin.REVENUE, rows)
    total = [g for g in groups if not g.grouping]
    if not rows:
        assert groups == []
        return
    (total_group,) = total
    assert total_group.amount == sum(r.amount for r in rows)
    assert total_group.subscriptions == len(rows)
    for grouping in margin.GROUPINGS:
        mine = [g for g in groups if g.grouping == grouping]
        assert sum(g.amount for g in mine) == total_group.amount
        assert sum(g.own_cost for g in mine) == total_group.own_cost
        assert sum(g.subscriptions for g in mine) == len(rows)
        assert len({g.key for g in mine}) == len(mine)
    assert margin.summaries(margin.COST, rows) == []  # one side's sums only


def test_r32_items_read_in_one_page_pair_up_by_line() -> None:
    revenue = margin.Row(margin.REVENUE, "s1", "x", "lite", "e3", D("10"))
    cost = margin.Row(margin.COST, "s1", "x", "lite", "e3", D("8"))
    only_cost = margin.Row(margin.COST, "s2", "z", "direct", "e3", D("5"))
    assert margin.merged([cost, revenue, only_cost]) == [(revenue, cost), (None, only_cost)]
