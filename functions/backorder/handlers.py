"""Lambda handlers of back ordering's asynchronous paths (R11, R12, R18); ``app.py`` wires them
and ``infra/events.py`` declares their event sources.

Plain Lambda functions (not Chalice's ``on_dynamodb_record``/``on_sqs_message``, which cannot
report partial failures): Powertools' batch processor handles each record and returns
``{"batchItemFailures": [...]}``. With ``ReportBatchItemFailures`` on the event source mapping,
Lambda retries a stream from the lowest failed record, bisects, and after the retry limit sends
the record to the on-failure queue while the records behind it go on; a failed queue message is
received again and, after its receive limit, moved to the dead-letter queue.
"""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from functions.backorder.schemas import BackfillJob
from functions.composition import container
from functions.core.adapters import AccountModel
from functions.core.domain import Account
from functions.core.persistence import to_entity
from functions.invoices.adapters import UsageModel
from functions.orders.adapters import SubscriptionModel


def replicate_record(record: DynamoDBRecord) -> str:
    """INSERT and MODIFY carry the subscription's new version; a REMOVE has nothing to mirror."""
    image = record.raw_event.get("dynamodb", {}).get("NewImage")
    if not image:
        return "skipped"
    sub = SubscriptionModel.from_raw_data(image).entity()
    return container().backorder.replicate(sub)


def sync_account_record(record: DynamoDBRecord) -> str:
    """A changed account: its mirror's synced fields follow (R12), if it has a mirror."""
    image = record.raw_event.get("dynamodb", {}).get("NewImage")
    if not image:
        return "skipped"
    account = to_entity(AccountModel.from_raw_data(image), Account)
    return container().backorder.sync_account(account)


def usage_record(record: DynamoDBRecord) -> str:
    """A use recorded: copied onto its subscription's mirror, if it has one (R25)."""
    image = record.raw_event.get("dynamodb", {}).get("NewImage")
    if not image:
        return "skipped"
    return container().backorder.replicate_usage(UsageModel.from_raw_data(image).entity())


def backfill_record(record: SQSRecord) -> str:
    """One page of an R11 backfill; the job's stored cursor makes a duplicate message a no-op."""
    job = BackfillJob.model_validate(json.loads(record.body))
    return container().backordering.backfill_page(job)


def subscriptions_stream(event: dict[str, Any], context: Any) -> PartialItemFailureResponse:
    processor = BatchProcessor(event_type=EventType.DynamoDBStreams)
    return process_partial_response(
        event=event, record_handler=replicate_record, processor=processor, context=context
    )


def accounts_stream(event: dict[str, Any], context: Any) -> PartialItemFailureResponse:
    processor = BatchProcessor(event_type=EventType.DynamoDBStreams)
    return process_partial_response(
        event=event, record_handler=sync_account_record, processor=processor, context=context
    )


def usage_stream(event: dict[str, Any], context: Any) -> PartialItemFailureResponse:
    processor = BatchProcessor(event_type=EventType.DynamoDBStreams)
    return process_partial_response(
        event=event, record_handler=usage_record, processor=processor, context=context
    )


def backfill_jobs(event: dict[str, Any], context: Any) -> PartialItemFailureResponse:
    processor = BatchProcessor(event_type=EventType.SQS)
    return process_partial_response(
        event=event, record_handler=backfill_record, processor=processor, context=context
    )
