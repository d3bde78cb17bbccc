"""Billing's rules (SPEC §6: R20-R26), pure: stdlib, the kernel and the other contexts' domains
only. One module per concept; every public name is re-exported here, so ``domain.X`` and
``from functions.invoices.domain import X`` reach it wherever it lives.

- ``periods``: billing periods, half-open ``[start, end)``, monthly from the account's billing
  day or annual from the anniversary (R21); proration by days over the whole period (R22).
- ``history``: what a subscription used — its history as steps, a period's segments (R8, R22).
- ``lines``: ``LineKind``, the rated ``Line``, the ``InvoiceLine`` an invoice shows (R26).
- ``charges``: charges, linked credits and ``reconcile`` — a period's billing made to match
  what was used, issued lines never edited (R22).
- ``rating``: usage in arrears (R25) and ``rate_subscription``, what a run adds for one
  subscription (R20-R22).
- ``tax``: totals, rounding and tax (R23).
- ``invoice``: the ``Invoice`` and its draft (R23, R26); ``numbering``: issued with a gapless
  number, or void (R24, R26).
- ``assembly``: who bills whom, the end customer an invoice is for, its id (R20, R24); a
  subscription rated at its prices (R7); ``account_drafts``, an account's invoices of a period
  from facts loaded up front — grouping, currency and ledger rules (R20-R24).
- ``runs``: the run of a period, the periods a tenant may run, its record and chunks (R24).
- ``metering``: usage records and when a use may be dated (R25).
"""

from __future__ import annotations

from functions.core.periods import Period, annual_period, monthly_period
from functions.invoices.domain.assembly import (
    Draft,
    Facts,
    Ledger,
    Preview,
    Rate,
    RatingError,
    account_drafts,
    bill_to,
    check_billable,
    end_customer,
    end_customers,
    invoice_id,
    metered,
    price_of,
    rated,
)
from functions.invoices.domain.charges import charge, credit, reconcile
from functions.invoices.domain.history import (
    BILLED_STATUSES,
    Change,
    Segment,
    Step,
    segments,
    timeline,
)
from functions.invoices.domain.invoice import (
    DRAFT,
    ISSUED,
    LINES_PER_PART,
    VOID,
    Invoice,
    combined,
    draft_invoice,
)
from functions.invoices.domain.lines import (
    InvoiceLine,
    Line,
    LineKind,
    Named,
    describe,
    invoice_lines,
)
from functions.invoices.domain.metering import (
    MAX_USAGE,
    USAGE_CLOCK_SKEW,
    USAGE_PLACES,
    UsageRecord,
    check_usage_time,
    usage_open_from,
    usage_record,
)
from functions.invoices.domain.numbering import invoice_number, issue, void
from functions.invoices.domain.periods import (
    ANNUAL,
    FACTOR_PLACES,
    MONTHLY,
    billing_period,
    next_period,
    prorated,
    proration,
    window_periods,
)
from functions.invoices.domain.rating import rate_subscription, reconcile_usage, usage
from functions.invoices.domain.runs import (
    CHUNK_ACCOUNTS,
    CHUNK_SUBSCRIPTIONS,
    COMPLETED,
    COMPLETED_WITH_FAILURES,
    MAX_FAILURES_SHOWN,
    QUEUED,
    RUNNING,
    BillingRun,
    Chunk,
    Run,
    check_run_period,
    chunked,
    close_status,
    run_for,
    run_id,
)
from functions.invoices.domain.tax import TAX_RATES, Totals, tax_rate, totals

#: the line kinds by their former names (tests, benchmarks)
CHARGE, CREDIT, USAGE = LineKind.CHARGE, LineKind.CREDIT, LineKind.USAGE

__all__ = [
    "ANNUAL",
    "BILLED_STATUSES",
    "CHARGE",
    "CHUNK_ACCOUNTS",
    "CHUNK_SUBSCRIPTIONS",
    "COMPLETED",
    "COMPLETED_WITH_FAILURES",
    "CREDIT",
    "DRAFT",
    "FACTOR_PLACES",
    "ISSUED",
    "LINES_PER_PART",
    "MAX_FAILURES_SHOWN",
    "MAX_USAGE",
    "MONTHLY",
    "QUEUED",
    "RUNNING",
    "TAX_RATES",
    "USAGE",
    "USAGE_CLOCK_SKEW",
    "USAGE_PLACES",
    "VOID",
    "BillingRun",
    "Change",
    "Chunk",
    "Draft",
    "Facts",
    "Invoice",
    "InvoiceLine",
    "Ledger",
    "Line",
    "LineKind",
    "Named",
    "Period",
    "Preview",
    "Rate",
    "RatingError",
    "Run",
    "Segment",
    "Step",
    "Totals",
    "UsageRecord",
    "account_drafts",
    "annual_period",
    "bill_to",
    "billing_period",
    "charge",
    "check_billable",
    "check_run_period",
    "check_usage_time",
    "chunked",
    "close_status",
    "combined",
    "credit",
    "describe",
    "draft_invoice",
    "end_customer",
    "end_customers",
    "invoice_id",
    "invoice_lines",
    "invoice_number",
    "issue",
    "metered",
    "monthly_period",
    "next_period",
    "price_of",
    "prorated",
    "proration",
    "rate_subscription",
    "rated",
    "reconcile",
    "reconcile_usage",
    "run_for",
    "run_id",
    "segments",
    "tax_rate",
    "timeline",
    "totals",
    "usage",
    "usage_open_from",
    "usage_record",
    "void",
    "window_periods",
]
