"""The local event runner: Lambda's event source mappings, played on moto.

For every source of ``infra/events.py`` it polls the moto stream or queue on a thread of its own
and invokes the same function of ``app.py`` (``app.pure_lambda_functions``, by name) with the
event Lambda would build, honouring the function's ``batchItemFailures`` the way the mapping
does (``ReportBatchItemFailures``):

**A table stream** (``StreamSource``), per shard, from TRIM_HORIZON:

* up to ``batch_size`` records per invocation, each with ``eventSourceARN`` and an epoch
  ``ApproximateCreationDateTime``; moto's spurious key-only INSERT dropped (``local.streams``);
* all processed (an empty or absent ``batchItemFailures``): the checkpoint moves past the batch;
* some failed: the checkpoint moves to the lowest failed sequence number and the batch is retried
  from there (records after it are replayed too: at least once);
* the function raised, or reported an identifier that is not in the batch: the whole batch
  failed; with ``bisect`` it is split in two and each half retried (a split costs no retry);
* after ``max_retries`` retries of the same batch, or for records older than
  ``max_record_age_s``, the batch's description goes to the ``on_failure_queue`` in the shape
  Lambda's on-failure destination gets (``requestContext``, ``responseContext``,
  ``DDBStreamBatchInfo``) and the records behind it go on (R18);
* ``batching_window_s`` is honoured; ``parallelization`` is not (one batch in flight per shard,
  which is what the declared factor 1 means).

**A queue** (``QueueSource``): up to ``batch_size`` messages per invocation, shaped as Lambda's SQS
event (``messageId``, ``receiptHandle``, ``body``, ``attributes`` with ``ApproximateReceiveCount``,
``eventSource`` ``aws:sqs``, ``eventSourceARN``); the messages not reported failed are deleted,
the failed ones made visible again after ``retry_delay_s`` (locally short, where AWS waits out the
visibility timeout). The queue's redrive policy (set by ``create_queues``, as in
``infra/template.py``) moves a message to the dead-letter queue once it has been received
``max_receives`` times: moto enforces it on the next receive, like SQS.

Every batch failure and every record set aside is one log line (logger ``local.runner``).
Nothing stops a poller but ``stop`` (issue 11): whatever a handler raises (``SystemExit``
included) or answers is a failure of its batch; an error of the runner itself (moto not
answering, an expired or unknown iterator, a missing queue) is logged and the poll retried, with
the stream and its shards read afresh; a shard that fails does not hold up the others; a
table's stream that was replaced (the table created again, e.g. a moto reset) is followed from
its first record; iterators are renewed every ``ITERATOR_REFRESH_S``. A poller that keeps
failing, or a shard whose front batch keeps failing (``max_retries`` < 0: forever), is logged
at ERROR as ``STUCK`` every ``STUCK_LOG_S`` until it moves again.

A source that had nothing polls again after ``poll_interval``; on the local platform's moto
server, which signals every write (``local.moto_guard.WRITES``), it waits instead for a write to
its table or queue (or ``IDLE_WAIT_S``), so idle pollers do not load moto.

    runner = Runner()                    # the app's functions; or Runner(functions={...}) in tests
    runner.start(); ...; runner.stop()   # background threads, one per source
    runner.drain()                       # or synchronously, until nothing is left to deliver
"""

from __future__ import annotations

import base64
import contextlib
import enum
import json
import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from infra.events import QUEUES, STREAMS, QueueSource, StreamSource, queue_names
from local import moto_guard
from local.streams import created_at, key_only_insert, lambda_event

log = logging.getLogger("local.runner")

Function = Callable[[dict[str, Any], Any], Any]

#: how long the runner sleeps when a source had nothing to deliver or a batch failed
POLL_INTERVAL_S = 0.1
#: on the local platform's moto server (``local.moto_guard.WRITES`` signals every write), how
#: long a source that had nothing waits for a write to it before it is polled anyway
IDLE_WAIT_S = 1.0
#: how soon a failed queue message comes back locally (AWS: the queue's visibility timeout)
RETRY_DELAY_S = 1
#: dead-letter and on-failure queues keep messages 14 days, as in ``infra/template.py``
DEAD_LETTER_RETENTION_S = 14 * 24 * 3600
#: how often a stream's shard list is read again
SHARD_REFRESH_S = 10.0
#: a shard iterator is replaced by a fresh one after the last record read this often (AWS
#: expires them after 15 minutes): an iterator that went stale for any reason heals itself
ITERATOR_REFRESH_S = 30.0
#: how often a poller that keeps failing, or a batch that keeps being retried, is logged again
STUCK_LOG_S = 30.0


