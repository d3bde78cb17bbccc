"""R31 co-terming (issue 15, item 4): a new subscription's first term aligned to the end of an
existing subscription's term (same account) or to the end of its start's calendar month. The
first term is then shorter than a full term and prorated by billing (R22); the subscription
renews on the aligned day, and every later term is a full one. Pure: stdlib and the kernel.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date

from functions.core.errors import BadRequest


@dataclass(frozen=True)
class Coterm:
    """The aligned day asked for, and the request field that asked for it (named by a 400)."""

    end: date
    field: str = "coterm"


def month_end(day: date) -> date:
    """The last day of ``day``'s calendar month."""
    return date(day.year, day.month, calendar.monthrange(day.year, day.month)[1])


def check_coterm(coterm: Coterm, start: date, full_end: date) -> date | None:
    """The first term's last day: the aligned day, from the start (a one-day first term) to
    ``full_end``, the end of a full first term; 400 naming the field otherwise. An aligned day
    that is the full term's end needs no co-terming (None)."""
    if coterm.end < start:
        raise BadRequest(
            f"the aligned end {coterm.end} is before the start {start}",
            field=coterm.field,
            code="out_of_range",
        )
    if coterm.end > full_end:
        raise BadRequest(
            f"the aligned end {coterm.end} is further than one full term from the start "
            f"(a first term ends by {full_end})",
            field=coterm.field,
            code="out_of_range",
        )
    return None if coterm.end == full_end else coterm.end
