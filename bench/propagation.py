"""Price-list propagation (SPEC §2, R5, R6; docs/pricelists.md): one price change reaching N
tenant resellers, on in-process moto. DynamoDB requests, write and read units, invocations and
the largest page per invocation, wall time against raw ``put_item``. Figures, not a test.

The world: a root tenant, Cloud, with a product E3 (monthly) in its price list Resell at 20.00,
made through the services (``tenancy.create_tenant``, ``catalogue.create_product``,
``create_price_list``, ``set_price``); then ``--tenants`` tenant resellers on Resell, written
in batches straight to the tables as ``POST /tenants`` leaves them (as
``local/bulk.py`` writes them for the scale test too: the tenant, its account in Cloud's BSS
with Resell assigned, its copy of E3). Everything pending is delivered
(``local.runner.Runner.drain()``: the streams and queues of ``infra/events.py`` to the
functions of ``app.py``; the copies take Resell's offer version). Then each child gets a price
list of its own (its default, in batches too), selling its copy at a fixed 21.00, so that the
copy's margin alerts are read and, once the cost passes 21.00, written; the list is assigned to
nobody (no third tier), and what it sets off is drained too. None of this is measured.

Measured: ``catalogue.set_price`` of E3 in Resell to 23.00, then ``Runner.drain()`` until
nothing is left. The functions given to the runner (``local.runner.app_functions()``) are
wrapped to count their invocations and to switch ``bench/meter.py``'s tally on around each
call, one tally per invocation: only the handlers' DynamoDB requests are counted (the meter
sees PynamoDB's clients only; the runner polls streams and queues with boto3 clients of its
own, and the propagator sends with a plain botocore SQS client: a tally kept on outside the
handlers during the drain shows that it stays at zero). ``AccountRepository.assignees`` and
``Propagator.propagate_page`` are wrapped to record the tenants each ``price_changes``
invocation handled (its page of the list's assignees) and the copies it wrote. Write and read
units are computed from the payloads (``bench/meter.py``: moto's ConsumedCapacity is not what
DynamoDB bills); the products table has no index, so a copy's write is its table's units alone.

The floor is one write per affected catalogue item: the N copies of E3. The issue's bars: write
units ≤ 1.05 × the floor, and no invocation handles more than 500 tenants.

Time: the measured phase's wall time (set_price and the drain, the runner's polling of moto's
streams and queues included), and ``--raw-puts`` plain boto3 ``put_item`` calls of an item
shaped like a copy into the products table on the same moto right after it: time ratio =
measured wall time / (N / raw puts per second). A projection to 10,000 tenants scales this
run's per-tenant figures linearly (pages: ceil(N / 100)); it is a projection, not a
measurement (moto's own costs need not stay linear).

The default, 1,000 tenants, takes about 3.5 to 4.5 minutes here (2 cores, in-process moto), more
than the ~3 minutes a benchmark should: about half of it the unmeasured set-up, half the
measured change. It grows faster than N: moto sorts every item of a table on each Query (its
``Table.all_items``), so a query costs in proportion to the table, not to what it returns, and
each tenant brings queries of the pricelists and accounts tables, which grow with N (200 tenants
take ~40 s). ``--tenants`` for a quicker run.

    python -m bench.propagation [--tenants N] [--raw-puts N]
    python -m bench propagation [--tenants N] [--raw-puts N]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

from bench.meter import (
    DYNAMODB_ROUND_TRIP_S,
    ENV,
    FULL_VCPU_MB,
    LAMBDA_MB,
    USD_PER_GB_SECOND,
    USD_PER_INVOCATION,
    USD_PER_READ_UNIT,
    USD_PER_WRITE_UNIT,
    Meter,
    Tally,
    environment,
    metered,
    total,
)

DEFAULT_TENANTS = 1_000
PROJECTED_TENANTS = 10_000
RAW_PUTS = 1_000
#: The issue's bars: write units against the floor (one write per copy), tenants per invocation.
WRITE_BAR = 1.05
PAGE_BAR = 500
OLD_COST, NEW_COST, CHILD_PRICE = Decimal("20.00"), Decimal("23.00"), Decimal("21.00")
RAW_TENANT = "raw-baseline"

# The rows of the report: the functions the change goes through (price_changes split by whose
# list a message is for), in the order the change flows.
PRICES, PRODUCTS = "prices_stream", "products_stream"
PAGES, OWN_LISTS = "price_changes: Resell's pages", "price_changes: the children's lists"
ROWS = (PRICES, PAGES, PRODUCTS, OWN_LISTS)


@dataclass
class Invocation:
    function: str  # a row of ROWS, or another function's name
    records: int
    tally: Tally
    tenants: int = 0  # assignees on the pages it read
    written: int = 0  # copies it wrote
    failed: int = 0  # records it reported failed, or all of them if it raised


@dataclass
class Probe:
    """The wrapped functions' record of the measured phase (off until ``on`` is set)."""

    meter: Meter
    root: str = ""
    on: bool = False
    invocations: list[Invocation] = field(default_factory=list)
    current: Invocation | None = None
    outside: Tally = field(default_factory=Tally)  # PynamoDB requests outside the handlers

    def wrap(self, name: str, function: Callable[[dict[str, Any], Any], Any]) -> Any:
        def invoke(event: dict[str, Any], context: Any) -> Any:
            if not self.on:
                return function(event, context)
            records = event.get("Records", [])
            row = name
            if name == "price_changes":
                bodies = [json.loads(r["body"]) for r in records]
                mine = all(b["provider_tenant_id"] == self.root for b in bodies)
                row = PAGES if mine else OWN_LISTS
            invocation = Invocation(row, len(records), Tally(batches=1, records=len(records)))
            self.current, self.meter.tally = invocation, invocation.tally
            started = time.perf_counter()
            invocation.failed = len(records)  # unless it answers
            try:
                result = function(event, context)
                invocation.failed = len((result or {}).get("batchItemFailures") or [])
                return result
            finally:
                invocation.tally.wall_seconds = time.perf_counter() - started
                self.current, self.meter.tally = None, self.outside
                self.invocations.append(invocation)

        return invoke

    def by_row(self) -> dict[str, list[Invocation]]:
        rows: dict[str, list[Invocation]] = {row: [] for row in ROWS}
        for invocation in self.invocations:
            rows.setdefault(invocation.function, []).append(invocation)
        return rows


