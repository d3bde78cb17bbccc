"""The storefronts' asynchronous path (R27): a lite reseller's plan subscription changed, so
its storefront follows. One record handler in the batch processor of
``functions/core/handlers.py`` (partial batch failures reported); ``infra/events.py`` feeds it
the subscriptions stream beside back ordering."""

from __future__ import annotations

from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord

from functions.composition import container
from functions.core.handlers import new_image, stream_function
from functions.storefront.adapters import subscription_of_image


def plan_record(record: DynamoDBRecord) -> str:
    image = new_image(record)
    if image is None:
        return "skipped"
    return container().storefronts.plan_changed(subscription_of_image(image))


plans_stream = stream_function(plan_record)
