"""An invoice (R26): issuer, bill-to, period, currency, totals and status; its lines are stored
beside it. A draft's totals are its lines' (R23)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from functions.core.periods import Period
from functions.invoices.domain.lines import InvoiceLine
from functions.invoices.domain.tax import Totals, tax_rate, totals

DRAFT, ISSUED, VOID = "draft", "issued", "void"
LINES_PER_PART = 200  # lines per stored item: ~80 KB, well under DynamoDB's 400 KB


@dataclass(frozen=True)
class Invoice:
    """R26: issuer (the tenant), bill-to (one of its accounts; an end customer too when the
    account asked for separate invoices), period, currency, totals and status. Its lines are
    stored beside it, ``LINES_PER_PART`` per item. ``number`` is given when it is issued:
    gapless per issuing tenant (R24)."""

    id: str
    tenant_id: str
    run_id: str
    account_id: str
    currency: str
    period_start: str
    period_end: str
    status: str
    issuer: dict[str, Any]
    bill_to: dict[str, Any]
    subtotal: Decimal
    tax_rate: Decimal
    tax: Decimal
    total: Decimal
    line_count: int
    created_at: str
    end_customer_id: str | None = None
    number: str | None = None
    sequence: int | None = None
    issued_at: str | None = None
    document_key: str | None = None
    emailed_at: str | None = None
    voided_at: str | None = None
    version: int | None = None

    @property
    def parts(self) -> int:
        return max(1, -(-self.line_count // LINES_PER_PART))


def draft_invoice(
    *,
    id: str,
    tenant_id: str,
    run_id: str,
    account_id: str,
    end_customer_id: str | None,
    currency: str,
    period: Period,
    issuer: dict[str, Any],
    bill_to: dict[str, Any],
    lines: Sequence[InvoiceLine],
    created_at: str,
) -> Invoice:
    """R23, R26: a draft whose totals are the sum of its rounded lines and the bill-to
    country's tax, rounded once."""
    rate = tax_rate(bill_to.get("country"))
    sums = totals([line.rated() for line in lines], rate, currency)
    return Invoice(
        id=id,
        tenant_id=tenant_id,
        run_id=run_id,
        account_id=account_id,
        end_customer_id=end_customer_id,
        currency=currency,
        period_start=period.start.isoformat(),
        period_end=period.end.isoformat(),
        status=DRAFT,
        issuer=issuer,
        bill_to=bill_to,
        subtotal=sums.subtotal,
        tax_rate=rate,
        tax=sums.tax,
        total=sums.total,
        line_count=len(lines),
        created_at=created_at,
    )


def combined(invoices: Iterable[Invoice]) -> Totals:
    """The totals of several invoices of one account and currency (a preview with separate
    invoices per end customer, R20), each already rounded (R23): plain sums."""
    found = list(invoices)
    zero = Decimal(0)
    return Totals(
        sum((i.subtotal for i in found), zero),
        sum((i.tax for i in found), zero),
        sum((i.total for i in found), zero),
    )
