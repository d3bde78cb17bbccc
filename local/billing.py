"""The billing run's steps in order, in-process: what ``infra/billing_run.asl.json`` does, for
tests and benchmarks that exercise the steps without the state machine (the definition itself
runs on moto in ``tests/integration/test_billing_stepfunctions.py`` and in ``make run``).

Like the Map's Retry and Catch: a chunk step that raises is retried (``retries`` times) and then
set aside, and the others go on."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from functions.invoices.services import BillingService

log = logging.getLogger(__name__)


def run_steps(billing: BillingService, payload: dict[str, Any], *, retries: int = 2) -> str:
    """Open → list → rate each chunk → finalize until done → render each chunk → close."""
    step = (str(payload["tenant_id"]), str(payload["run_id"]), int(payload["attempt"]))
    billing.open(*step)
    chunks = billing.list_accounts(*step)

    def each(task: Callable[[str, str, int, int], Any]) -> None:
        for n in chunks:
            for attempt in range(retries + 1):
                try:
                    task(*step, n)
                    break
                except Exception as error:
                    log.warning("chunk %s failed (try %s): %s", n, attempt + 1, error)

    each(billing.rate_chunk)
    cursor, done = 0, False
    while not done:
        for attempt in range(retries + 1):  # Finalize's Retry; exhausted, the run fails
            try:
                cursor, done = billing.finalize(*step, cursor)
                break
            except Exception as error:
                log.warning("finalize failed (try %s): %s", attempt + 1, error)
                if attempt == retries:
                    raise
    each(billing.render_chunk)
    return billing.close(*step)


class InlineLauncher:
    """A launcher that runs the steps at once, in the caller's thread (tests, benchmarks)."""

    def __init__(self, billing: Callable[[], BillingService]) -> None:
        self.billing = billing
        self.started: list[str] = []

    def start(self, name: str, payload: dict[str, Any]) -> str:
        self.started.append(name)
        try:
            run_steps(self.billing(), payload)
        except Exception as error:  # like a failed execution: the run stays resumable
            log.warning("the billing run %s failed: %s", name, error)
        return name

    def running(self, name: str) -> bool:
        return False  # it ran to its end inside start()
