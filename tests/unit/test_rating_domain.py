"""Rating (R21-R23) with amounts computed by hand, and Hypothesis properties. No I/O.

Each expected amount is worked out in its comment: price × quantity × days used / days in the
whole period, rounded half-up to the cent."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from itertools import pairwise

import pytest
from hypothesis import given
from hypothesis import strategies as st

from functions.invoices import domain
from functions.invoices.domain import Change, Period

D = Decimal
EUR = "EUR"


def jan(day: int) -> date:
    return date(2026, 1, day)


JANUARY = Period(jan(1), date(2026, 2, 1))  # 31 days


def first_charge(changes: list[Change], period: Period) -> list[domain.Line]:
    return domain.reconcile("sub", domain.segments(changes, period), [], period, EUR)


# --- periods (R21, R22) ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("on", "start", "end", "days"),
    [
        (date(2026, 2, 10), date(2026, 1, 31), date(2026, 2, 28), 28),  # Jan 31 → Feb's last
        (date(2026, 2, 28), date(2026, 2, 28), date(2026, 3, 31), 31),
        (date(2026, 4, 30), date(2026, 4, 30), date(2026, 5, 31), 31),  # April has 30
        (date(2028, 2, 29), date(2028, 2, 29), date(2028, 3, 31), 31),  # a leap year
        (date(2026, 12, 31), date(2026, 12, 31), date(2027, 1, 31), 31),
    ],
)
def test_r22_billing_day_31_is_each_months_last_day_when_shorter(
    on: date, start: date, end: date, days: int
) -> None:
    period = domain.monthly_period(31, on)
    assert (period.start, period.end, period.days) == (start, end, days)


def test_r21_annual_periods_start_on_the_anniversary() -> None:
    period = domain.annual_period(date(2024, 2, 29), date(2026, 5, 1))
    assert (period.start, period.end) == (date(2026, 2, 28), date(2027, 2, 28))
    assert domain.billing_period(
        "annual", billing_day=1, anniversary=date(2026, 3, 15), on=date(2026, 3, 14)
    ) == Period(date(2025, 3, 15), date(2026, 3, 15))


# --- proration of a start mid-period (R22): 28-, 29-, 30- and 31-day months --------------------


@pytest.mark.parametrize(
    ("start", "period", "amount", "factor"),
    [
        # 31 days; 16 used (16th-31st): 20 × 10 × 16 / 31 = 103.2258 → 103.23
        (jan(16), JANUARY, "103.23", "0.516129"),
        # February 2026 has 28 days; 14 used: 200 × 14 / 28 = 100.00
        (date(2026, 2, 15), Period(date(2026, 2, 1), date(2026, 3, 1)), "100.00", "0.500000"),
        # February 2028 has 29; 15 used: 200 × 15 / 29 = 103.4483 → 103.45
        (date(2028, 2, 15), Period(date(2028, 2, 1), date(2028, 3, 1)), "103.45", "0.517241"),
        # April has 30; 15 used: 200 × 15 / 30 = 100.00
        (date(2026, 4, 16), Period(date(2026, 4, 1), date(2026, 5, 1)), "100.00", "0.500000"),
    ],
)
def test_r22_a_start_mid_period_is_charged_for_its_days_over_the_whole_period(
    start: date, period: Period, amount: str, factor: str
) -> None:
    [line] = first_charge([Change(start, 10, D("20.00"))], period)
    assert (line.kind, line.start, line.end) == ("charge", start, period.end)
    assert (line.amount, line.proration) == (D(amount), D(factor))


def test_r22_billing_day_31_in_february() -> None:
    # period 31 Jan → 28 Feb: 28 days; a start on 14 Feb uses 14: 30 × 3 × 14 / 28 = 45.00
    period = domain.monthly_period(31, date(2026, 2, 14))
    [line] = first_charge([Change(date(2026, 2, 14), 3, D("30.00"))], period)
    assert (period.days, line.amount) == (28, D("45.00"))


# --- changes mid-period (R22) ------------------------------------------------------------------


def issued_in_advance(quantity: int, price: str = "20.00") -> list[domain.Line]:
    """January charged in advance on the 1st."""
    return first_charge([Change(jan(1), quantity, D(price))], JANUARY)


def test_r22_quantity_up_credits_the_old_and_charges_the_new_for_the_same_days() -> None:
    issued = issued_in_advance(10)
    assert [line.amount for line in issued] == [D("200.00")]
    used = domain.segments(
        [Change(jan(1), 10, D("20.00")), Change(jan(21), 15, D("20.00"))], JANUARY
    )
    credit, charge = domain.reconcile("sub", used, issued, JANUARY, EUR)
    # 11 days (21st-31st): credit 200 × 11 / 31 = 70.9677 → -70.97
    assert (credit.kind, credit.start, credit.end, credit.quantity) == (
        "credit",
        jan(21),
        date(2026, 2, 1),
        10,
    )
    assert credit.amount == D("-70.97")
    assert credit.credits == issued[0].key  # linked to the line it corrects; that line stays
    # charge 300 × 11 / 31 = 106.4516 → 106.45
    assert (charge.kind, charge.quantity, charge.amount) == ("charge", 15, D("106.45"))
    # rated again with those lines issued: nothing more
    assert domain.reconcile("sub", used, [*issued, credit, charge], JANUARY, EUR) == []


def test_r22_quantity_down() -> None:
    issued = issued_in_advance(10)
    used = domain.segments(
        [Change(jan(1), 10, D("20.00")), Change(jan(21), 4, D("20.00"))], JANUARY
    )
    credit, charge = domain.reconcile("sub", used, issued, JANUARY, EUR)
    # credit -70.97 as above; charge 80 × 11 / 31 = 28.3871 → 28.39
    assert (credit.amount, charge.amount) == (D("-70.97"), D("28.39"))


def test_r22_a_cancellation_credits_the_days_after_it() -> None:
    # annual cycle: 216.00 a year × 2 from 15 Mar 2026 (365 days), cancelled on 15 Sep
    period = Period(date(2026, 3, 15), date(2027, 3, 15))
    issued = first_charge([Change(period.start, 2, D("216.00"))], period)
    assert [line.amount for line in issued] == [D("432.00")]
    used = domain.segments(
        [
            Change(period.start, 2, D("216.00")),
            Change(date(2026, 9, 15), 2, D("216.00"), billed=False),
        ],
        period,
    )
    [credit] = domain.reconcile("sub", used, issued, period, EUR)
    # 181 days (15 Sep → 15 Mar): 432 × 181 / 365 = 214.2247 → -214.22
    assert (credit.days, credit.amount) == (181, D("-214.22"))


def test_r21_an_annual_term_billed_monthly_is_charged_each_month() -> None:
    # 18.00 a month × 5 seats, billing day 10: the period 10 Mar → 10 Apr is charged in full
    period = domain.monthly_period(10, date(2026, 3, 20))
    [line] = first_charge([Change(date(2026, 1, 10), 5, D("18.00"))], period)
    assert (period.start, period.end, line.amount, line.proration) == (
        date(2026, 3, 10),
        date(2026, 4, 10),
        D("90.00"),
        D("1.000000"),
    )


def test_r22_an_addon_added_mid_period_and_a_price_change() -> None:
    # an add-on from 10 Jan: 22 days: 4 × 10 × 22 / 31 = 28.387 → 28.39
    [addon] = first_charge([Change(jan(10), 10, D("4.00"))], JANUARY)
    assert addon.amount == D("28.39")
    # an upgrade on 25 Jan to a dearer product: 7 days at the new price, the old one credited
    issued = issued_in_advance(1, "20.00")
    used = domain.segments([Change(jan(1), 1, D("20.00")), Change(jan(25), 1, D("31.00"))], JANUARY)
    credit, charge = domain.reconcile("sub", used, issued, JANUARY, EUR)
    # credit 20 × 7 / 31 = 4.516 → -4.52; charge 31 × 7 / 31 = 7.00
    assert (credit.amount, charge.amount) == (D("-4.52"), D("7.00"))


def test_r21_usage_in_arrears_without_proration() -> None:
    # 123.456 EUR consumed at 0.85: 104.9376 → 104.94
    line = domain.usage("sub", JANUARY, D("123.456"), D("0.85"), EUR)
    assert (line.kind, line.amount) == ("usage", D("104.94"))


def test_r23_tax_is_rounded_once_on_the_subtotal() -> None:
    # three lines of 0.05: subtotal 0.15; 19 % of it = 0.0285 → 0.03 (per line it would be 0.03)
    lines = [domain.usage("sub", JANUARY, D(1), D("0.05"), EUR) for _ in range(3)]
    assert domain.totals(lines, D("0.19"), EUR) == domain.Totals(D("0.15"), D("0.03"), D("0.18"))
    # JPY has no minor unit: 1,001 × 10 % = 100.1 → 100
    yen = [domain.usage("sub", JANUARY, D(1), D("1001"), "JPY")]
    assert domain.totals(yen, D("0.10"), "JPY").tax == D("100")


# --- properties ----------------------------------------------------------------------------------

periods = st.builds(
    lambda start, days: Period(start, start + timedelta(days=days)),
    st.dates(date(2024, 1, 1), date(2030, 12, 31)),
    st.integers(1, 366),
)
prices = st.decimals(D("0"), D("9999.99"), places=2)


@given(periods, prices, st.integers(1, 500), st.data())
def test_r22_any_split_of_a_period_sums_to_the_whole_within_a_cent_per_split(
    period: Period, price: Decimal, quantity: int, data: st.DataObject
) -> None:
    cuts = sorted(
        data.draw(st.sets(st.integers(1, period.days - 1), max_size=10)) if period.days > 1 else []
    )
    bounds = [0, *cuts, period.days]
    parts = [domain.prorated(price, quantity, b - a, period, EUR) for a, b in pairwise(bounds)]
    whole = domain.prorated(price, quantity, period.days, period, EUR)
    assert whole == price * quantity
    assert abs(sum(parts) - whole) <= D("0.01") * len(cuts)


changes = st.lists(
    st.tuples(
        st.integers(0, 30), st.integers(1, 50), st.sampled_from(["20.00", "31.00"]), st.booleans()
    ),
    min_size=1,
    max_size=6,
)


@given(changes, changes)
def test_r22_rerating_after_any_changes_bills_exactly_what_was_used(
    first: list[tuple[int, int, str, bool]], later: list[tuple[int, int, str, bool]]
) -> None:
    """Whatever was issued before (rated on one history) and whatever the history became, the
    reconciled lines leave each day billed at its used rate once: re-rating adds nothing, and the
    net amount is the used amount within a cent per line."""

    def history(spec: list[tuple[int, int, str, bool]]) -> list[Change]:
        return [Change(jan(1) + timedelta(days=d), q, D(p), billed=b) for d, q, p, b in spec]

    before = domain.segments(history(first), JANUARY)
    issued = domain.reconcile("sub", before, [], JANUARY, EUR)
    used = domain.segments(history(first + later), JANUARY)
    added = domain.reconcile("sub", used, issued, JANUARY, EUR)
    lines = issued + added
    assert domain.reconcile("sub", used, lines, JANUARY, EUR) == []
    exact = sum(
        (s.unit_price * s.quantity * (s.end - s.start).days / JANUARY.days for s in used), D(0)
    )
    assert abs(sum(line.amount for line in lines) - exact) <= D("0.005") * (len(lines) + 1)
    assert all(line.amount <= 0 for line in added if line.kind == "credit")


@given(
    st.lists(st.decimals(D("-999.99"), D("9999.99"), places=2), max_size=30),
    st.decimals(D(0), D("0.30"), places=3),
)
def test_r23_lines_sum_to_the_subtotal(amounts: list[Decimal], rate: Decimal) -> None:
    lines = [domain.usage("sub", JANUARY, D(1), a, EUR) for a in amounts]
    result = domain.totals(lines, rate, EUR)
    assert result.subtotal == sum(amounts, D(0))
    assert result.total == result.subtotal + result.tax
