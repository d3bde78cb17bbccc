"""Calendar periods (R21, R22), shared by the contexts that count in them: the billing run
(``functions.invoices``) and the backdating window of an order (``functions.orders``). Pure:
the stdlib only.

Periods are half-open ``[start, end)``: a monthly one starts on the account's billing day (a
day past a month's end is that month's last day); an annual one on the anniversary.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date


def on_day(year: int, month: int, day: int) -> date:
    """``day`` of a month, or its last day if the month is shorter (R22)."""
    return date(year, month, min(day, calendar.monthrange(year, month)[1]))


def months_after(year: int, month: int, months: int) -> tuple[int, int]:
    index = year * 12 + (month - 1) + months
    return index // 12, index % 12 + 1


@dataclass(frozen=True, order=True)
class Period:
    """A billing period, ``[start, end)``."""

    start: date
    end: date

    def __post_init__(self) -> None:
        if self.end <= self.start:
            raise ValueError(f"an empty period {self.start} → {self.end}")

    @property
    def days(self) -> int:
        return (self.end - self.start).days

    def overlap(self, start: date, end: date) -> int:
        return max(0, (min(self.end, end) - max(self.start, start)).days)


def monthly_period(billing_day: int, on: date) -> Period:
    """The monthly period holding ``on``: from one billing day to the next."""
    if not 1 <= billing_day <= 31:
        raise ValueError("billing_day must be 1-31")
    start = on_day(on.year, on.month, billing_day)
    if start > on:
        start = on_day(*months_after(on.year, on.month, -1), billing_day)
    return Period(start, on_day(*months_after(start.year, start.month, 1), billing_day))


def annual_period(anniversary: date, on: date) -> Period:
    """The yearly period holding ``on``, starting on the anniversary (29 February: the 28th)."""
    year = on.year
    start = on_day(year, anniversary.month, anniversary.day)
    if start > on:
        year -= 1
        start = on_day(year, anniversary.month, anniversary.day)
    return Period(start, on_day(year + 1, anniversary.month, anniversary.day))
