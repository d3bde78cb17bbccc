"""The storefront pages (issue 13, R30; docs/storefront.md): DynamoDB requests, HTML size and
server time per page view, against ``GET /products`` of the JSON API in the same run, on
in-process moto. Figures, not a test.

The world, made through the API (the Chalice test client): a root tenant, Bench Shop (its
storefront ``bench-shop`` is made with it), with ``PRODUCTS`` products: licences with monthly
costs and ``ADDONS`` add-ons for them, all on the tenant's default price list at a markup over
cost; a customer with an email and an address, buying at the default list, with
``SUBSCRIPTIONS`` monthly subscriptions, ``WITH_ADDON`` of them with an add-on (so the page
lists ``SUBSCRIPTIONS + WITH_ADDON`` rows); two billing runs (``POST /billing-runs``: the
current period and the next one, run in-process as the tests run them, ``local.billing``),
so the customer has two issued invoices.

The views: the catalogue (``GET /store/{alias}``: 50 products a page) anonymous (at the
storefront's list) and signed in (at the customer's own), the customer's subscriptions and
invoices (a session cookie ``bss_store`` minted in-process, as the sign-in link's redemption
makes it), and the baseline, ``GET /products?limit=50`` with a customer's bearer token. Each
is requested once to warm up (templates, clients), then ``--runs`` times round-robin: the
DynamoDB requests per view by operation and table (``bench/meter.py``: every request of
PynamoDB's clients), the answer's size (1 KB = 1,024 bytes) and the median server time (the
request through the test client, the meter's own accounting taken out).

Goals (issue 13): on the catalogue ≤ ``MAX_CATALOGUE_QUERIES`` Query and ≤
``MAX_CATALOGUE_BATCH_GETS`` BatchGetItem; no Scan on any page; each page ≤ ``MAX_HTML_KB``
KB of HTML; each page's median time ≤ ``MAX_TIME_RATIO`` × the baseline's. The run exits 1
naming each figure that misses its goal; ``make bench`` fails with it.

    python -m bench.storefront [--runs N] [--save DIR]
    python -m bench storefront [--runs N] [--save DIR]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import backorder
from bench.meter import ENV, SECRET, Meter, Tally, environment, metered

PRODUCTS = 200  # licences and add-ons
ADDONS = 5
SUBSCRIPTIONS = 50  # the customer's (base) subscriptions
WITH_ADDON = 5  # of them with an add-on
MARKUP_PERCENT = "25"
RUNS = 20

MAX_CATALOGUE_QUERIES = 2
MAX_CATALOGUE_BATCH_GETS = 1
MAX_HTML_KB = 60
MAX_TIME_RATIO = 1.5
KB = 1024


# --- the figures (pure) --------------------------------------------------------------------------


@dataclass
class Figures:
    """One view's figures over its measured runs."""

    name: str
    path: str
    catalogue: bool = False  # the catalogue's request goals apply
    html: bool = True  # a page (the baseline is JSON)
    status: int = 0
    size: int = 0  # bytes of the answer's body
    runs: int = 0
    requests: Counter[tuple[str, str]] = field(default_factory=Counter)  # all runs
    seconds: list[float] = field(default_factory=list)
    db_seconds: list[float] = field(default_factory=list)  # inside DynamoDB requests (moto's)
    render_seconds: list[float] = field(default_factory=list)  # Jinja2 rendering
    op_seconds: Counter[str] = field(default_factory=Counter)  # all runs, by operation

    def per_view(self) -> Counter[tuple[str, str]]:
        """Requests per view by (operation, table), rounded: every warm view makes the same."""
        return Counter({k: round(n / self.runs) for k, n in self.requests.items() if self.runs})

    def operations(self) -> Counter[str]:
        counts: Counter[str] = Counter()
        for (operation, _), n in self.per_view().items():
            counts[operation] += n
        return counts

    @property
    def median_ms(self) -> float:
        return statistics.median(self.seconds) * 1000 if self.seconds else 0.0

    @property
    def db_ms(self) -> float:
        return statistics.median(self.db_seconds) * 1000 if self.db_seconds else 0.0

    @property
    def render_ms(self) -> float:
        return statistics.median(self.render_seconds) * 1000 if self.render_seconds else 0.0

    @property
    def kb(self) -> float:
        return self.size / KB


