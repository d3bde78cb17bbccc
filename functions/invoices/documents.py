"""Invoice documents (SPEC R26): the PDF, the e-mail that links to it and where it is stored.
Pure: the PDF library, the invoices domain and money only.

- **PDF**: A4, fpdf2 with the core fonts (Helvetica), so every text goes through ``_latin1``.
  The lines table is drawn by hand (not ``FPDF.table``: about ten times faster for invoices of
  thousands of lines) and its heading row is repeated on every page it runs over. The same
  invoice renders to the same bytes: the creation date is the invoice's (issued, else created)
  time, never the clock.
- fpdf2 (with Pillow and fontTools) takes some 0.3-0.5 s to import, so it is imported when the
  first PDF is rendered, never when the app starts (cold start).
"""

from __future__ import annotations

import html
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from functions.core.money import minor_unit, round_money
from functions.invoices.domain import FACTOR_PLACES, Invoice, InvoiceLine, LineKind

if TYPE_CHECKING:
    from fpdf import FPDF

# --- text --------------------------------------------------------------------------------------

# Characters outside latin-1 that have a readable latin-1 spelling; any other is decomposed
# (accents dropped: "Ż" -> "Z") or else becomes "?".
_LATIN1 = str.maketrans(
    {
        "\u2010": "-",  # hyphen
        "\u2011": "-",  # non-breaking hyphen
        "\u2012": "-",  # figure dash
        "\u2013": "-",  # en dash
        "\u2014": "-",  # em dash
        "\u2015": "-",  # horizontal bar
        "\u2212": "-",  # minus
        "\u2018": "'",
        "\u2019": "'",
        "\u201a": "'",
        "\u201b": "'",
        "\u2032": "'",
        "\u201c": '"',
        "\u201d": '"',
        "\u201e": '"',
        "\u201f": '"',
        "\u2033": '"',
        "\u2039": "<",
        "\u203a": ">",
        "\u2022": "*",  # bullet
        "\u2026": "...",
        "\u2192": "->",
        "\u2190": "<-",
        "\u2194": "<->",
        "\u21d2": "=>",
        "\u2264": "<=",
        "\u2265": ">=",
        "\u2260": "!=",
        "\u2248": "~",
        "\u2122": "(TM)",
        "\u20ac": "EUR",
        "\u0141": "L",  # letters with no decomposition
        "\u0142": "l",
        "\u0110": "D",
        "\u0111": "d",
        "\u0152": "OE",
        "\u0153": "oe",
        "\u0131": "i",
        "\u0126": "H",
        "\u0127": "h",
        "\u2002": " ",
        "\u2003": " ",
        "\u2007": " ",
        "\u2009": " ",
        "\u200a": " ",
        "\u202f": " ",
        "\u200b": "",  # zero-width space
        "\u200d": "",  # zero-width joiner
        "\ufeff": "",  # byte-order mark
        "\t": " ",
        "\n": " ",
        "\r": " ",
    }
)


def _latin1_char(char: str) -> str:
    code = ord(char)
    if 0x20 <= code < 0x7F or 0xA0 <= code <= 0xFF:
        return char
    if code > 0xFF:
        base = "".join(
            c for c in unicodedata.normalize("NFKD", char) if not unicodedata.combining(c)
        )
        if base and all(0x20 <= ord(c) < 0x7F or 0xA0 <= ord(c) <= 0xFF for c in base):
            return base
    return "?"  # control characters (C0, DEL, C1) too: the core fonts' WinAnsi would misdraw C1


def _latin1(text: object) -> str:
    """``text`` in latin-1, as the core fonts need: common typography (dashes, quotes, arrows,
    €) spelt out, accents dropped where that leaves a latin-1 letter, anything else ``?``."""
    value = str(text).translate(_LATIN1)
    if value.isascii() and value.isprintable():
        return value
    return "".join(_latin1_char(char) for char in value)


# --- numbers -----------------------------------------------------------------------------------


def _money(amount: Decimal, currency: str) -> str:
    """An amount at the currency's minor unit, thousands grouped: ``1,234.56``, ``-12.00``."""
    value = round_money(amount, currency)
    return f"{(value if value else abs(value)):,f}"


def _price(amount: Decimal, currency: str) -> str:
    """A unit price: at least the currency's minor unit, more digits if it has them."""
    exponent = amount.as_tuple().exponent
    if isinstance(exponent, int) and -exponent > minor_unit(currency):
        return f"{amount:,f}"
    return _money(amount, currency)


def _quantity(quantity: Decimal) -> str:
    return f"{quantity:f}"


def _proration(factor: Decimal) -> str:
    return f"{factor.quantize(FACTOR_PLACES):f}"


def _percent(rate: Decimal) -> str:
    """A tax rate as a percentage: ``0.19`` -> ``19 %``, ``0.081`` -> ``8.1 %``."""
    return f"{(rate * 100).normalize():f} %"


