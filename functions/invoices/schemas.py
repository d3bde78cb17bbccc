"""Request and response models of billing: usage records (R25), billing runs (R24) and
invoices (R26)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import date
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated, Any, get_type_hints

from pydantic import AwareDatetime, Field, StringConstraints, create_model

from functions.core.schemas import LINE, Body, Id, ListQuery, Out, Query
from functions.invoices.domain import InvoiceLine, LineKind

UsageKey = Annotated[
    str, StringConstraints(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:/@-]+$")
]
UsageQuantity = Annotated[str, StringConstraints(pattern=r"^\d{1,10}(\.\d{1,6})?$")]


class RecordUsage(Body):
    """One metered use of a subscription (R25). ``key`` deduplicates: the same key twice is
    counted once; the same key with another quantity, unit or time is a 409."""

    subscription_id: Id
    quantity: UsageQuantity = Field(description="a decimal string, up to 6 decimals")
    unit: Annotated[str, StringConstraints(min_length=1, max_length=32), LINE]
    at: AwareDatetime = Field(description="when it was used (RFC 3339 with an offset)")
    key: UsageKey = Field(description="the deduplication key, unique per subscription")


class UsageQuery(ListQuery):
    subscription_id: Id


class UsageOut(Out):
    subscription_id: str
    key: str
    quantity: str
    unit: str
    at: str
    recorded_at: str
    source: dict[str, str] | None = Field(
        default=None, description="a copy made by back ordering: the reseller's record"
    )


# --- billing runs (R24) and invoices (R26) ----------------------------------------------------


class StartRun(Body):
    """Run a period: the one starting on ``period_start`` (a billing day), by default the
    current one. Running a period again resumes it: nothing invoiced is invoiced twice."""

    period_start: date | None = None


class RunFailure(Out):
    account_id: str
    error: str


class RunOut(Out):
    id: str
    period_start: str
    period_end: str = Field(description="exclusive: the period is [period_start, period_end)")
    status: str = Field(description="queued, running, completed or completed_with_failures")
    attempt: int = Field(description="1, then one more each time the period is run again")
    created_at: str
    updated_at: str
    started_by: str
    finished_at: str | None = None
    accounts: int = Field(description="billable accounts listed")
    chunks: int = Field(description="pages of accounts, one Map iteration each")
    chunks_rated: int
    chunks_rendered: int
    invoices: int = Field(description="invoices of the period (found or drafted)")
    issued: int = Field(description="of them, issued with a number")
    failed_accounts: int
    failures: list[RunFailure] = Field(default_factory=list)


class InvoiceQuery(ListQuery):
    account_id: Id | None = None
    received: bool = Field(
        default=False,
        description="a tenant admin: the invoices its provider issued to it (R20)",
    )


class PreviewQuery(Query):
    account_id: Id


#: The OpenAPI descriptions of an invoice line's fields; the fields themselves are declared once,
#: by ``domain.InvoiceLine`` (``InvoiceLineOut`` is derived from it).
LINE_DESCRIPTIONS = {
    "kind": "charge, credit (of the line it names), usage or fee (a cancellation penalty, R31)",
    "start": "first day billed",
    "end": "the day after the last day billed",
    "proration": "days billed / days in the whole period",
    "credits": "the key of the line it credits",
}
#: how the API writes a domain type: amounts and factors as strings (R23), a kind by its value
_WIRE: dict[Any, Any] = {Decimal: str, LineKind: str}


def out_model(name: str, record: type, descriptions: Mapping[str, str]) -> type[Out]:
    """A response model with the fields of the dataclass ``record``, in its order, as the API
    writes them (``_WIRE``), its defaults, and ``descriptions`` (each must name a field)."""
    hints = get_type_hints(record)
    fields = {f.name: f for f in dataclasses.fields(record)}
    unknown = set(descriptions) - set(fields)
    if unknown:
        raise ValueError(f"descriptions of no field of {record.__name__}: {sorted(unknown)}")
    definitions: dict[str, Any] = {
        key: (
            _WIRE.get(hints[key], hints[key]),
            Field(
                ... if f.default is dataclasses.MISSING else f.default,
                description=descriptions.get(key),
            ),
        )
        for key, f in fields.items()
    }
    return create_model(name, __base__=Out, __module__=__name__, **definitions)


if TYPE_CHECKING:  # a model made at run time: the type checker sees its base
    InvoiceLineOut = Out
else:
    InvoiceLineOut = out_model("InvoiceLineOut", InvoiceLine, LINE_DESCRIPTIONS)


class InvoiceOut(Out):
    id: str
    number: str | None = Field(description="gapless per issuer; null while a draft")
    status: str = Field(description="draft, issued or void")
    issuer: dict[str, Any]
    bill_to: dict[str, Any]
    account_id: str
    end_customer_id: str | None = None
    period_start: str
    period_end: str = Field(description="exclusive")
    currency: str
    subtotal: str
    tax_rate: str
    tax: str
    total: str
    line_count: int
    created_at: str
    issued_at: str | None = None
    voided_at: str | None = None
    run_id: str
    document_url: str | None = Field(default=None, description="the PDF, once rendered")
    lines: list[InvoiceLineOut] | None = None


class PreviewOut(Out):
    """The account's next invoice, rated now and not stored (R26): its lines and totals; with
    separate invoices, each end customer's in ``invoices``."""

    account_id: str
    period_start: str
    period_end: str
    currency: str | None
    subtotal: str
    tax: str
    total: str
    lines: list[InvoiceLineOut]
    invoices: list[InvoiceOut]


# --- the margin report (R32) --------------------------------------------------------------------

Month = Annotated[str, StringConstraints(pattern=r"^\d{4}-(0[1-9]|1[0-2])$")]
Grouping = Annotated[str, StringConstraints(pattern=r"^(reseller|customer|product)$")]


class MarginQuery(ListQuery):
    period: Month = Field(description="YYYY-MM: the billing runs whose periods start that month")
    group_by: Grouping | None = Field(
        default=None, description="reseller, customer or product; without it, subscriptions"
    )


class MarginFigures(Out):
    revenue: str = Field(description="what the tenant invoiced")
    cost: str = Field(description="billed_cost + own_cost")
    billed_cost: str = Field(description="what its provider invoiced it")
    own_cost: str = Field(description="its own products' cost (a root tenant's, R1)")
    margin: str
    margin_percent: str | None = Field(description="of revenue; null without revenue")
    negative: bool = Field(description="the margin is below zero")


class MarginGroupOut(MarginFigures):
    id: str = Field(description="the reseller, customer or product; 'direct', 'own'")
    name: str
    subscriptions: int


class MarginRowOut(MarginFigures):
    subscription_id: str
    customer_id: str
    customer_name: str
    reseller_id: str = Field(description="the reseller account selling it, or 'direct'")
    reseller_name: str
    product_id: str
    sku: str
    product_name: str
    purchase: bool = Field(
        description="billed to the tenant by its provider, not for a subscription it sells"
    )


class MarginReportOut(Out):
    period: str
    currency: str
    group_by: str | None
    totals: MarginGroupOut | None = Field(description="the tenant's totals, on the first page")
    items: list[MarginRowOut | MarginGroupOut]
    next_cursor: str | None
