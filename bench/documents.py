"""Invoice documents (R26): how long the PDF of a long invoice takes to render, and how it
grows with its lines. A figure, not a test (the unit tests check what the PDF shows; issue 12
moved the time they used to assert here).

The billing run's render step renders a chunk's documents in one Lambda call; its budget is
that function's timeout (``infra.template.BILLING_TASK_TIMEOUT_S``, 300 s). The bench renders
invoices of 100, 500 and 2,500 lines, compressed as in production, and prints seconds, size and
lines per second, and the ratio of the largest one's time to the budget.

    python -m bench documents
"""

from __future__ import annotations

import statistics
import time
from decimal import Decimal

from functions.invoices.documents import render_pdf
from functions.invoices.domain import CHARGE, ISSUED, Invoice, InvoiceLine
from infra.template import BILLING_TASK_TIMEOUT_S

SIZES = (100, 500, 2500)
RUNS = 3

_PARTY = {
    "name": "Cloud Reseller GmbH",
    "country": "DE",
    "address": {"line1": "Hauptstraße 1", "city": "Berlin", "postal_code": "10115"},
}


def _invoice(count: int) -> tuple[Invoice, list[InvoiceLine]]:
    lines = [
        InvoiceLine(
            no=no,
            kind=CHARGE,
            subscription_id=f"sub-{no}",
            product_id="prod-m365",
            sku="M365-BP",
            product_name="Microsoft 365 Business Premium",
            end_customer_id=f"acc-end-{no}",
            end_customer_name=f"Customer {no}",
            description="Microsoft 365 Business Premium × 10, 2026-01-01 to 2026-01-31",
            period_start="2026-01-01",
            period_end="2026-02-01",
            start="2026-01-01",
            end="2026-02-01",
            quantity=Decimal(10),
            unit_price=Decimal("103.74"),
            proration=Decimal("1.000000"),
            amount=Decimal("1037.40"),
            key=f"key-{no}",
        )
        for no in range(1, count + 1)
    ]
    subtotal = sum((line.amount for line in lines), Decimal(0))
    invoice = Invoice(
        id="inv-bench",
        tenant_id="ten-bench",
        run_id="run-bench",
        account_id="acc-bench",
        currency="EUR",
        period_start="2026-01-01",
        period_end="2026-02-01",
        status=ISSUED,
        issuer=_PARTY,
        bill_to=_PARTY,
        subtotal=subtotal,
        tax_rate=Decimal("0.19"),
        tax=(subtotal * Decimal("0.19")).quantize(Decimal("0.01")),
        total=(subtotal * Decimal("1.19")).quantize(Decimal("0.01")),
        line_count=count,
        created_at="2026-02-01T03:00:00Z",
        number="INV-000001",
        sequence=1,
        issued_at="2026-02-01T03:04:05Z",
    )
    return invoice, lines


def main() -> int:
    print(f"{'lines':>6} {'seconds':>8} {'KB':>7} {'lines/s':>8}")
    seconds = 0.0
    for count in SIZES:
        invoice, lines = _invoice(count)
        times = []
        for _ in range(RUNS):
            started = time.perf_counter()
            pdf = render_pdf(invoice, lines)
            times.append(time.perf_counter() - started)
        seconds = statistics.median(times)
        print(f"{count:>6} {seconds:>8.2f} {len(pdf) / 1024:>7.0f} {count / seconds:>8.0f}")
    print(
        f"the {SIZES[-1]:,}-line document: {seconds:.2f} s = {seconds / BILLING_TASK_TIMEOUT_S:.3f}"
        f" × the {BILLING_TASK_TIMEOUT_S} s timeout of the render step (median of {RUNS})"
    )
    return 0