@contextmanager
def probed(probe: Probe) -> Iterator[None]:
    """Record each ``price_changes`` invocation's page of assignees and copies written."""
    from functions.core.adapters import AccountRepository
    from functions.pricelist.services import Propagator

    assignees, propagate_page = AccountRepository.assignees, Propagator.propagate_page

    def counted_assignees(self: Any, *args: Any, **kwargs: Any) -> Any:
        page = assignees(self, *args, **kwargs)
        if probe.current is not None:
            probe.current.tenants += len(page.items)
        return page

    def counted_page(self: Any, change: Any) -> int:
        written = propagate_page(self, change)
        if probe.current is not None:
            probe.current.written += written
        return written

    AccountRepository.assignees = counted_assignees  # type: ignore[method-assign]
    Propagator.propagate_page = counted_page  # type: ignore[method-assign]
    try:
        yield
    finally:
        AccountRepository.assignees = assignees  # type: ignore[method-assign]
        Propagator.propagate_page = propagate_page  # type: ignore[method-assign]


# --- the world ------------------------------------------------------------------------------


@dataclass
class World:
    admin: Any  # Cloud's tenant admin (a Principal)
    root: str
    e3: str
    resell: str
    children: list[str]


def own_lists(children: list[Any]) -> None:
    """Each child's own list, made its default (as ``create_price_list`` does for a tenant's
    first list), selling its copy of E3 at 21.00; in batches, as
    ``tests/integration/test_backorder_convergence.py`` writes prices. Assigned to nobody."""
    from functions.core.adapters import TenantModel
    from functions.core.clock import now_utc, rfc3339
    from functions.core.ids import new_id
    from functions.core.persistence import entity_values
    from functions.pricelist import domain
    from functions.pricelist.adapters import PriceListModel, PriceModel
    from functions.pricelist.domain import PriceList

    now = rfc3339(now_utc())
    with (
        TenantModel.batch_write() as tenants,
        PriceListModel.batch_write() as lists,
        PriceModel.batch_write() as prices,
    ):
        for tenant, copy in children:
            own = PriceList(
                id=new_id("prl"),
                tenant_id=tenant.id,
                name="Retail",
                currency="EUR",
                created_at=now,
                version=1,
            )
            lists.save(PriceListModel(**entity_values(own)))
            tenants.save(TenantModel.of(replace(tenant, default_price_list_id=own.id, version=2)))
            entry = domain.new_price(
                own,
                copy,
                billing_cycle="monthly",
                price=str(CHILD_PRICE),
                markup_percent=None,
                updated_at=now,
                previous=None,
            )
            prices.save(PriceModel.of(replace(entry, version=1)))


