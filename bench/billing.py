"""The billing run at scale (issue 5, item 7; SPEC R20-R26, docs/billing.md): one tenant's run
over N subscriptions on in-process moto, at two sizes: the time ratio (linear: at most 1.1× the
size ratio, ≤ 11 for 10,000 → 100,000), DynamoDB requests by operation and step, read units per
account, write units per invoice, and no Scan. Figures, not a test: the exit status is the
runs' checks (completed, an invoice per account issued, rendered and emailed, no Scan).

The world: one root tenant, Cloud (DE, Europe/Berlin, billing day 1, EUR), with a default price
list and three monthly licenses on it, made through the services (``TenancyService``,
``CatalogueService``); then N subscriptions, ``--per-account`` (10) per customer account, each
with an email and an address, written straight to the tables with the models' ``batch_write()``
(as ``local/bulk.py`` writes tenant resellers): the ``Account`` of ``core.domain.new_account``
and the ``Subscription`` of ``orders.domain.new_subscription`` recorded with its ``new`` order
(``domain.recorded``: one ``history_entry``), started on the 15th of the previous period, so
the run charges the previous period's remaining days and the current period in advance. The
orders themselves are not written: the run never reads them.

The run: ``BillingService.begin`` for the current period, with a launcher that only keeps the
payload, then ``local.billing.run_steps`` (open → list → rate each chunk → finalize → render
each chunk → close), in-process and timed. Each step method of the container's service is
wrapped for the run: its wall time and its own DynamoDB tally (``bench/meter.py``: every request
of PynamoDB's clients, by operation and table). Rendering writes a PDF per invoice to S3 and
sends an email through SES (moto's; not metered: they are not DynamoDB). The collector's
full passes skip the set-up's objects (``gc.freeze``: moto's tables are not a Lambda's heap).
fpdf2 is imported and the S3 and SES clients made before the clock starts (a cold start's
constant, not the run's).

moto, not DynamoDB (what this benchmark accommodates, and what it does not):

- ``TransactWriteItems``: moto 5.2.5 backs up by ``copy.deepcopy`` of the whole table once per
  item of the transaction (``DynamoDBBackend.transact_write_items``), so the finalize step's
  transactions (99 drafts each, on the invoices table) copy the invoices table ~N/10 times over
  in all: quadratic in the run's size, an artefact of moto's rollback, not of the design
  (measured at 10,000 subscriptions: finalize 142 s and 5 GB of memory, instead of 4 s).
  By default the run is measured with that backup made of the items the transaction touches
  instead (restored the same way if it fails: ``item_rollback``; the run's transactions write
  no streamed table, so no stream record is left behind); ``--stock-moto`` measures moto as it
  is.
- ``Query``: moto's ``Table.all_items`` sorts the whole table on every call, and every Query
  page calls it; a page stops at 1 MB of whole items, so a paged listing costs ~N² (measured
  before: 7 pages of 0.9 s at 10,000 subscriptions, 65 of 2.7 s at 100,000). By default the run
  is measured with the items handed over unsorted (``unsorted_tables``: Query sorts what matches
  its key itself, so the answers are the same); each request still walks the whole table, as
  DynamoDB does not. ``--stock-moto`` measures moto as it is (hours at 100,000). Read units:
  DynamoDB bills a query for the items it reads, before the projection; the meter counts the
  projected items it returns, so the billed figure is printed next to it, from the items' size.
- The subscriptions' and accounts' streams hold a record per item written in set-up; they are
  emptied before the run (the run writes neither table): memory only.

    python -m bench.billing [--subs N ...] [--per-account N] [--stock-moto]
    python -m bench billing [--subs N ...] [--per-account N] [--stock-moto]
"""

from __future__ import annotations

import argparse
import contextvars
import copy
import gc
import itertools
import resource
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from bench.meter import (
    ENV,
    USD_PER_READ_UNIT,
    USD_PER_WRITE_UNIT,
    Meter,
    Tally,
    environment,
    item_size,
    metered,
    read_units,
    total,
)

