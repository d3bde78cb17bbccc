"""``bss`` against the Chalice test client: typer's runner, with the CLI's ``Transport`` routed
to ``chalice.test.Client`` instead of the network, on a world built through the API."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import pytest
from typer.testing import CliRunner

from cli import main as cli_main
from cli.client import Response
from tests.api.world import World, ok, world_env
from tests.conftest import Api

URL = "http://bss.test"


class ChaliceTransport:
    """The CLI's requests, answered in-process by the app (``tests.conftest.Api``)."""

    def __init__(self, api: Api) -> None:
        self.api = api

    def __call__(
        self, method: str, path: str, headers: Mapping[str, str], body: bytes | None
    ) -> Response:
        answer = self.api.client.http.request(method, path, headers=dict(headers), body=body or b"")
        return Response(answer.status_code, dict(answer.headers), answer.body or b"")


@dataclass
class Result:
    exit_code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)


class Bss:
    """Runs ``bss`` commands with a token, as a shell would (exit code, stdout, stderr)."""

    def __init__(self, api: Api) -> None:
        self.api = api
        self.runner = CliRunner()

    def __call__(self, token: str | None, *args: str, url: str = URL) -> Result:
        env = {"BSS_URL": url, "BSS_TOKEN": token or "", "BSS_CONFIG": "/nonexistent/bss.json"}
        result = self.runner.invoke(cli_main.app, list(args), env=env, catch_exceptions=False)
        return Result(result.exit_code, result.stdout, result.stderr)


@dataclass
class CliWorld:
    world: World
    bss: Bss
    mirror_account: str  # an account of A's child tenant, mirrored into A's BSS


@pytest.fixture(scope="module")
def cli_world() -> Iterator[CliWorld]:
    with world_env() as world, pytest.MonkeyPatch.context() as mp:
        mp.setattr(cli_main, "make_transport", lambda url: ChaliceTransport(world.api))
        mp.setattr(cli_main, "POLL_S", 0.0)
        yield CliWorld(world, Bss(world.api), _mirror(world))


def _mirror(world: World) -> str:
    """A customer of A's child (back ordering on) buys a subscription: the subscriptions
    stream's handler, delivered as Lambda would, mirrors it and its account into A's BSS."""
    from functions.backorder.handlers import subscriptions_stream
    from tests.integration.test_backorder import Stream

    a, api = world.a, world.api
    stream = Stream("subscriptions", subscriptions_stream)
    stream.new_records()  # what the world wrote so far is not the test's
    adm = a.child_admin
    retail = ok(api.call("POST", "/pricelists", adm, {"name": "Retail", "currency": "EUR"}), 201)
    product = next(
        p
        for p in ok(api.call("GET", "/products?limit=100", adm))["items"]
        if p["type"] == "license" and "monthly" in p["billing_cycles"]
    )
    price = {"product_id": product["id"], "billing_cycle": "monthly", "markup_percent": "20"}
    ok(api.call("POST", f"/pricelists/{retail['id']}/prices", adm, price), 200, 201)
    body = {"name": "Resell Customer Q", "email": "q@example.com", "price_list_id": retail["id"]}
    customer = ok(api.call("POST", "/accounts", adm, body), 201)["id"]
    sale = {"account_id": customer, "product_id": product["id"], "billing_cycle": "monthly"}
    ok(api.call("POST", "/subscriptions", adm, {**sale, "quantity": 1}), 201)
    stream.drain()
    accounts = ok(api.call("GET", "/accounts?limit=100", a.admin))["items"]
    return next(x["id"] for x in accounts if x["mirrored"] and x["name"] == body["name"])
