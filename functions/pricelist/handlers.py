"""Lambda functions of price-list propagation (R5, R6); ``app.py`` wires them and
``infra/events.py`` declares their event sources (batch processing as in
``functions/core/handlers.py``).

- ``prices_stream``: an entry of a price list set (a price changed, a product or cycle added);
- ``products_stream``: a product's offer changed (the provider's edit, or a copy re-derived one
  tier up, which is how a change flows down every tier);
- ``price_changes``: the queue of fan-out pages, ``Propagator.PAGE`` tenants per message.
"""

from __future__ import annotations

import json

from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from functions.composition import container
from functions.core.handlers import new_image, old_image, queue_function, stream_function
from functions.pricelist.adapters import price_of_image, product_of_image
from functions.pricelist.schemas import PriceChange


def price_record(record: DynamoDBRecord) -> int:
    """INSERT and MODIFY: the entry's list fans out; entries are never deleted by the API."""
    image = new_image(record)
    if image is None:
        return 0
    return container().propagator.price_changed(price_of_image(image))


def product_record(record: DynamoDBRecord) -> int:
    after, before = new_image(record), old_image(record)
    if after is None:
        return 0
    return container().propagator.product_changed(
        product_of_image(before) if before else None,
        product_of_image(after),
    )


def change_record(record: SQSRecord) -> int:
    change = PriceChange.model_validate(json.loads(record.body))
    return container().propagator.propagate_page(change)


prices_stream = stream_function(price_record)
products_stream = stream_function(product_record)
price_changes = queue_function(change_record)
