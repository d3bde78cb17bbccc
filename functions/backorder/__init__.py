"""Back ordering (SPEC §4, R11–R18) and the lite → tenant upgrade (§5, R19): a reseller tenant's
sales flow up into its provider's BSS, tier by tier.

- ``domain.py``: what one change in a child's BSS becomes in its provider's (mirror accounts and
  subscriptions, the provider's own order at the reseller's prices, a use copied onto a mirror),
  every item keyed deterministically by its source so duplicates, replays and reordering have
  exactly one effect; and the upgrade's copies, pre-checks and links.
- ``services.py``: ``Replicator`` (one version of a subscription → its mirror and the provider's
  order, R12–R14, R17, R18; an account's synced fields, R12; a use, R25), ``BackorderService``
  (activation, irreversible, with its backfill queued as a job of pages, R11; the account
  hierarchy view) and ``UpgradeService`` (the four retryable steps of R19).
- ``handlers.py``: the Lambda functions ``subscriptions_stream``, ``accounts_stream``,
  ``usage_stream`` and ``backfill_jobs`` (their sources are in ``infra/events.py``).
- ``routes.py``: ``POST``/``GET /tenants/{id}/backordering``, ``GET /accounts/{id}/hierarchy``,
  ``POST /tenants/{id}/upgrade``, ``/reconciliation-runs`` (R33).
- ``ReconciliationService`` (``services.py``): R33's runs comparing a child's records with
  their mirrors page by page (queue ``reconciliation``, function ``reconciliation_jobs``, the
  daily ``reconciliation_schedule``), and their repair through the ``Replicator``.

Its own tables are R33's reconciliation runs and their items (``reconciliation_runs``,
``reconciliation_items``); otherwise ``adapters.py`` writes mirrors, the provider's orders and
copied uses into the accounts, subscriptions, orders and usage tables, each a conditional
write without a read first; the backfill's job lives in ``jobs`` and the upgrade's copies go
through the core, catalogue and orders repositories. The refusals on mirrors (R15, R16: 409
``locked_by_reseller``) are enforced where the changes are made: the core, orders and invoices
contexts.
"""