def change_price(world: World, price: Decimal) -> None:
    from functions import composition
    from functions.pricelist.schemas import SetPrice

    composition.container().catalogue.set_price(
        world.admin,
        world.resell,
        SetPrice(product_id=world.e3, billing_cycle="monthly", price=str(price)),
    )


def check(world: World) -> tuple[list[str], list[str]]:
    """The children whose copy does not cost 23.00, and those whose copy has no margin alert
    for its 21.00 (from one scan of the products table)."""
    from functions.core.ids import derived_id
    from functions.pricelist.adapters import ProductModel

    copies = {}
    for item in ProductModel.scan():
        copies[(item.tenant_id, item.id)] = item.entity()
    stale, unflagged = [], []
    for child in world.children:
        copy = copies.get((child, derived_id("prd", child, world.e3)))
        if copy is None or copy.costs != {"monthly": NEW_COST}:
            stale.append(child)
        elif not any(a.price == CHILD_PRICE and a.cost == NEW_COST for a in copy.margin_alerts):
            unflagged.append(child)
    return stale, unflagged


def raw_puts(world: World, count: int) -> float:
    """Plain boto3 put_item of an item shaped like a child's copy (one read back, tenant and id
    changed), ``count`` times into the products table: puts per second."""
    import boto3

    from functions.core.ids import derived_id
    from functions.pricelist.adapters import ProductModel

    client = boto3.client("dynamodb")
    table = ProductModel.Meta.table_name
    child = world.children[0]
    key = {"tenant_id": {"S": child}, "id": {"S": derived_id("prd", child, world.e3)}}
    sample = client.get_item(TableName=table, Key=key)["Item"]
    items = [
        {**sample, "tenant_id": {"S": RAW_TENANT}, "id": {"S": f"prd_raw{n:06d}"}}
        for n in range(count)
    ]
    started = time.perf_counter()
    for item in items:
        client.put_item(TableName=table, Item=item)
    return count / (time.perf_counter() - started)


# --- the report -------------------------------------------------------------------------------


@dataclass
class Run:
    tenants: int
    probe: Probe
    api: Tally  # set_price's own requests (the API call that starts it all)
    wall_seconds: float  # set_price and the drain
    drain_rounds: int
    puts_per_second: float
    stale: list[str]
    unflagged: list[str]

    @property
    def handlers(self) -> Tally:
        return total([i.tally for i in self.probe.invocations])


def _site(site: tuple[str, str]) -> str:
    return f"{site[0]} {site[1]}"


