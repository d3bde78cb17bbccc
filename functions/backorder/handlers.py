"""Lambda functions of back ordering's asynchronous paths (R11, R12, R18, R25); ``app.py``
wires them and ``infra/events.py`` declares their event sources. Each is one record handler in
the batch processor of ``functions/core/handlers.py`` (partial batch failures reported)."""

from __future__ import annotations

import json
import logging
from typing import Any

from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from functions.backorder.adapters import account_of_image, subscription_of_image, usage_of_image
from functions.backorder.schemas import BackfillJob, ReconciliationPage
from functions.composition import container
from functions.core.clock import now_utc
from functions.core.handlers import new_image, queue_function, stream_function
from functions.core.observability import invocation

logger = logging.getLogger("bss.backorder")


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


def reconciliation_record(record: SQSRecord) -> str:
    """One page of an R33 reconciliation run (or its repair); the run's stored position makes
    a duplicate message a no-op."""
    page = ReconciliationPage.model_validate(json.loads(record.body))
    return container().reconciliation.run_page(page)


@invocation
def reconciliation_schedule(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """EventBridge's daily event: a run for every child tenant with back ordering on (R33)."""
    started = container().reconciliation.schedule(now_utc())
    logger.info("reconciliation runs started: %s", started)
    return {"started": started}


subscriptions_stream = stream_function(replicate_record)
accounts_stream = stream_function(sync_account_record)
usage_stream = stream_function(usage_record)
backfill_jobs = queue_function(backfill_record)
reconciliation_jobs = queue_function(reconciliation_record)
