"""Billing's use cases (R20-R26), one service per step of the work:

- ``usage``: ``UsageService`` — ``POST``/``GET /usage``: a use recorded once per deduplication
  key, only in a period a run will still bill (R25).
- ``runs``: ``BillingService`` — a tenant's run of a period started or resumed, the daily
  schedule, and the run's steps: open, list the billable accounts, rate a chunk, finalize,
  render, close (R24).
- ``invoices``: ``InvoiceService`` — the invoices as their readers see them, their documents,
  void, and the preview (R26).
- ``margin``: ``MarginReports`` — the margin report (R32): rows and sums written by the run from
  the invoices it issued, ``GET /reports/margin`` a page at a time.
- ``rating``: ``Rater`` — what the run and the preview rate, loaded up front, and an account's
  drafts (``domain.account_drafts``, R20-R23).
"""

from __future__ import annotations

from functions.invoices.domain import Draft, Preview, RatingError
from functions.invoices.services.invoices import InvoiceService
from functions.invoices.services.margin import MarginReports
from functions.invoices.services.rating import Rater
from functions.invoices.services.runs import FINALIZE_CHUNKS, ISSUE_BATCH, BillingService
from functions.invoices.services.usage import UsageService

__all__ = [
    "FINALIZE_CHUNKS",
    "ISSUE_BATCH",
    "BillingService",
    "Draft",
    "InvoiceService",
    "MarginReports",
    "Preview",
    "Rater",
    "RatingError",
    "UsageService",
]
