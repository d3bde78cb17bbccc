"""What a subscription used (R8, R22): its history as ``Step``s, and a period's ``Segment``s —
days at one quantity and price — from its ``Change``s."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from functions.core.periods import Period
from functions.orders.domain import Subscription

BILLED_STATUSES = frozenset({"active", "inactive"})  # inactive: billed from its start date


@dataclass(frozen=True)
class Step:
    """A point of a subscription's history: from ``on`` it has this quantity and product, and
    is billed or not (suspended, cancelled, expired)."""

    on: date
    quantity: int
    product_id: str
    billed: bool


def timeline(sub: Subscription) -> list[Step]:
    """A subscription's history as steps, from its start date (R8). Days before the start are
    never billed; a term that does not renew itself ends after its end date. A subscription
    written before it kept a history has one step from its start, and its latest change."""
    start = date.fromisoformat(sub.start_date)
    entries = sub.history or [
        {
            "on": sub.start_date,
            "quantity": sub.quantity,
            "product_id": sub.product_id,
            "status": "active",
        },
        *(
            [
                {
                    "on": sub.last_change_date,
                    "quantity": sub.quantity,
                    "product_id": sub.product_id,
                    "status": sub.status,
                }
            ]
            if sub.last_change_date and sub.status not in BILLED_STATUSES
            else []
        ),
    ]
    steps = [
        Step(
            max(date.fromisoformat(entry["on"]), start),
            int(entry["quantity"]),
            str(entry["product_id"]),
            entry["status"] in BILLED_STATUSES,
        )
        for entry in entries
    ]
    if not sub.auto_renew:
        last = steps[-1]
        ended = date.fromisoformat(sub.end_date) + timedelta(days=1)
        steps.append(Step(ended, last.quantity, last.product_id, False))
    return refunded(sorted(steps, key=lambda step: step.on), sub)


def refunded(steps: list[Step], sub: Subscription) -> list[Step]:
    """R31, R22: a cancellation inside its window with a ``full`` refund bills nothing of its
    term: from the term's first day (the purchase's, a renewal's) the subscription is as if it
    had never been billed, so the run credits every issued day of the term it can still
    reconcile. A ``prorated`` refund needs nothing more: the cancellation's own step stops the
    days after it (R22)."""
    kept = sub.cancellation_terms or {}
    if kept.get("refund") != "full" or not steps:
        return steps
    since = date.fromisoformat(str(kept["term_start"]))
    before = [step for step in steps if step.on < since]
    last = (before or steps)[-1]
    return [*before, Step(since, last.quantity, last.product_id, False)]


@dataclass(frozen=True)
class Change:
    """A subscription's state from ``on`` (its effective date) until the next change: its
    quantity and unit price, and whether it is billed then (active; not suspended, cancelled,
    expired or not started)."""

    on: date
    quantity: int
    unit_price: Decimal
    billed: bool = True
    product_id: str = ""


@dataclass(frozen=True)
class Segment:
    """Days ``[start, end)`` at one quantity and unit price."""

    start: date
    end: date
    quantity: int
    unit_price: Decimal
    product_id: str = ""

    def same_rate(self, other: Segment | None) -> bool:
        """Billed alike: the same product, quantity and unit price."""
        return other is not None and (self.product_id, self.quantity, self.unit_price) == (
            other.product_id,
            other.quantity,
            other.unit_price,
        )


def segments(changes: Iterable[Change], period: Period) -> list[Segment]:
    """R22: what a subscription used in a period, from its changes (in any order; the last of
    two on one day wins): the billed stretches, clipped to the period."""
    ordered: dict[date, Change] = {}
    for change in sorted(changes, key=lambda c: c.on):
        ordered[change.on] = change
    found: list[Segment] = []
    days = list(ordered)
    for index, on in enumerate(days):
        change = ordered[on]
        end = days[index + 1] if index + 1 < len(days) else period.end
        start, end = max(on, period.start), min(end, period.end)
        if change.billed and start < end:
            found.append(Segment(start, end, change.quantity, change.unit_price, change.product_id))
    return found
