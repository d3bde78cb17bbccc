"""Every asynchronous path of the BSS, declared once: which Lambda function (one of
``functions/entrypoints.py``, from which ``app.py`` makes its ``app.lambda_function``) consumes
which DynamoDB stream or SQS queue, and with which delivery settings.

Two readers, so AWS and the local platform behave alike:

* ``infra/template.py`` turns each entry into an ``AWS::Lambda::EventSourceMapping`` (and the
  queues into ``AWS::SQS::Queue``) in the merge template;
* ``local/runner.py`` polls the same streams and queues on the moto server and invokes the same
  functions with Lambda-shaped events, honouring the same settings.

Pure data: no AWS import (queue names come from the contexts that send to them).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

from functions.backorder.schemas import (
    BACKFILL_QUEUE,
    RECONCILIATION_QUEUE,
    STREAM_FAILURES_QUEUE,
)
from functions.entrypoints import declared
from functions.pricelist.schemas import PRICE_CHANGES_QUEUE


@dataclass(frozen=True)
class StreamSource:
    """A DynamoDB stream → a function, as an event source mapping with ``ReportBatchItemFailures``:
    a failed record is retried from the lowest failed sequence number, the batch is bisected on a
    function error, and after ``max_retries`` retries (or ``max_record_age_s``) the record's batch
    information goes to ``on_failure_queue`` while the records behind it go on (R18)."""

    function: str  # a function of ``functions/entrypoints.py`` (``app.<function>``)
    table: str  # the streamed model's ``base_name``
    batch_size: int = 100
    batching_window_s: int = 0
    max_retries: int = 5
    max_record_age_s: int = 6 * 3600
    bisect: bool = True
    parallelization: int = 1  # >1 would break per-item order on first delivery
    on_failure_queue: str = STREAM_FAILURES_QUEUE


@dataclass(frozen=True)
class QueueSource:
    """An SQS queue → a function, with ``ReportBatchItemFailures``: a failed message becomes
    visible again after ``visibility_timeout_s``; after ``max_receives`` receives SQS moves it to
    ``dead_letter_queue``."""

    function: str
    queue: str  # base name; the queue is ``<prefix>-<queue>``
    batch_size: int = 10
    visibility_timeout_s: int = 300  # ≥ 6 × the function timeout, as AWS recommends
    max_receives: int = 5
    dead_letter_queue: str = ""

    def __post_init__(self) -> None:
        if not self.dead_letter_queue:
            object.__setattr__(self, "dead_letter_queue", f"{self.queue}-dlq")


@dataclass(frozen=True)
class ScheduleSource:
    """A daily EventBridge rule → a function, which sends job messages to ``sends_to`` (it
    may send to those queues, nothing else)."""

    function: str
    expression: str
    sends_to: tuple[str, ...] = ()


S = TypeVar("S", StreamSource, QueueSource, ScheduleSource)


def wired(*sources: S) -> tuple[S, ...]:
    """The BSS's sources, each feeding a function of ``functions/entrypoints.py`` (else a
    ``ValueError`` at import: a misspelt function would otherwise be wired to nothing)."""
    for source in sources:
        declared(source.function)
    return sources


STREAMS: tuple[StreamSource, ...] = wired(
    # back ordering: a reseller tenant's subscription changes → mirrors and provider orders
    StreamSource(function="subscriptions_stream", table="subscriptions"),
    # reseller plans (R27): a lite reseller's plan subscription → its storefront
    StreamSource(function="plans_stream", table="subscriptions"),
    # back ordering: a mirrored account's synced fields follow its source (R12)
    StreamSource(function="accounts_stream", table="accounts"),
    # back ordering: a use of a mirrored subscription → its mirror (R25)
    StreamSource(function="usage_stream", table="usage"),
    # price-list propagation (R5, R6): a list's entry set → its assignees, a page per message
    StreamSource(function="prices_stream", table="prices"),
    # a product's offer changed (the provider's edit, a copy re-derived a tier up) → its lists
    StreamSource(function="products_stream", table="products"),
)

QUEUES: tuple[QueueSource, ...] = wired(
    # back ordering: the R11 backfill, one page of a child's subscriptions per message
    QueueSource(function="backfill_jobs", queue=BACKFILL_QUEUE, batch_size=1),
    # reconciliation (R33): one page of a run (≤ 1,000 of a child's records) or of its repair
    QueueSource(function="reconciliation_jobs", queue=RECONCILIATION_QUEUE, batch_size=1),
    # price-list propagation: one page of a list's assignees per message (≤ 100 tenants)
    QueueSource(function="price_changes", queue=PRICE_CHANGES_QUEUE, batch_size=1),
)


SCHEDULES: tuple[ScheduleSource, ...] = wired(
    # commitment terms (R31): daily, 00:05 UTC (before the billing schedule's 00:15), the
    # automatic renewal of every auto-renewing subscription whose scheduled downgrade is due
    ScheduleSource(function="renewal_schedule", expression="cron(5 0 * * ? *)"),
    # reconciliation (R33): daily, 01:30 UTC (after the billing schedule's 00:15), a run of its
    # provider's for every child tenant with back ordering on
    ScheduleSource(
        function="reconciliation_schedule",
        expression="cron(30 1 * * ? *)",
        sends_to=(RECONCILIATION_QUEUE,),
    ),
)

#: the function that lists the records set aside on the streams' on-failure queue beside a
#: reconciliation run (R33): it reads that queue without consuming it, and the records of the
#: streams of the tables it names
RECONCILIATION_PAGES = declared("reconciliation_jobs")
SET_ASIDE_TABLES = ("subscriptions", "accounts")


def queue_names() -> tuple[str, ...]:
    """Every queue's base name: consumed queues, their dead-letter queues, on-failure queues."""
    names: list[str] = []
    for source in QUEUES:
        names += [source.queue, source.dead_letter_queue]
    names += [source.on_failure_queue for source in STREAMS]
    return tuple(dict.fromkeys(names))