def failures(pages: Sequence[Figures], baseline: Figures) -> list[str]:
    """Each figure that misses its goal, named."""
    missed = []
    for page in [*pages, baseline]:
        if page.status != 200:
            missed.append(f"{page.name}: status {page.status}, not 200")
    for page in pages:
        ops = page.operations()
        if page.catalogue and ops["Query"] > MAX_CATALOGUE_QUERIES:
            missed.append(
                f"{page.name}: {ops['Query']} Query per view > {MAX_CATALOGUE_QUERIES} "
                "(MAX_CATALOGUE_QUERIES)"
            )
        if page.catalogue and ops["BatchGetItem"] > MAX_CATALOGUE_BATCH_GETS:
            missed.append(
                f"{page.name}: {ops['BatchGetItem']} BatchGetItem per view > "
                f"{MAX_CATALOGUE_BATCH_GETS} (MAX_CATALOGUE_BATCH_GETS)"
            )
        if ops["Scan"]:
            missed.append(f"{page.name}: {ops['Scan']} Scan per view (none allowed)")
        if page.html and page.kb > MAX_HTML_KB:
            missed.append(f"{page.name}: HTML {page.kb:.1f} KB > {MAX_HTML_KB} KB (MAX_HTML_KB)")
        ratio = ratio_to(page, baseline)
        if ratio > MAX_TIME_RATIO:
            missed.append(
                f"{page.name}: median time {page.median_ms:.1f} ms = {ratio:.2f} × "
                f"{baseline.name}'s {baseline.median_ms:.1f} ms > {MAX_TIME_RATIO} "
                "(MAX_TIME_RATIO)"
            )
    return missed


def ratio_to(page: Figures, baseline: Figures) -> float:
    return page.median_ms / baseline.median_ms if baseline.median_ms else float("inf")


def breakdown(requests: Counter[tuple[str, str]]) -> str:
    """``GetItem storefronts 1, Query prices 1, …``, by operation then table."""
    return ", ".join(f"{op} {table} {n}" for (op, table), n in sorted(requests.items())) or "none"


# --- the world -----------------------------------------------------------------------------------


class Http(backorder.Http):
    """The app through Chalice's test client: JSON calls (back ordering's bench's), and raw
    page views."""

    def get(self, path: str, headers: dict[str, str]) -> tuple[int, bytes]:
        response = self.client.http.request("GET", path, headers=headers)
        return response.status_code, response.body or b""


def token(role: str, tenant_id: str | None = None, account_id: str | None = None) -> str:
    from functions.core.auth import issue_token

    return issue_token(
        SECRET, sub=f"bench-{role}", role=role, tenant_id=tenant_id, account_id=account_id
    )


@dataclass
class World:
    tenant_id: str
    alias: str
    customer_id: str
    email: str
    subscriptions: int  # rows: subscriptions and add-ons
    invoices: int


def build(http: Http) -> World:
    from functions.core.clock import today_in
    from functions.core.periods import monthly_period

    tenant = http.call(
        "POST",
        "/tenants",
        token("platform_admin"),
        {"name": "Bench Shop", "country": "DE", "time_zone": "Europe/Berlin", "currency": "EUR"},
    )
    admin = token("tenant_admin", tenant["id"])
    default = http.call(
        "POST", "/pricelists", admin, {"name": "Default", "currency": "EUR", "default": True}
    )
    licences: list[str] = []
    addons: list[str] = []
    for n in range(PRODUCTS):
        addon = n >= PRODUCTS - ADDONS
        body: dict[str, Any] = {
            "sku": f"{'ADD' if addon else 'LIC'}-{n:03d}",
            "name": f"{'Add-on' if addon else 'Licence'} {n:03d}",
            "type": "addon" if addon else "license",
            "billing_cycles": ["monthly"],
            "unit": "seat",
            "description": f"Bench product {n:03d}, billed monthly per seat.",
            "categories": ["bench"],
            "costs": {"monthly": f"{5 + n % 40}.00"},
        }
        if addon:
            body["addon_for"] = licences[: min(len(licences), 50)]
        product = http.call("POST", "/products", admin, body)
        (addons if addon else licences).append(product["id"])
        http.call(
            "POST",
            f"/pricelists/{default['id']}/prices",
            admin,
            {
                "product_id": product["id"],
                "billing_cycle": "monthly",
                "markup_percent": MARKUP_PERCENT,
            },
        )
    email = "buyer@customer.example"
    customer = http.call(
        "POST",
        "/accounts",
        admin,
        {
            "name": "Bench Customer",
            "email": email,
            "address": {
                "line1": "Hauptstr. 1",
                "city": "Berlin",
                "postal_code": "10115",
                "country": "DE",
            },
        },
    )
    rows = 0
    for n in range(SUBSCRIPTIONS):
        sub = http.call(
            "POST",
            "/subscriptions",
            admin,
            {
                "account_id": customer["id"],
                "product_id": licences[n % min(len(licences), 50)],
                "billing_cycle": "monthly",
                "quantity": 1 + n % 20,
                "characteristics": {"domain": f"shop{n:02d}.customer.example"},
            },
        )
        rows += 1
        if n < WITH_ADDON:
            http.call(
                "POST",
                f"/subscriptions/{sub['subscription']['id']}/addons",
                admin,
                {"product_id": addons[n % len(addons)], "quantity": 1 + n % 20},
            )
            rows += 1
    alias = http.call("GET", "/storefront", admin)["alias"]
    # Two issued invoices: the current period's run and the next one's (run ahead, R24).
    current = monthly_period(1, today_in("Europe/Berlin"))
    http.call("POST", "/billing-runs", admin, {})
    http.call("POST", "/billing-runs", admin, {"period_start": current.end.isoformat()})
    customer_token = token("customer", tenant["id"], customer["id"])
    invoices = http.call("GET", "/invoices?limit=50", customer_token)["items"]
    return World(tenant["id"], alias, customer["id"], email, rows, len(invoices))


