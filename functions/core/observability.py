"""What an operator sees (issue 16): structured logs carrying a correlation id, and metrics.

- **The correlation id** follows a change: the API takes the request's ``X-Correlation-Id``
  (or API Gateway's request id, or a new one), answers it in the same header, and keeps it in a
  context variable for the request; the subscription and order items written meanwhile carry it
  (``correlation_id``, stamped by the adapters), so the stream record of the change carries it;
  the stream and queue functions bind it again from the record (``bound``) before handling it,
  so the mirror and the provider's order written there carry it too, and the next tier's stream
  record, and so on up the tree. Every log line of that path names it.
- **Logs** are JSON lines in Lambda (Powertools' formatter: level, message, service,
  timestamp, location, ``correlation_id`` and any ``extra``); the local platform writes human
  lines naming the correlation id. ``configure_logging`` is called by each entry point on its
  first use, never at import.
- **Metrics** are CloudWatch embedded-metric-format (EMF) documents, built with Powertools'
  ``EphemeralMetrics`` (no state shared between calls), namespace ``BSS``: written to stdout in
  Lambda (CloudWatch Logs extracts them), to the ``bss.metrics`` logger at DEBUG elsewhere;
  ``set_sink`` replaces that (the tests read them).

Powertools is imported on first use, so the API's cold import stays without it.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import json
import logging
import os
import re
import sys
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextvars import ContextVar
from typing import Any, TextIO, TypeVar

Answer = TypeVar("Answer")

NAMESPACE = "BSS"
SERVICE = "bss"
HEADER = "X-Correlation-Id"
#: a correlation id a caller may give: short and plain (it is logged and stored on items)
_VALID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")

_CORRELATION: ContextVar[str | None] = ContextVar("correlation_id", default=None)
_configured = False
_sink: Callable[[dict[str, Any]], None] | None = None


def current() -> str | None:
    """The correlation id of what is being handled (None outside a request or record)."""
    return _CORRELATION.get()


def accepted(value: object) -> str | None:
    """A caller's correlation id if it is one we keep (else None: a new one is made)."""
    return value if isinstance(value, str) and _VALID.match(value) else None


def new_id() -> str:
    return f"c-{uuid.uuid4().hex[:24]}"


@contextlib.contextmanager
def bound(correlation_id: str | None) -> Iterator[str]:
    """Handle something under ``correlation_id`` (a new one when None)."""
    value = accepted(correlation_id) or new_id()
    token = _CORRELATION.set(value)
    try:
        yield value
    finally:
        _CORRELATION.reset(token)


class _Correlated(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.correlation_id = current() or "-"
        return True


def in_lambda() -> bool:
    """Running in AWS Lambda (its runtime sets the function's name in the environment)."""
    return bool(os.environ.get("AWS_LAMBDA_FUNCTION_NAME"))


def correlation_filter() -> logging.Filter:
    """A filter giving every record its ``correlation_id`` (``-`` when none): for a handler whose
    format names it (the local platform's human lines)."""
    return _Correlated()


def configure_logging(stream: TextIO | None = None, *, json_lines: bool | None = None) -> None:
    """The ``bss`` loggers' JSON lines, once (in Lambda, by default: elsewhere the process's
    own logging is left as it is — the local platform writes human lines with the correlation
    id, ``correlation_filter``; the tests capture records)."""
    global _configured
    if _configured or not (in_lambda() if json_lines is None else json_lines):
        return
    from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter

    handler = logging.StreamHandler(stream or sys.stdout)
    handler.setFormatter(LambdaPowertoolsFormatter(service=SERVICE))
    handler.addFilter(_Correlated())
    root = logging.getLogger("bss")
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    root.propagate = False  # Lambda's own handler on the root logger would write it again
    _configured = True


def invocation(
    function: Callable[[dict[str, Any], Any], Answer],
) -> Callable[[dict[str, Any], Any], Answer]:
    """A function invoked with one event (a Task state of the billing run, a schedule): its log
    lines are JSON in Lambda like the record functions' (``functions.core.handlers``), under a
    correlation id of its own."""

    @functools.wraps(function)
    def handler(event: dict[str, Any], context: Any) -> Answer:
        configure_logging()
        with bound(None):
            return function(event, context)

    return handler


def preload() -> None:
    """Import what logging and metrics use, before threads start (the local platform): two
    threads importing Powertools' package at once can meet it half initialised (an
    ``ImportError``); in Lambda one thread imports it on first use."""
    for module in (  # the package first: it imports its metrics itself
        "aws_lambda_powertools",
        "aws_lambda_powertools.metrics",
        "aws_lambda_powertools.logging.formatter",
    ):
        importlib.import_module(module)


def set_sink(sink: Callable[[dict[str, Any]], None] | None) -> None:
    """Where metric documents go (None: the default, by where the code runs)."""
    global _sink
    _sink = sink


def _deliver(document: dict[str, Any]) -> None:
    if _sink is not None:
        _sink(document)
    elif in_lambda():
        print(json.dumps(document, separators=(",", ":")), flush=True)
    else:
        logging.getLogger("bss.metrics").debug("%s", json.dumps(document))


def emit(
    values: Mapping[str, float | int],
    *,
    dimensions: Mapping[str, str] | None = None,
    units: Mapping[str, str] | None = None,
) -> None:
    """One EMF document: each of ``values`` (name → value; a ``Count`` unless ``units`` says)
    under ``dimensions``, with the correlation id as a property. Never raises: a metric lost is
    logged, the work it measures goes on."""
    try:
        from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

        metrics = EphemeralMetrics(namespace=NAMESPACE, service=SERVICE)
        for dimension, label in (dimensions or {}).items():
            metrics.add_dimension(name=dimension, value=label)
        for name, value in values.items():
            unit = MetricUnit((units or {}).get(name, "Count"))
            metrics.add_metric(name=name, unit=unit, value=float(value))
        if current():
            metrics.add_metadata(key="correlation_id", value=current())
        document = dict(metrics.serialize_metric_set())
    except Exception:  # a bad metric must not fail a request or a record
        logging.getLogger("bss.metrics").exception("metric not emitted: %s", dict(values))
        return
    _deliver(document)
