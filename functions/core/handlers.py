"""The Lambda side of every asynchronous path (``infra/events.py`` declares the sources,
``app.py`` wires the functions): Powertools' batch processor around one record handler.

Plain Lambda functions (not Chalice's ``on_dynamodb_record``/``on_sqs_message``, which cannot
report partial failures): each record is handled on its own and the function returns
``{"batchItemFailures": [...]}``. With ``ReportBatchItemFailures`` on the event source mapping,
Lambda retries a stream from the lowest failed record, bisects, and after the retry limit sends
the record to the on-failure queue while the records behind it go on; a failed queue message is
received again and, after its receive limit, moved to the dead-letter queue.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from functions.core import observability

log = logging.getLogger("bss.records")

LambdaFunction = Callable[[dict[str, Any], Any], PartialItemFailureResponse]


def _batch(
    event_type: EventType,
    record_handler: Callable[[Any], Any],
    correlation: Callable[[Any], str | None],
    lag_ms: Callable[[Any], float | None],
) -> LambdaFunction:
    name = getattr(record_handler, "__name__", "record")

    def observed(record: Any) -> Any:
        """One record under its correlation id: logged with its result (``applied``,
        ``stale``, ``skipped``…) or its error, and counted (``Records`` by handler and result,
        ``RecordsFailed``, ``ReplicationLag``: now − the record's creation, ms). The error is
        raised again: the batch reports the record as failed (retried, then set aside)."""
        with observability.bound(correlation(record)):
            lag = lag_ms(record)
            try:
                result = record_handler(record)
            except Exception as error:
                # in Lambda with its traceback (one JSON field); locally one line, beside the
                # runner's own (a record retried is routine there: a backfill's race, a test)
                log.error(
                    "%s failed: %s: %s",
                    name,
                    type(error).__name__,
                    error,
                    extra={"handler": name},
                    exc_info=observability.in_lambda(),
                )
                observability.emit({"RecordsFailed": 1}, dimensions={"handler": name})
                raise
            outcome = result if isinstance(result, str) else "handled"
            log.info("%s: %s", name, outcome, extra={"handler": name, "result": outcome})
            values: dict[str, float] = {"Records": 1}
            if lag is not None:
                values["ReplicationLag"] = lag
            observability.emit(
                values,
                dimensions={"handler": name, "result": outcome},
                units={"ReplicationLag": "Milliseconds"},
            )
            return result

    def function(event: dict[str, Any], context: Any) -> PartialItemFailureResponse:
        observability.configure_logging()
        processor = BatchProcessor(event_type=event_type)
        return process_partial_response(
            event=event, record_handler=observed, processor=processor, context=context
        )

    return function


def stream_function(record_handler: Callable[[DynamoDBRecord], Any]) -> LambdaFunction:
    """A DynamoDB stream's function: ``record_handler`` per record, under the correlation id the
    changed item carries (``correlation_id``, stamped by the adapters that wrote it)."""
    return _batch(EventType.DynamoDBStreams, record_handler, _item_correlation, _stream_lag)


def queue_function(record_handler: Callable[[SQSRecord], Any]) -> LambdaFunction:
    """An SQS queue's function: ``record_handler`` per message, under the correlation id its
    sender gave it (the ``correlation_id`` message attribute, ``functions.core.queues``)."""
    return _batch(EventType.SQS, record_handler, _message_correlation, lambda _record: None)


def _item_correlation(record: DynamoDBRecord) -> str | None:
    image = new_image(record) or old_image(record) or {}
    value = image.get("correlation_id") or {}
    return value.get("S") if isinstance(value, dict) else None


def _stream_lag(record: DynamoDBRecord) -> float | None:
    """ms since the change was written (the record's ``ApproximateCreationDateTime``, s)."""
    created = record.raw_event.get("dynamodb", {}).get("ApproximateCreationDateTime")
    if created is None:
        return None
    return max(0.0, round((time.time() - float(created)) * 1000, 1))


def _message_correlation(record: SQSRecord) -> str | None:
    attribute = record.raw_event.get("messageAttributes", {}).get("correlation_id") or {}
    return attribute.get("stringValue")


def new_image(record: DynamoDBRecord) -> dict[str, Any] | None:
    """The item a stream record carries after its change; None for a REMOVE."""
    image = record.raw_event.get("dynamodb", {}).get("NewImage")
    return image or None


def old_image(record: DynamoDBRecord) -> dict[str, Any] | None:
    image = record.raw_event.get("dynamodb", {}).get("OldImage")
    return image or None