# --- what the document says --------------------------------------------------------------------


def _number(invoice: Invoice) -> str:
    return invoice.number or "DRAFT"


def _last_day(invoice: Invoice) -> str:
    return (date.fromisoformat(invoice.period_end) - timedelta(days=1)).isoformat()


def _period(invoice: Invoice) -> str:
    return f"{invoice.period_start} to {_last_day(invoice)}"


def _issue_date(invoice: Invoice) -> str:
    return invoice.issued_at[:10] if invoice.issued_at else "—"


def _name(party: dict[str, Any]) -> str:
    return " ".join(str(party.get("name") or "").split())


def _address(party: dict[str, Any]) -> list[str]:
    """A party's postal lines: street lines, postal code and city, country."""
    address = party.get("address") or {}
    lines = [str(address.get(key) or "") for key in ("line1", "line2")]
    lines.append(f"{address.get('postal_code') or ''} {address.get('city') or ''}")
    lines.append(str(address.get("country") or party.get("country") or ""))
    return [line.strip() for line in lines if line.strip()]


def _stamp(invoice: Invoice) -> datetime:
    """The document's creation date: when the invoice was issued (a draft: created), so a
    re-render is byte-identical."""
    for value in (invoice.issued_at, invoice.created_at):
        if not value:
            continue
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            continue
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return datetime(2000, 1, 1, tzinfo=UTC)


# --- PDF layout --------------------------------------------------------------------------------

FONT = "Helvetica"
MARGIN = 15.0  # mm, every side
FOOTER = 18.0  # mm kept free at the bottom for the footer
# End customer, description, quantity, unit price, proration, amount: 180 mm (A4 less margins)
COLUMNS = (
    ("End customer", 36.0, "L"),
    ("Description", 62.0, "L"),
    ("Quantity", 14.0, "R"),
    ("Unit price", 22.0, "R"),
    ("Proration", 20.0, "R"),
    ("Amount", 26.0, "R"),
)
TABLE_WIDTH = sum(width for _, width, _ in COLUMNS)
TABLE_SIZE = 8.0  # pt
LINE_HEIGHT = 3.6  # mm, one text line of the table
PAD_X, PAD_Y = 1.5, 1.0  # mm, inside a table cell
MAX_CELL_LINES = 12  # a longer text is cut (with "...") so that a row always fits a page


def _wrap(pdf: FPDF, text: str, width: float) -> list[str]:
    """``text`` broken into lines at most ``width`` wide in the current font: at spaces, and
    inside a word longer than a line."""
    if pdf.get_string_width(text) <= width:
        return [text]
    lines: list[str] = []
    current = ""
    for word in text.split():
        candidate = f"{current} {word}" if current else word
        if pdf.get_string_width(candidate) <= width:
            current = candidate
            continue
        if current:
            lines.append(current)
        current = word
        while pdf.get_string_width(current) > width:  # a word wider than the column
            used, cut = 0.0, 0
            for char in current:  # the core fonts have no kerning: widths add up
                used += pdf.get_string_width(char)
                if used > width:
                    break
                cut += 1
            cut = max(cut, 1)
            lines.append(current[:cut])
            current = current[cut:]
        if len(lines) >= MAX_CELL_LINES:
            break
    lines.append(current)
    if len(lines) > MAX_CELL_LINES:
        lines = [*lines[: MAX_CELL_LINES - 1], "..."]
    return lines


def _new_pdf(invoice: Invoice, compress: bool) -> FPDF:
    from fpdf import FPDF  # deferred: heavy to import (see the module's docstring)

    footer_text = _latin1(f"{_name(invoice.issuer)} - Invoice {_number(invoice)}")

    class Document(FPDF):
        def footer(self) -> None:
            self.set_y(-MARGIN)
            self.set_font(FONT, size=7)
            self.set_text_color(110)
            self.cell(TABLE_WIDTH / 2, 4, footer_text, align="L")
            self.cell(TABLE_WIDTH / 2, 4, f"Page {self.page_no()} of {{nb}}", align="R")
            self.set_text_color(0)

    pdf = Document(orientation="portrait", unit="mm", format="A4")
    pdf.set_compression(compress)
    pdf.set_margins(MARGIN, MARGIN, MARGIN)
    pdf.set_auto_page_break(True, margin=FOOTER)
    pdf.set_creation_date(_stamp(invoice))
    pdf.set_title(f"Invoice {_number(invoice)}")
    pdf.set_author(_name(invoice.issuer))
    pdf.set_subject(f"{_name(invoice.bill_to)}, {_period(invoice)}")
    pdf.set_creator("BSS")
    pdf.set_lang("en")
    return pdf


