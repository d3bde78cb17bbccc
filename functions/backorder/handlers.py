"""Lambda handler of the subscriptions table's DynamoDB stream (R18).

A plain Lambda function (not Chalice's ``on_dynamodb_record``, which cannot report partial
failures): Powertools' batch processor handles each record and returns
``{"batchItemFailures": [...]}``, so with ``ReportBatchItemFailures`` on the event source mapping
Lambda retries from the lowest failed record, bisects, and after the retry limit sends the
record to the on-failure queue while the records behind it go on.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord

from functions.composition import container
from functions.orders.adapters import SubscriptionModel


def replicate_record(record: DynamoDBRecord) -> str:
    """INSERT and MODIFY carry the subscription's new version; a REMOVE has nothing to mirror."""
    image = record.raw_event.get("dynamodb", {}).get("NewImage")
    if not image:
        return "skipped"
    sub = SubscriptionModel.from_raw_data(image).entity()
    return container().backorder.replicate(sub)


def subscriptions_stream(event: dict[str, Any], context: Any) -> PartialItemFailureResponse:
    processor = BatchProcessor(event_type=EventType.DynamoDBStreams)
    return process_partial_response(
        event=event, record_handler=replicate_record, processor=processor, context=context
    )