#: issue 5's sizes: ~16 minutes on a 2-core machine (the 100,000 run 12.5 min, its set-up
#: 1.7 min; 3 GB of memory, moto's); ``--subs 1000 10000``, ~1.5 min, is ``make bench``'s.
DEFAULT_SIZES = (10_000, 100_000)
PER_ACCOUNT = 10
#: linear: the larger run may take at most this much more than the size ratio
LINEAR_SLACK = 1.1
#: (SKU, name, monthly price on the default list)
PRODUCTS = (
    ("O365-E3", "Office 365 E3", "25.00"),
    ("M365-BP", "Microsoft 365 Business Premium", "22.00"),
    ("TEAMS-P", "Teams Premium", "7.50"),
)
BY = "bench"
START_DAY = 15  # the subscriptions start on this day of the previous period
#: the run's steps: service method → label (``run_steps`` calls them in this order)
STEPS = {
    "begin": "begin",
    "open": "open",
    "list_accounts": "list",
    "rate_chunk": "rate",
    "finalize": "finalize",
    "render_chunk": "render",
    "close": "close",
}
READ_OPERATIONS = ("GetItem", "BatchGetItem", "Query", "Scan", "TransactGetItems")


# --- moto: a transaction's backup of the items it touches, not of whole tables ---------------


@contextmanager
def item_rollback() -> Iterator[None]:
    """moto's ``transact_write_items`` with its rollback backup made of the items the
    transaction names (deep copies, put back if it fails) instead of a deep copy of each
    item's whole table: the same outcome, in time independent of the tables' sizes."""
    from moto.dynamodb import models
    from moto.dynamodb.models.dynamo_type import DynamoType

    backend = models.DynamoDBBackend
    original = backend.transact_write_items
    module_copy = models.copy

    class TablesUncopied:
        """``copy`` as the original sees it while it runs: a table "copied" is the table."""

        @staticmethod
        def deepcopy(value: Any, memo: Any = None) -> Any:
            return value if isinstance(value, models.Table) else copy.deepcopy(value, memo)

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        saved: list[tuple[Any, Any, Any, Any]] = []
        for entry in transact_items:
            request: dict[str, Any] = next(iter(entry.values()), {})
            table = self.tables.get(request.get("TableName"))
            key = request.get("Item") or request.get("Key") or {}
            if table is None or table.hash_key_attr not in key:
                continue
            hash_value = DynamoType(key[table.hash_key_attr])
            range_name = table.range_key_attr
            range_value = DynamoType(key[range_name]) if range_name in key else None
            if range_name is not None and range_value is None:
                continue  # moto refuses it before writing anything
            before = copy.deepcopy(table.get_item(hash_value, range_value))
            saved.append((table, hash_value, range_value, before))
        models.copy = TablesUncopied  # type: ignore[assignment]
        try:
            original(self, transact_items)
        except Exception:
            for table, hash_value, range_value, before in reversed(saved):
                if range_value is None:
                    if before is None:
                        table.items.pop(hash_value, None)
                    else:
                        table.items[hash_value] = before
                elif before is None:
                    table.items.get(hash_value, {}).pop(range_value, None)
                else:
                    table.items[hash_value][range_value] = before
            raise
        finally:
            models.copy = module_copy

    backend.transact_write_items = transact_write_items  # type: ignore[method-assign]
    try:
        yield
    finally:
        backend.transact_write_items = original  # type: ignore[method-assign]


_QUERY_KEY: contextvars.ContextVar[list[tuple[str, Any]] | None] = contextvars.ContextVar(
    "query_key", default=None
)


@contextmanager
def unsorted_tables() -> Iterator[None]:
    """moto's ``Table.all_items`` sorts the whole table on every call, and every Query request
    (each page) calls it, then tests every item against the key in a loop of several lookups:
    O(n log n) in the table's size per request, where DynamoDB reads a key range. Here, during
    a Query, it hands over the items whose attributes equal the query's key conditions, found
    in one pass, unsorted: Query sorts and checks what it gets itself, so its answers are the
    same (a Scan's order would not be; the run issues none, and the report checks it). Each
    request still walks the whole table once."""
    from moto.dynamodb.models.table import Table

    original_items, original_query = Table.all_items, Table.query

    def all_items(self: Any) -> list[Any]:
        if not self.range_key_attr:
            items = list(self.items.values())
        else:
            items = [item for hash_set in self.items.values() for item in hash_set.values()]
        key = _QUERY_KEY.get()
        if key:
            items = [i for i in items if all(i.attrs.get(a) == v for a, v in key)]
        return items

    def query(self: Any, *args: Any, **kwargs: Any) -> Any:
        token = _QUERY_KEY.set(kwargs.get("hash_key_conditions"))
        try:
            return original_query(self, *args, **kwargs)
        finally:
            _QUERY_KEY.reset(token)

    Table.all_items = all_items  # type: ignore[method-assign]
    Table.query = query  # type: ignore[method-assign]
    try:
        yield
    finally:
        Table.all_items, Table.query = original_items, original_query  # type: ignore[method-assign]


