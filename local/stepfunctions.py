"""The billing run on moto: the state machine of ``infra/billing_run.asl.json`` (the file
CloudFormation deploys) executed by moto's Step Functions interpreter, its Lambda Task states
answered by the functions of ``app.py`` in this process, and the daily schedule played by a
thread.

moto executes ASL only when its config says so (NOTES-stack, "Step Functions under moto"):
in-process with ``mock_aws(config={"stepfunctions": {"execute_state_machine": True}})``, on the
moto server with ``configure_server(endpoint)`` (``POST /moto-api/config``; the server runs in
this process, so both set moto's process-wide ``default_user_config``). A state machine created
before execution was switched on is never executed: create it after.

Without Docker, moto's Lambda only echoes a Task's input. ``install()`` replaces, in moto's Step
Functions interpreter, the one function that invokes a Task state's Lambda function
(``_invoke_lambda_function`` of ``moto.stepfunctions.parser.asl.component.state.exec.state_task.
lambda_eval_utils``, through which every ``arn:aws:lambda:…`` Task resource and every
``arn:aws:states:::lambda:invoke`` integration goes) with a call of the function of that name,
before any Lambda lookup (no function need exist on moto, and no request goes to moto's Lambda).
Other function names go to moto as before. It is a moto internal: ``install`` refuses any moto
but ``MOTO_VERSION`` (pinned in requirements-dev.txt), so an upgrade fails loudly here.

A handler's answer goes back as Lambda's would, through JSON. A handler that raises answers as
Lambda does for an unhandled error (``FunctionError: Unhandled``, payload ``{"errorType",
"errorMessage", "stackTrace"}``): the Task fails with the error named by ``errorType`` (e.g.
``RuntimeError``), which ``States.TaskFailed`` and ``States.ALL`` match in Retry and Catch. An
answer JSON cannot carry fails as ``Runtime.MarshalError``, like Lambda's Python runtime.

    install()                                        # the app's functions (tests: install({...}))
    arn = create_state_machine(sfn, prefix="local", region="eu-central-1")
    run = sfn.start_execution(stateMachineArn=arn, input=json.dumps({"tenant_id": "…"}))
    wait(sfn, run["executionArn"])                   # → describe_execution, once not RUNNING
    scheduler = Scheduler(interval=3600); scheduler.start(); …; scheduler.stop()
"""

from __future__ import annotations

import inspect
import json
import logging
import threading
import time
import traceback
import urllib.request
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from infra import billing
from local.runner import Function, LambdaContext, app_functions

if TYPE_CHECKING:
    from moto.core.config import DefaultConfig

log = logging.getLogger("local.stepfunctions")

#: the moto release whose internals ``install`` patches (see the module docstring)
MOTO_VERSION = "5.2.5"
#: moto's default account, where the moto server and ``mock_aws`` create everything
DEFAULT_ACCOUNT = "123456789012"
#: moto's config for executing state machines with Lambda Task states and no Docker
MOTO_CONFIG: DefaultConfig = {
    "stepfunctions": {"execute_state_machine": True},
    "lambda": {"use_docker": False},
}
#: the local scheduler's default: hourly (AWS: daily, ``billing.SCHEDULE``)
SCHEDULE_INTERVAL_S = 3600.0

_PATCHED_MODULE = "moto.stepfunctions.parser.asl.component.state.exec.state_task.lambda_eval_utils"
_PATCHED_FUNCTION = "_invoke_lambda_function"
_PATCHED_PARAMETERS = ("parameters", "region", "state_credentials")

_lock = threading.Lock()
#: replaced whole, never changed in place: an invocation on a moto thread reads one snapshot
_routes: Mapping[str, Function] = {}
_original: Callable[..., dict[str, Any]] | None = None


# --- routing moto's Lambda invocations to the app's functions ---------------------------------


def _moto_module() -> Any:
    import importlib

    import moto

    if moto.__version__ != MOTO_VERSION:
        raise RuntimeError(
            f"local/stepfunctions.py patches moto {MOTO_VERSION}'s {_PATCHED_MODULE}."
            f"{_PATCHED_FUNCTION}; this is moto {moto.__version__}: check that function is "
            "still how a Task state invokes Lambda, then update MOTO_VERSION"
        )
    module = importlib.import_module(_PATCHED_MODULE)
    target = getattr(module, _PATCHED_FUNCTION, None)
    if target is None or tuple(inspect.signature(target).parameters) != _PATCHED_PARAMETERS:
        raise RuntimeError(f"{_PATCHED_MODULE}.{_PATCHED_FUNCTION} is not the one patched here")
    return module


