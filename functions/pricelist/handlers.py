"""Lambda handlers of price-list propagation (R5, R6); ``app.py`` wires them and
``infra/events.py`` declares their event sources.

- ``prices_stream``: an entry of a price list set (a price changed, a product or cycle added);
- ``products_stream``: a product's offer changed (the provider's edit, or a copy re-derived one
  tier up, which is how a change flows down every tier);
- ``price_changes``: the queue of fan-out pages, ``Propagator.PAGE`` tenants per message.

Plain Lambda functions with Powertools' batch processor, reporting partial failures (see
``functions/backorder/handlers.py``).
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

from functions.composition import container
from functions.core.persistence import to_entity
from functions.pricelist.adapters import PriceModel, ProductModel
from functions.pricelist.domain import Price
from functions.pricelist.schemas import PriceChange


def price_record(record: DynamoDBRecord) -> int:
    """INSERT and MODIFY: the entry's list fans out; entries are never deleted by the API."""
    image = record.raw_event.get("dynamodb", {}).get("NewImage")
    if not image:
        return 0
    entry = to_entity(PriceModel.from_raw_data(image), Price)
    return container().propagator.price_changed(entry)


def product_record(record: DynamoDBRecord) -> int:
    images = record.raw_event.get("dynamodb", {})
    if not images.get("NewImage"):
        return 0
    after = ProductModel.from_raw_data(images["NewImage"]).entity()
    before = (
        ProductModel.from_raw_data(images["OldImage"]).entity() if images.get("OldImage") else None
    )
    return container().propagator.product_changed(before, after)


def change_record(record: SQSRecord) -> int:
    change = PriceChange.model_validate(json.loads(record.body))
    return container().propagator.propagate_page(change)


def prices_stream(event: dict[str, Any], context: Any) -> PartialItemFailureResponse:
    processor = BatchProcessor(event_type=EventType.DynamoDBStreams)
    return process_partial_response(
        event=event, record_handler=price_record, processor=processor, context=context
    )


def products_stream(event: dict[str, Any], context: Any) -> PartialItemFailureResponse:
    processor = BatchProcessor(event_type=EventType.DynamoDBStreams)
    return process_partial_response(
        event=event, record_handler=product_record, processor=processor, context=context
    )


def price_changes(event: dict[str, Any], context: Any) -> PartialItemFailureResponse:
    processor = BatchProcessor(event_type=EventType.SQS)
    return process_partial_response(
        event=event, record_handler=change_record, processor=processor, context=context
    )
