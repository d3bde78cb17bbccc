"""Lambda functions of back ordering's asynchronous paths (R11, R12, R18, R25); ``app.py``
wires them and ``infra/events.py`` declares their event sources. Each is one record handler in
the batch processor of ``functions/core/handlers.py`` (partial batch failures reported)."""

from __future__ import annotations

import json

from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from functions.backorder.adapters import account_of_image, subscription_of_image, usage_of_image
from functions.backorder.schemas import BackfillJob
from functions.composition import container
from functions.core.handlers import new_image, queue_function, stream_function


def replicate_record(record: DynamoDBRecord) -> str:
    """INSERT and MODIFY carry the subscription's new version; a REMOVE has nothing to mirror."""
    image = new_image(record)
    if image is None:
        return "skipped"
    return container().backorder.replicate(subscription_of_image(image))


def sync_account_record(record: DynamoDBRecord) -> str:
    """A changed account: its mirror's synced fields follow (R12), if it has a mirror."""
    image = new_image(record)
    if image is None:
        return "skipped"
    return container().backorder.sync_account(account_of_image(image))


def usage_record(record: DynamoDBRecord) -> str:
    """A use recorded: copied onto its subscription's mirror, if it has one (R25)."""
    image = new_image(record)
    if image is None:
        return "skipped"
    return container().backorder.replicate_usage(usage_of_image(image))


def backfill_record(record: SQSRecord) -> str:
    """One page of an R11 backfill; the job's stored cursor makes a duplicate message a no-op."""
    job = BackfillJob.model_validate(json.loads(record.body))
    return container().backordering.backfill_page(job)


subscriptions_stream = stream_function(replicate_record)
accounts_stream = stream_function(sync_account_record)
usage_stream = stream_function(usage_record)
backfill_jobs = queue_function(backfill_record)
