"""``bss`` without the app: where the URL and token come from (``login``), and exit code 4,
against a canned transport."""

from __future__ import annotations

import json
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from cli import main as cli_main
from cli.client import Response

RUN = {
    "id": "run_1",
    "period_start": "2026-12-01",
    "period_end": "2027-01-01",
    "status": "completed_with_failures",
    "attempt": 1,
    "accounts": 2,
    "chunks": 1,
    "chunks_rated": 1,
    "chunks_rendered": 1,
    "invoices": 1,
    "issued": 1,
    "failed_accounts": 1,
    "failures": [{"account_id": "acc_2", "error": "no price"}],
}


class Canned:
    def __init__(self, answers: Mapping[tuple[str, str], Any]) -> None:
        self.answers = answers
        self.seen: list[tuple[str, str, str]] = []

    def __call__(
        self, method: str, path: str, headers: Mapping[str, str], body: bytes | None
    ) -> Response:
        self.seen.append((method, path, headers["Authorization"]))
        answer = self.answers[(method, path.split("?", 1)[0])]
        return Response(200, {}, json.dumps(answer).encode())


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {
        "BSS_CONFIG": str(tmp_path / "bss" / "credentials.json"),
        "BSS_LOCAL_DIR": str(tmp_path / "local"),
        "BSS_URL": "",
        "BSS_TOKEN": "",
    }


def run(env: dict[str, str], *args: str) -> Any:
    return CliRunner().invoke(cli_main.app, list(args), env=env, catch_exceptions=False)


def test_login_saves_the_url_and_token_for_the_next_commands(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    canned = Canned({("GET", "/invoices"): {"items": [], "next_cursor": None}})
    urls: list[str] = []
    monkeypatch.setattr(cli_main, "make_transport", lambda url: urls.append(url) or canned)
    assert run(env, "invoices").exit_code == 3  # nothing saved yet
    saved = run(env, "login", "--url", "http://api.test/", "--token", "tok")
    assert saved.exit_code == 0, saved.stderr
    path = Path(env["BSS_CONFIG"])
    assert json.loads(path.read_text()) == {"url": "http://api.test", "token": "tok"}
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert run(env, "invoices", "--json").stdout.strip() == "[]"
    assert urls == ["http://api.test"] and canned.seen[-1][2] == "Bearer tok"
    # the environment wins over the saved file, the options over both
    run({**env, "BSS_TOKEN": "from-env"}, "invoices")
    assert canned.seen[-1][2] == "Bearer from-env"
    run({**env, "BSS_TOKEN": "from-env"}, "--token", "from-option", "invoices")
    assert canned.seen[-1][2] == "Bearer from-option"


def test_login_local_takes_the_local_platforms_token(env: dict[str, str]) -> None:
    assert run(env, "login", "--local").exit_code == 3  # no platform has run there
    local = Path(env["BSS_LOCAL_DIR"])
    local.mkdir()
    tokens = {"cloud_admin": "tok-cloud", "resell_admin": "tok-resell"}
    (local / "cli.json").write_text(json.dumps({"url": "http://127.0.0.1:8000", "tokens": tokens}))
    assert run(env, "login", "--local", "--as", "resell_admin").exit_code == 0
    saved = json.loads(Path(env["BSS_CONFIG"]).read_text())
    assert saved == {"url": "http://127.0.0.1:8000", "token": "tok-resell"}
    unknown = run(env, "login", "--local", "--as", "nobody")
    assert unknown.exit_code == 3 and "cloud_admin, resell_admin" in unknown.stderr


def test_a_billing_run_with_failed_accounts_exits_4_after_its_output(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    invoice = {"id": "inv_1", "run_id": "run_1"}
    canned = Canned(
        {
            ("POST", "/billing-runs"): RUN,
            ("GET", "/invoices"): {"items": [invoice], "next_cursor": None},
        }
    )
    monkeypatch.setattr(cli_main, "make_transport", lambda url: canned)
    result = run(
        {**env, "BSS_URL": "http://api.test", "BSS_TOKEN": "t"}, "billing", "run", "--json"
    )
    assert result.exit_code == 4
    assert json.loads(result.stdout) == {"run": RUN, "invoices": [invoice]}
    assert "completed with 1 failed accounts" in result.stderr


def test_on_an_80_column_terminal_the_invoices_table_keeps_every_column() -> None:
    """Long ids fold onto more lines; no column is squeezed to nothing (as it was: the status,
    the name and the total vanished on a terminal of 80 columns)."""
    from rich.console import Console

    from cli import render

    invoice = {
        "id": "inv_rchgosy4fmoa4ckwlt7hwem",
        "number": "INV-000001",
        "status": "issued",
        "account_id": "acc_01m94t57q1j52zta96vfbgy279",
        "bill_to": {"name": "Cloud Lite"},
        "period_start": "2026-12-01",
        "period_end": "2027-01-01",
        "total": "426.46",
        "currency": "EUR",
    }
    console = Console(width=80, record=True, color_system=None)
    console.print(render.invoices_table("Invoices", [invoice]))
    shown = console.export_text()
    for text in ("INV-000001", "issued", "426.46", "Cloud", "status", "total"):
        assert text in shown, shown
