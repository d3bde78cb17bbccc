"""The Lambda functions besides the API are declared once (issue 12): ``functions/entrypoints.py``
names each with its handler module, ``app.py`` generates them, and ``infra/`` wires each to its
stream, queue, Task state or schedule by that name."""

from __future__ import annotations

import importlib

import pytest

from functions.entrypoints import FUNCTIONS
from infra import billing, events


def test_app_declares_exactly_the_listed_functions_each_calling_its_handler() -> None:
    import app

    declared = {f.name: f.handler_string for f in app.app.pure_lambda_functions}
    assert declared == {name: f"app.{name}" for name in FUNCTIONS}
    for name, module in FUNCTIONS.items():
        assert callable(getattr(importlib.import_module(module), name)), (module, name)


def test_every_listed_function_has_a_source_and_every_source_a_listed_function() -> None:
    sources = (*events.STREAMS, *events.QUEUES, *events.SCHEDULES)
    wired = [s.function for s in sources] + list(billing.functions())
    assert sorted(wired) == sorted(FUNCTIONS)  # each once: no function fed twice, none idle


def test_a_source_naming_an_unknown_function_is_refused_when_wired() -> None:
    with pytest.raises(ValueError, match="subscription_stream"):
        events.wired(events.StreamSource(function="subscription_stream", table="subscriptions"))
    with pytest.raises(ValueError, match="backfill_job"):
        events.wired(events.QueueSource(function="backfill_job", queue="backfill"))