@contextmanager
def patched_moto(stock: bool) -> Iterator[None]:
    if stock:
        yield
        return
    with item_rollback(), unsorted_tables():
        yield


# --- the world --------------------------------------------------------------------------------


@dataclass
class World:
    tenant: Any  # functions.core.domain.Tenant
    price_list_id: str
    refs: list[Any]  # functions.orders.domain.ProductRef, one per product
    prices: dict[str, Decimal]  # product id → monthly price on the default list
    accounts: int = 0
    subscriptions: int = 0
    subscription_bytes: int = 0  # the subscriptions' items, as DynamoDB sizes them


def provider() -> World:
    """Cloud, its default list and its products, through the services."""
    from functions import composition
    from functions.core.auth import Principal
    from functions.core.schemas import CreateTenant
    from functions.orders.domain import ProductRef
    from functions.pricelist.schemas import CreatePriceList, CreateProduct, SetPrice

    services = composition.container()
    platform = Principal(sub="platform", role="platform_admin", tenant_id=None)
    tenant = services.tenancy.create_tenant(
        platform,
        CreateTenant(
            name="Cloud", country="DE", time_zone="Europe/Berlin", currency="EUR", billing_day=1
        ),
    )
    admin = Principal(sub="admin", role="tenant_admin", tenant_id=tenant.id)
    default = services.catalogue.create_price_list(
        admin, CreatePriceList(name="Default", currency="EUR", default=True)
    )
    refs, prices = [], {}
    for sku, name, price in PRODUCTS:
        product = services.catalogue.create_product(
            admin,
            CreateProduct(
                sku=sku, name=name, type="license", billing_cycles=["monthly"], unit="seat"
            ),
        ).product
        services.catalogue.set_price(
            admin,
            default.id,
            SetPrice(product_id=product.id, billing_cycle="monthly", price=price),
        )
        refs.append(
            ProductRef(
                product.id,
                product.sku,
                product.name,
                product.type,
                product.billing_cycles,
                product.addon_for,
                product.origin_tenant_id,
                product.origin_product_id,
            )
        )
        prices[product.id] = Decimal(price)
    stored = services.tenancy.tenants.get(tenant.id)  # with its default list
    assert stored is not None
    return World(stored, default.id, refs, prices)


