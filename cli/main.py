"""``bss``: the operator's command line (issue 16), a client of the public HTTP API only.

Exit codes (docs/cli.md): 0 done; 1 the API answered an error (its SPEC §9 code, message and
field on stderr); 2 a usage error (typer's); 3 the API cannot be reached, or there is no URL or
token to reach it with; 4 the job ran but did not finish cleanly (a billing run completed with
failed accounts, or waiting for a run timed out). ``--json`` prints the API's JSON (a JSON object
for composed commands) on stdout and nothing else there."""

from __future__ import annotations

import functools
import json
import sys
import time
from collections.abc import Callable, Mapping
from datetime import date
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from cli import render
from cli.client import (
    ApiError,
    Client,
    Transport,
    Unreachable,
    UrllibTransport,
    local_login,
    resolve,
    save,
)

OK, API_ERROR, USAGE, UNREACHABLE, UNFINISHED = 0, 1, 2, 3, 4

#: how a command reaches the API at a URL: the network, or (tests) Chalice's test client
make_transport: Callable[[str], Transport] = UrllibTransport
#: seconds between two reads of a run's progress
POLL_S = 0.5

app = typer.Typer(
    name="bss",
    help="The BSS operator CLI: the public HTTP API at BSS_URL with the token in BSS_TOKEN.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
billing_app = typer.Typer(help="Billing runs (R24).", no_args_is_help=True)
backordering_app = typer.Typer(help="Back ordering of a child tenant (R11).", no_args_is_help=True)
app.add_typer(billing_app, name="billing")
app.add_typer(backordering_app, name="backordering")

Json = Annotated[bool, typer.Option("--json", help="Print the API's JSON, nothing else.")]
F = TypeVar("F", bound=Callable[..., Any])


class Unfinished(Exception):
    """The job ran but did not finish cleanly (exit code 4)."""


def guarded(func: F) -> F:
    """The command's failures as exit codes and one line on stderr."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except ApiError as error:
            typer.echo(error.describe(), err=True)
            raise typer.Exit(API_ERROR) from None
        except Unreachable as error:
            typer.echo(f"error: {error}", err=True)
            raise typer.Exit(UNREACHABLE) from None
        except Unfinished as error:
            typer.echo(f"error: {error}", err=True)
            raise typer.Exit(UNFINISHED) from None

    return wrapper  # type: ignore[return-value]


@app.callback()
def options(
    ctx: typer.Context,
    url: Annotated[
        str | None, typer.Option("--url", help="The API's base URL (else BSS_URL).")
    ] = None,
    token: Annotated[
        str | None, typer.Option("--token", help="A bearer token (else BSS_TOKEN).")
    ] = None,
) -> None:
    ctx.obj = {"url": url, "token": token}


def client(ctx: typer.Context) -> Client:
    root = ctx.find_root().obj or {}
    url, token = resolve(root.get("url"), root.get("token"))
    return Client(make_transport(url), token, url)


#: the width of the tables when not on a terminal (piped, captured): ids are never cut
PIPE_WIDTH = 240


def out() -> Console:
    console = Console()
    if not console.is_terminal:
        console = Console(width=PIPE_WIDTH)
    return console


def emit(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, ensure_ascii=False))


# --- login ------------------------------------------------------------------------------------


@app.command()
@guarded
def login(
    ctx: typer.Context,
    local: Annotated[
        bool, typer.Option("--local", help="The running local platform's (`make run`).")
    ] = False,
    role: Annotated[
        str,
        typer.Option(
            "--as", help="With --local: whose token (cloud_admin, resell_admin, platform_admin, …)."
        ),
    ] = "cloud_admin",
    url: Annotated[str | None, typer.Option("--url", help="The API's base URL to save.")] = None,
    token: Annotated[str | None, typer.Option("--token", help="The bearer token to save.")] = None,
    json_: Json = False,
) -> None:
    """Save a URL and token for the next commands (~/.config/bss/credentials.json)."""
    root = ctx.find_root().obj or {}
    if local:
        url, token = local_login(role)
    else:
        url, token = resolve(url or root.get("url"), token or root.get("token"))
    path = save(url, token)
    if json_:
        emit({"url": url, "credentials": str(path), "role": role if local else None})
    else:
        who = f" as {role}" if local else ""
        typer.echo(f"Logged in to {url}{who}; saved to {path}")


# --- the tenant tree --------------------------------------------------------------------------


@app.command()
@guarded
def tree(
    ctx: typer.Context,
    tenant: Annotated[
        str | None, typer.Argument(help="A child tenant (else the caller's own).")
    ] = None,
    json_: Json = False,
) -> None:
    """The tenant, its child tenants and its account hierarchy, mirrors marked."""
    api = client(ctx)
    claims = api.claims()
    role, own = claims.get("role"), claims.get("tenant_id")
    data: dict[str, Any]
    if role == "platform_admin":
        if tenant:
            data = {"tenant": api.get(f"/tenants/{tenant}"), "child_tenants": [], "accounts": None}
        else:
            data = {"tenant": None, "child_tenants": api.items("/tenants"), "accounts": None}
    elif role == "tenant_admin":
        target = tenant or own
        found = api.get(f"/tenants/{target}")
        forest = render.account_forest(api.items("/accounts"))
        if target == own:
            children = api.items("/tenants")
        else:  # a child: its mirrored records hang under its reseller account in the caller's
            children = []
            forest = _subtree(forest, found.get("reseller_account_id"))
        data = {"tenant": found, "child_tenants": children, "accounts": forest}
    else:
        if tenant:
            raise typer.BadParameter("only a tenant admin names a tenant", param_hint="TENANT")
        data = {
            "tenant": None,
            "child_tenants": [],
            "accounts": render.account_forest(api.items("/accounts")),
        }
    if json_:
        emit(data)
    else:
        out().print(render.tenant_tree(data))


def _subtree(forest: list[dict[str, Any]], account_id: str | None) -> list[dict[str, Any]]:
    for node in forest:
        if node["account"]["id"] == account_id:
            return [node]
        found = _subtree(node["children"], account_id)
        if found:
            return found
    return []


# --- billing ----------------------------------------------------------------------------------

_RUN_DONE = {"completed", "completed_with_failures"}


@billing_app.command("run")
@guarded
def billing_run(
    ctx: typer.Context,
    period: Annotated[
        str | None,
        typer.Option("--period", help="The period's first day, YYYY-MM-DD (else the current)."),
    ] = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the run.")] = 600.0,
    json_: Json = False,
) -> None:
    """Run a billing period, follow its progress, then list its invoices."""
    api = client(ctx)
    run = api.post("/billing-runs", {"period_start": period} if period else {})
    console = out()
    bar = Progress(
        TextColumn("{task.description:<20}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        disable=json_ or not console.is_terminal,
    )
    deadline = time.monotonic() + timeout
    with bar:
        tasks = {
            "rated": bar.add_task("accounts rated", total=None),
            "issued": bar.add_task("invoices numbered", total=None),
            "rendered": bar.add_task("documents rendered", total=None),
            "failures": bar.add_task("accounts failed", total=None),
        }
        while True:
            accounts, chunks = run["accounts"], max(run["chunks"], 1)
            rated = (
                accounts
                if run["chunks_rated"] >= run["chunks"]
                else (accounts * run["chunks_rated"] // chunks)
            )
            bar.update(tasks["rated"], total=accounts or None, completed=rated)
            bar.update(tasks["issued"], total=run["invoices"] or None, completed=run["issued"])
            bar.update(
                tasks["rendered"], total=run["chunks"] or None, completed=run["chunks_rendered"]
            )
            # failed accounts out of all: an empty bar is a clean run
            bar.update(tasks["failures"], total=accounts or None, completed=run["failed_accounts"])
            if run["status"] in _RUN_DONE or time.monotonic() > deadline:
                break
            time.sleep(POLL_S)
            run = api.get(f"/billing-runs/{run['id']}")
    invoices = [i for i in api.items("/invoices") if i.get("run_id") == run["id"]]
    if json_:
        emit({"run": run, "invoices": invoices})
    else:
        console.print(
            f"Billing run {run['id']} {run['period_start']} – {run['period_end']}: "
            f"[bold]{run['status']}[/] (attempt {run['attempt']}), {run['accounts']} accounts, "
            f"{run['issued']}/{run['invoices']} invoices numbered, "
            f"{run['failed_accounts']} failed"
        )
        for failure in run.get("failures", []):
            console.print(f"  [red]failed[/] {failure['account_id']}: {failure['error']}")
        console.print(render.invoices_table("Invoices of the run", invoices))
    if run["status"] not in _RUN_DONE:
        raise Unfinished(f"billing run {run['id']} still {run['status']} after {timeout:g} s")
    if run["status"] == "completed_with_failures":
        raise Unfinished(
            f"billing run {run['id']} completed with {run['failed_accounts']} failed accounts"
        )


@billing_app.command("runs")
@guarded
def billing_runs(ctx: typer.Context, json_: Json = False) -> None:
    """The tenant's billing runs, latest period first."""
    runs = client(ctx).items("/billing-runs")
    if json_:
        emit(runs)
        return
    out().print(
        render.table(
            "Billing runs",
            ["id", "period", "status", "attempt", "accounts", "invoices", "failed"],
            (
                (
                    r["id"],
                    f"{r['period_start']} – {r['period_end']}",
                    r["status"],
                    r["attempt"],
                    r["accounts"],
                    f"{r['issued']}/{r['invoices']}",
                    r["failed_accounts"],
                )
                for r in runs
            ),
        )
    )


# --- invoices ---------------------------------------------------------------------------------


@app.command()
@guarded
def invoices(
    ctx: typer.Context,
    account: Annotated[
        str | None, typer.Option("--account", help="One account's invoices.")
    ] = None,
    received: Annotated[
        bool, typer.Option("--received", help="Those the caller's provider issued to it.")
    ] = False,
    json_: Json = False,
) -> None:
    """Invoices in the caller's scope."""
    found = client(ctx).items("/invoices", account_id=account, received=received or None)
    if json_:
        emit(found)
    else:
        out().print(render.invoices_table("Invoices", found))


@app.command()
@guarded
def invoice(
    ctx: typer.Context,
    invoice_id: Annotated[str, typer.Argument(metavar="ID", help="The invoice's id.")],
    pdf: Annotated[
        Path | None, typer.Option("--pdf", help="Write the invoice's PDF to this file.")
    ] = None,
    json_: Json = False,
) -> None:
    """An invoice with its lines; --pdf FILE writes its document."""
    api = client(ctx)
    found = api.get(f"/invoices/{invoice_id}")
    if pdf is not None:
        pdf.write_bytes(api.document(f"/invoices/{invoice_id}/document", "application/pdf"))
    if json_:
        emit(found)
        return
    console = out()
    console.print(
        f"Invoice [bold]{found.get('number') or '(draft)'}[/] {found['id']} {found['status']}: "
        f"{found['period_start']} – {found['period_end']}, account {found['account_id']}, "
        f"total {found['total']} {found['currency']} (tax {found['tax']})"
    )
    console.print(
        render.table(
            "Lines",
            ["kind", "description", "quantity", "unit price", "amount"],
            (
                (
                    line.get("kind"),
                    line.get("description"),
                    line.get("quantity"),
                    line.get("unit_price"),
                    line.get("amount"),
                )
                for line in found.get("lines") or []
            ),
        )
    )
    if pdf is not None:
        console.print(f"PDF written to {pdf}")


# --- back ordering ----------------------------------------------------------------------------


def _show_backordering(data: Mapping[str, Any], json_: bool) -> None:
    if json_:
        emit(data)
        return
    tenant, backfill = data["tenant"], data.get("backfill")
    state = f"on since {data['activated_at']}" if data["active"] else "off"
    text = f"Back ordering of {tenant['name']} ({tenant['id']}): {state}"
    if backfill:
        text += (
            f"; backfill {backfill['status']}: {backfill['processed']} processed, "
            f"{backfill['mirrored']} mirrored"
        )
    out().print(text)


@backordering_app.command("status")
@guarded
def backordering_status(
    ctx: typer.Context,
    child: Annotated[str, typer.Argument(metavar="CHILD", help="A child tenant's id.")],
    json_: Json = False,
) -> None:
    """A child tenant's back ordering and its backfill's progress."""
    _show_backordering(client(ctx).get(f"/tenants/{child}/backordering"), json_)


@backordering_app.command("activate")
@guarded
def backordering_activate(
    ctx: typer.Context,
    child: Annotated[str, typer.Argument(metavar="CHILD", help="A child tenant's id.")],
    json_: Json = False,
) -> None:
    """Activate back ordering for a child tenant (irreversible) and queue its backfill."""
    _show_backordering(client(ctx).post(f"/tenants/{child}/backordering"), json_)


# --- failures ---------------------------------------------------------------------------------


@app.command()
@guarded
def failures(ctx: typer.Context, json_: Json = False) -> None:
    """What the on-failure and dead-letter queues hold (a platform admin's)."""
    data = client(ctx).get("/failures")
    if json_:
        emit(data)
        return
    console = out()
    console.print(
        render.table(
            "Failed deliveries",
            ["queue", "message", "sent at", "receives", "key", "error"],
            (
                (
                    f["queue"],
                    f["message_id"],
                    f.get("sent_at"),
                    f.get("receive_count"),
                    json.dumps(f["key"], sort_keys=True) if f.get("key") else "",
                    f.get("error"),
                )
                for f in data["items"]
            ),
        )
    )
    if data.get("truncated"):
        console.print(f"(the first {len(data['items'])} only)")


# --- reports ----------------------------------------------------------------------------------


@app.command()
@guarded
def margin(
    ctx: typer.Context,
    period: Annotated[
        str | None, typer.Option("--period", help="YYYY-MM (else the current month).")
    ] = None,
    group_by: Annotated[
        str | None, typer.Option("--group-by", help="reseller, customer or product.")
    ] = None,
    json_: Json = False,
) -> None:
    """The margin report (R32): revenue, cost and margin of a period."""
    api = client(ctx)
    month = period or date.today().strftime("%Y-%m")
    first = api.get("/reports/margin", period=month, group_by=group_by, limit=100)
    items = list(first["items"])
    cursor = first.get("next_cursor")
    while cursor:
        page = api.get("/reports/margin", period=month, group_by=group_by, limit=100, cursor=cursor)
        items += page["items"]
        cursor = page.get("next_cursor")
    report = {**first, "items": items, "next_cursor": None}
    if json_:
        emit(report)
        return
    names = ("name", "id") if group_by else ("customer_name", "product_name")
    rows = [
        (
            row.get(names[0]),
            row.get(names[1]),
            row["revenue"],
            row["cost"],
            row["margin"],
            row.get("margin_percent"),
        )
        for row in items
    ]
    totals = report.get("totals")
    if totals:
        rows.append(
            (
                "Total",
                "",
                totals["revenue"],
                totals["cost"],
                totals["margin"],
                totals.get("margin_percent"),
            )
        )
    headers = ["name", "id"] if group_by else ["customer", "product"]
    out().print(
        render.table(
            f"Margin {month} ({report.get('currency') or '-'})",
            [*headers, "revenue", "cost", "margin", "margin %"],
            rows,
        )
    )


_RECONCILED = {"done", "repaired"}


@app.command()
@guarded
def reconcile(
    ctx: typer.Context,
    child: Annotated[
        str | None, typer.Argument(metavar="CHILD", help="A child tenant to reconcile.")
    ] = None,
    run_id: Annotated[
        str | None, typer.Option("--run", help="Show this run instead of starting one.")
    ] = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the run.")] = 600.0,
    json_: Json = False,
) -> None:
    """Compare a child tenant's records with their mirrors (R33) and show what drifted."""
    api = client(ctx)
    if (child is None) == (run_id is None):
        raise typer.BadParameter("name a CHILD tenant, or --run RUN_ID")
    if run_id is None:
        run = api.post("/reconciliation-runs", {"child_tenant_id": child})
        deadline = time.monotonic() + timeout
        while run["status"] not in _RECONCILED and time.monotonic() < deadline:
            time.sleep(POLL_S)
            run = api.get(f"/reconciliation-runs/{run['id']}")
        run_id = run["id"]
    run = api.get(f"/reconciliation-runs/{run_id}", limit=100)
    if json_:
        emit(run)
    else:
        console = out()
        counts = ", ".join(f"{k} {v}" for k, v in run["counts"].items())
        console.print(
            f"Reconciliation {run['id']} of {run['child_tenant_id']}: [bold]{run['status']}[/]; "
            f"compared {sum(run['compared'].values())}; {counts}"
        )
        console.print(
            render.table(
                "Drift",
                ["kind", "record", "source", "mirror", "fields", "detail"],
                (
                    (
                        i["kind"],
                        i["record"],
                        i["source_id"],
                        i.get("mirror_id"),
                        ", ".join(i.get("fields") or []),
                        i.get("detail"),
                    )
                    for i in run.get("items") or []
                ),
            )
        )
    if run["status"] not in _RECONCILED:
        raise Unfinished(f"reconciliation {run['id']} still {run['status']}")


def main(argv: list[str] | None = None) -> int:
    """The ``bss`` entry point: the exit code (docs/cli.md)."""
    try:
        app(args=argv, prog_name="bss", standalone_mode=True)
    except SystemExit as done:
        code = done.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    return OK


if __name__ == "__main__":
    sys.exit(main())
