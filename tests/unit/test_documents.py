"""Invoice documents (R26): the PDF, the e-mail and the storage key. No I/O.

pypdf is not a dependency, so the PDF is rendered uncompressed (``compress=False``) and its
text is looked for in the content streams, where the core fonts write it as ``(text) Tj`` with
``(``, ``)`` and ``\\`` escaped."""

from __future__ import annotations

import re
from dataclasses import replace
from decimal import Decimal
from typing import Any

import pytest

from functions.invoices import documents
from functions.invoices.documents import Email, document_key, email_message, render_pdf
from functions.invoices.domain import CHARGE, CREDIT, DRAFT, ISSUED, Invoice, InvoiceLine

D = Decimal

ISSUER: dict[str, Any] = {
    "name": "Cloud Reseller GmbH",
    "country": "DE",
    "address": {
        "line1": "Hauptstraße 1",
        "line2": None,
        "city": "Berlin",
        "postal_code": "10115",
        "country": "DE",
    },
}
BILL_TO: dict[str, Any] = {
    "name": "Contoso AG",
    "email": "billing@contoso.example",
    "country": "DE",
    "address": {
        "line1": "Musterweg 5",
        "line2": "3. OG",
        "city": "München",
        "postal_code": "80331",
        "country": "DE",
    },
    "accounting_number": "ACC-42",
}


def line(no: int, **changes: Any) -> InvoiceLine:
    base = InvoiceLine(
        no=no,
        kind=CHARGE,
        subscription_id=f"sub-{no}",
        product_id="prod-m365",
        sku="M365-BP",
        product_name="Microsoft 365 Business Premium",
        end_customer_id=f"acc-end-{no}",
        end_customer_name="Fabrikam Ltd",
        description="Microsoft 365 Business Premium × 10, 2026-01-01 to 2026-01-31",
        period_start="2026-01-01",
        period_end="2026-02-01",
        start="2026-01-01",
        end="2026-02-01",
        quantity=D(10),
        unit_price=D("103.74"),
        proration=D("1.000000"),
        amount=D("1037.40"),
        key=f"key-{no}",
    )
    return replace(base, **changes)


LINES = [
    line(1),
    line(
        2,
        product_name="Azure plan",
        description="Azure plan × 1, 2026-01-01 to 2026-01-31",
        quantity=D(1),
        unit_price=D("197.16"),
        amount=D("197.16"),
    ),
    line(
        3,
        kind=CREDIT,
        description="Credit: Microsoft 365 Business Premium × 10, 2026-01-16 to 2026-01-31",
        proration=D("0.516129"),
        amount=D("-535.43"),
        credits="key-1",
    ),
]
# The document shows the totals as stored (domain.totals computes them); these are chosen so
# that the total needs a thousands separator.
ISSUED_INVOICE = Invoice(
    id="inv-abc123",
    tenant_id="ten-1",
    run_id="run-1",
    account_id="acc-contoso",
    currency="EUR",
    period_start="2026-01-01",
    period_end="2026-02-01",
    status=ISSUED,
    issuer=ISSUER,
    bill_to=BILL_TO,
    subtotal=D("1037.44"),
    tax_rate=D("0.19"),
    tax=D("197.12"),
    total=D("1234.56"),
    line_count=len(LINES),
    created_at="2026-02-01T03:00:00Z",
    number="INV-000012",
    sequence=12,
    issued_at="2026-02-01T03:04:05Z",
)
DRAFT_INVOICE = replace(ISSUED_INVOICE, status=DRAFT, number=None, sequence=None, issued_at=None)


def shown(pdf: bytes, text: str) -> bool:
    """``text`` is drawn in the (uncompressed) PDF."""
    escaped = text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
    return f"({escaped}) Tj".encode("latin-1") in pdf or escaped.encode("latin-1") in pdf


def pages(pdf: bytes) -> int:
    return len(re.findall(rb"/Type /Page\b(?!s)", pdf))


def plain(invoice: Invoice = ISSUED_INVOICE, lines: list[InvoiceLine] = LINES) -> bytes:
    return render_pdf(invoice, lines, compress=False)


# --- the PDF -----------------------------------------------------------------------------------


