"""The billing run's state machine (R24), ``infra/billing_run.asl.json``, executed by moto's Step
Functions interpreter with its Lambda Task states routed to plain Python fakes
(``local.stepfunctions.install``): every chunk is rated, one that keeps failing is retried, then
set aside while the others go on; the invoices are numbered in a loop until done; every chunk is
rendered; the run is closed. A handler's exception fails its Task like Lambda's unhandled error.

The fakes stand in for ``functions/invoices/handlers.py``: these tests check the orchestration,
not the billing. Retries really wait (moto sleeps ``IntervalSeconds`` with full jitter): the
failing chunk costs at most 1 + 2 + 4 s."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from infra import billing
from local import stepfunctions
from local.runner import Function, LambdaContext

ROOT = Path(__file__).resolve().parents[2]
REGION = "us-east-1"
PREFIX = "test"
LAMBDA_ERRORS = {
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
}


class Fakes:
    """The billing functions as plain callables, recording each call's function and event."""

    def __init__(self, chunks: int = 3, failing_chunk: int | None = 1, batches: int = 2) -> None:
        self.chunks = chunks
        self.failing_chunk = failing_chunk
        self.batches = batches
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.contexts: list[LambdaContext] = []
        self._lock = threading.Lock()

    def _record(self, name: str, event: dict[str, Any], context: Any) -> None:
        with self._lock:
            self.calls.append((name, event))
            self.contexts.append(context)

    def of(self, name: str) -> list[dict[str, Any]]:
        return [event for called, event in self.calls if called == name]

    def order(self) -> list[str]:
        return [name for name, _ in self.calls]

    def functions(self) -> dict[str, Function]:
        def run(event: dict[str, Any]) -> dict[str, Any]:
            return {k: event[k] for k in ("tenant_id", "run_id", "attempt")}

        def billing_open(event: dict[str, Any], context: Any) -> Any:
            self._record("billing_open", event, context)
            return {"tenant_id": event["tenant_id"], "run_id": "run-1", "attempt": 1}

        def billing_list(event: dict[str, Any], context: Any) -> Any:
            self._record("billing_list", event, context)
            return {**run(event), "chunks": list(range(self.chunks))}

        def billing_rate(event: dict[str, Any], context: Any) -> Any:
            self._record("billing_rate", event, context)
            if event["chunk"] == self.failing_chunk:
                raise RuntimeError(f"DynamoDB is throttling chunk {event['chunk']}")
            return {"chunk": event["chunk"], "rated": 100}

        def billing_finalize(event: dict[str, Any], context: Any) -> Any:
            self._record("billing_finalize", event, context)
            cursor = event.get("cursor", 0) + 1
            return {**run(event), "cursor": cursor, "done": cursor >= self.batches}

        def billing_render(event: dict[str, Any], context: Any) -> Any:
            self._record("billing_render", event, context)
            return {"chunk": event["chunk"], "rendered": 100}

        def billing_close(event: dict[str, Any], context: Any) -> Any:
            self._record("billing_close", event, context)
            return {"status": "closed", "run_id": event["run_id"]}

        return {
            "billing_open": billing_open,
            "billing_list": billing_list,
            "billing_rate": billing_rate,
            "billing_finalize": billing_finalize,
            "billing_render": billing_render,
            "billing_close": billing_close,
        }


