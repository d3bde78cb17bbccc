"""Invoice lines (R22, R26): the rated ``Line`` of one subscription, its ``LineKind``, and the
``InvoiceLine`` an invoice shows, naming the product and the end customer."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from enum import StrEnum

from functions.core.periods import Period


class LineKind(StrEnum):
    """What a line is (R22, R25): a charge for days, a credit of an issued charge's days (linked
    to it), or a period's usage. The values are what is stored and what the API answers."""

    CHARGE = "charge"
    CREDIT = "credit"
    USAGE = "usage"
    #: R31: a cancellation fee (the penalty of a commitment cancelled after its window), once
    FEE = "fee"


@dataclass(frozen=True)
class Line:
    """One invoice line (R26) of one subscription: a charge for days ``[start, end)`` of
    ``period``, a credit of an issued charge's days (negative; ``credits`` names it), or usage.
    ``key`` is deterministic: the same line rated twice is the same line."""

    kind: LineKind
    subscription_id: str
    period: Period
    start: date
    end: date
    quantity: Decimal
    unit_price: Decimal
    proration: Decimal
    amount: Decimal
    credits: str | None = None
    product_id: str = ""

    @property
    def key(self) -> str:
        return ":".join(
            (
                self.kind,
                self.subscription_id,
                self.product_id,
                self.period.start.isoformat(),
                self.start.isoformat(),
                self.end.isoformat(),
                str(self.quantity),
                str(self.unit_price),
                self.credits or "",
            )
        )

    @property
    def days(self) -> int:
        return (self.end - self.start).days


@dataclass(frozen=True, kw_only=True)
class InvoiceLine:
    """A line as invoiced (R26): the rated line, with the product and end customer named. The
    one declaration of its fields: the API's ``schemas.InvoiceLineOut`` is derived from them, in
    this order (keyword-only, so ``credits`` may precede ``key`` as the API has always shown)."""

    no: int
    kind: LineKind
    subscription_id: str
    product_id: str
    sku: str
    product_name: str
    end_customer_id: str
    end_customer_name: str
    description: str
    period_start: str
    period_end: str
    start: str
    end: str
    quantity: Decimal
    unit_price: Decimal
    proration: Decimal
    amount: Decimal
    credits: str | None = None
    key: str

    def rated(self) -> Line:
        return Line(
            kind=self.kind,
            subscription_id=self.subscription_id,
            period=Period(
                date.fromisoformat(self.period_start), date.fromisoformat(self.period_end)
            ),
            start=date.fromisoformat(self.start),
            end=date.fromisoformat(self.end),
            quantity=self.quantity,
            unit_price=self.unit_price,
            proration=self.proration,
            amount=self.amount,
            credits=self.credits,
            product_id=self.product_id,
        )


@dataclass(frozen=True)
class Named:
    """How a line names its product and end customer (R26)."""

    sku: str
    product_name: str
    unit: str
    end_customer_id: str
    end_customer_name: str


def describe(line: Line, named: Named) -> str:
    """R26: a line's description: the product, the quantity and the days it bills."""
    last = line.end - timedelta(days=1)
    days = f"{line.start.isoformat()} to {last.isoformat()}"
    if line.kind == LineKind.USAGE:
        return f"{named.product_name}: {line.quantity} {named.unit}, {days}"
    if line.kind == LineKind.CREDIT:
        return f"Credit: {named.product_name} × {line.quantity}, {days}"
    if line.kind == LineKind.FEE:
        return f"Cancellation fee: {named.product_name}, cancelled {line.start.isoformat()}"
    return f"{named.product_name} × {line.quantity}, {days}"


def invoice_lines(rated: Sequence[tuple[Line, Named]]) -> list[InvoiceLine]:
    """R26: rated lines as invoiced, numbered from 1 in order."""
    return [
        InvoiceLine(
            no=no,
            kind=line.kind,
            subscription_id=line.subscription_id,
            product_id=line.product_id,
            sku=named.sku,
            product_name=named.product_name,
            end_customer_id=named.end_customer_id,
            end_customer_name=named.end_customer_name,
            description=describe(line, named),
            period_start=line.period.start.isoformat(),
            period_end=line.period.end.isoformat(),
            start=line.start.isoformat(),
            end=line.end.isoformat(),
            quantity=line.quantity,
            unit_price=line.unit_price,
            proration=line.proration,
            amount=line.amount,
            key=line.key,
            credits=line.credits,
        )
        for no, (line, named) in enumerate(rated, start=1)
    ]