def test_a_pdf_file() -> None:
    for compress in (True, False):
        pdf = render_pdf(ISSUED_INVOICE, LINES, compress=compress)
        assert pdf.startswith(b"%PDF-")
        assert pdf.rstrip().endswith(b"%%EOF")
    assert len(render_pdf(ISSUED_INVOICE, LINES)) < len(plain())  # compressed by default


def test_the_invoice_is_shown() -> None:
    pdf = plain()
    for text in [
        "INV-000012",
        "Issued",
        "2026-02-01",  # issue date
        "2026-01-01 to 2026-01-31",  # the period: its last day, not period_end
        "EUR",
        "Cloud Reseller GmbH",
        "Hauptstraße 1",  # latin-1 is kept as is
        "10115 Berlin",
        "Contoso AG",
        "80331 München",
        "billing@contoso.example",
        "Account no. ACC-42",
        "Fabrikam Ltd",
        "Azure plan × 1, 2026-01-01 to",  # × is latin-1 (0xD7): kept
        "1,037.40",  # an amount: the currency's minor unit, thousands grouped
        "103.74",  # a unit price
        "0.516129",  # proration: 6 decimals
        "1.000000",
        "-535.43",  # a credit
        "Subtotal",
        "1,037.44",
        "Tax (19 %)",
        "197.12",
        "Total (EUR)",
        "1,234.56",
    ]:
        assert shown(pdf, text), text
    assert not shown(pdf, "DRAFT")
    assert pages(pdf) == 1


def test_columns_and_credit_lines() -> None:
    pdf = plain()
    for heading in ("End customer", "Description", "Quantity", "Unit price", "Proration"):
        assert shown(pdf, heading), heading
    assert shown(pdf, "Credit: Microsoft 365")
    # a credit line whose description does not say so is labelled
    credit = line(9, kind=CREDIT, description="Seats removed", amount=D("-5.00"))
    assert shown(plain(lines=[credit]), "Credit: Seats removed")


def test_a_draft_says_draft() -> None:
    pdf = plain(DRAFT_INVOICE)
    assert shown(pdf, "DRAFT INVOICE")
    assert shown(pdf, "DRAFT")
    assert shown(pdf, "Draft")  # the status
    assert not shown(pdf, "INV-0000")
    assert b"(-) Tj" in pdf  # no issue date yet: "—", written in latin-1


def test_tax_rates_as_percentages() -> None:
    for rate, text in [("0.081", "Tax (8.1 %)"), ("0.255", "Tax (25.5 %)"), ("0", "Tax (0 %)")]:
        assert shown(plain(replace(ISSUED_INVOICE, tax_rate=D(rate))), text)


def test_currencies_minor_units() -> None:
    yen = replace(ISSUED_INVOICE, currency="JPY", total=D(123456), tax=D(0), subtotal=D(123456))
    pdf = plain(yen, [line(1, unit_price=D(12345), amount=D(123450))])
    assert shown(pdf, "123,456")
    assert not shown(pdf, "123,456.00")
    assert shown(pdf, "123,450")


def test_no_lines() -> None:
    pdf = plain(lines=[])
    assert pdf.startswith(b"%PDF-")
    assert shown(pdf, "No lines in this period.")


def test_a_long_invoice_paginates_with_its_heading_on_every_page() -> None:
    """How long a long document takes is a figure of ``python -m bench documents``."""
    many = [
        line(no, end_customer_name=f"Customer {no}", amount=D(no) / 100) for no in range(1, 401)
    ]
    pdf = plain(lines=many)
    count = pages(pdf)
    assert count > 10
    assert pdf.count(b"(Unit price) Tj") == count  # the heading row, once per page
    assert pdf.count(b"(Proration) Tj") == count
    assert shown(pdf, "Customer 1") and shown(pdf, "Customer 400")
    assert f"(Page {count} of ) Tj ({count}) Tj".encode() in pdf  # {nb}: drawn on its own


def test_long_texts_wrap_and_stay_within_a_page() -> None:
    long_name = "Very Long Customer Name " * 40
    unbroken = "X" * 400
    pdf = plain(lines=[line(1, end_customer_name=long_name, description=unbroken)] * 30)
    assert pdf.startswith(b"%PDF-") and pages(pdf) > 1
    assert shown(pdf, "...")  # a text of more than 12 lines is cut


