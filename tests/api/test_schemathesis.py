"""R29 / SPEC §9 by property-based fuzzing: Schemathesis generates valid and invalid requests for
every operation of ``GET /openapi.json`` and the API must never answer with a server error.

The Chalice app is served in-process by ``chalice.local`` (a threaded HTTP server on a free
127.0.0.1 port, in a background thread) inside moto's ``mock_aws()``: the in-process mock patches
botocore for the server threads too. Tenant A of ``tests/api/world.py`` is seeded through the API
first, and its real ids are fed to the generator (path, query and body ids) half of the time, so
requests reach deep code paths (actions on real subscriptions, prices on real lists …), not only
the "not found" answers.

Two runs over one world: as tenant A's tenant_admin, then as customer Z. Schemathesis' default
phases are all on, as an outside ``schemathesis run`` has them (issue 11): examples, coverage
(boundary and negative values, every unexpected method — TRACE, QUERY … — and media type),
fuzzing and stateful (links it infers from the document). The app is served through the local
platform's gateway (``local/gateway.py``), as ``make run`` serves it. Beyond "no server error"
and "a documented status", every method a path lacks must be a 405 with ``Allow``
(``unsupported_method``) and every 4xx/5xx the error object of SPEC §9 (``error_object``). Each
run is bounded (examples per operation, derandomized, no deadline).
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import schemathesis
from chalice.config import Config
from chalice.local import CustomLocalChalice, LocalChalice, LocalDevServer
from schemathesis.config import SchemathesisConfig

from app import app as chalice_app  # also registers every route in ROUTES
from functions.core.api import ROUTES
from local.gateway import GatewayHandler
from tests.api.world import World, world_env

MAX_EXAMPLES = 50
#: the fuzzing phase's examples per operation: fewer than the other phases', as the coverage
#: phase already sends every boundary and negative shape of each operation once
FUZZING_EXAMPLES = 25
#: the stateful phase's scenarios (chains along the links Schemathesis infers from the document)
STATEFUL_EXAMPLES = 20
SEED = 20240601


@dataclass
class Served:
    url: str
    world: World


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Handler(GatewayHandler):
    """The local platform's API Gateway stand-in (``local/gateway.py``: every method reaches
    the app, a path the API lacks is 404, every answer in the error object), quiet."""

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def served() -> Iterator[Served]:
    with world_env() as world:
        original_class = chalice_app.__class__
        # as create_local_server does: a thread-local current_request for the threaded server
        CustomLocalChalice.__bases__ = (LocalChalice, original_class)
        chalice_app.__class__ = CustomLocalChalice
        server = LocalDevServer(
            chalice_app,
            Config.create(app_name="bss"),
            "127.0.0.1",
            _free_port(),
            handler_cls=Handler,
        )
        thread = threading.Thread(target=server.server.serve_forever, daemon=True)
        thread.start()
        try:
            yield Served(url=f"http://127.0.0.1:{server.port}", world=world)
        finally:
            server.shutdown()
            server.server.server_close()
            thread.join(timeout=10)
            chalice_app.__class__ = original_class


@schemathesis.check
def error_object(ctx: Any, response: Any, case: Any) -> bool | None:
    """R29 / SPEC §9 (issue 11): every 4xx and 5xx answer is ``{"error": {"code", "message"}}``
    in JSON (Chalice's own 405 and 415, and the gateway's 404, included)."""
    if response.status_code < 400:
        return None
    try:
        body = json.loads(response.content)
    except ValueError:
        message = f"{response.status_code} is not JSON: {response.content[:200]!r}"
        raise AssertionError(message) from None
    error = body.get("error") if isinstance(body, dict) else None
    if not (
        isinstance(error, dict)
        and isinstance(error.get("code"), str)
        and isinstance(error.get("message"), str)
    ):
        raise AssertionError(f"{response.status_code} is no error object: {body!r:.200}")
    return None


def _config(world: World, token: str) -> SchemathesisConfig:
    a = world.a
    ids = {
        "accounts": [a.z, a.x, a.lite, a.child_account],
        "products": [a.base, a.addon, a.monthly_only, a.reseller_only],
        "pricelists": [a.price_list, a.reseller_list, a.usd_list],
        "subscriptions": [a.sub_z, a.sub_x, a.sub_z_addon, a.sub_y],
        "orders": [a.order_z, a.order_x],
        "tenants": [a.id, a.child],
    }
    half = 0.5
    bindings = {
        "path.account_id": "accounts",
        "query.account_id": "accounts",
        "body.account_id": "accounts",
        "query.parent_account_id": "accounts",
        "body.parent_account_id": "accounts",
        "path.product_id": "products",
        "body.product_id": "products",
        "path.price_list_id": "pricelists",
        "query.price_list_id": "pricelists",
        "body.price_list_id": "pricelists",
        "path.subscription_id": "subscriptions",
        "path.order_id": "orders",
        "path.tenant_id": "tenants",
    }
    return SchemathesisConfig.from_dict(
        {
            "seed": SEED,
            "headers": {"Authorization": f"Bearer {token}"},
            "generation": {
                "max-examples": MAX_EXAMPLES,
                "deterministic": True,
                "database": "none",
                "mode": "all",
                "with-security-parameters": False,
            },
            # the default phases, all on (see the module docstring)
            "phases": {
                "fuzzing": {"generation": {"max-examples": FUZZING_EXAMPLES}},
                "stateful": {"generation": {"max-examples": STATEFUL_EXAMPLES}},
            },
            "checks": {
                "enabled": False,
                "not_a_server_error": {"enabled": True},
                "status_code_conformance": {"enabled": True},
                "unsupported_method": {"enabled": True},
                "error_object": {"enabled": True},
            },
            "dictionaries": {name: {"values": values} for name, values in ids.items()},
            "parameters": {
                key: {"dictionary": name, "probability": half} for key, name in bindings.items()
            },
        }
    )


#: every route but the document itself: Schemathesis leaves out the operation its schema was
#: loaded from (``GET /openapi.json``; its answer is what the run is built on)
OPERATIONS = {f"{route.method} {route.path}" for route in ROUTES} - {"GET /openapi.json"}


@dataclass
class Run:
    operations: set[str] = field(default_factory=set)
    examples: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0
    phases: dict[str, int] = field(default_factory=dict)
    phase_seconds: dict[str, float] = field(default_factory=dict)

    @property
    def server_errors(self) -> int:
        return sum(n for status, n in self.statuses.items() if status >= 500)

    def summary(self, name: str) -> str:
        return (
            f"schemathesis[{name}]: {len(self.operations)} operations, {self.examples} requests, "
            f"{self.server_errors} server errors, {len(self.failures)} check failures, "
            f"{self.seconds:.0f}s, statuses {dict(sorted(self.statuses.items()))}, "
            f"phases {self.phases} "
            f"({', '.join(f'{p} {s:.0f}s' for p, s in self.phase_seconds.items())})"
        )


def run(url: str, config: SchemathesisConfig) -> Run:
    """One Schemathesis run (the engine behind ``schemathesis run``): probing, then the
    examples, coverage, fuzzing and stateful phases over every operation of the document."""
    from schemathesis.engine import Status, events, from_schema

    schema = schemathesis.openapi.from_url(f"{url}/openapi.json", config=config)
    result = Run()
    for event in from_schema(schema).execute():
        if isinstance(event, events.ScenarioFinished):
            recorder = event.recorder
            phase = str(event.phase)
            spent = result.phase_seconds.get(phase, 0.0) + event.elapsed_time
            result.phase_seconds[phase] = spent
            for interaction in recorder.interactions.values():
                if interaction.response is None:
                    continue
                if phase != "stateful":  # a stateful scenario chains several operations
                    result.operations.add(recorder.label)
                result.examples += 1
                result.phases[phase] = result.phases.get(phase, 0) + 1
                status = interaction.response.status_code
                result.statuses[status] = result.statuses.get(status, 0) + 1
            for checks in recorder.checks.values():
                for check in checks:
                    if check.status == Status.FAILURE and check.failure_info is not None:
                        failure = check.failure_info.failure
                        result.failures.append(
                            f"{recorder.label} [{check.name}] {failure.title}: "
                            f"{failure.message}\n{check.failure_info.code_sample}"
                        )
        elif isinstance(event, (events.NonFatalError, events.FatalError)):
            result.errors.append(repr(event))
        elif isinstance(event, events.EngineFinished):
            result.seconds = event.running_time
    return result


def test_r29_fuzz_as_tenant_admin_finds_no_server_error(served: Served) -> None:
    world = served.world
    result = run(served.url, _config(world, world.a.admin))
    print("\n" + result.summary("tenant_admin"))
    assert not result.errors, result.errors
    assert not result.failures, "\n\n".join(result.failures[:20])
    assert result.server_errors == 0
    assert result.operations == OPERATIONS
    assert {"coverage", "fuzzing", "stateful"} <= set(result.phases)  # the defaults (issue 11)


def test_r29_fuzz_as_customer_finds_no_server_error(served: Served) -> None:
    world = served.world
    result = run(served.url, _config(world, world.a.as_z))
    print("\n" + result.summary("customer"))
    assert not result.errors, result.errors
    assert not result.failures, "\n\n".join(result.failures[:20])
    assert result.server_errors == 0
    assert result.operations == OPERATIONS
    assert {"coverage", "fuzzing", "stateful"} <= set(result.phases)  # the defaults (issue 11)
