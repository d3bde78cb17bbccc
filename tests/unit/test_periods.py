"""Calendar periods live in the kernel (``functions.core.periods``): the billing run and the
orders' backdating window count in the same periods, and orders need not import invoices."""

from __future__ import annotations

from datetime import date

import pytest

from functions.core import periods
from functions.core.periods import Period, annual_period, monthly_period
from functions.invoices import domain as billing


def test_billing_re_exports_the_kernel_periods() -> None:
    assert billing.Period is Period
    assert billing.monthly_period is monthly_period
    assert billing.annual_period is annual_period


def test_r21_a_billing_day_past_the_month_end_is_its_last_day() -> None:
    assert monthly_period(31, date(2026, 2, 14)) == Period(date(2026, 1, 31), date(2026, 2, 28))
    assert monthly_period(31, date(2026, 2, 28)) == Period(date(2026, 2, 28), date(2026, 3, 31))
    assert periods.months_after(2026, 1, -1) == (2025, 12)


def test_r21_an_empty_period_is_refused() -> None:
    with pytest.raises(ValueError):
        Period(date(2026, 1, 1), date(2026, 1, 1))