def _block(pdf: FPDF, x: float, width: float, title: str, lines: Sequence[str]) -> float:
    """A titled block of text lines at ``x``, from the current y; answers where it ends."""
    pdf.set_x(x)
    pdf.set_font(FONT, "B", 8)
    pdf.set_text_color(110)
    pdf.cell(width, 4.5, _latin1(title.upper()), new_x="LEFT", new_y="NEXT")
    pdf.set_text_color(0)
    for no, line in enumerate(lines):
        pdf.set_font(FONT, "B" if no == 0 else "", 10 if no == 0 else 9)
        pdf.multi_cell(width, 4.5, _latin1(line), new_x="LEFT", new_y="NEXT")
    return pdf.get_y()


def _facts(pdf: FPDF, x: float, facts: Sequence[tuple[str, str]]) -> float:
    for label, value in facts:
        pdf.set_x(x)
        pdf.set_font(FONT, "", 9)
        pdf.set_text_color(110)
        pdf.cell(24, 5, _latin1(label))
        pdf.set_text_color(0)
        pdf.set_font(FONT, "B", 9)
        pdf.multi_cell(TABLE_WIDTH - (x - MARGIN) - 24, 5, _latin1(value), new_x="LMARGIN")
    return pdf.get_y()


def _heading(pdf: FPDF) -> None:
    """The lines table's heading row, at the current y."""
    pdf.set_font(FONT, "B", TABLE_SIZE)
    pdf.set_fill_color(235)
    height = LINE_HEIGHT + 2 * PAD_Y
    y = pdf.get_y()
    pdf.rect(MARGIN, y, TABLE_WIDTH, height, style="F")
    x = MARGIN
    for title, width, align in COLUMNS:
        _text(pdf, title, x, y + PAD_Y, width, align)
        x += width
    pdf.set_y(y + height)


def _text(pdf: FPDF, text: str, x: float, top: float, width: float, align: str) -> None:
    """One line of text in a cell at ``x``, its line box starting at ``top``."""
    left = x + PAD_X if align == "L" else x + width - PAD_X - pdf.get_string_width(text)
    pdf.text(left, top + LINE_HEIGHT * 0.75, text)


def _row(pdf: FPDF, cells: Sequence[str], italic: bool) -> None:
    pdf.set_font(FONT, "I" if italic else "", TABLE_SIZE)
    wrapped = [
        _wrap(pdf, _latin1(text), width - 2 * PAD_X)
        for text, (_, width, _) in zip(cells, COLUMNS, strict=True)
    ]
    height = max(len(lines) for lines in wrapped) * LINE_HEIGHT + 2 * PAD_Y
    if pdf.get_y() + height > pdf.page_break_trigger:
        pdf.add_page()
        _heading(pdf)
        pdf.set_font(FONT, "I" if italic else "", TABLE_SIZE)
    y = pdf.get_y()
    x = MARGIN
    for lines, (_, width, align) in zip(wrapped, COLUMNS, strict=True):
        for no, line in enumerate(lines):
            _text(pdf, line, x, y + PAD_Y + no * LINE_HEIGHT, width, align)
        x += width
    pdf.set_draw_color(200)
    pdf.line(MARGIN, y + height, MARGIN + TABLE_WIDTH, y + height)
    pdf.set_draw_color(0)
    pdf.set_y(y + height)


def _line_cells(line: InvoiceLine, currency: str) -> list[str]:
    description = line.description
    if line.kind == LineKind.CREDIT and not description.lower().startswith("credit"):
        description = f"Credit: {description}"
    customer = line.end_customer_name or line.end_customer_id
    return [
        customer,
        description,
        _quantity(line.quantity),
        _price(line.unit_price, currency),
        _proration(line.proration),
        _money(line.amount, currency),
    ]


def _totals(pdf: FPDF, invoice: Invoice) -> None:
    rows = [
        ("Subtotal", invoice.subtotal),
        (f"Tax ({_percent(invoice.tax_rate)})", invoice.tax),
        (f"Total ({invoice.currency})", invoice.total),
    ]
    if pdf.get_y() + 6 + 6 * len(rows) > pdf.page_break_trigger:
        pdf.add_page()  # the totals stay together
    pdf.ln(4)
    label_x, label_width, value_width = MARGIN + TABLE_WIDTH - 80, 50.0, 30.0
    for no, (label, amount) in enumerate(rows):
        last = no == len(rows) - 1
        if last:
            pdf.line(label_x, pdf.get_y(), MARGIN + TABLE_WIDTH, pdf.get_y())
        pdf.set_x(label_x)
        pdf.set_font(FONT, "B" if last else "", 10 if last else 9)
        pdf.cell(label_width, 6, _latin1(label), align="R")
        pdf.cell(value_width, 6, _money(amount, invoice.currency), align="R", new_x="LMARGIN")
        pdf.ln(6)