def install(functions: Mapping[str, Function] | None = None) -> None:
    """Route moto's Lambda Task invocations to ``functions`` (default: ``app_functions()``), by
    function name. Idempotent; a second call replaces the functions."""
    global _original, _routes
    routes = dict(app_functions() if functions is None else functions)
    with _lock:
        module = _moto_module()
        if _original is None:
            _original = getattr(module, _PATCHED_FUNCTION)
            setattr(module, _PATCHED_FUNCTION, _invoke_lambda_function)
        _routes = routes


def uninstall() -> None:
    """Give moto its own Lambda invocation back (tests)."""
    global _original, _routes
    with _lock:
        if _original is not None:
            setattr(_moto_module(), _PATCHED_FUNCTION, _original)
            _original = None
        _routes = {}


def installed() -> bool:
    return _original is not None


def _route(function_name: str, routes: Mapping[str, Function] | None = None) -> str | None:
    """The routed name a deployed function name stands for: the name itself, or
    ``<prefix>-<name>`` (the longest name wins, so no name shadows a longer one)."""
    routes = _routes if routes is None else routes
    if function_name in routes:
        return function_name
    matches = [name for name in routes if function_name.endswith(f"-{name}")]
    return max(matches, key=len) if matches else None


def _invoke_lambda_function(
    parameters: dict[str, Any], region: str, state_credentials: Any
) -> dict[str, Any]:
    """moto's ``_invoke_lambda_function``, answered in process: ``parameters`` are Lambda
    Invoke's (``FunctionName``: the Task's ARN, ``Payload``: the JSON bytes of its input); the
    answer is Invoke's, with ``Payload`` already decoded (what moto's caller expects)."""
    arn = str(parameters["FunctionName"])
    # an ARN (arn:aws:lambda:<region>:<account>:function:<name>[:<qualifier>]) or a name
    function_name = arn.split(":")[6] if arn.startswith("arn:") else arn.split(":")[0]
    routes, original = _routes, _original
    name = _route(function_name, routes)
    if name is None:
        if original is None:  # uninstalled while an execution was running
            raise RuntimeError(f"no function for {arn}")
        return original(parameters, region, state_credentials)
    function = routes[name]
    raw = parameters.get("Payload")
    event = json.loads(raw) if raw else {}
    context = LambdaContext(function_name=function_name, invoked_function_arn=arn)
    response: dict[str, Any] = {"StatusCode": 200, "ExecutedVersion": "$LATEST"}
    try:
        result = function(event, context)
    except Exception as error:
        log.warning("%s failed: %s: %s", name, type(error).__name__, error)
        response["FunctionError"] = "Unhandled"
        response["Payload"] = {
            "errorType": type(error).__name__,
            "errorMessage": str(error),
            "stackTrace": traceback.format_tb(error.__traceback__),
        }
        return response
    try:
        response["Payload"] = json.loads(json.dumps(result))
    except (TypeError, ValueError) as error:
        response["FunctionError"] = "Unhandled"
        response["Payload"] = {
            "errorType": "Runtime.MarshalError",
            "errorMessage": f"Unable to marshal response: {error}",
        }
    return response


# --- the moto server ----------------------------------------------------------------------------


def configure_server(endpoint: str, config: Mapping[str, object] = MOTO_CONFIG) -> None:
    """Switch state machine execution on (and Lambda's Docker off) on the moto server at
    ``endpoint``: moto's ``POST /moto-api/config``, the server's counterpart of
    ``mock_aws(config=...)``."""
    request = urllib.request.Request(
        f"{endpoint}/moto-api/config",
        data=json.dumps(dict(config)).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10):
        pass


def moto_config() -> dict[str, Any]:
    """moto's current process-wide settings of ``MOTO_CONFIG``'s sections (to restore them)."""
    from moto.core.config import default_user_config

    current: Mapping[str, Any] = default_user_config
    return {section: dict(current.get(section, {})) for section in MOTO_CONFIG}


# --- the state machine --------------------------------------------------------------------------


def function_arn(name: str, *, prefix: str, region: str, account: str = DEFAULT_ACCOUNT) -> str:
    """``arn:aws:lambda:<region>:<account>:function:<prefix>-<name>``: how the deployed function
    would be named (Chalice: ``<app>-<stage>-<name>``); ``install``'s routing finds ``name`` in
    it."""
    return f"arn:aws:lambda:{region}:{account}:function:{prefix}-{name}"