@pytest.fixture
def sfn(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """In-process moto that executes state machines; moto's Lambda routing restored after."""
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    with mock_aws(config=stepfunctions.MOTO_CONFIG):
        try:
            yield boto3.client("stepfunctions", region_name=REGION)
        finally:
            stepfunctions.uninstall()


def run(sfn: Any, fakes: Fakes, payload: dict[str, Any]) -> dict[str, Any]:
    stepfunctions.install(fakes.functions())
    arn = stepfunctions.create_state_machine(sfn, prefix=PREFIX, region=REGION)
    started = sfn.start_execution(stateMachineArn=arn, input=json.dumps(payload))
    return stepfunctions.wait(sfn, started["executionArn"], timeout=25)


# --- the definition -------------------------------------------------------------------------


def states(definition: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every state, those of Map iterations included."""
    for name, state in definition["States"].items():
        yield name, state
        processor = state.get("ItemProcessor") or state.get("Iterator")
        if processor:
            yield from states(processor)


def test_the_definition_is_json_path_asl_whose_tasks_are_all_substituted_placeholders() -> None:
    text = billing.definition()
    definition = json.loads(text)  # valid JSON as it is, placeholders and all
    assert definition.get("QueryLanguage", "JSONPath") == "JSONPath"  # moto cannot run JSONata
    tasks = {name: state for name, state in states(definition) if state["Type"] == "Task"}
    resources = {state["Resource"] for state in tasks.values()}
    assert resources == {f"${{{placeholder}}}" for placeholder in billing.TASKS}
    assert billing.placeholders(text) == set(billing.TASKS)
    assert set(billing.TASKS.values()) == set(billing.functions()) - {billing.SCHEDULE_FUNCTION}

    local = json.loads(stepfunctions.definition(prefix=PREFIX, region=REGION))
    local_resources = {s["Resource"] for _, s in states(local) if s["Type"] == "Task"}
    assert local_resources == {
        stepfunctions.function_arn(name, prefix=PREFIX, region=REGION)
        for name in billing.TASKS.values()
    }
    with pytest.raises(KeyError, match="BillingCloseFunctionArn"):
        billing.substitute(text, {p: "x" for p in billing.TASKS if p != "BillingCloseFunctionArn"})


def test_each_map_retries_then_sets_a_chunk_aside_and_keeps_the_state_small() -> None:
    definition = json.loads(billing.definition())
    maps = {name: s for name, s in definition["States"].items() if s["Type"] == "Map"}
    assert set(maps) == {"Rate", "Render"}
    for name, state in maps.items():
        assert state["ItemsPath"] == "$.chunks", name
        assert state["ItemSelector"]["chunk.$"] == "$$.Map.Item.Value", name
        assert state["MaxConcurrency"] == 10, name
        assert state["ResultPath"] is None, name
        iteration = state["ItemProcessor"]["States"]
        task = iteration[state["ItemProcessor"]["StartAt"]]
        assert task["Type"] == "Task"
        (retry,) = task["Retry"]
        assert {"States.TaskFailed", *LAMBDA_ERRORS} == set(retry["ErrorEquals"]), name
        assert retry["MaxAttempts"] == 3 and retry["BackoffRate"] >= 1, name
        assert retry["IntervalSeconds"] <= 2, name  # moto really sleeps: keep the tests short
        (catch,) = task["Catch"]
        assert catch["ErrorEquals"] == ["States.ALL"]
        assert iteration[catch["Next"]]["Type"] == "Pass"
    # every Task retries Lambda's own transient errors
    for name, state in states(definition):
        if state["Type"] == "Task":
            errors = {e for r in state["Retry"] for e in r["ErrorEquals"]}
            assert errors >= LAMBDA_ERRORS, name


# --- the run on moto --------------------------------------------------------------------------


def test_billing_run_rates_every_chunk_sets_a_failing_one_aside_and_finishes(sfn: Any) -> None:
    fakes = Fakes(chunks=3, failing_chunk=1, batches=2)
    described = run(sfn, fakes, {"tenant_id": "t1", "period_start": "2025-01-01"})

    assert described["status"] == "SUCCEEDED", described
    assert json.loads(described["output"]) == {"status": "closed", "run_id": "run-1"}
    identity = {"tenant_id": "t1", "run_id": "run-1", "attempt": 1}
    # Open gets the execution's input as it is
    assert fakes.of("billing_open") == [{"tenant_id": "t1", "period_start": "2025-01-01"}]
    assert fakes.of("billing_list") == [identity]
    # every chunk rated; chunk 1 tried 1 + 3 times, then set aside; the others once each
    rated = [event["chunk"] for event in fakes.of("billing_rate")]
    assert sorted(rated) == [0, 1, 1, 1, 1, 2]
    assert all(event == {**identity, "chunk": event["chunk"]} for event in fakes.of("billing_rate"))
    # finalize: first without a cursor, then with the one it returned, until done
    assert fakes.of("billing_finalize") == [identity, {**identity, "cursor": 1}]
    # every chunk rendered (the one rating set aside too: the handlers decide what it holds)
    assert sorted(e["chunk"] for e in fakes.of("billing_render")) == [0, 1, 2]
    assert fakes.of("billing_close") == [identity]
    # in that order: all rating, then numbering, then rendering, then closing
    order = fakes.order()
    last_rate = max(i for i, name in enumerate(order) if name == "billing_rate")
    assert order.index("billing_finalize") > last_rate
    assert order.index("billing_render") > order.index("billing_finalize") + 1
    assert order[-1] == "billing_close"
    # the handlers were invoked like Lambda functions, by the ARN of their deployed name
    context = fakes.contexts[0]
    assert context.function_name == f"{PREFIX}-billing_open"
    assert context.invoked_function_arn == stepfunctions.function_arn(
        "billing_open", prefix=PREFIX, region=REGION
    )

    history = sfn.get_execution_history(executionArn=described["executionArn"], maxResults=1000)
    set_aside = [
        e["stateEnteredEventDetails"]
        for e in history["events"]
        if e["type"] == "PassStateEntered"
        and e["stateEnteredEventDetails"]["name"] == "RateChunkFailed"
    ]
    assert len(set_aside) == 1
    caught = json.loads(set_aside[0]["input"])
    assert caught["chunk"] == 1
    assert caught["error"]["Error"] == "RuntimeError"  # Lambda's errorType names the error
    assert "throttling chunk 1" in caught["error"]["Cause"]


def test_an_empty_run_goes_straight_through(sfn: Any) -> None:
    fakes = Fakes(chunks=0, failing_chunk=None, batches=1)
    described = run(sfn, fakes, {"tenant_id": "t1"})
    assert described["status"] == "SUCCEEDED", described
    assert fakes.order() == ["billing_open", "billing_list", "billing_finalize", "billing_close"]


def test_a_handler_error_outside_the_maps_fails_the_execution_with_its_type(sfn: Any) -> None:
    fakes = Fakes()
    functions = fakes.functions()

    def billing_list(event: dict[str, Any], context: Any) -> Any:
        raise ValueError("no such tenant")

    stepfunctions.install({**functions, "billing_list": billing_list})
    arn = stepfunctions.create_state_machine(sfn, prefix=PREFIX, region=REGION)
    started = sfn.start_execution(stateMachineArn=arn, input=json.dumps({"tenant_id": "t1"}))
    described = stepfunctions.wait(sfn, started["executionArn"], timeout=25)

    assert described["status"] == "FAILED"
    assert described["error"] == "ValueError"  # not retried: only Lambda's own errors are
    cause = json.loads(described["cause"])
    assert cause["errorType"] == "ValueError" and cause["errorMessage"] == "no such tenant"
    assert fakes.of("billing_close") == []


def test_an_answer_json_cannot_carry_fails_like_lambdas_marshal_error(sfn: Any) -> None:
    fakes = Fakes()

    def billing_open(event: dict[str, Any], context: Any) -> Any:
        return {"tenant_id": event["tenant_id"], "run_id": {"not", "json"}, "attempt": 1}

    stepfunctions.install({**fakes.functions(), "billing_open": billing_open})
    arn = stepfunctions.create_state_machine(sfn, prefix=PREFIX, region=REGION)
    started = sfn.start_execution(stateMachineArn=arn, input=json.dumps({"tenant_id": "t1"}))
    described = stepfunctions.wait(sfn, started["executionArn"], timeout=25)
    assert described["status"] == "FAILED"
    assert described["error"] == "Runtime.MarshalError"


def test_create_state_machine_is_idempotent_and_install_replaces_the_functions(sfn: Any) -> None:
    first = stepfunctions.create_state_machine(sfn, prefix=PREFIX, region=REGION)
    assert stepfunctions.create_state_machine(sfn, prefix=PREFIX, region=REGION) == first
    assert first.endswith(f":stateMachine:{PREFIX}-billing-run")
    assert len(sfn.list_state_machines()["stateMachines"]) == 1

    old, new = Fakes(), Fakes(chunks=1, failing_chunk=None, batches=1)
    stepfunctions.install(old.functions())
    stepfunctions.install(new.functions())  # a second install: routes to the new functions
    assert stepfunctions.installed()
    started = sfn.start_execution(stateMachineArn=first, input=json.dumps({"tenant_id": "t1"}))
    assert stepfunctions.wait(sfn, started["executionArn"])["status"] == "SUCCEEDED"
    assert old.calls == [] and len(new.of("billing_close")) == 1

    stepfunctions.uninstall()
    assert not stepfunctions.installed()


def test_the_routing_finds_a_function_by_its_deployed_name() -> None:
    stepfunctions.install(Fakes().functions())
    try:
        route = stepfunctions._route
        assert route("billing_rate") == "billing_rate"
        assert route("bss-dev-billing_rate") == "billing_rate"
        assert route("some-other-function") is None
    finally:
        stepfunctions.uninstall()


def test_the_patched_moto_is_the_pinned_one() -> None:
    """``install`` refuses another moto; the pin in requirements-dev.txt is the one it knows."""
    pins = (ROOT / "requirements-dev.txt").read_text()
    pinned = re.search(r"^moto\[[^\]]*\]==(\S+)", pins, re.MULTILINE)
    assert pinned is not None and pinned.group(1) == stepfunctions.MOTO_VERSION


def test_the_state_machine_runs_on_the_moto_server_too(monkeypatch: pytest.MonkeyPatch) -> None:
    """What ``make run`` does: the moto server in this process, configured over its API."""
    from moto.server import ThreadedMotoServer

    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "local")
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    before = stepfunctions.moto_config()
    try:
        stepfunctions.configure_server(endpoint)
        fakes = Fakes(chunks=2, failing_chunk=None, batches=1)
        stepfunctions.install(fakes.functions())
        client = boto3.client("stepfunctions", region_name=REGION, endpoint_url=endpoint)
        arn = stepfunctions.create_state_machine(client, prefix="srv", region=REGION)
        started = client.start_execution(stateMachineArn=arn, input=json.dumps({"tenant_id": "t"}))
        assert stepfunctions.wait(client, started["executionArn"])["status"] == "SUCCEEDED"
        assert sorted(e["chunk"] for e in fakes.of("billing_render")) == [0, 1]
        client.delete_state_machine(stateMachineArn=arn)
    finally:
        stepfunctions.uninstall()
        stepfunctions.configure_server(endpoint, before)
        server.stop()
    assert stepfunctions.moto_config() == before


# --- the schedule -----------------------------------------------------------------------------


def test_the_scheduler_calls_billing_schedule_at_start_with_a_scheduled_event() -> None:
    seen: list[tuple[dict[str, Any], Any]] = []
    called = threading.Event()

    def billing_schedule(event: dict[str, Any], context: Any) -> Any:
        seen.append((event, context))
        called.set()
        if len(seen) > 1:
            raise RuntimeError("a failing call is logged, the schedule goes on")
        return {"started": 2}

    scheduler = stepfunctions.Scheduler(billing_schedule, interval=3600, region=REGION)
    scheduler.start()
    try:
        assert called.wait(5)
    finally:
        scheduler.stop()
    assert scheduler.calls == 1 and scheduler.last_result == {"started": 2}
    event, context = seen[0]
    assert event["detail-type"] == "Scheduled Event" and event["source"] == "aws.events"
    assert event["region"] == REGION and event["resources"][0].startswith("arn:aws:events:")
    assert context.function_name == "local-billing_schedule"

    assert scheduler.tick() is None  # the second call raises: kept, not raised
    assert isinstance(scheduler.last_error, RuntimeError)
    assert "every 1 h" in scheduler.describe()
