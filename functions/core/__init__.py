"""The shared kernel and the parties every context needs.

- Kernel: ``errors``, ``money``, ``ids``, ``clock``, ``settings``, ``auth`` (bearer tokens and
  the caller's scope, R28), ``api`` (the HTTP toolkit: one route declaration gives validation,
  roles, ``Idempotency-Key`` and the error object, R29), ``openapi``, ``pagination``,
  ``persistence`` (the PynamoDB base model, binding, transactions, table definitions),
  ``queues`` (SQS sends) and ``handlers`` (the batch processing every stream and queue function
  shares).
- Parties (``domain``, ``services``, ``adapters``, ``routes``): tenants (SPEC §1, R3, R5),
  accounts (R2, R20) with their contacts and notes, jobs (today the R11 backfill) and
  idempotency records; the routes ``/health``, ``/openapi.json``, ``/tenants`` and
  ``/accounts`` with their contacts and notes.
"""
