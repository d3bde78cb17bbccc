"""A subscription through successive billing runs (R20-R25), the run's chunks and invoices
(R24, R26): pure domain, amounts by hand, and Hypothesis properties. No I/O.

``bill`` plays the runs the way the service does: each run's added lines become "issued" (the
ledger) for the next."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from functions.invoices import domain
from functions.invoices.domain import Line, Period
from functions.orders.domain import Subscription

D = Decimal
EUR = "EUR"
PRICE = {"e3": D("25.00"), "e5": D("40.00")}


def subscription(
    history: list[tuple[str, int, str, str]],
    *,
    start: str,
    cycle: str = "monthly",
    auto_renew: bool = True,
    end: str = "2099-12-31",
) -> Subscription:
    """``history``: (on, quantity, product, status) per change, oldest first."""
    return Subscription(
        id="sub_1",
        tenant_id="t",
        account_id="acc_x",
        product_id=history[-1][2],
        quantity=history[-1][1],
        billing_cycle=cycle,
        term=cycle,
        terms=1,
        status=history[-1][3],
        start_date=start,
        end_date=end,
        auto_renew=auto_renew,
        currency=EUR,
        unit_price=PRICE[history[-1][2]],
        price_list_id="prl",
        created_at="2026-01-01T00:00:00Z",
        updated_at="2026-01-01T00:00:00Z",
        history=[
            {"on": on, "quantity": q, "product_id": p, "origin_product_id": None, "status": s}
            for on, q, p, s in history
        ],
    )


def bill(sub: Subscription, runs: list[str], issued: list[Line] | None = None) -> list[list[Line]]:
    """Run each period start in turn (billing day 1); what each run added."""
    issued = [] if issued is None else issued
    added = []
    for start in runs:
        run = domain.run_for(1, date.fromisoformat(start))
        lines = domain.rate_subscription(sub, run, issued, lambda product: PRICE[product])
        issued += lines
        added.append(lines)
    return added


def amounts(lines: list[Line]) -> list[tuple[str, str]]:
    return [(line.kind, str(line.amount)) for line in lines]


# --- by hand ----------------------------------------------------------------------------------


def test_r22_a_mid_month_start_is_billed_for_its_days_then_in_advance() -> None:
    sub = subscription([("2026-02-10", 2, "e3", "active")], start="2026-02-10")
    feb, mar = bill(sub, ["2026-02-01", "2026-03-01"])
    # run of February, on 1 Feb, bills the days 10 → 28 Feb: 19/28 × 2 × 25 = 33.93
    assert amounts(feb) == [("charge", "33.93")]
    assert amounts(mar) == [("charge", "50.00")]


def test_r22_quantity_down_mid_period_credits_the_old_and_charges_the_new() -> None:
    before = subscription([("2026-01-01", 4, "e3", "active")], start="2026-01-01")
    issued: list[Line] = []
    bill(before, ["2026-01-01"], issued)
    after = subscription(
        [("2026-01-01", 4, "e3", "active"), ("2026-01-21", 1, "e3", "active")],
        start="2026-01-01",
    )
    (feb,) = bill(after, ["2026-02-01"], issued)
    # 21 Jan → 1 Feb is 11 of 31 days: the 4 seats credited (11/31 × 100 = 35.48), 1 charged
    # (11/31 × 25 = 8.87), then February for 1 seat
    assert amounts(feb) == [("credit", "-35.48"), ("charge", "8.87"), ("charge", "25.00")]
    assert feb[0].credits == issued[0].key


def test_r22_cancellation_credits_the_days_after_it_and_stops_billing() -> None:
    issued: list[Line] = []
    bill(
        subscription([("2026-01-01", 1, "e3", "active")], start="2026-01-01"),
        ["2026-01-01"],
        issued,
    )
    cancelled = subscription(
        [("2026-01-01", 1, "e3", "active"), ("2026-01-25", 1, "e3", "cancelled")],
        start="2026-01-01",
    )
    feb, mar = bill(cancelled, ["2026-02-01", "2026-03-01"], issued)
    assert amounts(feb) == [("credit", "-5.65")]  # 7/31 × 25 = 5.645 → 5.65
    assert mar == []


def test_r21_upgrade_mid_period_credits_the_old_product_and_charges_the_new() -> None:
    issued: list[Line] = []
    bill(
        subscription([("2026-04-01", 1, "e3", "active")], start="2026-04-01"),
        ["2026-04-01"],
        issued,
    )
    upgraded = subscription(
        [("2026-04-01", 1, "e3", "active"), ("2026-04-16", 1, "e5", "active")],
        start="2026-04-01",
    )
    (may,) = bill(upgraded, ["2026-05-01"], issued)
    # 16 Apr → 1 May: 15 of 30 days; e3 credited 12.50, e5 charged 20.00; May at e5
    assert [(ln.kind, ln.product_id, str(ln.amount)) for ln in may] == [
        ("credit", "e3", "-12.50"),
        ("charge", "e5", "20.00"),
        ("charge", "e5", "40.00"),
    ]


def test_r21_annual_in_advance_by_the_run_of_the_anniversarys_period() -> None:
    sub = subscription([("2026-03-15", 1, "e3", "active")], start="2026-03-15", cycle="annual")
    runs = ["2026-03-01", "2026-04-01", "2026-05-01", "2027-03-01", "2027-04-01"]
    mar, apr, may, mar27, apr27 = bill(sub, runs)
    assert [(ln.start, ln.end, str(ln.amount)) for ln in mar] == [
        (date(2026, 3, 15), date(2027, 3, 15), "25.00")  # the annual price, whole year
    ]
    assert apr == may == [] and apr27 == []
    # the anniversary, 15 Mar 2027, falls in March 2027's period: its run bills the next year
    assert [(ln.start, str(ln.amount)) for ln in mar27] == [(date(2027, 3, 15), "25.00")]


def test_r21_annual_term_billed_monthly_uses_monthly_periods() -> None:
    sub = subscription([("2026-03-15", 3, "e3", "active")], start="2026-03-15")
    sub = Subscription(**{**sub.__dict__, "term": "annual"})
    (mar,) = bill(sub, ["2026-03-01"])
    assert amounts(mar) == [("charge", "41.13")]  # 17/31 × 3 × 25 = 41.129 → 41.13


def test_r8_a_term_that_does_not_renew_is_not_billed_after_its_end() -> None:
    sub = subscription(
        [("2026-01-01", 1, "e3", "active")],
        start="2026-01-01",
        auto_renew=False,
        end="2026-01-15",
    )
    (jan,) = bill(sub, ["2026-01-01"])
    assert amounts(jan) == [("charge", "12.10")]  # 1-15 Jan: 15/31 × 25 = 12.096 → 12.10


def test_r21_r25_usage_in_arrears_and_a_late_use_is_corrected() -> None:
    sub = subscription([("2026-01-01", 1, "e3", "active")], start="2026-01-01")
    run = domain.run_for(1, date(2026, 2, 1))
    price = D("0.80")
    first = domain.rate_subscription(
        sub, run, [], lambda _: price, metered=True, usage_total=D("100")
    )
    assert amounts(first) == [("usage", "80.00")]
    assert (
        domain.rate_subscription(
            sub, run, first, lambda _: D("9"), metered=True, usage_total=D("100")
        )
        == []
    )
    late = domain.rate_subscription(
        sub, run, first, lambda _: D("9"), metered=True, usage_total=D("112.5")
    )
    # the billed 100 credited, 112.5 charged at the price it was billed at (R7)
    assert amounts(late) == [("credit", "-80.00"), ("usage", "90.00")]


def test_r7_an_invoiced_period_keeps_its_price_a_new_one_takes_todays() -> None:
    issued: list[Line] = []
    bill(
        subscription([("2026-01-01", 1, "e3", "active")], start="2026-01-01"),
        ["2026-01-01"],
        issued,
    )
    later = subscription(
        [("2026-01-01", 1, "e3", "active"), ("2026-01-21", 2, "e3", "active")],
        start="2026-01-01",
    )
    run = domain.run_for(1, date(2026, 2, 1))
    lines = domain.rate_subscription(later, run, issued, lambda _: D("30.00"))
    assert [str(ln.unit_price) for ln in lines] == ["25.00", "25.00", "30.00"]


# --- properties -------------------------------------------------------------------------------

DAYS = st.integers(min_value=0, max_value=180)
CHANGE = st.tuples(
    DAYS,
    st.integers(min_value=1, max_value=50),
    st.sampled_from(["e3", "e5"]),
    st.sampled_from(["active", "active", "suspended", "cancelled"]),
)
ORIGIN = date(2026, 1, 1)


@settings(max_examples=150, deadline=None)
@given(start=DAYS, changes=st.lists(CHANGE, max_size=6))
def test_r22_monthly_runs_bill_exactly_what_was_used_and_reruns_add_nothing(
    start: int, changes: list[tuple[int, int, str, str]]
) -> None:
    """Any history, revealed run by run (each run sees the changes made before it): after all
    runs, each closed period is billed the sum of its used segments (one rounding per line, so
    within a cent per line), and running any period again (×3) adds nothing."""
    first = ORIGIN + timedelta(days=start)
    history = [
        (first, 1, "e3", "active"),
        *sorted((first + timedelta(days=d), q, p, s) for d, q, p, s in changes),
    ]
    months = [date(2026, m, 1) for m in range(1, 13)] + [date(2027, m, 1) for m in (1, 2)]
    issued: list[Line] = []
    for month in months:
        known = [h for h in history if h[0] <= month] or history[:1]
        sub = subscription(
            [(on.isoformat(), q, p, s) for on, q, p, s in known], start=first.isoformat()
        )
        run = domain.run_for(1, month)
        issued += domain.rate_subscription(sub, run, issued, lambda product: PRICE[product])
        for _ in range(2):  # the same run again: nothing more
            assert domain.rate_subscription(sub, run, issued, lambda p: PRICE[p]) == []
    full = subscription(
        [(on.isoformat(), q, p, s) for on, q, p, s in history], start=first.isoformat()
    )
    for month in months[:-2]:  # closed and reconciled periods
        period = domain.monthly_period(1, month)
        changes_ = [
            domain.Change(
                step.on, step.quantity, PRICE[step.product_id], step.billed, step.product_id
            )
            for step in domain.timeline(full)
        ]
        used = domain.segments(changes_, period)
        exact = sum(
            (s.unit_price * s.quantity * (s.end - s.start).days / period.days for s in used), D(0)
        )
        lines = [line for line in issued if line.period == period]
        billed = sum((line.amount for line in lines), D(0))
        assert abs(billed - exact) <= D("0.01") * max(1, len(lines)), (month, lines)


@given(
    accounts=st.dictionaries(
        st.text("abcdef", min_size=1, max_size=4),
        st.integers(min_value=1, max_value=1200),
        max_size=40,
    )
)
def test_r24_chunks_hold_whole_accounts_within_their_limits(accounts: dict[str, int]) -> None:
    billable = [
        (f"{account}-{n}", account, None)
        for account, count in accounts.items()
        for n in range(count)
    ]
    chunks = domain.chunked(billable)
    seen = [account for chunk in chunks for account in chunk]
    assert sorted(seen) == sorted(accounts) and len(seen) == len(set(seen))
    for chunk in chunks:
        assert len(chunk) <= domain.CHUNK_ACCOUNTS
        size = sum(len(subs) for subs in chunk.values())
        assert size <= domain.CHUNK_SUBSCRIPTIONS or len(chunk) == 1


def test_r20_a_resold_subscription_is_billed_to_its_reseller() -> None:
    sub = subscription([("2026-01-01", 1, "e3", "active")], start="2026-01-01")
    assert domain.bill_to(sub) == "acc_x"
    resold = Subscription(**{**sub.__dict__, "reseller_account_id": "acc_lite"})
    assert domain.bill_to(resold) == "acc_lite"
    assert domain.chunked([("s1", "acc_x", "acc_lite"), ("s2", "acc_lite", None)]) == [
        {"acc_lite": ["s1", "s2"]}
    ]


@given(amounts_=st.lists(st.decimals("-500", "500", places=2), min_size=1, max_size=30))
def test_r23_invoice_lines_sum_to_the_subtotal_and_tax_is_rounded_once(
    amounts_: list[Decimal],
) -> None:
    period = Period(date(2026, 1, 1), date(2026, 2, 1))
    rated = [
        (
            Line("charge", "s", period, period.start, period.end, D(1), a, D(1), a),
            domain.Named("E3", "Office", "seat", "acc", "Acme"),
        )
        for a in amounts_
    ]
    invoice = domain.draft_invoice(
        id="inv",
        tenant_id="t",
        run_id="r",
        account_id="acc",
        end_customer_id=None,
        currency=EUR,
        period=period,
        issuer={"name": "Cloud"},
        bill_to={"name": "Acme", "country": "DE"},
        lines=domain.invoice_lines(rated),
        created_at="2026-01-01T00:00:00Z",
    )
    assert invoice.subtotal == sum(amounts_, D(0))
    assert invoice.tax == (invoice.subtotal * D("0.19")).quantize(D("0.01"), "ROUND_HALF_UP")
    assert invoice.total == invoice.subtotal + invoice.tax
    issued = domain.issue(invoice, 7, "2026-01-02T00:00:00Z")
    assert (issued.number, issued.status) == ("INV-000007", "issued")