def definition(*, prefix: str, region: str, account: str = DEFAULT_ACCOUNT) -> str:
    """``infra/billing_run.asl.json`` with local ARNs where CloudFormation puts the functions'."""
    arns = {
        placeholder: function_arn(name, prefix=prefix, region=region, account=account)
        for placeholder, name in billing.TASKS.items()
    }
    return billing.substitute(billing.definition(), arns)


def state_machine_name(prefix: str) -> str:
    return f"{prefix}-{billing.STATE_MACHINE}"


def create_state_machine(
    stepfunctions: Any, *, prefix: str, region: str, account: str = DEFAULT_ACCOUNT
) -> str:
    """Create ``<prefix>-billing-run`` (a dummy role: moto does not check it) and return its ARN;
    if it exists, return the existing one's."""
    name = state_machine_name(prefix)
    for page in stepfunctions.get_paginator("list_state_machines").paginate():
        for machine in page["stateMachines"]:
            if machine["name"] == name:
                return str(machine["stateMachineArn"])
    created = stepfunctions.create_state_machine(
        name=name,
        definition=definition(prefix=prefix, region=region, account=account),
        roleArn=f"arn:aws:iam::{account}:role/{name}",
        type="STANDARD",
    )
    return str(created["stateMachineArn"])


def wait(
    stepfunctions: Any, execution_arn: str, timeout: float = 60.0, interval: float = 0.05
) -> dict[str, Any]:
    """``describe_execution`` once the execution is no longer RUNNING; ``TimeoutError`` after
    ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        described: dict[str, Any] = stepfunctions.describe_execution(executionArn=execution_arn)
        if described["status"] != "RUNNING":
            return described
        if time.monotonic() > deadline:
            raise TimeoutError(f"{execution_arn} still RUNNING after {timeout:.0f} s")
        time.sleep(interval)


# --- the schedule -------------------------------------------------------------------------------


def scheduled_event(*, region: str, account: str = DEFAULT_ACCOUNT, rule: str) -> dict[str, Any]:
    """The event EventBridge gives a scheduled rule's target."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": account,
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [f"arn:aws:events:{region}:{account}:rule/{rule}"],
        "detail": {},
    }


class Scheduler:
    """A daily rule, played locally: a daemon thread calls its function (``billing_schedule`` by
    default; the platform plays every rule of ``infra/events.py``'s ``SCHEDULES`` too) with a
    scheduled event once at ``start`` and then every ``interval`` seconds (AWS: daily, at
    ``expression``; the function itself decides what is due). A failing call is logged and the
    schedule goes on."""

    def __init__(
        self,
        function: Function | None = None,
        *,
        interval: float = SCHEDULE_INTERVAL_S,
        prefix: str = "local",
        region: str = "us-east-1",
        account: str = DEFAULT_ACCOUNT,
        name: str = billing.SCHEDULE_FUNCTION,
        expression: str = billing.SCHEDULE,
    ) -> None:
        self.name, self.expression = name, expression
        self.function = app_functions()[name] if function is None else function
        self.interval = interval
        self.region = region
        self.account = account
        self.rule = f"{prefix}-{name}"
        self.function_name = f"{prefix}-{name}"
        #: calls made, and the last one's answer or error (for tests and the curious)
        self.calls = 0
        self.last_result: Any = None
        self.last_error: BaseException | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def describe(self) -> str:
        every = f"{self.interval / 3600:g} h" if self.interval >= 3600 else f"{self.interval:g} s"
        return f"{self.name} now and every {every} (AWS: {self.expression})"

    def tick(self) -> Any:
        """One scheduled call, on the caller's thread; its answer (an error is logged, kept in
        ``last_error`` and not raised)."""
        event = scheduled_event(region=self.region, account=self.account, rule=self.rule)
        context = LambdaContext(
            function_name=self.function_name,
            invoked_function_arn=(
                f"arn:aws:lambda:{self.region}:{self.account}:function:{self.function_name}"
            ),
        )
        self.calls += 1
        try:
            self.last_result, self.last_error = self.function(event, context), None
        except Exception as error:
            self.last_result, self.last_error = None, error
            log.warning("%s failed: %s: %s", self.name, type(error).__name__, error)
        return self.last_result

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name=self.name, daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop; a call in progress is waited for up to ``timeout`` seconds."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=timeout)
            if self._thread.is_alive():
                log.warning("the schedule %s did not stop within %.0f s", self.name, timeout)
            self._thread = None

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.tick()
            if self._stop.wait(self.interval):
                return
