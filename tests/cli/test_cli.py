"""``bss`` (issue 16) against the app in-process: each command's table and ``--json``, exit codes
a shell script can rely on (docs/cli.md)."""

from __future__ import annotations

from pathlib import Path

from tests.api.world import ok
from tests.cli.conftest import CliWorld


def test_tree_shows_the_tenant_its_child_and_accounts_with_the_mirror_marked(
    cli_world: CliWorld,
) -> None:
    a, bss = cli_world.world.a, cli_world.bss
    shown = bss(a.admin, "tree")
    assert shown.exit_code == 0, shown.stderr
    assert "Cloud" in shown.stdout and "Cloud Resell" in shown.stdout
    assert "Resell Customer Q" in shown.stdout and "mirror" in shown.stdout

    data = bss(a.admin, "tree", "--json").json()
    assert data["tenant"]["id"] == a.id
    assert [t["id"] for t in data["child_tenants"]] == [a.child]

    def walk(nodes: list[dict]) -> list[dict]:
        return [n["account"] for n in nodes] + [x for n in nodes for x in walk(n["children"])]

    accounts = {x["id"]: x for x in walk(data["accounts"])}
    assert accounts[cli_world.mirror_account]["mirrored"] is True
    assert accounts[a.z]["mirrored"] is False

    child = bss(a.admin, "tree", a.child, "--json").json()
    assert child["tenant"]["id"] == a.child
    assert [n["account"]["id"] for n in child["accounts"]] == [a.child_account]
    assert cli_world.mirror_account in {x["id"] for x in walk(child["accounts"])}


def test_tree_of_the_platform_admin_lists_the_root_tenants(cli_world: CliWorld) -> None:
    world = cli_world.world
    data = cli_world.bss(world.platform, "tree", "--json").json()
    assert {t["id"] for t in data["child_tenants"]} >= {world.a.id, world.b.id}


def test_billing_run_follows_the_run_then_lists_its_invoices(cli_world: CliWorld) -> None:
    a, bss = cli_world.world.a, cli_world.bss
    shown = bss(a.admin, "billing", "run")
    assert shown.exit_code == 0, shown.stderr
    assert "completed" in shown.stdout and "Invoices of the run" in shown.stdout

    data = bss(a.admin, "billing", "run", "--json").json()
    assert data["run"]["id"] == a.run  # the period's run, resumed: nothing billed twice
    assert data["run"]["status"] == "completed"
    ids = {i["id"] for i in data["invoices"]}
    assert {a.invoice_z, a.invoice_lite} <= ids
    assert all(i["run_id"] == a.run for i in data["invoices"])

    runs = bss(a.admin, "billing", "runs", "--json").json()
    assert a.run in {r["id"] for r in runs}


def test_invoices_and_one_invoice_with_its_pdf(cli_world: CliWorld, tmp_path: Path) -> None:
    a, bss = cli_world.world.a, cli_world.bss
    listed = bss(a.admin, "invoices", "--account", a.z, "--json").json()
    assert [i["id"] for i in listed] == [a.invoice_z]
    assert a.invoice_z in bss(a.admin, "invoices").stdout

    pdf = tmp_path / "z.pdf"
    shown = bss(a.admin, "invoice", a.invoice_z, "--pdf", str(pdf))
    assert shown.exit_code == 0, shown.stderr
    assert pdf.read_bytes().startswith(b"%PDF")
    assert "Lines" in shown.stdout
    assert bss(a.as_z, "invoice", a.invoice_z, "--json").json()["lines"]


