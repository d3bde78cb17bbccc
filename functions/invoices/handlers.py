"""The billing run's Lambda functions (R24): the Task states of ``infra/billing_run.asl.json``
and the daily schedule. Each takes the state's small JSON (tenant, run, attempt, chunk) and
answers what the next state needs; an exception fails the Task, which the state machine retries
(Retry) and, for a chunk, sets aside without stopping the others (Catch)."""

from __future__ import annotations

import logging
from typing import Any

from functions.composition import container
from functions.core.clock import now_utc
from functions.core.observability import invocation

logger = logging.getLogger("bss.billing")


def _step(event: dict[str, Any]) -> tuple[str, str, int]:
    return str(event["tenant_id"]), str(event["run_id"]), int(event["attempt"])


def _same(event: dict[str, Any]) -> dict[str, Any]:
    return {"tenant_id": event["tenant_id"], "run_id": event["run_id"], "attempt": event["attempt"]}


@invocation
def billing_open(event: dict[str, Any], context: Any) -> dict[str, Any]:
    container().billing.open(*_step(event))
    return _same(event)


@invocation
def billing_list(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return {**_same(event), "chunks": container().billing.list_accounts(*_step(event))}


@invocation
def billing_rate(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return container().billing.rate_chunk(*_step(event), int(event["chunk"]))


@invocation
def billing_finalize(event: dict[str, Any], context: Any) -> dict[str, Any]:
    cursor, done = container().billing.finalize(*_step(event), int(event.get("cursor") or 0))
    return {**_same(event), "cursor": cursor, "done": done}


@invocation
def billing_render(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return container().billing.render_chunk(*_step(event), int(event["chunk"]))


@invocation
def billing_close(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return {**_same(event), "status": container().billing.close(*_step(event))}


@invocation
def billing_schedule(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """EventBridge's daily event: start the runs of the tenants whose period begins today."""
    started = container().billing.schedule(now_utc())
    logger.info("billing runs started: %s", started, extra={"runs": started})
    return {"started": started}