def session_cookie(world: World) -> str:
    from functions.storefront.tokens import SESSION, SESSION_SECONDS, Session, nonce, sign

    session = Session(
        world.tenant_id,
        world.customer_id,
        "customer",
        world.email,
        world.alias,
        nonce(),
        int(time.time()) + SESSION_SECONDS,
    )
    return sign(SECRET, SESSION, session.payload())


def prepare_aws(settings: Any) -> None:
    """The queues product changes go to, and the bucket and sender the billing run's render
    step needs; billing runs run at once, in-process (as the tests run them)."""
    import boto3

    from functions import composition
    from local.billing import InlineLauncher
    from local.runner import create_queues

    create_queues(boto3.client("sqs"), settings.table_prefix)
    boto3.client("s3").create_bucket(Bucket=settings.documents_bucket)
    boto3.client("ses").verify_email_identity(EmailAddress=settings.mail_from)
    container = composition.container()
    launcher = InlineLauncher(lambda: container.billing)
    container.billing.launcher = lambda: launcher


# --- the measurement ----------------------------------------------------------------------------


@dataclass(frozen=True)
class View:
    figures: Figures
    headers: dict[str, str]


def views(world: World) -> tuple[list[View], View]:
    base = f"/store/{world.alias}"
    signed_in = {"cookie": f"bss_store={session_cookie(world)}"}
    anonymous = {"cookie": "bss_store=v.bench-visitor-0001"}
    pages = [
        View(Figures("catalogue (anonymous)", base, catalogue=True), anonymous),
        View(Figures("catalogue (signed in)", base, catalogue=True), signed_in),
        View(Figures("subscriptions", f"{base}/subscriptions"), signed_in),
        View(Figures("invoices", f"{base}/invoices"), signed_in),
    ]
    bearer = {"authorization": f"Bearer {token('customer', world.tenant_id, world.customer_id)}"}
    baseline = View(Figures("GET /products", "/products?limit=50", html=False), bearer)
    return pages, baseline


class RenderClock:
    """The pages' template rendering (``functions.storefront.web.render``), timed."""

    def __init__(self) -> None:
        self.seconds = 0.0

    @contextmanager
    def installed(self) -> Iterator[None]:
        from functions.storefront import web

        original = web.render

        def render(name: str, context: Any) -> str:
            started = time.perf_counter()
            try:
                return original(name, context)
            finally:
                self.seconds += time.perf_counter() - started

        web.render = render
        try:
            yield
        finally:
            web.render = original


def view_once(http: Http, meter: Meter, clock: RenderClock, view: View, measured: bool) -> bytes:
    tally = Tally()
    meter.tally, clock.seconds = tally, 0.0
    started = time.perf_counter()
    try:
        status, body = http.get(view.figures.path, view.headers)
    finally:
        elapsed = time.perf_counter() - started
        meter.tally = None
    figures = view.figures
    figures.status, figures.size = status, len(body)
    if measured:
        figures.runs += 1
        figures.requests.update(tally.requests)
        figures.seconds.append(elapsed - tally.meter_seconds)
        figures.db_seconds.append(tally.call_seconds)
        figures.render_seconds.append(clock.seconds)
        figures.op_seconds.update(tally.seconds)
    return body