def test_backordering_status_and_activate(cli_world: CliWorld) -> None:
    a, bss = cli_world.world.a, cli_world.bss
    status = bss(a.admin, "backordering", "status", a.child, "--json").json()
    assert status["active"] is True and status["tenant"]["id"] == a.child
    assert "on since" in bss(a.admin, "backordering", "status", a.child).stdout
    body = {"name": "Cloud Second", "country": "DE", "time_zone": "Europe/Berlin"}
    second = ok(
        cli_world.world.api.call(
            "POST", "/tenants", a.admin, {**body, "price_list_id": a.price_list}
        ),
        201,
    )["id"]
    assert bss(a.admin, "backordering", "status", second, "--json").json()["active"] is False
    activated = bss(a.admin, "backordering", "activate", second, "--json")
    assert activated.exit_code == 0, activated.stderr
    assert activated.json()["active"] is True
    other = bss(a.admin, "backordering", "activate", cli_world.world.b.id)  # not its child
    assert other.exit_code == 1 and other.stdout == ""
    assert other.stderr.startswith("error: 404 ")


def test_margin_report(cli_world: CliWorld) -> None:
    a, bss = cli_world.world.a, cli_world.bss
    report = bss(a.admin, "margin", "--group-by", "customer", "--json").json()
    assert report["group_by"] == "customer" and report["currency"] == "EUR"
    assert report["totals"] is not None
    shown = bss(a.admin, "margin")
    assert shown.exit_code == 0, shown.stderr
    assert "Margin" in shown.stdout and "Total" in shown.stdout


def test_reconcile_a_child_waits_for_the_run(cli_world: CliWorld) -> None:
    a, bss = cli_world.world.a, cli_world.bss
    shown = bss(a.admin, "reconcile", "--run", a.reconciliation, "--json")
    assert shown.exit_code in (0, 4), shown.stderr
    assert shown.json()["id"] == a.reconciliation
    assert bss(a.admin, "reconcile").exit_code == 2  # neither a child nor a run: usage


def test_an_api_error_exits_1_with_its_code_and_field_on_stderr(cli_world: CliWorld) -> None:
    a, bss = cli_world.world.a, cli_world.bss
    missing = bss(a.admin, "invoice", "nope-0000", "--json")
    assert missing.exit_code == 1 and missing.stdout == ""
    assert missing.stderr.startswith("error: 404 not_found")
    bad = bss(a.admin, "billing", "run", "--period", "2020-13-45")
    assert bad.exit_code == 1
    assert "400 " in bad.stderr and "period_start" in bad.stderr
    other = bss(cli_world.world.b.admin, "invoice", a.invoice_z)  # another tenant's: 404
    assert other.exit_code == 1 and "404" in other.stderr


def test_no_api_or_no_token_exits_3(cli_world: CliWorld, monkeypatch: object) -> None:
    from cli import main as cli_main
    from cli.client import UrllibTransport

    a, bss = cli_world.world.a, cli_world.bss
    assert bss(None, "tree").exit_code == 3
    setattr_ = monkeypatch.setattr  # type: ignore[attr-defined]
    setattr_(cli_main, "make_transport", UrllibTransport)
    down = bss(a.admin, "tree", "--json", url="http://127.0.0.1:9")
    assert down.exit_code == 3 and down.stdout == ""
    assert "cannot reach the API" in down.stderr


def test_usage_errors_exit_2(cli_world: CliWorld) -> None:
    a, bss = cli_world.world.a, cli_world.bss
    assert bss(a.admin, "invoice").exit_code == 2
    assert bss(a.admin, "no-such-command").exit_code == 2


def test_failures_lists_the_dead_letters_for_the_platform_admin(cli_world: CliWorld) -> None:
    import boto3

    from functions import composition

    world, bss = cli_world.world, cli_world.bss
    settings = composition.container().settings
    sqs = boto3.client("sqs")
    dlq = sqs.get_queue_url(QueueName=settings.queue_name("price-changes-dlq"))["QueueUrl"]
    sqs.send_message(QueueUrl=dlq, MessageBody='{"price_list_id": "prl_gone"}')
    data = bss(world.platform, "failures", "--json").json()
    assert [i["queue"] for i in data["items"]] == ["price-changes-dlq"]
    assert "prl_gone" in data["items"][0]["error"]
    shown = bss(world.platform, "failures")
    assert shown.exit_code == 0 and "price-changes-dlq" in shown.stdout
    refused = bss(world.a.admin, "failures")
    assert refused.exit_code == 1 and refused.stderr.startswith("error: 403 forbidden")
