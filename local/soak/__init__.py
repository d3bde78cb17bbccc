"""The soak test of the local platform (``make soak`` = ``python -m local.soak``; issue 11).

It starts a fresh ``python -m local.platform`` (what ``make run`` runs) as a subprocess on a free
port, with its own ``BSS_LOCAL_DIR`` (a temporary directory), ``RESET=1`` and a
``BSS_JWT_SECRET`` chosen here, so it mints its own tokens (``functions.core.auth.issue_token``)
and reads the demo's ids (SPEC §1) from the API. Then ``--clients`` storefront clients (threads,
each with its own keep-alive connection) act for ``--seconds`` on Cloud Resell's BSS as its
admin, its lite reseller Cloud Lite and their customers: new subscriptions (paid licences, a few
trials, pay-as-you-go plans), quantity changes on a shared pool (so clients race each other on
one subscription, as ten parallel changes did in issue 11), add-ons, cancels, usage records, and
list reads (``/subscriptions``, ``/orders``, ``/accounts``, ``/products``, ``/invoices``); one
billing run starts a third of the way in, and half way through ten threads change one
subscription at once. Every POST carries an ``Idempotency-Key``; a request that gets no answer
is counted ("no answer") and sent once more with the same key.

When the time is up it waits until the platform has drained: a last change (the probe) must
reach Cloud's BSS, and the checks below are repeated until they hold or ``--settle`` seconds
pass. What it checks, over HTTP only (the invariants of
``tests/integration/test_backorder_convergence.py``):

* no 5xx, and every request answered;
* every 200's order id is readable (``GET /orders/{id}`` as Cloud Resell's admin);
* one child order per version of every subscription (a change is committed over the version it
  read: two changes never start from the same state);
* every mirror equals its source: each paid subscription of Cloud Resell for one of Cloud's
  products has exactly one mirror in Cloud's BSS (``GET /subscriptions`` as Cloud's admin,
  matched by ``source.subscription_id``) with the same quantity, status, dates, billing cycle,
  term, auto-renew, characteristics and add-on link, Cloud's product, under the mirror of its
  account (itself under the mirror of its lite reseller, or Cloud Resell's account); nothing
  else is mirrored (trials are not);
* exactly one provider order per applied change: the orders of a mirror in Cloud's BSS are
  those of every version of its source, one each (their ids are derived from the source's
  version, ``functions.backorder.domain.provider_order_id``), each of the same type, date and
  quantity as the child's order of that version;
* every usage record of a mirrored subscription has its copy on the mirror (R25);
* the billing run finished, and the probe reached Cloud's BSS.

The replication lag is measured by polling a sample: a thread takes the latest applied change
of a mirrored subscription (up to four at a time), and polls Cloud's ``GET /orders/{id}`` for
the provider order of the version the child's answer showed until it answers 200 (every 10 ms
at first, then every 5 % of the time waited: a 5 % precision, and few polls when the lag is
long); the lag is the time from the child's 200 to that first 200. (The API's timestamps are
whole seconds: too coarse.) When another change commits in between, the answer shows the later
version, and the sample measures the lag of that one.

Prints the request count, the answers by status (and 4xx by error code), the lag p50/p99 and
PASS/FAIL per check; exits 1 if any check fails, 2 if the platform did not start. The
platform's log is kept (and shown) when something failed.

The package, by concept: ``http`` (the HTTP client and its statistics, the platform as a
subprocess), ``world`` (the demo as the API shows it), ``clients`` (the storefront clients, what
they share, the burst), ``lag`` (the replication-lag sampler), ``checks`` (the invariants) and
``run`` (``run_soak``, the report, the command line; ``__main__`` runs it).
"""