@pytest.mark.parametrize(
    "name",
    [
        "Łódź Software Sp. z o.o.",
        "株式会社クラウド",
        "Ωmega — “Quotes” → arrows… €",
        "Tab\tand\nnew line\x00\x85",
        "😀 Emoji Inc.",
    ],
)
def test_names_outside_latin1_do_not_crash(name: str) -> None:
    invoice = replace(
        ISSUED_INVOICE,
        issuer={**ISSUER, "name": name},
        bill_to={**BILL_TO, "name": name, "address": None},
    )
    pdf = plain(invoice, [line(1, end_customer_name=name, description=name)])
    assert pdf.startswith(b"%PDF-")
    assert render_pdf(invoice, [line(1, end_customer_name=name)]).startswith(b"%PDF-")


def test_latin1() -> None:
    latin1 = documents._latin1
    assert latin1("Straße × 3, café") == "Straße × 3, café"
    assert latin1("a – b — c → d … “e” €5") == 'a - b - c -> d ... "e" EUR5'
    assert latin1("Łódź Żółć") == "Lódz Zólc"  # accents dropped where that leaves a letter
    assert latin1("Đakovo Œuvre") == "Dakovo OEuvre"
    assert latin1("日本 Ω") == "?? ?"
    assert latin1("a\tb\nc\x00\x85") == "a b c??"
    assert latin1(None) == "None"


def test_rendering_is_deterministic() -> None:
    assert render_pdf(ISSUED_INVOICE, LINES) == render_pdf(ISSUED_INVOICE, LINES)
    assert plain(DRAFT_INVOICE) == plain(DRAFT_INVOICE)
    # the creation date is the invoice's, not the clock's
    assert b"/CreationDate (D:20260201030405Z" in plain()


# --- the e-mail --------------------------------------------------------------------------------

LINK = "https://docs.example.com/invoices/inv-abc123.pdf?X-Amz-Signature=abc&X-Amz-Expires=3600"


def test_email() -> None:
    email = email_message(ISSUED_INVOICE, LINK)
    assert isinstance(email, Email)
    assert email.subject == "Invoice INV-000012 from Cloud Reseller GmbH: 1,234.56 EUR"
    for body in (email.text, email.html):
        assert "INV-000012" in body
        assert "1,234.56 EUR" in body
        assert "Contoso AG" in body
        assert "2026-01-01 to 2026-01-31" in body
        assert "19 %" in body
    assert LINK in email.text
    assert 'href="https://docs.example.com/invoices/inv-abc123.pdf?X-Amz-Signature=abc&amp;' in (
        email.html
    )
    with pytest.raises(AttributeError):
        email.subject = "changed"  # type: ignore[misc]


def test_email_escapes_html() -> None:
    invoice = replace(
        ISSUED_INVOICE,
        issuer={**ISSUER, "name": 'Reseller "Best" <b>'},
        bill_to={**BILL_TO, "name": "<Acme & Co>"},
    )
    email = email_message(invoice, 'https://x.example/a"onclick="alert(1)')
    assert "&lt;Acme &amp; Co&gt;" in email.html
    assert "<Acme" not in email.html
    assert "<b>" not in email.html
    assert 'href="https://x.example/a&quot;onclick=&quot;alert(1)"' in email.html
    assert "<Acme & Co>" in email.text  # plain text is not escaped


def test_email_subject_is_one_line() -> None:
    invoice = replace(ISSUED_INVOICE, issuer={**ISSUER, "name": "Evil\r\nBcc: x@example.com"})
    subject = email_message(invoice, LINK).subject
    assert "\n" not in subject and "\r" not in subject


# --- storage -----------------------------------------------------------------------------------


def test_document_key() -> None:
    assert document_key(ISSUED_INVOICE) == "invoices/ten-1/2026-01-01/inv-abc123.pdf"


def test_no_aws_or_framework_imports() -> None:
    source = documents.__file__
    with open(source, encoding="utf-8") as file:
        text = file.read()
    for banned in ("boto3", "pynamodb", "chalice", "aws_lambda_powertools"):
        assert f"import {banned}" not in text and f"from {banned}" not in text
