"""Charges and credits (R22). Recurring charges are billed in advance. What a subscription used
in a period (its segments) is compared with the lines already issued for that period
(``reconcile``); a day billed at a quantity or price that no longer holds is credited (a credit
line linked to the charge it corrects) and charged anew; issued lines are never edited. A quantity
change mid-period thus credits the old quantity for the rest of the period and charges the new
one for the same days; a cancellation credits the days after it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import date
from decimal import Decimal
from itertools import pairwise

from functions.core.periods import Period
from functions.invoices.domain.history import Segment
from functions.invoices.domain.lines import Line, LineKind
from functions.invoices.domain.periods import FACTOR_PLACES, prorated, proration

#: an issued charge's days not credited yet: (the charge, start, end)
Piece = tuple[Line, date, date]


def charge(subscription_id: str, segment: Segment, period: Period, currency: str) -> Line:
    """R22: a segment's days of a period, prorated over the whole period."""
    days = (segment.end - segment.start).days
    return Line(
        kind=LineKind.CHARGE,
        subscription_id=subscription_id,
        period=period,
        start=segment.start,
        end=segment.end,
        quantity=Decimal(segment.quantity),
        unit_price=segment.unit_price,
        proration=proration(days, period).quantize(FACTOR_PLACES),
        amount=prorated(segment.unit_price, segment.quantity, days, period, currency),
        product_id=segment.product_id,
    )


def credit(issued: Line, start: date, end: date, currency: str) -> Line:
    """R22: the days ``[start, end)`` of an issued charge given back, as a new linked line."""
    days = (end - start).days
    return Line(
        kind=LineKind.CREDIT,
        subscription_id=issued.subscription_id,
        period=issued.period,
        start=start,
        end=end,
        quantity=issued.quantity,
        unit_price=issued.unit_price,
        proration=proration(days, issued.period).quantize(FACTOR_PLACES),
        amount=-prorated(issued.unit_price, issued.quantity, days, issued.period, currency),
        credits=issued.key,
        product_id=issued.product_id,
    )


def _live(issued: Sequence[Line]) -> list[Piece]:
    """The days of each issued charge not credited yet: (charge, start, end) pieces."""
    credited: dict[str, list[tuple[date, date]]] = {}
    for line in issued:
        if line.kind == LineKind.CREDIT and line.credits:
            credited.setdefault(line.credits, []).append((line.start, line.end))
    pieces = []
    for line in issued:
        if line.kind != LineKind.CHARGE:
            continue
        cursor = line.start
        for start, end in sorted(credited.get(line.key, [])):
            if start > cursor:
                pieces.append((line, cursor, min(start, line.end)))
            cursor = max(cursor, end)
        if cursor < line.end:
            pieces.append((line, cursor, line.end))
    return pieces


def reconcile(
    subscription_id: str,
    used: Sequence[Segment],
    issued: Sequence[Line],
    period: Period,
    currency: str,
) -> list[Line]:
    """R22: the lines to add so that one period's billing of a subscription matches what it
    used: issued charge days that no longer hold are credited, used days not billed at their
    rate are charged. Nothing to add when they match (re-rating is idempotent)."""
    live = _live([line for line in issued if line.period == period])
    cuts = {period.start, period.end}
    for stretch in used:
        cuts |= {stretch.start, stretch.end}
    for _, start, end in live:
        cuts |= {start, end}
    points = sorted(day for day in cuts if period.start <= day <= period.end)

    def used_on(day: date) -> Segment | None:
        return next((s for s in used if s.start <= day < s.end), None)

    def live_on(day: date) -> Piece | None:
        return next((piece for piece in live if piece[1] <= day < piece[2]), None)

    added: list[Line] = []
    pending_credit: Piece | None = None
    pending_charge: tuple[Segment, date, date] | None = None
    for start, end in pairwise(points):
        segment, piece = used_on(start), live_on(start)
        billed = (
            None
            if piece is None
            else Segment(
                start, end, int(piece[0].quantity), piece[0].unit_price, piece[0].product_id
            )
        )
        wrong = piece is not None and not (segment is not None and segment.same_rate(billed))
        missing = segment is not None and (billed is None or not segment.same_rate(billed))
        if wrong and piece is not None:
            if pending_credit and pending_credit[0] is piece[0] and pending_credit[2] == start:
                pending_credit = (piece[0], pending_credit[1], end)
            else:
                if pending_credit:
                    added.append(credit(pending_credit[0], *pending_credit[1:], currency))
                pending_credit = (piece[0], start, end)
        if missing and segment is not None:
            if pending_charge and pending_charge[0] is segment and pending_charge[2] == start:
                pending_charge = (segment, pending_charge[1], end)
            else:
                if pending_charge:
                    added.append(_charge_piece(subscription_id, pending_charge, period, currency))
                pending_charge = (segment, start, end)
    if pending_credit:
        added.append(credit(pending_credit[0], *pending_credit[1:], currency))
    if pending_charge:
        added.append(_charge_piece(subscription_id, pending_charge, period, currency))
    return added


def _charge_piece(
    subscription_id: str, piece: tuple[Segment, date, date], period: Period, currency: str
) -> Line:
    segment, start, end = piece
    return charge(subscription_id, replace(segment, start=start, end=end), period, currency)