def render_pdf(invoice: Invoice, lines: Sequence[InvoiceLine], *, compress: bool = True) -> bytes:
    """R26: the invoice as an A4 PDF: issuer, bill-to, number (``DRAFT`` before it is issued),
    status, dates, currency, its lines (the heading repeated on each page), subtotal, tax and
    total. ``compress=False`` leaves the text readable in the bytes (tests)."""
    pdf = _new_pdf(invoice, compress)
    pdf.add_page()
    width = TABLE_WIDTH / 2 - 5
    right = MARGIN + TABLE_WIDTH / 2 + 5

    top = pdf.get_y()
    issuer = invoice.issuer
    issuer_lines = [_name(issuer), *_address(issuer)]
    issuer_lines += [
        f"{label} {issuer[key]}".strip()
        for label, key in (("VAT no.", "vat_number"), ("Tax ID", "tax_id"), ("", "email"))
        if issuer.get(key)
    ]
    left_end = _block(pdf, MARGIN, width, "From", issuer_lines)

    pdf.set_xy(right, top)
    pdf.set_font(FONT, "B", 20)
    title = "INVOICE" if invoice.number else "DRAFT INVOICE"
    pdf.cell(width, 10, title, align="R", new_x="LEFT", new_y="NEXT")
    right_end = _facts(
        pdf,
        right,
        [
            ("Invoice no.", _number(invoice)),
            ("Status", invoice.status.capitalize()),
            ("Issue date", _issue_date(invoice)),
            ("Period", _period(invoice)),
            ("Currency", invoice.currency),
        ],
    )

    pdf.set_y(max(left_end, right_end) + 6)
    bill_to = invoice.bill_to
    bill_lines = [_name(bill_to), *_address(bill_to)]
    if bill_to.get("email"):
        bill_lines.append(str(bill_to["email"]))
    if bill_to.get("accounting_number"):
        bill_lines.append(f"Account no. {bill_to['accounting_number']}")
    pdf.set_y(_block(pdf, MARGIN, width, "Bill to", bill_lines) + 8)

    _heading(pdf)
    for line in lines:
        _row(pdf, _line_cells(line, invoice.currency), italic=line.kind == LineKind.CREDIT)
    if not lines:
        _row(pdf, ["", "No lines in this period.", "", "", "", ""], italic=True)
    _totals(pdf, invoice)
    return bytes(pdf.output())


# --- e-mail ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Email:
    subject: str
    text: str
    html: str


def _one_line(text: str) -> str:
    """No line breaks (a subject is a header: no header injection) and single spaces."""
    return " ".join(text.split())


def email_message(invoice: Invoice, link: str) -> Email:
    """R26: the message that sends the bill-to a link to its invoice's document."""
    number = _number(invoice)
    issuer = _name(invoice.issuer)
    customer = _name(invoice.bill_to)
    total = f"{_money(invoice.total, invoice.currency)} {invoice.currency}"
    subtotal = _money(invoice.subtotal, invoice.currency)
    tax = f"{_money(invoice.tax, invoice.currency)} ({_percent(invoice.tax_rate)})"
    period = _period(invoice)
    subject = _one_line(f"Invoice {number} from {issuer}: {total}")
    text = (
        f"Hello {customer},\n\n"
        f"{issuer} has issued invoice {number} for the period {period}.\n\n"
        f"Subtotal: {subtotal} {invoice.currency}\n"
        f"Tax: {tax}\n"
        f"Total: {total}\n\n"
        f"The invoice (PDF): {link}\n"
    )
    e = html.escape
    body = (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f"<title>{e(subject)}</title></head>\n"
        '<body style="font-family: Helvetica, Arial, sans-serif;">\n'
        f"<p>Hello {e(customer)},</p>\n"
        f"<p>{e(issuer)} has issued invoice <strong>{e(number)}</strong> "
        f"for the period {e(period)}.</p>\n"
        "<table>\n"
        f"<tr><td>Subtotal</td><td>{e(subtotal)} {e(invoice.currency)}</td></tr>\n"
        f"<tr><td>Tax</td><td>{e(tax)}</td></tr>\n"
        f"<tr><td><strong>Total</strong></td><td><strong>{e(total)}</strong></td></tr>\n"
        "</table>\n"
        f'<p><a href="{e(link, quote=True)}">Download invoice {e(number)} (PDF)</a><br>'
        f"{e(link)}</p>\n"
        "</body></html>\n"
    )
    return Email(subject=subject, text=text, html=body)


# --- storage -----------------------------------------------------------------------------------


def document_key(invoice: Invoice) -> str:
    """Where the PDF is stored: ``invoices/{tenant_id}/{period_start}/{invoice id}.pdf``."""
    return f"invoices/{invoice.tenant_id}/{invoice.period_start}/{invoice.id}.pdf"
