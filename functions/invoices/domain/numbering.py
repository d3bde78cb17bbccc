"""An invoice's life after its draft (R24, R26): issued with a gapless number per issuing
tenant, or voided (it keeps its number)."""

from __future__ import annotations

from dataclasses import replace

from functions.core.errors import Conflict
from functions.invoices.domain.invoice import DRAFT, ISSUED, VOID, Invoice


def invoice_number(sequence: int) -> str:
    """Gapless per issuing tenant (R24): ``INV-000001``, ``INV-000002``, …"""
    return f"INV-{sequence:06d}"


def issue(invoice: Invoice, sequence: int, issued_at: str) -> Invoice:
    """R24: a draft numbered; the caller takes ``sequence`` from the tenant's, in one
    transaction with it."""
    if invoice.status != DRAFT:
        raise ValueError(f"invoice {invoice.id} is {invoice.status}, not a draft")
    return replace(
        invoice,
        status=ISSUED,
        sequence=sequence,
        number=invoice_number(sequence),
        issued_at=issued_at,
    )


def void(invoice: Invoice, at: str) -> Invoice:
    """R26: an issued invoice withdrawn. It keeps its number (the sequence stays gapless); what
    it charged counts as not invoiced, so the next run bills it again, correctly."""
    if invoice.status != ISSUED:
        raise Conflict(
            f"only an issued invoice can be voided; this one is {invoice.status}",
            code="invalid_state",
            field="status",
        )
    return replace(invoice, status=VOID, voided_at=at)
