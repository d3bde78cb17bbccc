"""Issue 16: JSON log lines naming the correlation id, EMF metric documents, and the stream
function's per-record log and metrics (a failing record counted and reported to Lambda)."""

from __future__ import annotations

import io
import json
import logging
import time
from collections.abc import Iterator
from typing import Any

import pytest

from functions.core import handlers, observability


@pytest.fixture
def metrics() -> Iterator[list[dict[str, Any]]]:
    found: list[dict[str, Any]] = []
    observability.set_sink(found.append)
    yield found
    observability.set_sink(None)


@pytest.fixture
def json_log(monkeypatch: pytest.MonkeyPatch) -> Iterator[io.StringIO]:
    """The ``bss`` loggers configured as in Lambda, into a buffer; restored afterwards."""
    root = logging.getLogger("bss")
    saved = (list(root.handlers), root.level, root.propagate)
    monkeypatch.setattr(observability, "_configured", False)
    out = io.StringIO()
    observability.configure_logging(out, json_lines=True)
    yield out
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])
    root.propagate = saved[2]


def lines(out: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.getvalue().splitlines() if line.strip()]


def test_a_log_line_is_json_naming_the_correlation_id(json_log: io.StringIO) -> None:
    with observability.bound("c-abc"):
        logging.getLogger("bss.api").info("GET /x 200", extra={"status": 200})
    logging.getLogger("bss.api").warning("outside")
    first, second = lines(json_log)
    assert (first["message"], first["correlation_id"], first["status"]) == (
        "GET /x 200",
        "c-abc",
        200,
    )
    assert (first["level"], first["service"]) == ("INFO", "bss")
    assert second["correlation_id"] == "-"


def test_a_schedule_or_task_function_logs_json_under_a_correlation_id_of_its_own(
    json_log: io.StringIO,
) -> None:
    """The billing run's Task states and the daily schedules (``invocation``) log like the record
    functions: JSON in Lambda, one correlation id per invocation."""
    from functions.invoices import handlers as billing

    @observability.invocation
    def schedule(event: dict[str, Any], context: Any) -> str:
        billing.logger.info("billing runs started: %s", [], extra={"runs": []})
        return str(observability.current())

    first, second = schedule({}, None), schedule({}, None)
    one, two = lines(json_log)
    assert (one["message"], one["runs"], one["correlation_id"]) == (
        "billing runs started: []",
        [],
        first,
    )
    assert two["correlation_id"] == second != first
    assert observability.current() is None  # unbound after the call


def test_outside_lambda_logging_is_left_to_the_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_LAMBDA_FUNCTION_NAME", raising=False)
    monkeypatch.setattr(observability, "_configured", False)
    before = list(logging.getLogger("bss").handlers)
    observability.configure_logging()
    assert logging.getLogger("bss").handlers == before


@pytest.mark.parametrize(
    ("given", "kept"),
    [("c-1", True), ("req-9f0e:1.2", True), ("", False), ("x" * 65, False), ("a b", False)],
)
def test_a_callers_correlation_id_is_kept_only_when_short_and_plain(given: str, kept: bool) -> None:
    with observability.bound(given) as used:
        assert (used == given) is kept
        assert observability.current() == used
    assert observability.current() is None


def test_a_metric_is_an_emf_document_with_its_dimensions_units_and_correlation(
    metrics: list[dict[str, Any]],
) -> None:
    with observability.bound("c-m"):
        observability.emit(
            {"Requests": 1, "Latency": 12.5},
            dimensions={"route": "GET /x"},
            units={"Latency": "Milliseconds"},
        )
    (document,) = metrics
    (directive,) = document["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == "BSS"
    assert ["route", "service"] in [sorted(d) for d in directive["Dimensions"]]
    assert {m["Name"]: m["Unit"] for m in directive["Metrics"]} == {
        "Requests": "Count",
        "Latency": "Milliseconds",
    }
    assert (document["route"], document["correlation_id"]) == ("GET /x", "c-m")


def test_a_bad_metric_is_logged_not_raised(metrics: list[dict[str, Any]]) -> None:
    observability.emit({"Requests": 1}, units={"Requests": "NotAUnit"})
    assert metrics == []


def stream_event(*images: dict[str, Any]) -> dict[str, Any]:
    return {
        "Records": [
            {
                "eventID": f"e{n}",
                "eventName": "MODIFY",
                "eventSource": "aws:dynamodb",
                "eventSourceARN": "arn:aws:dynamodb:us-east-1:1:table/t/stream/s",
                "dynamodb": {
                    "SequenceNumber": str(100 + n),
                    "ApproximateCreationDateTime": time.time() - 2,
                    "NewImage": image,
                },
            }
            for n, image in enumerate(images)
        ]
    }


def test_a_stream_record_is_handled_under_its_items_correlation_id_and_counted(
    metrics: list[dict[str, Any]],
) -> None:
    seen: list[str | None] = []

    def replicate_record(record: Any) -> str:
        if record.raw_event["dynamodb"]["NewImage"]["id"]["S"] == "bad":
            raise RuntimeError("boom")
        seen.append(observability.current())
        return "mirrored"

    function = handlers.stream_function(replicate_record)
    result = function(
        stream_event(
            {"id": {"S": "ok"}, "correlation_id": {"S": "c-sale"}},
            {"id": {"S": "bad"}, "correlation_id": {"S": "c-bad"}},
        ),
        None,
    )
    assert result["batchItemFailures"] == [{"itemIdentifier": "101"}]  # retried, then set aside
    assert seen == ["c-sale"]
    handled = next(m for m in metrics if "Records" in m)
    assert (handled["handler"], handled["result"], handled["correlation_id"]) == (
        "replicate_record",
        "mirrored",
        "c-sale",
    )
    assert handled["ReplicationLag"][0] >= 2000  # created 2 s ago
    failed = next(m for m in metrics if "RecordsFailed" in m)
    assert failed["correlation_id"] == "c-bad"
