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

LambdaFunction = Callable[[dict[str, Any], Any], PartialItemFailureResponse]


def _batch(event_type: EventType, record_handler: Callable[[Any], Any]) -> LambdaFunction:
    def function(event: dict[str, Any], context: Any) -> PartialItemFailureResponse:
        processor = BatchProcessor(event_type=event_type)
        return process_partial_response(
            event=event, record_handler=record_handler, processor=processor, context=context
        )

    return function


def stream_function(record_handler: Callable[[DynamoDBRecord], Any]) -> LambdaFunction:
    """A DynamoDB stream's function: ``record_handler`` per record."""
    return _batch(EventType.DynamoDBStreams, record_handler)


def queue_function(record_handler: Callable[[SQSRecord], Any]) -> LambdaFunction:
    """An SQS queue's function: ``record_handler`` per message."""
    return _batch(EventType.SQS, record_handler)


def new_image(record: DynamoDBRecord) -> dict[str, Any] | None:
    """The item a stream record carries after its change; None for a REMOVE."""
    image = record.raw_event.get("dynamodb", {}).get("NewImage")
    return image or None


def old_image(record: DynamoDBRecord) -> dict[str, Any] | None:
    image = record.raw_event.get("dynamodb", {}).get("OldImage")
    return image or None
