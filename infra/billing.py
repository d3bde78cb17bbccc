"""The billing run (R24), declared once: the state machine's definition file, which function of
``app.py`` each of its Task states runs, and the schedule that starts it.

Two readers, like ``infra/events.py``, so AWS and the local platform run the same file:

* ``infra/template.py`` deploys ``billing_run.asl.json`` as an ``AWS::StepFunctions::StateMachine``
  whose ``DefinitionSubstitutions`` fill each placeholder with the ARN of the Chalice-generated
  function, and wires the daily EventBridge rule to ``billing_schedule``;
* ``local/stepfunctions.py`` substitutes local ARNs into the same text, creates the state machine
  on moto, routes its Lambda invocations to the functions of ``app.py``, and plays the schedule.

Pure data and text: no AWS import. The functions are those of ``functions/entrypoints.py``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

from functions.entrypoints import declared

#: the Amazon States Language definition (JSONPath), with ``${<Placeholder>}`` Task resources
DEFINITION_FILE = Path(__file__).resolve().with_name("billing_run.asl.json")

#: the state machine is ``<prefix>-billing-run`` (in AWS the prefix is the stack name)
STATE_MACHINE = "billing-run"

#: each placeholder of the definition → the ``app.lambda_function`` name its Task state invokes
TASKS: Mapping[str, str] = {
    "BillingOpenFunctionArn": declared("billing_open"),
    "BillingListFunctionArn": declared("billing_list"),
    "BillingRateFunctionArn": declared("billing_rate"),
    "BillingFinalizeFunctionArn": declared("billing_finalize"),
    "BillingRenderFunctionArn": declared("billing_render"),
    "BillingCloseFunctionArn": declared("billing_close"),
}

#: the EventBridge schedule's target: it starts one execution per tenant whose billing day it is
SCHEDULE_FUNCTION = declared("billing_schedule")
#: daily, 00:15 UTC: after midnight in UTC, so a billing day that starts at midnight has begun
SCHEDULE = "cron(15 0 * * ? *)"

_PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9_]+)\}")


def functions() -> tuple[str, ...]:
    """Every billing function of ``app.py``: the Task states' and the schedule's."""
    return (*TASKS.values(), SCHEDULE_FUNCTION)


def definition() -> str:
    """The definition file's text, placeholders and all (what CloudFormation receives)."""
    return DEFINITION_FILE.read_text()


def placeholders(text: str) -> set[str]:
    """The ``${Name}`` placeholders of a definition."""
    return set(_PLACEHOLDER.findall(text))


def substitute(text: str, values: Mapping[str, str]) -> str:
    """``${Name}`` → ``values[Name]``, as ``DefinitionSubstitutions`` does; a placeholder without a
    value is an error (CloudFormation would leave it in, and the Task would fail at run time)."""
    missing = placeholders(text) - set(values)
    if missing:
        raise KeyError(f"no value for the placeholder(s) {sorted(missing)}")
    return _PLACEHOLDER.sub(lambda match: values[match.group(1)], text)
