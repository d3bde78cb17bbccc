"""HTTP routes of billing: usage records (R25), billing runs (R24) and invoices (R26)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from functions.core.api import Api, Call, Document
from functions.core.auth import CUSTOMER, RESELLER, TENANT_ADMIN
from functions.core.money import format_money
from functions.core.pagination import Page
from functions.core.schemas import ListQuery
from functions.invoices.schemas import (
    InvoiceLineOut,
    InvoiceOut,
    InvoiceQuery,
    MarginFigures,
    MarginGroupOut,
    MarginQuery,
    MarginReportOut,
    MarginRowOut,
    PreviewOut,
    PreviewQuery,
    RecordUsage,
    RunOut,
    StartRun,
    UsageOut,
    UsageQuery,
)

if TYPE_CHECKING:  # types only: a route module loads its service when first called
    from functions.invoices.domain import BillingRun, Invoice, InvoiceLine, UsageRecord, margin

api = Api("billing")
PDF = "application/pdf"
CSV = "text/csv"


def usage_out(record: UsageRecord) -> UsageOut:
    return UsageOut(
        subscription_id=record.subscription_id,
        key=record.key,
        quantity=str(record.quantity),
        unit=record.unit,
        at=record.at,
        recorded_at=record.recorded_at,
        source=record.source,
    )


@api.route(
    "/usage",
    "POST",
    summary="Record a metered use of a subscription, once per deduplication key (R25)",
    roles=(TENANT_ADMIN,),
    body=RecordUsage,
    response=UsageOut,
    status=201,
    errors=(400, 404, 409),
)
def record_usage(call: Call) -> UsageOut:
    return usage_out(call.container.usage.record(call.principal, call.body))


@api.route(
    "/usage",
    "GET",
    summary="A subscription's usage records, oldest first (R25)",
    roles=(TENANT_ADMIN, RESELLER, CUSTOMER),
    query=UsageQuery,
    response=UsageOut,
    paginated=True,
)
def list_usage(call: Call) -> Page[UsageOut]:
    page = call.container.usage.list(
        call.principal, call.query.subscription_id, call.limit, call.cursor
    )
    return Page([usage_out(r) for r in page.items], page.next_cursor)


# --- billing runs (R24) ---------------------------------------------------------------------


def run_out(run: BillingRun) -> RunOut:
    values = {f.name: getattr(run, f.name) for f in dataclasses.fields(run)}
    values.pop("tenant_id")
    return RunOut.model_validate(values)


@api.route(
    "/billing-runs",
    "POST",
    summary="Run a billing period now (R24): the run of that period, started or resumed",
    roles=(TENANT_ADMIN,),
    body=StartRun,
    response=RunOut,
    status=202,
    errors=(400, 404, 409),
)
def start_run(call: Call) -> RunOut:
    return run_out(call.container.billing.start(call.principal, call.body.period_start))


@api.route(
    "/billing-runs",
    "GET",
    summary="The tenant's billing runs, latest period first (R24)",
    roles=(TENANT_ADMIN,),
    query=ListQuery,
    response=RunOut,
    paginated=True,
)
def list_runs(call: Call) -> Page[RunOut]:
    page = call.container.billing.runs(call.principal, call.limit, call.cursor)
    return Page([run_out(run) for run in page.items], page.next_cursor)


@api.route(
    "/billing-runs/{run_id}",
    "GET",
    summary="A billing run's progress: its accounts, chunks, invoices and failures (R24)",
    roles=(TENANT_ADMIN,),
    response=RunOut,
)
def get_run(call: Call) -> RunOut:
    return run_out(call.container.billing.run(call.principal, call.params["run_id"]))


# --- invoices (R26) ---------------------------------------------------------------------------


def line_out(line: InvoiceLine, currency: str) -> InvoiceLineOut:
    values = {f.name: getattr(line, f.name) for f in dataclasses.fields(line)}
    return InvoiceLineOut.model_validate(
        {
            **values,
            "quantity": str(line.quantity),
            "unit_price": str(line.unit_price),
            "proration": str(line.proration),
            "amount": format_money(line.amount, currency),
        }
    )


def invoice_out(
    invoice: Invoice, lines: Sequence[InvoiceLine] | None, public_url: str
) -> InvoiceOut:
    c = invoice.currency
    return InvoiceOut(
        id=invoice.id,
        number=invoice.number,
        status=invoice.status,
        issuer=invoice.issuer,
        bill_to=invoice.bill_to,
        account_id=invoice.account_id,
        end_customer_id=invoice.end_customer_id,
        period_start=invoice.period_start,
        period_end=invoice.period_end,
        currency=c,
        subtotal=format_money(invoice.subtotal, c),
        tax_rate=str(invoice.tax_rate),
        tax=format_money(invoice.tax, c),
        total=format_money(invoice.total, c),
        line_count=invoice.line_count,
        created_at=invoice.created_at,
        issued_at=invoice.issued_at,
        voided_at=invoice.voided_at,
        run_id=invoice.run_id,
        document_url=(
            f"{public_url}/invoices/{invoice.id}/document" if invoice.document_key else None
        ),
        lines=None if lines is None else [line_out(line, c) for line in lines],
    )


@api.route(
    "/invoices",
    "GET",
    summary="Invoices: a tenant admin's of every account (or ?account_id=, or ?received=true: "
    "its provider's to it), a customer's or reseller's own, issued ones (R26)",
    roles=(TENANT_ADMIN, RESELLER, CUSTOMER),
    query=InvoiceQuery,
    response=InvoiceOut,
    paginated=True,
)
def list_invoices(call: Call) -> Page[InvoiceOut]:
    page = call.container.invoices.invoices(
        call.principal,
        call.query.account_id,
        call.limit,
        call.cursor,
        received=call.query.received,
    )
    url = call.container.settings.public_url
    return Page([invoice_out(i, None, url) for i in page.items], page.next_cursor)


@api.route(
    "/invoices/preview",
    "GET",
    summary="A dry run of an account's next invoice, stored nowhere (R26)",
    roles=(TENANT_ADMIN, RESELLER, CUSTOMER),
    query=PreviewQuery,
    response=PreviewOut,
    errors=(400, 404, 409),  # 409 locked_by_reseller: a mirror is never billed (R20)
)
def preview_invoice(call: Call) -> PreviewOut:
    account_id = call.query.account_id
    preview = call.container.invoices.preview(call.principal, account_id)
    url = call.container.settings.public_url
    invoices = [invoice_out(d.invoice, d.lines, url) for d in preview.drafts]
    currency, totals = preview.currency, preview.totals

    def money(amount: Decimal) -> str:
        return format_money(amount, currency) if currency else "0"

    return PreviewOut(
        account_id=account_id,
        period_start=preview.billing.period.start.isoformat(),
        period_end=preview.billing.period.end.isoformat(),
        currency=currency,
        subtotal=money(totals.subtotal),
        tax=money(totals.tax),
        total=money(totals.total),
        lines=[line for invoice in invoices for line in invoice.lines or []],
        invoices=invoices,
    )


@api.route(
    "/invoices/{invoice_id}",
    "GET",
    summary="An invoice with its lines (R26)",
    roles=(TENANT_ADMIN, RESELLER, CUSTOMER),
    response=InvoiceOut,
)
def get_invoice(call: Call) -> InvoiceOut:
    invoice, lines = call.container.invoices.invoice(call.principal, call.params["invoice_id"])
    return invoice_out(invoice, lines, call.container.settings.public_url)


@api.route(
    "/invoices/{invoice_id}/void",
    "POST",
    summary="Void an issued invoice: it keeps its number; the next run bills its days again (R26)",
    roles=(TENANT_ADMIN,),
    response=InvoiceOut,
    errors=(404, 409),
)
def void_invoice(call: Call) -> InvoiceOut:
    invoice = call.container.invoices.void(call.principal, call.params["invoice_id"])
    return invoice_out(invoice, None, call.container.settings.public_url)


@api.route(
    "/invoices/{invoice_id}/document",
    "GET",
    summary="An issued invoice's PDF (R26) for `Accept: application/pdf` or `*/*`; without "
    "Accept, or preferring JSON, the invoice as `GET /invoices/{invoice_id}` answers it; 406 "
    "for any other Accept",
    roles=(TENANT_ADMIN, RESELLER, CUSTOMER),
    response=InvoiceOut,
    media=PDF,
    errors=(404, 406, 409),
)
def invoice_document(call: Call) -> Document | InvoiceOut:
    if call.media != PDF:
        return get_invoice(call)
    invoice_id = call.params["invoice_id"]
    body = call.container.invoices.document(call.principal, invoice_id)
    return Document(body=body, content_type=PDF, filename=f"{invoice_id}.pdf")


# --- the margin report (R32) --------------------------------------------------------------------


def _figures(
    revenue: margin.Row | margin.Group | None, cost: margin.Row | margin.Group | None, currency: str
) -> dict[str, Any]:
    from functions.invoices.domain import margin

    f = margin.figures(revenue, cost)
    return {
        "revenue": format_money(f.revenue, currency),
        "cost": format_money(f.cost, currency),
        "billed_cost": format_money(f.billed_cost, currency),
        "own_cost": format_money(f.own_cost, currency),
        "margin": format_money(f.margin, currency),
        "margin_percent": None if f.margin_percent is None else str(f.margin_percent),
        "negative": f.negative,
    }


def margin_line(
    pair: tuple[margin.Row | margin.Group | None, ...], currency: str
) -> MarginRowOut | MarginGroupOut:
    from functions.invoices.domain import margin

    revenue, cost = pair
    item = present_item(revenue, cost)
    figures = _figures(revenue, cost, currency)
    if isinstance(item, margin.Row):
        named = revenue if isinstance(revenue, margin.Row) else item
        return MarginRowOut(
            subscription_id=item.subscription_id,
            customer_id=item.customer_id,
            customer_name=named.customer_name,
            reseller_id=item.reseller_id,
            reseller_name=named.reseller_name,
            product_id=item.product_id,
            sku=named.sku,
            product_name=named.product_name,
            purchase=item.purchase,
            **figures,
        )
    assert isinstance(item, margin.Group)
    named_group = revenue if isinstance(revenue, margin.Group) and revenue.name else item
    return MarginGroupOut(
        id=item.key or "total",
        name=named_group.name or ("Total" if not item.key else item.key),
        subscriptions=max(
            revenue.subscriptions if isinstance(revenue, margin.Group) else 0,
            cost.subscriptions if isinstance(cost, margin.Group) else 0,
        ),
        **figures,
    )


def present_item(
    revenue: margin.Row | margin.Group | None, cost: margin.Row | margin.Group | None
) -> margin.Row | margin.Group:
    item = revenue or cost
    assert item is not None  # a pair holds one side at least
    return item


_CSV_FIGURES = list(MarginFigures.model_fields)


def margin_csv(report: MarginReportOut) -> str:
    """The page as CSV: the totals first (first page), then the lines, money as decimal text."""
    import csv
    import io

    ident = ["subscription_id", "customer_id", "customer_name", "reseller_id", "reseller_name"]
    ident += ["product_id", "sku", "product_name", "purchase"]
    columns = ["id", "name", "subscriptions"] if report.group_by else ident
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["period", "currency", *columns, *_CSV_FIGURES])
    rows = ([report.totals] if report.totals else []) + list(report.items)
    for row in rows:
        values = row.model_dump(mode="json")
        if isinstance(row, MarginGroupOut) and not report.group_by:  # the totals of rows
            values = {"subscription_id": "total", "customer_name": "Total", **values}
        writer.writerow(
            [report.period, report.currency]
            + [_csv_cell(values.get(c)) for c in columns + _CSV_FIGURES]
        )
    return out.getvalue()


def _csv_cell(value: object) -> str:
    """A cell a spreadsheet shows as text: never a formula (CSV injection)."""
    text = "" if value is None else str(value).lower() if isinstance(value, bool) else str(value)
    if text[:1] in ("=", "+", "-", "@", "\t", "\r") and not _number(text):
        return "'" + text
    return text


def _number(text: str) -> bool:
    try:
        Decimal(text)
    except ArithmeticError:
        return False
    return True


@api.route(
    "/reports/margin",
    "GET",
    summary="R32: the tenant's margin of a period — revenue it invoiced and cost its provider "
    "invoiced it per end-customer subscription, or per reseller, customer or product "
    "(`group_by`), with totals on the first page; CSV for `Accept: text/csv`",
    roles=(TENANT_ADMIN,),
    query=MarginQuery,
    response=MarginReportOut,
    media=CSV,
    errors=(400, 406),
)
def margin_report(call: Call) -> MarginReportOut | Document:
    query = call.query
    currency, pairs, next_cursor = call.container.margin.report(
        call.principal, query.period, query.group_by, call.limit, call.cursor
    )
    lines = [margin_line(pair, currency) for pair in pairs]
    totals = None
    if lines and isinstance(lines[0], MarginGroupOut) and lines[0].id == "total":
        totals, lines = lines[0], lines[1:]
    report = MarginReportOut(
        period=query.period,
        currency=currency,
        group_by=query.group_by,
        totals=totals,
        items=lines,
        next_cursor=next_cursor,
    )
    if call.media != CSV:
        return report
    headers = {"X-Next-Cursor": next_cursor} if next_cursor else {}
    return Document(
        body=margin_csv(report),
        content_type=f"{CSV}; charset=utf-8",
        filename=f"margin-{query.period}.csv",
        headers=headers,
    )
