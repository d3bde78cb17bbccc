"""Issue 16: a change's correlation id follows it from the API request through each stream
record to the mirror and the provider's order, tier after tier (R13, R14, R17); the API and the
stream functions emit their metrics (EMF, ``functions.core.observability``)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from functions.core import observability
from tests.integration.test_backorder import (
    Reseller,
    Stream,
    retail_customer,
    sub_tier,
    world,
)

__all__ = ["world"]  # the fixture, shared with the back-ordering suite


@pytest.fixture
def metrics() -> Iterator[list[dict[str, Any]]]:
    found: list[dict[str, Any]] = []
    observability.set_sink(found.append)
    yield found
    observability.set_sink(None)


def value(document: dict[str, Any], name: str) -> float:
    """A metric's value in an EMF document (Powertools writes a list of one)."""
    found = document[name]
    return float(found[0] if isinstance(found, list) else found)


def request(world: Reseller, method: str, path: str, who: str, body: Any, **headers: str) -> Any:
    answer = world.api.client.http.request(
        method,
        path,
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {who}", **headers},
        body=json.dumps(body).encode() if body is not None else b"",
    )
    return answer


def correlation_ids(tenant_id: str) -> tuple[set[str | None], set[str | None]]:
    """The correlation ids on a tenant's mirrors and its back-ordering orders (the stored items)."""
    from functions.orders.adapters import OrderModel, SubscriptionModel

    mirrors = {s.correlation_id for s in SubscriptionModel.query(tenant_id) if s.mirrored}
    orders = {
        o.correlation_id for o in OrderModel.query(tenant_id) if o.created_by == "back-ordering"
    }
    return mirrors, orders


def test_the_correlation_id_follows_a_sale_through_every_tier(
    world: Reseller, metrics: list[dict[str, Any]]
) -> None:
    """A sale in T2 (Cloud → Cloud Resell → T2) asked with ``X-Correlation-Id: c-deep-sale``:
    the answer names it; Cloud Resell's mirror and order and then Cloud's carry it; each stream
    record handled under it is counted with its replication lag."""
    api = world.api
    _, t2, product = sub_tier(api, world.admin, world.e3_copy, "T2", "22.00")
    customer = retail_customer(api, t2, product, "40.00")
    stream = Stream()
    answer = request(
        world,
        "POST",
        "/subscriptions",
        t2,
        {
            "account_id": customer["id"],
            "product_id": product["id"],
            "billing_cycle": "monthly",
            "quantity": 4,
        },
        **{"X-Correlation-Id": "c-deep-sale"},
    )
    assert answer.status_code == 201
    assert answer.headers["X-Correlation-Id"] == "c-deep-sale"
    stream.drain()
    assert correlation_ids(world.resell) == ({"c-deep-sale"}, {"c-deep-sale"})
    assert correlation_ids(world.cloud) == ({"c-deep-sale"}, {"c-deep-sale"})
    handled = [
        m
        for m in metrics
        if m.get("handler") == "replicate_record" and m.get("correlation_id") == "c-deep-sale"
    ]
    assert len(handled) >= 2  # T2's sale in Cloud Resell, then Cloud Resell's mirror in Cloud
    assert all(value(m, "ReplicationLag") >= 0 for m in handled)
    (created,) = [m for m in metrics if m.get("route") == "POST /subscriptions"]
    assert [value(created, n) for n in ("Requests", "Errors4xx", "Errors5xx")] == [1, 0, 0]
    assert created["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "BSS"


def test_a_request_without_a_usable_correlation_id_gets_one_and_errors_are_counted(
    world: Reseller, metrics: list[dict[str, Any]]
) -> None:
    too_long = "x" * 100
    answer = request(
        world, "GET", "/subscriptions/sub_none", world.admin, None, **{"X-Correlation-Id": too_long}
    )
    assert answer.status_code == 404
    given = answer.headers["X-Correlation-Id"]
    assert given != too_long and observability.accepted(given) == given
    (counted,) = [m for m in metrics if "Errors4xx" in m and value(m, "Errors4xx") == 1]
    assert counted["correlation_id"] == given