def report(world: World, pages: Sequence[Figures], baseline: Figures) -> None:
    print(
        f"storefront /store/{world.alias}: {PRODUCTS} products ({ADDONS} add-ons) at a "
        f"{MARKUP_PERCENT} % markup; a customer with {world.subscriptions} subscriptions "
        f"({WITH_ADDON} add-ons) and {world.invoices} issued invoices; {baseline.runs} runs "
        "per view"
    )
    header = (
        f"{'view':24} {'status':>6} {'GetItem':>7} {'Query':>5} {'BatchGet':>8} {'Scan':>4} "
        f"{'all':>4} {'KB':>6} {'ms':>7} {'ratio':>6} {'db ms':>7} {'html ms':>7}"
    )
    print(header)
    print("-" * len(header))
    for page in [*pages, baseline]:
        ops = page.operations()
        kb = f"{page.kb:6.1f}" if page.html else f"({page.kb:4.1f})"
        ratio = "" if page is baseline else f"{ratio_to(page, baseline):5.2f}×"
        print(
            f"{page.name:24} {page.status:>6} {ops['GetItem']:>7} {ops['Query']:>5} "
            f"{ops['BatchGetItem']:>8} {ops['Scan']:>4} {sum(ops.values()):>4} {kb:>6} "
            f"{page.median_ms:7.1f} {ratio:>6} {page.db_ms:7.1f} {page.render_ms:7.1f}"
        )
    print(
        f"goals: catalogue ≤ {MAX_CATALOGUE_QUERIES} Query and ≤ {MAX_CATALOGUE_BATCH_GETS} "
        f"BatchGetItem; no Scan; HTML ≤ {MAX_HTML_KB} KB; median time ≤ {MAX_TIME_RATIO} × "
        f"{baseline.name}'s (its size is JSON, in brackets); ms: the median server time, of "
        "it db ms inside DynamoDB requests (moto's) and html ms rendering the template"
    )
    print("\nrequests per view, by operation and table (table.index for an index's):")
    for page in [*pages, baseline]:
        print(f"  {page.name:24} {breakdown(page.per_view())}")
    print("\nmean ms per view inside DynamoDB requests (moto's), by operation:")
    for page in [*pages, baseline]:
        spent = sorted(page.op_seconds.items(), key=lambda item: -item[1])
        shown = ", ".join(f"{op} {s / page.runs * 1000:.1f}" for op, s in spent)
        print(f"  {page.name:24} {shown or 'none'}")


def save(directory: Path, answers: dict[str, bytes]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for name, body in answers.items():
        slug = "".join(c if c.isalnum() else "-" for c in name).strip("-")
        suffix = "json" if name.startswith("GET ") else "html"
        (directory / f"{slug}.{suffix}").write_bytes(body)
    print(f"   (answers saved in {directory})")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.storefront", description=__doc__)
    parser.add_argument("--runs", type=int, default=RUNS, help="measured views of each page")
    parser.add_argument("--save", type=Path, help="a directory to write each view's last answer to")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    from moto import mock_aws

    with environment(ENV), mock_aws(), metered() as meter:
        from functions import composition
        from functions.core.persistence import create_tables

        composition.reset()
        settings = composition.container().settings  # binds the models
        create_tables(composition.models())
        meter.learn(composition.models())
        prepare_aws(settings)
        http, clock = Http(), RenderClock()
        try:
            started = time.perf_counter()
            world = build(http)
            print(f"   (world built in {time.perf_counter() - started:.1f} s)")
            pages, baseline = views(world)
            everything = [*pages, baseline]
            answers: dict[str, bytes] = {}
            with clock.installed():
                for view in everything:  # warm: templates read, clients made
                    view_once(http, meter, clock, view, measured=False)
                for _ in range(args.runs):
                    for view in everything:
                        answers[view.figures.name] = view_once(http, meter, clock, view, True)
        finally:
            http.close()
            composition.reset()
    if args.save is not None:
        save(args.save, answers)
    page_figures = [v.figures for v in pages]
    report(world, page_figures, baseline.figures)
    missed = failures(page_figures, baseline.figures)
    for failure in missed:
        print(f"bench storefront FAILED: {failure}", file=sys.stderr)
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
