"""The billing run's Lambda functions (R24): the Task states of ``infra/billing_run.asl.json``
and the daily schedule. Each takes the state's small JSON (tenant, run, attempt, chunk) and
answers what the next state needs; an exception fails the Task, which the state machine retries
(Retry) and, for a chunk, sets aside without stopping the others (Catch)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger

from functions.composition import container
from functions.core.clock import now_utc

logger = Logger(service="billing")


def _step(event: dict[str, Any]) -> tuple[str, str, int]:
    return str(event["tenant_id"]), str(event["run_id"]), int(event["attempt"])


def _same(event: dict[str, Any]) -> dict[str, Any]:
    return {"tenant_id": event["tenant_id"], "run_id": event["run_id"], "attempt": event["attempt"]}


@logger.inject_lambda_context
def billing_open(event: dict[str, Any], context: Any) -> dict[str, Any]:
    container().billing.open(*_step(event))
    return _same(event)


@logger.inject_lambda_context
def billing_list(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return {**_same(event), "chunks": container().billing.list_accounts(*_step(event))}


@logger.inject_lambda_context
def billing_rate(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return container().billing.rate_chunk(*_step(event), int(event["chunk"]))


@logger.inject_lambda_context
def billing_finalize(event: dict[str, Any], context: Any) -> dict[str, Any]:
    cursor, done = container().billing.finalize(*_step(event), int(event.get("cursor") or 0))
    return {**_same(event), "cursor": cursor, "done": done}


@logger.inject_lambda_context
def billing_render(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return container().billing.render_chunk(*_step(event), int(event["chunk"]))


@logger.inject_lambda_context
def billing_close(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return {**_same(event), "status": container().billing.close(*_step(event))}


@logger.inject_lambda_context
def billing_schedule(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """EventBridge's daily event: start the runs of the tenants whose period begins today."""
    started = container().billing.schedule(now_utc())
    logger.info("billing runs started", extra={"runs": started})
    return {"started": started}
