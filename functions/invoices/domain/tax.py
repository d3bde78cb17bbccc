"""Totals and tax (R23): each line is rounded half-up to the currency's minor unit; the
subtotal is the sum of the lines; tax at the bill-to country's rate, rounded once; total =
subtotal + tax."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from functions.core.money import round_money
from functions.invoices.domain.lines import Line


@dataclass(frozen=True)
class Totals:
    subtotal: Decimal
    tax: Decimal
    total: Decimal


def totals(lines: Iterable[Line], tax_rate: Decimal, currency: str) -> Totals:
    """R23: subtotal = the sum of the (rounded) lines; tax at the bill-to country's rate,
    rounded once; total = subtotal + tax."""
    subtotal = round_money(sum((line.amount for line in lines), Decimal(0)), currency)
    tax = round_money(subtotal * tax_rate, currency)
    return Totals(subtotal, tax, subtotal + tax)


# VAT standard rates by country (R23), as of 2026. A bill-to country not listed is not taxed:
# the issuer's tax rules (reverse charge, exports) are its accountant's; documented.
def _rates(text: str) -> dict[str, Decimal]:
    words = text.split()
    return dict(zip(words[::2], map(Decimal, words[1::2]), strict=True))


TAX_RATES = _rates(
    """
    AT 0.20 BE 0.21 BG 0.20 CH 0.081 CY 0.19 CZ 0.21 DE 0.19 DK 0.25 EE 0.24 ES 0.21 FI 0.255
    FR 0.20 GB 0.20 GR 0.24 HR 0.25 HU 0.27 IE 0.23 IT 0.22 LT 0.21 LU 0.17 LV 0.21 MT 0.18
    NL 0.21 NO 0.25 PL 0.23 PT 0.23 RO 0.21 SE 0.25 SI 0.22 SK 0.23 US 0 CA 0 AU 0.10 NZ 0.15
    JP 0.10 SG 0.09
    """
)


def tax_rate(country: str | None) -> Decimal:
    """R23: the bill-to country's VAT rate; 0 for a country not listed."""
    return TAX_RATES.get(country or "", Decimal(0))
