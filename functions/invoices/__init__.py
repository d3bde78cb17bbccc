"""Billing (SPEC §6, R20–R26): usage records, the billing run and invoices. See
``docs/billing.md``.

- ``domain/``: the rules, pure, one module per concept (its ``__init__`` lists them and
  re-exports every name) — who bills whom (R20), periods (R21), proration by days and
  reconciliation by linked credit lines (R22), rounding and tax (R23), the run's chunks and
  gapless numbers (R24), usage (R25), invoices and their totals (R26).
- ``services/``: one service per step of the work — ``UsageService`` (``POST``/``GET /usage``:
  a use recorded once per deduplication key, only in a period a run will still bill),
  ``BillingService`` (start or resume a tenant's run of a period; the daily schedule; the run's
  steps — open, list the billable accounts, rate a chunk, finalize, render, close),
  ``InvoiceService`` (invoices, their documents, void and preview) and ``Rater`` (what the run
  and the preview rate, loaded up front, into drafts).
- ``handlers.py``: the Lambda functions of the Task states of ``infra/billing_run.asl.json``
  (``billing_open`` … ``billing_close``) and ``billing_schedule``, which EventBridge calls daily.
- ``documents.py``: the invoice PDF (fpdf2, imported on first use) and the email linking to it.
- ``adapters.py``: the tables ``usage``, ``invoices``, ``invoice_lines``, ``billing_ledger``,
  ``invoice_sequences``, ``billing_runs`` and ``billing_chunks`` (``docs/data-model.md``), the
  batched reads rating makes of the other contexts' tables, and the S3 document store, the SES
  mailer and the Step Functions launcher.
- ``routes.py``: ``/usage``, ``/billing-runs``, ``/invoices`` (with ``?received=true``),
  ``/invoices/preview``, ``/invoices/{id}``, ``/invoices/{id}/document`` and
  ``/invoices/{id}/void``.
"""