def report(run: Run) -> int:
    from functions.pricelist.services import Propagator
    from infra.events import STREAMS

    n, rows, handlers = run.tenants, run.probe.by_row(), run.handlers
    page_size = Propagator.PAGE
    print(
        f"{n:,} tenant resellers on Cloud's list Resell, each with a list of its own (assigned to"
        f" nobody) selling its\ncopy of E3 at {CHILD_PRICE}; one change: E3 {OLD_COST} → "
        f"{NEW_COST} in Resell (catalogue.set_price), then the runner drained "
        f"({run.drain_rounds:,} rounds)"
    )

    print("\ninvocations, handlers only (Lambda's, as the local runner delivers them)")
    header = f"  {'':<36}{'calls':>7}{'records':>9}{'tenants':>9}{'copies':>8}"
    print(header + f"{'requests':>10}{'WRU':>8}{'RRU':>9}{'s':>8}")
    for row, invocations in rows.items():
        tally = total([i.tally for i in invocations])
        print(
            f"  {row:<36}{len(invocations):>7,}{tally.records:>9,}"
            f"{sum(i.tenants for i in invocations):>9,}{sum(i.written for i in invocations):>8,}"
            f"{tally.total_requests:>10,}{tally.write_units:>8,.0f}{tally.read_units:>9,.1f}"
            f"{tally.wall_seconds:>8.1f}"
        )
    print(
        f"  {'all':<36}{len(run.probe.invocations):>7,}{handlers.records:>9,}"
        f"{sum(i.tenants for i in run.probe.invocations):>9,}"
        f"{sum(i.written for i in run.probe.invocations):>8,}{handlers.total_requests:>10,}"
        f"{handlers.write_units:>8,.0f}{handlers.read_units:>9,.1f}{handlers.wall_seconds:>8.1f}"
    )
    largest = max((i.tenants for i in run.probe.invocations), default=0)
    page_met = largest <= PAGE_BAR
    print(
        f"  largest number of tenants handled by one price_changes invocation: {largest:,} "
        f"(Propagator.PAGE = {page_size}; bar ≤ {PAGE_BAR}: {'met' if page_met else 'NOT met'})"
    )
    print(
        "  (tenants: assignees on the pages an invocation read; copies: copies it wrote; "
        "s: wall time in the handler)"
    )
    failed = sum(i.failed for i in run.probe.invocations)
    if failed:
        print(f"  !! {failed} record(s) failed and were delivered again (counted each time)")

    print("\nDynamoDB requests by operation and table, handlers only")
    columns = [row for row in ROWS if rows[row]] + [r for r in rows if r not in ROWS]
    tallies = {row: total([i.tally for i in rows[row]]) for row in columns}
    short = {PRICES: "prices", PAGES: "pages", PRODUCTS: "products", OWN_LISTS: "own lists"}
    print(
        f"  {'':<36}"
        + "".join(f"{short.get(row, row):>11}" for row in columns)
        + f"{'all':>9}{'per tenant':>12}"
    )
    for site, count in sorted(handlers.requests.items(), key=lambda kv: (-kv[1], kv[0])):
        cells = "".join(f"{tallies[row].requests[site]:>11,}" for row in columns)
        print(f"  {_site(site):<36}{cells}{count:>9,}{count / n:>12.3f}")
    for label in ("writes", "reads"):
        cells = "".join(f"{getattr(tallies[row], label):>11,}" for row in columns)
        count = getattr(handlers, label)
        print(f"  {label:<36}{cells}{count:>9,}{count / n:>12.3f}")
    if handlers.failed_conditions:
        print(f"  failed conditions: {handlers.failed_conditions:,}")
    sizes = ", ".join(
        f"{_site(site)} {handlers.item_bytes[site] / count:,.0f}"
        for site, count in handlers.requests.most_common()
        if handlers.item_bytes[site]
    )
    print(f"  mean bytes per request: {sizes}")

    floor = n  # one write per affected catalogue item: the N copies of E3
    ratio = handlers.write_units / floor
    write_met = ratio <= WRITE_BAR
    targets = ", ".join(f"{t} {u:,.0f}" for t, u in sorted(handlers.units_by_target.items()))
    print("\ncapacity units (computed from payload sizes)")
    print(
        f"  write units {handlers.write_units:,.0f} ({targets}) = {handlers.write_units / n:.3f} "
        f"per tenant; floor: one write per copy = {floor:,} → {ratio:.3f}× the floor "
        f"(bar ≤ {WRITE_BAR}×: {'met' if write_met else 'NOT met'})"
    )
    print(
        f"  read units {handlers.read_units:,.1f} = {handlers.read_units / n:.3f} per tenant "
        f"(moto reports {handlers.reported_units:,.1f} consumed units for reads and writes)"
    )
    api = run.api
    api_sites = ", ".join(f"{_site(s)} {c}" for s, c in sorted(api.requests.items()))
    print(
        f"  outside the handlers: the API's set_price {api.total_requests} requests ({api_sites};"
        f" {api.write_units:.0f} WRU, {api.read_units:.1f} RRU); during the drain, outside the "
        f"handlers: {run.probe.outside.total_requests} (the runner's polling is not PynamoDB's)"
    )

    own = handlers.wall_seconds - handlers.call_seconds - handlers.meter_seconds
    lambda_seconds = (
        own * FULL_VCPU_MB / LAMBDA_MB + handlers.total_requests * DYNAMODB_ROUND_TRIP_S
    )
    writes = handlers.write_units * USD_PER_WRITE_UNIT
    reads = handlers.read_units * USD_PER_READ_UNIT
    calls = len(run.probe.invocations) * USD_PER_INVOCATION
    duration = lambda_seconds * LAMBDA_MB / 1024 * USD_PER_GB_SECOND
    usd = writes + reads + calls + duration
    print(
        f"\ncost of the change, us-east-1 on-demand (Lambda {LAMBDA_MB} MB, ~"
        f"{lambda_seconds:.1f} s in all*): DynamoDB writes ${writes:.6f} + reads ${reads:.6f} + "
        f"Lambda requests ${calls:.6f} + duration ${duration:.6f} = "
        f"${usd:.6f} (SQS requests not counted)"
    )
    print(
        f"  * handler time outside DynamoDB calls here × {FULL_VCPU_MB}/{LAMBDA_MB} + "
        f"{DYNAMODB_ROUND_TRIP_S * 1000:.0f} ms per request (an assumed round trip)"
    )

    ideal = n / run.puts_per_second
    print("\ntime on this moto (in-process, one thread)")
    print(
        f"  measured phase {run.wall_seconds:.1f} s (set_price and the drain): handlers "
        f"{handlers.wall_seconds:.1f} s, of it {handlers.call_seconds:.1f} s inside DynamoDB "
        f"calls; the rest ({run.wall_seconds - handlers.wall_seconds:.1f} s) the runner polling"
        f" moto's streams and queues"
    )
    ms = ", ".join(
        f"{op} {handlers.seconds[op] / count * 1000:.1f}"
        for op, count in handlers.operations().most_common()
    )
    print(f"  handlers' DynamoDB calls, ms per request here: {ms}")
    print(
        f"  raw boto3 put_item of a copy-shaped item: {run.puts_per_second:,.0f}/s → {n:,} puts "
        f"{ideal:.1f} s → time ratio {run.wall_seconds / ideal:.1f} (measured / raw puts); "
        f"handlers alone {handlers.wall_seconds / ideal:.1f}"
    )

    m, scale = PROJECTED_TENANTS, PROJECTED_TENANTS / n
    pages = math.ceil(m / page_size)
    measured_pages = len(rows[PAGES])
    batch = next(source.batch_size for source in STREAMS if source.function == PRODUCTS)
    records = sum(i.records for i in rows[PRODUCTS])
    per = {  # products_stream: its records (one per copy written) in batches
        PRODUCTS: math.ceil(records * scale / batch),
        OWN_LISTS: round(len(rows[OWN_LISTS]) * scale),
    }
    calls_projected = len(rows[PRICES]) + pages + sum(per.values())
    print(f"\nPROJECTION to {m:,} tenants (linear in N from this run; not measured)")
    print(
        f"  invocations ~{calls_projected:,}: prices_stream {len(rows[PRICES])}, Resell's pages "
        f"{pages:,} (this run: {measured_pages:,} for {n:,} tenants)*, "
        f"products_stream ~{per[PRODUCTS]:,} (batches of {batch}), the children's lists "
        f"~{per[OWN_LISTS]:,}; at most {page_size} tenants per invocation"
    )
    print(
        f"  writes ~{handlers.writes * scale:,.0f} requests, ~{handlers.write_units * scale:,.0f} "
        f"WRU ({ratio:.3f}× the floor of {m:,}); reads ~{handlers.reads * scale:,.0f} requests, "
        f"~{handlers.read_units * scale:,.0f} RRU; ~${usd * scale:.4f}"
    )
    print(
        f"  time on this moto ~{run.wall_seconds * scale / 60:.0f} min (handlers "
        f"~{handlers.wall_seconds * scale / 60:.0f} min) if it stayed linear"
    )
    print(
        f"  * DynamoDB returns a LastEvaluatedKey whenever Limit stops a query, even at the "
        f"last item (moto did not here): there {m:,} tenants may take one more, empty page"
    )

    verdict = "ok" if not run.stale and not run.unflagged else "FAILED"
    print(
        f"\ncheck: copies at {NEW_COST}: {n - len(run.stale):,} of {n:,}; with the margin alert "
        f"for the {CHILD_PRICE} price: {n - len(run.stale) - len(run.unflagged):,} → {verdict}"
    )
    for child in (run.stale + run.unflagged)[:5]:
        print(f"  e.g. {child}")
    return 0 if verdict == "ok" else 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.propagation", description=__doc__)
    parser.add_argument("--tenants", type=int, default=DEFAULT_TENANTS, help="tenant resellers")
    parser.add_argument("--raw-puts", type=int, default=RAW_PUTS, help="plain put_item calls timed")
    args = parser.parse_args(argv)
    if args.tenants < 1 or args.raw_puts < 1:
        parser.error("--tenants and --raw-puts must be at least 1")
    import boto3
    from moto import mock_aws

    with environment(ENV), mock_aws(), metered() as meter:
        from functions import composition
        from functions.core.persistence import create_tables
        from local.runner import Runner, app_functions, create_queues

        composition.reset()
        composition.container()  # binds the models
        create_tables(composition.models())
        create_queues(boto3.client("sqs"), composition.container().settings.table_prefix)
        meter.learn(composition.models())

        started = time.perf_counter()
        from local.bulk import provider

        admin, e3, resell = provider(OLD_COST)
        assert admin.tenant_id is not None
        from local.bulk import tenant_resellers

        children = tenant_resellers(admin.tenant_id, e3, resell, args.tenants, OLD_COST)
        world = World(admin, admin.tenant_id, e3, resell, [t.id for t, _ in children])
        probe = Probe(meter, root=world.root)
        functions = {name: probe.wrap(name, f) for name, f in app_functions().items()}
        runner = Runner(functions=functions)
        polls = 20 * args.tenants + 1_000  # a round delivers one queue message at most
        rounds = runner.drain(max_polls=polls)  # the copies follow Resell (source_version)
        own_lists(children)  # the children's own lists, made after them, as they would be
        rounds += runner.drain(max_polls=polls)
        print(
            f"   (set-up: {args.tenants:,} tenants written and {rounds:,} rounds drained in "
            f"{time.perf_counter() - started:.1f} s)"
        )

        with probed(probe):
            api = Tally()
            started = time.perf_counter()
            meter.tally = api
            try:
                change_price(world, NEW_COST)
                meter.tally = probe.outside
                probe.on = True
                rounds = runner.drain(max_polls=polls)
            finally:
                probe.on, meter.tally = False, None
            wall = time.perf_counter() - started

        stale, unflagged = check(world)
        puts = raw_puts(world, args.raw_puts)
        status = report(
            Run(
                tenants=args.tenants,
                probe=probe,
                api=api,
                wall_seconds=wall,
                drain_rounds=rounds,
                puts_per_second=puts,
                stale=stale,
                unflagged=unflagged,
            )
        )
        composition.reset()
    return status


if __name__ == "__main__":
    sys.exit(main())