class Outcome(enum.Enum):
    IDLE = "idle"  # nothing to deliver
    PROGRESS = "progress"  # delivered: poll again at once
    RETRY = "retry"  # a batch failed: poll again after the interval


# --- the functions, and the context Lambda passes them ---------------------------------------


def app_functions() -> dict[str, Function]:
    """The plain Lambda functions of ``app.py`` by name (``app.lambda_function(name=...)``)."""
    from app import app

    return {function.name: function for function in app.pure_lambda_functions}


@dataclass
class LambdaContext:
    """What a handler may read of Lambda's context object (Powertools reads a few fields)."""

    function_name: str
    invoked_function_arn: str
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 512
    timeout_s: float = 60.0
    started: float = field(default_factory=time.monotonic)

    @property
    def log_group_name(self) -> str:
        return f"/aws/lambda/{self.function_name}"

    @property
    def log_stream_name(self) -> str:
        return f"local/[{self.function_version}]{self.aws_request_id}"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.timeout_s - (time.monotonic() - self.started)) * 1000))


def _function_arn(region: str, account: str, name: str) -> str:
    return f"arn:aws:lambda:{region}:{account}:function:{name}"


def _invoke(
    function: Function, event: dict[str, Any], context: LambdaContext
) -> tuple[Any, BaseException | None]:
    """The function's answer, or the exception it raised (a handler never stops the runner):
    anything a handler raises, ``SystemExit`` included, is a function error of the batch, as
    Lambda reports it; only Ctrl-C on the caller's thread (``drain``) goes through."""
    try:
        return function(event, context), None
    except KeyboardInterrupt:
        raise
    except BaseException as error:
        return None, error


def _failed_identifiers(result: Any, identifiers: Sequence[str]) -> set[str] | None:
    """The identifiers a ``batchItemFailures`` answer reports; ``None`` when Lambda would treat the
    answer as a failure of the whole batch (an empty, missing or unknown ``itemIdentifier``).
    No answer, no list or an empty list: the whole batch succeeded."""
    if not isinstance(result, Mapping):
        return set()
    failures = result.get("batchItemFailures")
    if not failures:
        return set()
    if not isinstance(failures, list | tuple):
        return None  # Lambda cannot read it either: the batch failed
    known = set(identifiers)
    reported: set[str] = set()
    for failure in failures:
        identifier = failure.get("itemIdentifier") if isinstance(failure, Mapping) else None
        if not isinstance(identifier, str) or identifier not in known:
            return None
        reported.add(identifier)
    return reported


def _describe(error: BaseException | None) -> str:
    """One line naming the error; never raises (an exception whose ``str`` fails included)."""
    if error is None:
        return "reported as failed"
    try:
        lines = str(error).splitlines()
    except Exception:
        lines = []
    text = lines[0] if lines else ""
    return f"{type(error).__name__}: {text}"[:300] if text else type(error).__name__


def _iso(epoch: float | None, *, millis: bool = False) -> str | None:
    if epoch is None:
        return None
    stamp = datetime.fromtimestamp(epoch, UTC)
    if millis:
        return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}Z"
    return stamp.strftime("%Y-%m-%dT%H:%M:%SZ")


# --- queues ------------------------------------------------------------------------------------


