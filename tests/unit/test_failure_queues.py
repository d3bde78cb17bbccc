"""``GET /failures`` (issue 16) reads every on-failure and dead-letter queue ``infra/events.py``
declares: the app's list (``functions.backorder.schemas.FAILURE_QUEUES``) is the same."""

from __future__ import annotations

from functions.backorder.schemas import FAILURE_QUEUES
from infra import events


def test_the_failure_queues_are_the_on_failure_and_dead_letter_queues_of_infra_events() -> None:
    declared = {s.on_failure_queue for s in events.STREAMS}
    declared |= {q.dead_letter_queue for q in events.QUEUES}
    assert set(FAILURE_QUEUES) == declared
    assert set(FAILURE_QUEUES) <= set(events.queue_names())