def populate(world: World, subscriptions: int, per_account: int) -> None:
    """``subscriptions`` subscriptions, ``per_account`` per customer account, written in
    batches (25 items per BatchWriteItem) straight to the tables, as the API leaves them."""
    from functions import composition
    from functions.core import domain as core
    from functions.core.adapters import AccountModel
    from functions.core.clock import now_utc, rfc3339, today_in
    from functions.core.ids import new_id
    from functions.invoices.domain import monthly_period
    from functions.orders import domain
    from functions.orders.adapters import SubscriptionModel

    tenant = world.tenant
    catalogue = composition.container().catalogue
    today = today_in(tenant.time_zone)
    current = monthly_period(tenant.billing_day, today)
    previous = monthly_period(tenant.billing_day, current.start - timedelta(days=1))
    start: date = previous.start + timedelta(days=START_DAY - 1)
    now = rfc3339(now_utc())
    address = {"line1": "Hauptstr. 1", "city": "Berlin", "postal_code": "10115", "country": "DE"}
    accounts = -(-subscriptions // per_account)
    with (
        AccountModel.batch_write() as account_batch,
        SubscriptionModel.batch_write() as sub_batch,
    ):
        for a in range(accounts):
            account = core.new_account(
                tenant,
                new_id("acc"),
                name=f"Customer {a:06d}",
                kind=core.CUSTOMER_KIND,
                parent=None,
                currency=None,
                price_list_currency=None,
                created_at=now,
                email=f"billing@customer{a:06d}.example",
                address=address,
            )
            account = replace(account, version=1)
            account_batch.save(AccountModel.of(account))
            if a == 0:  # every account buys at the default list
                for ref in world.refs:
                    product = catalogue.products.get(tenant.id, ref.id)
                    assert product is not None
                    price_list, price = catalogue.buyer_price(tenant, account, product, "monthly")
                    assert price_list.id == world.price_list_id and price == world.prices[ref.id]
            for s in range(min(per_account, subscriptions - a * per_account)):
                ref = world.refs[(a + s) % len(world.refs)]
                sub = domain.new_subscription(
                    new_id("sub"),
                    tenant_id=tenant.id,
                    account_id=account.id,
                    reseller_account_id=None,
                    product=ref,
                    quantity=1 + (a * 7 + s * 3) % 25,
                    billing_cycle="monthly",
                    term=None,
                    start=start,
                    today=today,
                    auto_renew=True,
                    characteristics={},
                    currency="EUR",
                    unit_price=world.prices[ref.id],
                    price_list_id=world.price_list_id,
                    parent=None,
                    now=now,
                )
                order = domain.order_for(
                    new_id("ord"), domain.NEW, sub, ref, effective=start, now=now, created_by=BY
                )
                item = SubscriptionModel.of(replace(domain.recorded(sub, order), version=1))
                if not world.subscription_bytes:  # they all have the same shape
                    world.subscription_bytes = item_size(item.serialize())
                sub_batch.save(item)
            world.accounts += 1
            world.subscriptions += min(per_account, subscriptions - a * per_account)
    world.subscription_bytes *= world.subscriptions


def prepare_aws(settings: Any) -> None:
    """The bucket and the sender identity the render step needs (as ``make run`` makes them)."""
    import boto3

    boto3.client("s3").create_bucket(Bucket=settings.documents_bucket)
    boto3.client("ses").verify_email_identity(EmailAddress=settings.mail_from)


def empty_streams() -> None:
    """Drop the stream records set-up left on moto's tables (the run reads no stream)."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.dynamodb.models import dynamodb_backends

    for table in dynamodb_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].tables.values():
        if table.stream_shard is not None:
            table.stream_shard.items = []


# --- the run ----------------------------------------------------------------------------------


class Keeper:
    """A launcher that keeps the payload: the steps are run (and timed) by the benchmark."""

    def __init__(self) -> None:
        self.payloads: list[dict[str, Any]] = []

    def start(self, name: str, payload: dict[str, Any]) -> str:
        self.payloads.append(payload)
        return name


@dataclass
class Step:
    calls: int = 0
    seconds: float = 0.0
    tally: Tally = field(default_factory=Tally)


@dataclass
class Probe:
    """Each step method of the service timed and metered on its own."""

    meter: Meter
    steps: dict[str, Step] = field(default_factory=lambda: {s: Step() for s in STEPS.values()})
    pdf_seconds: float = 0.0
    pdfs: int = 0

    def wrap(self, label: str, method: Callable[..., Any]) -> Callable[..., Any]:
        step = self.steps[label]

        def timed(*args: Any, **kwargs: Any) -> Any:
            self.meter.tally, started = step.tally, time.perf_counter()
            try:
                return method(*args, **kwargs)
            finally:
                step.calls += 1
                step.seconds += time.perf_counter() - started
                self.meter.tally = None

        return timed

    def pdf(self, render: Callable[..., bytes]) -> Callable[..., bytes]:
        def timed(*args: Any, **kwargs: Any) -> bytes:
            started = time.perf_counter()
            try:
                return render(*args, **kwargs)
            finally:
                self.pdf_seconds += time.perf_counter() - started
                self.pdfs += 1

        return timed


@dataclass
class Pages:
    """The margin report (R32) read through to its end, a page of 100 at a time."""

    pages: int = 0
    lines: int = 0
    tally: Tally = field(default_factory=Tally)

    @property
    def reads_per_page(self) -> float:
        return self.tally.reads / max(1, self.pages)


def read_margin(meter: Meter, reports: Any, tenant_id: str, period_start: str) -> dict[str, Pages]:
    """Every page of the run's margin report, by subscription and by customer, as
    ``GET /reports/margin`` reads them (``MarginReports.reports.page``), metered."""
    from functions.invoices.domain import margin
    from functions.invoices.services.margin import report_key

    key = report_key(tenant_id, margin.period_label(period_start))
    found = {}
    for label, prefix in (("subscriptions", "s#"), ("customers", "g#customer#")):
        pages = found[label] = Pages()
        cursor: str | None = None
        meter.tally = pages.tally
        try:
            while True:
                items, cursor = reports.reports.page(key, prefix, 100, cursor)
                pages.pages += 1
                pages.lines += len(margin.merged(items))
                if cursor is None:
                    break
        finally:
            meter.tally = None
    return found


@dataclass
class Result:
    world: World
    probe: Probe
    wall_seconds: float
    setup_seconds: float
    run: Any  # functions.invoices.domain.BillingRun, read back after the run
    documents: int
    emails: int
    peak_mb: float
    stock_moto: bool
    margin: dict[str, Pages]

    @property
    def tally(self) -> Tally:
        return total([step.tally for step in self.probe.steps.values()])

    @property
    def scans(self) -> int:
        return self.tally.operations()["Scan"]


def measure(subscriptions: int, per_account: int, stock_moto: bool) -> Result:
    from moto import mock_aws

    with environment(ENV), mock_aws(), metered() as meter:
        from functions import composition
        from functions.core.persistence import create_tables
        from functions.invoices import documents
        from local.billing import run_steps

        composition.reset()
        services = composition.container()  # binds the models
        create_tables(composition.models())
        meter.learn(composition.models())
        prepare_aws(services.settings)

        started = time.perf_counter()
        world = provider()
        populate(world, subscriptions, per_account)
        empty_streams()
        billing = services.billing
        keeper = Keeper()
        billing.launcher = lambda: keeper  # type: ignore[assignment,return-value]
        import fpdf  # noqa: F401  (a cold start's import, not the run's)

        billing.documents(), billing.mailer()  # the clients, made once per container
        gc.collect()
        # The set-up's objects (moto's copy of the tables) are not the run's: frozen, and the
        # collector paused for the run, so its passes over moto's multi-GB heap are not timed
        # (a Lambda's heap holds none of it; its invocations are short).
        gc.freeze()
        gc.disable()
        setup_seconds = time.perf_counter() - started

        probe = Probe(meter)
        originals = {name: getattr(billing, name) for name in STEPS}
        render = documents.render_pdf
        for name, label in STEPS.items():
            setattr(billing, name, probe.wrap(label, originals[name]))
        documents.render_pdf = probe.pdf(render)
        try:
            with patched_moto(stock_moto):
                started = time.perf_counter()
                run = billing.begin(world.tenant, None, started_by=BY)
                run_steps(billing, keeper.payloads[-1])
                wall = time.perf_counter() - started
                margin = read_margin(meter, services.margin, world.tenant.id, run.period_start)
        finally:
            documents.render_pdf = render
            for name in STEPS:
                delattr(billing, name)  # the class's methods again

        done = billing.repository.run(world.tenant.id, run.id, consistent=True)
        result = Result(
            world=world,
            probe=probe,
            wall_seconds=wall,
            setup_seconds=setup_seconds,
            run=done,
            documents=count_documents(services.settings.documents_bucket),
            emails=count_emails(),
            peak_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            stock_moto=stock_moto,
            margin=margin,
        )
        composition.reset()
    gc.enable()
    gc.unfreeze()
    gc.collect()
    return result


def count_documents(bucket: str) -> int:
    import boto3

    pages = boto3.client("s3").get_paginator("list_objects_v2").paginate(Bucket=bucket)
    return sum(page.get("KeyCount", 0) for page in pages)


def count_emails() -> int:
    import boto3

    return int(boto3.client("ses").get_send_quota()["SentLast24Hours"])


# --- the report -------------------------------------------------------------------------------


def _seconds(value: float) -> str:
    return f"{value:,.1f} s" if value < 600 else f"{value / 60:,.1f} min"


def report(result: Result) -> int:
    world, probe, tally, run = result.world, result.probe, result.tally, result.run
    accounts, invoices = world.accounts, run.invoices if run else 0
    print(
        f"{world.subscriptions:,} subscriptions on {accounts:,} accounts "
        f"({world.subscriptions / max(1, accounts):.0f} each) in one tenant; run "
        f"{run.status if run else 'MISSING'}: {run.chunks if run else 0} chunks, "
        f"{invoices:,} invoices, {run.issued if run else 0:,} issued, "
        f"{result.documents:,} PDFs in S3, {result.emails:,} emails"
        f"{'; moto stock' if result.stock_moto else ''}"
    )
    print(
        f"  run {_seconds(result.wall_seconds)} (set-up, not measured: "
        f"{_seconds(result.setup_seconds)}); peak RSS {result.peak_mb:,.0f} MB"
    )

    print("\n  time by step")
    print(f"    {'':<10}{'calls':>7}{'s':>10}{'share':>8}{'in DynamoDB':>13}{'requests':>10}")
    for label, step in probe.steps.items():
        share = step.seconds / result.wall_seconds if result.wall_seconds else 0.0
        print(
            f"    {label:<10}{step.calls:>7,}{step.seconds:>10.1f}{share:>8.0%}"
            f"{step.tally.call_seconds:>12.1f}s{step.tally.total_requests:>10,}"
        )
    render = probe.steps["render"]
    if probe.pdfs:
        print(
            f"    render: {probe.pdfs:,} PDFs in {probe.pdf_seconds:.1f} s "
            f"({probe.pdf_seconds / probe.pdfs * 1000:.1f} ms each), DynamoDB "
            f"{render.tally.call_seconds:.1f} s, S3 and SES the rest "
            f"({render.seconds - probe.pdf_seconds - render.tally.call_seconds:.1f} s)"
        )

    print("\n  DynamoDB requests by operation and table")
    labels = [label for label, step in probe.steps.items() if step.tally.total_requests]
    print(f"    {'':<44}" + "".join(f"{label:>9}" for label in labels) + f"{'all':>9}")
    for site, count in sorted(tally.requests.items(), key=lambda kv: (-kv[1], kv[0])):
        cells = "".join(f"{probe.steps[label].tally.requests[site]:>9,}" for label in labels)
        print(f"    {site[0] + ' ' + site[1]:<44}{cells}{count:>9,}")
    operations = tally.operations()
    reads = sum(operations[op] for op in READ_OPERATIONS)
    per_account = ", ".join(
        f"{op} {operations[op] / accounts:.3f}" for op in READ_OPERATIONS if operations[op]
    )
    print(
        f"    reads {reads:,} = {reads / accounts:.3f} per account ({per_account}); writes "
        f"{tally.writes:,} = {tally.writes / max(1, invoices):.3f} per invoice"
    )
    ms = ", ".join(
        f"{op} {tally.seconds[op] / count * 1000:.1f}" for op, count in operations.most_common()
    )
    print(f"    ms per request on this moto: {ms}")
    scans = result.scans
    print(f"    Scan: {scans} {'(none: as designed)' if not scans else '!! a Scan in the run'}")

    print("\n  capacity units (computed from payload sizes)")
    listed = probe.steps["list"].tally
    billed_list = read_units(world.subscription_bytes, False)  # the items read, whole
    rru = tally.read_units - listed.read_units + billed_list
    print(
        f"    read units {rru:,.1f} = {rru / accounts:.3f} per account, of which the list "
        f"step's query {billed_list:,.1f} (billed on the {world.subscription_bytes / 1e6:,.1f} "
        f"MB of items read; the meter counts {listed.read_units:,.1f} for the attributes it "
        f"returns)"
    )
    targets = ", ".join(f"{t} {u:,.0f}" for t, u in sorted(tally.units_by_target.items()))
    print(
        f"    write units {tally.write_units:,.0f} = {tally.write_units / max(1, invoices):.2f}"
        f" per invoice ({targets})"
    )
    usd = rru * USD_PER_READ_UNIT + tally.write_units * USD_PER_WRITE_UNIT
    print(
        f"    DynamoDB on-demand: ${usd:.4f} for the run = ${usd / max(1, invoices) * 1000:.4f}"
        f" per 1,000 invoices"
    )
    print("\n  the margin report (R32), read to its end 100 lines a page")
    for label, pages in result.margin.items():
        print(
            f"    by {label:<14}{pages.lines:>9,} lines (the total included) in {pages.pages:,} "
            f"pages: {pages.tally.reads:,} read requests = {pages.reads_per_page:.2f} per page "
            f"(goal ≤ 1)"
        )
    margin_ok = (
        result.margin["subscriptions"].lines == world.subscriptions + 1
        and result.margin["customers"].lines == accounts + 1
        and all(p.reads_per_page <= 1 for p in result.margin.values())
    )
    ok = (
        run is not None
        and run.status == "completed"
        and invoices == accounts == run.issued == result.documents == result.emails
        and not scans
        and margin_ok
    )
    print(
        f"\n  check: completed, one invoice per account, issued, rendered, emailed, no Scan, "
        f"a margin line per subscription and customer at ≤ 1 read a page → "
        f"{'ok' if ok else 'FAILED'}"
    )
    return 0 if ok else 1


def compare(small: Result, large: Result) -> None:
    """The time ratio: a figure (the exit status is the runs' checks)."""
    n, m = small.world.subscriptions, large.world.subscriptions
    bar = LINEAR_SLACK * m / n
    ratio = large.wall_seconds / small.wall_seconds
    print(
        f"t({_size(m)})/t({_size(n)}) = {ratio:.2f} (linear ≤ {bar:g}): "
        f"{'met' if ratio <= bar else 'NOT met'}"
    )
    steps = ", ".join(
        f"{label} {large.probe.steps[label].seconds / step.seconds:.1f}"
        for label, step in small.probe.steps.items()
        if step.seconds > 0.01
    )
    print(f"  by step: {steps}")
    rest = [r.wall_seconds - r.probe.steps["list"].seconds for r in (small, large)]
    pages = [r.probe.steps["list"].tally.operations()["Query"] for r in (small, large)]
    page_ms = [
        r.probe.steps["list"].tally.seconds["Query"] / max(1, p) * 1000
        for r, p in zip((small, large), pages, strict=True)
    ]
    print(
        f"  without the list step: {rest[1] / rest[0]:.2f} "
        f"({'met' if rest[1] / rest[0] <= bar else 'NOT met'}); the list step queries the "
        f"tenant's shards of the by_billing index, {pages[0]} → {pages[1]} requests at "
        f"{page_ms[0]:,.0f} → {page_ms[1]:,.0f} ms each (moto walks the whole table per request)"
    )
    requests = large.tally.total_requests / small.tally.total_requests
    print(
        f"  requests {requests:.2f}×, read units per account "
        f"{_per_account(large) / _per_account(small):.2f}×"
    )


def _per_account(result: Result) -> float:
    return result.tally.read_units / max(1, result.world.accounts)


def _size(n: int) -> str:
    return f"{n // 1000}k" if n >= 1000 and n % 1000 == 0 else str(n)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.billing", description=__doc__)
    parser.add_argument(
        "--subs",
        type=int,
        nargs="+",
        default=list(DEFAULT_SIZES),
        help="subscriptions per run, one run each (default: 10000 100000)",
    )
    parser.add_argument("--per-account", type=int, default=PER_ACCOUNT, help="subscriptions each")
    parser.add_argument(
        "--stock-moto",
        action="store_true",
        help="moto's own transactions (a deep copy of the table per item: quadratic)",
    )
    args = parser.parse_args(argv)
    if min(args.subs) < 1 or args.per_account < 1:
        parser.error("--subs and --per-account must be at least 1")
    results: list[Result] = []
    status = 0
    for n in sorted(args.subs):
        print(f"-- {n:,} subscriptions")
        results.append(measure(n, args.per_account, args.stock_moto))
        status |= report(results[-1])
        print()
    for small, large in itertools.pairwise(results):
        compare(small, large)
    return status


if __name__ == "__main__":
    sys.exit(main())