def create_queues(
    sqs: Any,
    prefix: str,
    *,
    streams: Sequence[StreamSource] = STREAMS,
    queues: Sequence[QueueSource] = QUEUES,
) -> dict[str, str]:
    """Create every queue of ``queue_names()`` (for these sources) as ``<prefix>-<base>``, as the
    merge template declares them: a consumed queue with its visibility timeout and a redrive
    policy to its dead-letter queue after ``max_receives`` receives; dead-letter and on-failure
    queues keeping messages 14 days. Idempotent. Returns the queue URLs by base name."""
    consumed = {q.queue: q for q in queues}
    names = _queue_names(streams, queues)
    urls: dict[str, str] = {}
    # dead-letter and on-failure queues first: a redrive policy names an existing queue's ARN
    for base in sorted(names, key=lambda name: name in consumed):
        attributes: dict[str, str] = {}
        source = consumed.get(base)
        if source is None:
            attributes["MessageRetentionPeriod"] = str(DEAD_LETTER_RETENTION_S)
        else:
            dlq = urls.get(source.dead_letter_queue) or _create(
                sqs, prefix, source.dead_letter_queue
            )
            dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])[
                "Attributes"
            ]["QueueArn"]
            attributes["VisibilityTimeout"] = str(source.visibility_timeout_s)
            attributes["RedrivePolicy"] = json.dumps(
                {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": source.max_receives}
            )
        urls[base] = _create(sqs, prefix, base, attributes)
    return {base: urls[base] for base in names}


def _queue_names(streams: Sequence[StreamSource], queues: Sequence[QueueSource]) -> list[str]:
    if tuple(streams) == STREAMS and tuple(queues) == QUEUES:
        return list(queue_names())
    names: list[str] = []
    for source in queues:
        names += [source.queue, source.dead_letter_queue]
    names += [s.on_failure_queue for s in streams if s.on_failure_queue]
    return list(dict.fromkeys(names))


def _create(sqs: Any, prefix: str, base: str, attributes: dict[str, str] | None = None) -> str:
    name = f"{prefix}-{base}"
    try:
        url = str(sqs.get_queue_url(QueueName=name)["QueueUrl"])
    except sqs.exceptions.QueueDoesNotExist:
        return str(sqs.create_queue(QueueName=name, Attributes=attributes or {})["QueueUrl"])
    if attributes:  # it exists (a second start): make its attributes the declared ones
        sqs.set_queue_attributes(QueueUrl=url, Attributes=attributes)
    return url


class _QueueUrls:
    """Queue URLs and ARNs by base name, looked up once."""

    def __init__(self, sqs: Any, prefix: str) -> None:
        self.sqs = sqs
        self.prefix = prefix
        self._urls: dict[str, str] = {}
        self._arns: dict[str, str] = {}

    def name(self, base: str) -> str:
        return f"{self.prefix}-{base}"

    def url(self, base: str) -> str:
        if base not in self._urls:
            self._urls[base] = str(self.sqs.get_queue_url(QueueName=self.name(base))["QueueUrl"])
        return self._urls[base]

    def arn(self, base: str) -> str:
        if base not in self._arns:
            attributes = self.sqs.get_queue_attributes(
                QueueUrl=self.url(base), AttributeNames=["QueueArn"]
            )["Attributes"]
            self._arns[base] = str(attributes["QueueArn"])
        return self._arns[base]


# --- the pollers -------------------------------------------------------------------------------


class _Poller:
    """One source. ``poll`` delivers at most one batch per shard or queue receive."""

    name: str
    #: what a write to this source is signalled as (``moto_guard.WRITES``): a table or queue name
    wake_key: str = moto_guard.Writes.ALL

    def __init__(self) -> None:
        #: when the last poll that found nothing started / the last delivering poll ended
        self.idle_since = 0.0
        self.busy_until = 0.0
        self.busy = False

    def poll(self) -> Outcome:
        raise NotImplementedError

    def run_once(self) -> Outcome:
        """``poll``, with the bookkeeping ``Runner.wait_idle`` reads; a runner error (moto not
        answering, a missing queue) is logged once per kind and counts as a failed poll."""
        started = time.monotonic()
        self.busy = True
        try:
            outcome = self.poll()
        finally:
            self.busy = False
        if outcome is Outcome.IDLE:
            self.idle_since = started
        else:
            self.busy_until = time.monotonic()
        return outcome


@dataclass
class _Shard:
    id: str
    iterator: str | None = None
    closed: bool = False
    #: the sequence number of the last record read (where a new iterator starts)
    last_read: str | None = None
    #: records read and not yet checkpointed, oldest first
    buffer: list[dict[str, Any]] = field(default_factory=list)
    #: sizes of the batches bisection left to deliver at the front of the buffer
    segments: deque[int] = field(default_factory=deque)
    #: failed invocations of the batch at the front (reset when the checkpoint moves)
    attempts: int = 0
    #: when the first record of the buffer was read (for the batching window)
    buffered_at: float = 0.0
    #: when ``iterator`` was made (``ITERATOR_REFRESH_S``)
    iterator_made: float = 0.0
    #: since when the batch at the front keeps failing (0: it is not), and when that was last
    #: logged as stuck (``STUCK_LOG_S``)
    failing_since: float = 0.0
    stuck_logged: float = 0.0

    def advance(self, count: int) -> None:
        """Checkpoint past the first ``count`` records of the buffer."""
        del self.buffer[:count]
        left = count
        while left and self.segments:
            if self.segments[0] <= left:
                left -= self.segments.popleft()
            else:
                self.segments[0] -= left
                left = 0
        self.attempts = 0
        self.failing_since = 0.0
        self.buffered_at = time.monotonic() if self.buffer else 0.0


class StreamPoller(_Poller):
    """A table's stream → a function, as an event source mapping with ReportBatchItemFailures."""

    def __init__(
        self,
        source: StreamSource,
        function: Function,
        *,
        table_name: str,
        dynamodb: Any,
        streams: Any,
        queues: _QueueUrls,
        region: str,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__()
        self.source = source
        self.function = function
        self.name = f"{source.function} ← {table_name} stream"
        self.wake_key = table_name
        self.table_name = table_name
        self.dynamodb = dynamodb
        self.streams = streams
        self.queues = queues
        self.region = region
        self.clock = clock
        self.arn: str | None = None
        self.shards: dict[str, _Shard] = {}
        self._arn_read = 0.0
        self._shards_read = 0.0
        self._warned_no_stream = False

    # reading

    def _stream(self) -> str | None:
        """The table's current stream, read again every ``SHARD_REFRESH_S`` (and after any error):
        a table created again (moto reset, a restored state) has a new stream, whose records
        start again at the first sequence number. The old stream's checkpoints mean nothing
        there, so delivery starts over from the new stream's first record (kept, a checkpoint
        past its end would skip every record until the new stream outgrew it: silently)."""
        now = time.monotonic()
        if self.arn is not None and now - self._arn_read < SHARD_REFRESH_S:
            return self.arn
        table = self.dynamodb.describe_table(TableName=self.table_name)["Table"]
        self._arn_read = now
        arn = table.get("LatestStreamArn")
        if not arn:
            if not self._warned_no_stream:
                log.warning("%s: the table has no stream; nothing to deliver", self.name)
                self._warned_no_stream = True
            self._forget_stream(None)
            return None
        self._warned_no_stream = False
        if str(arn) != self.arn:
            self._forget_stream(str(arn))
        return self.arn

    def _forget_stream(self, arn: str | None) -> None:
        if self.arn is not None:
            dropped = sum(len(shard.buffer) for shard in self.shards.values())
            log.warning(
                "%s: the table's stream was replaced (the table was created again); delivering "
                "the new stream from its first record%s",
                self.name,
                f" ({dropped} undelivered record(s) of the old stream dropped)" if dropped else "",
            )
        self.arn = arn
        self.shards = {}
        self._shards_read = 0.0

    def _refresh_shards(self, arn: str) -> None:
        """New shards are added; a shard no longer listed is dropped once its records are
        delivered (AWS trims closed shards after 24 hours)."""
        now = time.monotonic()
        if self.shards and now - self._shards_read < SHARD_REFRESH_S:
            return
        self._shards_read = now
        description = self.streams.describe_stream(StreamArn=arn)["StreamDescription"]
        listed = [shard["ShardId"] for shard in description["Shards"]]
        for shard_id in listed:
            self.shards.setdefault(shard_id, _Shard(shard_id))
        for shard_id in set(self.shards) - set(listed):
            if not self.shards[shard_id].buffer:
                del self.shards[shard_id]

    def _read(self, arn: str, shard: _Shard) -> None:
        if shard.closed:
            return
        if (
            shard.iterator is not None
            and time.monotonic() - shard.iterator_made > ITERATOR_REFRESH_S
        ):
            shard.iterator = None  # a fresh one after the last record read (or from the start)
        if shard.iterator is None:
            kwargs: dict[str, Any] = {"StreamArn": arn, "ShardId": shard.id}
            if shard.last_read is None:
                kwargs["ShardIteratorType"] = "TRIM_HORIZON"
            else:
                kwargs.update(
                    ShardIteratorType="AFTER_SEQUENCE_NUMBER", SequenceNumber=shard.last_read
                )
            shard.iterator = self.streams.get_shard_iterator(**kwargs)["ShardIterator"]
            shard.iterator_made = time.monotonic()
        try:
            page = self.streams.get_records(ShardIterator=shard.iterator, Limit=1000)
        except self.streams.exceptions.ExpiredIteratorException:
            shard.iterator = None  # AWS: 15 minutes; a new one starts after the last record read
            return
        except Exception:
            shard.iterator = None  # whatever went wrong, the next poll starts a fresh iterator
            raise
        records = page["Records"]
        if records:
            shard.last_read = records[-1]["dynamodb"]["SequenceNumber"]
            fresh = [r for r in records if not key_only_insert(r)]
            if fresh and not shard.buffer:
                shard.buffered_at = time.monotonic()
            shard.buffer.extend(fresh)
        shard.iterator = page.get("NextShardIterator")
        if shard.iterator is None:
            shard.closed = True  # a closed shard (AWS splits shards; moto has one, never closed)

    # delivering

    def poll(self) -> Outcome:
        """One batch per shard. A shard that fails does not hold up the others: its error is
        raised once every shard had its turn (``Runner`` logs it and polls again), and the
        stream and its shards are read afresh on the next poll."""
        try:
            arn = self._stream()
            if arn is None:
                return Outcome.IDLE
            self._refresh_shards(arn)
        except BaseException:
            self._arn_read = self._shards_read = 0.0
            raise
        outcomes: list[Outcome] = []
        error: BaseException | None = None
        for shard in list(self.shards.values()):
            try:
                outcomes.append(self._poll_shard(arn, shard))
            except KeyboardInterrupt:
                raise
            except BaseException as failure:
                error = error or failure
        if error is not None:
            self._arn_read = self._shards_read = 0.0
            raise error
        if Outcome.RETRY in outcomes:
            return Outcome.RETRY
        return Outcome.PROGRESS if Outcome.PROGRESS in outcomes else Outcome.IDLE

    def _poll_shard(self, arn: str, shard: _Shard) -> Outcome:
        source = self.source
        if len(shard.buffer) < source.batch_size:
            self._read(arn, shard)
        if not shard.buffer:
            return Outcome.IDLE
        if (
            source.batching_window_s > 0
            and not shard.segments
            and len(shard.buffer) < source.batch_size
            and time.monotonic() - shard.buffered_at < source.batching_window_s
        ):
            # gather more records, as MaximumBatchingWindowInSeconds does (not idle: records wait)
            return Outcome.RETRY
        size = shard.segments[0] if shard.segments else source.batch_size
        batch = shard.buffer[:size]

        expired = self._expired(batch)
        if expired:
            self._set_aside(arn, shard, batch[:expired], "RecordAgeExceeded", None)
            shard.advance(expired)
            return Outcome.PROGRESS

        sequence_numbers = [r["dynamodb"]["SequenceNumber"] for r in batch]
        context = LambdaContext(source.function, self._function_arn(arn))
        result, error = _invoke(self.function, lambda_event(batch, arn), context)
        failed = None if error is not None else _failed_identifiers(result, sequence_numbers)
        if failed == set():
            shard.advance(len(batch))
            return Outcome.PROGRESS

        if failed is not None:  # a partial failure: retry from the lowest failed record
            lowest = min(sequence_numbers.index(seq) for seq in failed)
            if lowest:
                shard.advance(lowest)  # the records before it are done
            shard.attempts += 1
            retried = batch[lowest:]
            what = f"{len(failed)} of {len(batch)} record(s) failed"
        else:
            retried = batch
            what = f"the batch of {len(batch)} record(s) failed ({_describe(error)})"
            if source.bisect and len(batch) > 1:
                half = len(batch) // 2
                if shard.segments:
                    shard.segments.popleft()
                shard.segments.extendleft([len(batch) - half, half])  # → [half, rest, ...]
                log.warning(
                    "%s: %s; bisecting into %d + %d",
                    self.name,
                    what,
                    half,
                    len(batch) - half,
                )
                self._still_failing(shard, what, batch[0]["dynamodb"]["SequenceNumber"])
                return Outcome.RETRY
            shard.attempts += 1

        first = retried[0]["dynamodb"]["SequenceNumber"]
        if 0 <= source.max_retries < shard.attempts:  # a negative limit: retry forever (Lambda)
            self._set_aside(arn, shard, retried, "RetryAttemptsExhausted", error)
            shard.advance(len(retried))
            return Outcome.PROGRESS
        log.warning(
            "%s: %s; retry %d of %s from sequence number %s",
            self.name,
            what,
            shard.attempts,
            source.max_retries if source.max_retries >= 0 else "unlimited",
            first,
        )
        self._still_failing(shard, what, first)
        return Outcome.RETRY

    def _still_failing(self, shard: _Shard, what: str, first: str) -> None:
        """A shard whose front batch keeps failing holds every record behind it: said at ERROR
        once it has failed for ``STUCK_LOG_S``, and again every ``STUCK_LOG_S`` while it lasts."""
        now = time.monotonic()
        if not shard.failing_since:
            shard.failing_since = shard.stuck_logged = now
        elif now - shard.stuck_logged >= STUCK_LOG_S:
            shard.stuck_logged = now
            log.error(
                "%s: STUCK: shard %s has not moved past sequence number %s for %.0f s (%s); "
                "%d record(s) wait behind it; still retrying",
                self.name,
                shard.id,
                first,
                now - shard.failing_since,
                what,
                len(shard.buffer),
            )

    def _expired(self, batch: list[dict[str, Any]]) -> int:
        """How many records at the front of the batch are older than ``max_record_age_s``."""
        limit = self.source.max_record_age_s
        if limit < 0:
            return 0
        now = self.clock()
        count = 0
        for record in batch:
            created = created_at(record)
            if created is None or now - created <= limit:
                break
            count += 1
        return count

    def _function_arn(self, stream: str) -> str:
        return _function_arn(self.region, stream.split(":")[4], self.source.function)

    def _set_aside(
        self,
        arn: str,
        shard: _Shard,
        records: list[dict[str, Any]],
        condition: str,
        error: BaseException | None,
    ) -> None:
        """The batch's description to the on-failure queue, as Lambda's destination gets it."""
        first, last = records[0]["dynamodb"], records[-1]["dynamodb"]
        response: dict[str, Any] = {"statusCode": 200, "executedVersion": "$LATEST"}
        if error is not None:
            response["functionError"] = "Unhandled"
        payload = {
            "requestContext": {
                "requestId": str(uuid.uuid4()),
                "functionArn": self._function_arn(arn),
                "condition": condition,
                "approximateInvokeCount": shard.attempts,
            },
            "responseContext": response,
            "version": "1.0",
            "timestamp": _iso(self.clock(), millis=True),
            "DDBStreamBatchInfo": {
                "shardId": shard.id,
                "startSequenceNumber": first["SequenceNumber"],
                "endSequenceNumber": last["SequenceNumber"],
                "approximateArrivalOfFirstRecord": _iso(created_at(records[0])),
                "approximateArrivalOfLastRecord": _iso(created_at(records[-1])),
                "batchSize": len(records),
                "streamArn": arn,
            },
        }
        span = (
            first["SequenceNumber"]
            if len(records) == 1
            else f"{first['SequenceNumber']}..{last['SequenceNumber']}"
        )
        base = self.source.on_failure_queue
        if base:
            self.queues.sqs.send_message(
                QueueUrl=self.queues.url(base), MessageBody=json.dumps(payload)
            )
            where = f"described on {self.queues.name(base)}"
        else:
            where = "dropped (no on-failure queue)"
        reason = (
            "older than max_record_age_s"
            if condition == "RecordAgeExceeded"
            else f"failed {shard.attempts} time(s) ({_describe(error)})"
        )
        log.error(
            "%s: set aside %d record(s) %s, %s: %s; the records behind go on",
            self.name,
            len(records),
            span,
            reason,
            where,
        )


class QueuePoller(_Poller):
    """An SQS queue → a function, as an event source mapping with ReportBatchItemFailures."""

    def __init__(
        self,
        source: QueueSource,
        function: Function,
        *,
        queues: _QueueUrls,
        region: str,
        retry_delay_s: int = RETRY_DELAY_S,
    ) -> None:
        super().__init__()
        self.source = source
        self.function = function
        self.queues = queues
        self.sqs = queues.sqs
        self.region = region
        self.retry_delay_s = retry_delay_s
        self.name = f"{source.function} ← {queues.name(source.queue)}"
        self.wake_key = queues.name(source.queue)

    def poll(self) -> Outcome:
        url = self.queues.url(self.source.queue)
        arn = self.queues.arn(self.source.queue)
        messages: list[dict[str, Any]] = []
        while len(messages) < self.source.batch_size:
            received = self.sqs.receive_message(
                QueueUrl=url,
                MaxNumberOfMessages=min(10, self.source.batch_size - len(messages)),
                WaitTimeSeconds=0,
                MessageSystemAttributeNames=["All"],
                MessageAttributeNames=["All"],
            ).get("Messages", [])
            if not received:
                break
            messages += received
        if not messages:
            return Outcome.IDLE

        event = {"Records": [self._record(m, arn) for m in messages]}
        ids = [m["MessageId"] for m in messages]
        context = LambdaContext(
            self.source.function,
            _function_arn(self.region, arn.split(":")[4], self.source.function),
        )
        result, error = _invoke(self.function, event, context)
        failed = None if error is not None else _failed_identifiers(result, ids)
        if failed is None:
            failed = set(ids)
        done = [m for m in messages if m["MessageId"] not in failed]
        retry = [m for m in messages if m["MessageId"] in failed]
        for chunk in _chunks(done, 10):
            self.sqs.delete_message_batch(
                QueueUrl=url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(chunk)
                ],
            )
        if not retry:
            return Outcome.PROGRESS
        for chunk in _chunks(retry, 10):
            self.sqs.change_message_visibility_batch(
                QueueUrl=url,
                Entries=[
                    {
                        "Id": str(i),
                        "ReceiptHandle": m["ReceiptHandle"],
                        "VisibilityTimeout": self.retry_delay_s,
                    }
                    for i, m in enumerate(chunk)
                ],
            )
        cause = _describe(error) if error is not None else "reported as failed"
        log.warning(
            "%s: %d of %d message(s) failed (%s); back on the queue in %d s",
            self.name,
            len(retry),
            len(messages),
            cause,
            self.retry_delay_s,
        )
        for message in retry:
            receives = int(message.get("Attributes", {}).get("ApproximateReceiveCount", "1"))
            if receives >= self.source.max_receives:
                log.error(
                    "%s: set aside message %s after %d receives: SQS moves it to %s",
                    self.name,
                    message["MessageId"],
                    receives,
                    self.queues.name(self.source.dead_letter_queue),
                )
        return Outcome.PROGRESS if done else Outcome.RETRY

    def _record(self, message: dict[str, Any], arn: str) -> dict[str, Any]:
        return {
            "messageId": message["MessageId"],
            "receiptHandle": message["ReceiptHandle"],
            "body": message["Body"],
            "attributes": dict(message.get("Attributes", {})),
            "messageAttributes": {
                name: _message_attribute(value)
                for name, value in message.get("MessageAttributes", {}).items()
            },
            "md5OfBody": message.get("MD5OfBody", ""),
            "eventSource": "aws:sqs",
            "eventSourceARN": arn,
            "awsRegion": self.region,
        }


def _message_attribute(value: Mapping[str, Any]) -> dict[str, Any]:
    """boto3's ``{"StringValue", "DataType"}`` → Lambda's ``{"stringValue", "dataType", ...}``."""
    shaped: dict[str, Any] = {
        "stringListValues": [],
        "binaryListValues": [],
        "dataType": value.get("DataType", "String"),
    }
    if "StringValue" in value:
        shaped["stringValue"] = value["StringValue"]
    if "BinaryValue" in value:
        shaped["binaryValue"] = base64.b64encode(value["BinaryValue"]).decode()
    return shaped


def _chunks(items: list[Any], size: int) -> Iterable[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


# --- the runner --------------------------------------------------------------------------------


@dataclass
class _Failing:
    """A poller's run of errors: the last error's text, since when, when last logged."""

    text: str = ""
    since: float = 0.0
    logged_at: float = 0.0

    def report(self, name: str, error: BaseException) -> None:
        text = _describe(error)
        now = time.monotonic()
        if text != self.text:
            log.warning("%s: the runner could not poll (%s); retrying", name, text)
            self.since = self.since if self.text else now
            self.logged_at = now
        elif now - self.logged_at >= STUCK_LOG_S:
            log.error(
                "%s: STUCK: polling has failed for %.0f s (%s); still retrying",
                name,
                now - self.since,
                text,
            )
            self.logged_at = now
        self.text = text


class Runner:
    """Every source of ``infra/events.py`` on the AWS endpoint of the settings (the moto server
    locally; in-process moto in tests), each on a daemon thread of its own."""

    def __init__(
        self,
        *,
        functions: Mapping[str, Function] | None = None,
        streams: Sequence[StreamSource] = STREAMS,
        queues: Sequence[QueueSource] = QUEUES,
        poll_interval: float = POLL_INTERVAL_S,
        retry_delay_s: int = RETRY_DELAY_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        import boto3

        from functions import composition

        settings = composition.container().settings  # binds the models: their table names
        tables = {model.base_name: model.Meta.table_name for model in composition.models()}
        functions = app_functions() if functions is None else functions
        missing = sorted({s.function for s in (*streams, *queues)} - set(functions))
        if missing:
            raise KeyError(f"infra/events.py feeds functions app.py does not have: {missing}")

        session = boto3.session.Session()  # a session of its own: sessions are not thread-safe

        def client(service: str) -> Any:
            return session.client(
                service, region_name=settings.region, endpoint_url=settings.aws_endpoint
            )

        self.poll_interval = poll_interval
        self._endpoint = settings.aws_endpoint
        self.pollers: list[_Poller] = []
        for stream in streams:
            self.pollers.append(
                StreamPoller(
                    stream,
                    functions[stream.function],
                    table_name=tables.get(stream.table, f"{settings.table_prefix}-{stream.table}"),
                    dynamodb=client("dynamodb"),
                    streams=client("dynamodbstreams"),
                    queues=_QueueUrls(client("sqs"), settings.table_prefix),
                    region=settings.region,
                    clock=clock,
                )
            )
        for queue in queues:
            self.pollers.append(
                QueuePoller(
                    queue,
                    functions[queue.function],
                    queues=_QueueUrls(client("sqs"), settings.table_prefix),
                    region=settings.region,
                    retry_delay_s=retry_delay_s,
                )
            )
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def describe(self) -> list[str]:
        """One line per source, for the platform's banner."""
        return [poller.name for poller in self.pollers]

    # on threads

    def start(self) -> None:
        if self._threads:
            return
        self._stop.clear()
        for poller in self.pollers:
            thread = threading.Thread(
                target=self._loop, args=(poller,), name=f"runner {poller.name}", daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop polling; a batch being delivered is finished first. All the threads get one
        ``timeout`` together (not one each): a thread still busy then is named in the log and
        left to end with the process (they are daemon threads)."""
        self._stop.set()
        moto_guard.WRITES.nudge()  # a poller waiting for a write stops waiting
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
            if thread.is_alive():
                log.warning("%s did not stop within %.0f s", thread.name, timeout)
        self._threads = []

    def __enter__(self) -> Runner:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _loop(self, poller: _Poller) -> None:
        """Poll until stopped. Nothing ends the loop but ``stop``: an error of the runner itself
        (moto not answering, a bug) is logged when it first happens, again at ERROR every
        ``STUCK_LOG_S`` while it lasts, and once more when delivery is back."""
        state = _Failing()
        while not self._stop.is_set():
            signals = self._signals()
            seen = signals.seen(poller.wake_key) if signals else (0, 0)
            try:
                outcome = poller.run_once()
                if state.text:
                    log.warning(
                        "%s: delivering again after %.0f s of errors",
                        poller.name,
                        time.monotonic() - state.since,
                    )
                state = _Failing()
            except BaseException as error:  # never let the thread die: log and poll again
                with contextlib.suppress(BaseException):  # not even logging may end it
                    state.report(poller.name, error)
                outcome = Outcome.RETRY
            if outcome is Outcome.IDLE and signals is not None:
                # nothing to deliver: poll again once the source is written (a write since the
                # poll began counts), or after IDLE_WAIT_S whatever happens
                signals.wait(poller.wake_key, seen, IDLE_WAIT_S)
            elif outcome is not Outcome.PROGRESS:
                self._stop.wait(self.poll_interval)

    def _signals(self) -> moto_guard.Writes | None:
        """The moto server's write signals, when the runner polls a guarded moto server (the
        local platform's); None in-process (tests): then every ``poll_interval``."""
        return moto_guard.WRITES if self._endpoint and moto_guard.WRITES.active else None

    def alive(self) -> dict[str, bool]:
        """Whether each source's thread is running (all of them, between ``start`` and ``stop``)."""
        return {thread.name: thread.is_alive() for thread in self._threads}

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Wait until every source, polled after this call and after the last delivery of any
        of them, found nothing (a handler's writes feed other sources: a cascade settles). Queue
        messages waiting out their retry delay are not counted. False on timeout."""
        called = time.monotonic()
        deadline = called + timeout
        nudged = 0.0
        while time.monotonic() < deadline:
            settled = max([called, *(p.busy_until for p in self.pollers)])
            if all(not p.busy and p.idle_since > settled for p in self.pollers):
                return True
            if settled != nudged:  # every source polls again now, not after its idle wait
                nudged = settled
                moto_guard.WRITES.nudge()
            time.sleep(0.02)
        return False

    # synchronously (tests)

    def drain(self, max_polls: int = 1000) -> int:
        """Poll every source, on the caller's thread, until a round delivers nothing; the number
        of rounds. A failed batch is retried at once (no interval)."""
        for rounds in range(1, max_polls + 1):
            outcomes = [poller.run_once() for poller in self.pollers]
            if all(outcome is Outcome.IDLE for outcome in outcomes):
                return rounds
        raise RuntimeError(f"the sources did not settle in {max_polls} rounds")
