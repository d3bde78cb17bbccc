"""The local event runner never stops delivering silently (issue 11, finding 2; R18).

Before: a handler raising ``SystemExit``, or answering a ``batchItemFailures`` that is not a
list, escaped the batch bookkeeping (no retry count, nothing set aside: the same batch forever);
an error whose message could not be read ended the poller's thread; one failing shard held up
the others; a table created again (moto reset, a restored state) kept its old checkpoint, past
the new stream's records, so nothing was delivered until the new stream outgrew it; an
iterator made before the first record was never renewed; ``max_retries`` -1 (Lambda: forever)
set a batch aside at its first failure. Each is played here with a fake poller, a fake stream
client, or the real stream on in-process moto.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterable, Iterator
from typing import Any

import boto3
import pytest

from infra.events import StreamSource
from local import runner as runner_module
from local.runner import Outcome, Runner, StreamPoller, _Poller, _QueueUrls
from tests.integration.test_runner import (
    PREFIX,
    TABLE,
    StreamFunction,
    item_id,
    messages,
    stream_runner,
    write,
)


def until(condition: Any, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


# --- handlers that misbehave --------------------------------------------------------------------


def test_r18_issue_11_a_handler_raising_system_exit_fails_its_batch_and_the_records_behind_go_on(
    aws: None,
) -> None:
    """``sys.exit`` in a handler is a function error of its batch, retried and set aside like
    any other; before, it escaped the runner (no retry was counted, nothing set aside)."""

    def handler(event: dict[str, Any], context: Any) -> None:
        if any(item_id(r) == "p" for r in event["Records"]):
            raise SystemExit(3)
        applied.extend(item_id(r) for r in event["Records"])

    applied: list[str] = []
    stream = StreamSource(function="apply", table="subscriptions", max_retries=1, bisect=True)
    runner_module.create_queues(boto3.client("sqs"), PREFIX, streams=[stream], queues=[])
    runner = Runner(functions={"apply": handler}, streams=[stream], queues=[])
    write("a", "p", "b")
    runner.drain()
    assert sorted(applied) == ["a", "b"]
    [failure] = messages("stream-failures")
    assert failure["DDBStreamBatchInfo"]["batchSize"] == 1
    assert failure["responseContext"]["functionError"] == "Unhandled"


def test_r18_issue_11_an_unreadable_batch_item_failures_answer_fails_the_batch(
    aws: None,
) -> None:
    """Lambda treats an answer it cannot read as a failure of the whole batch; before, the
    runner raised on it, outside the batch's bookkeeping, and retried it forever."""
    calls: list[int] = []

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        calls.append(len(event["Records"]))
        return {"batchItemFailures": 5}

    stream = StreamSource(function="odd", table="subscriptions", max_retries=1, bisect=False)
    runner_module.create_queues(boto3.client("sqs"), PREFIX, streams=[stream], queues=[])
    runner = Runner(functions={"odd": handler}, streams=[stream], queues=[])
    write("a", "b")
    runner.drain()
    assert calls == [2, 2]  # the whole batch, retried once, then set aside
    [failure] = messages("stream-failures")
    assert failure["DDBStreamBatchInfo"]["batchSize"] == 2


def test_r18_issue_11_a_shard_stuck_forever_is_logged_at_error_and_still_retried(
    aws: None, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``max_retries`` -1 retries forever (Lambda's meaning): the stuck shard is said at ERROR
    while it lasts, nothing is set aside, and the records flow once the handler heals."""
    monkeypatch.setattr(runner_module, "STUCK_LOG_S", 0.0)
    healed = threading.Event()
    function = StreamFunction(lambda rid, n: not healed.is_set(), raises=True)
    runner = stream_runner(function, max_retries=-1, bisect=False)
    caplog.set_level(logging.WARNING, logger="local.runner")
    write("a", "b")
    [poller] = runner.pollers
    for _ in range(4):
        assert poller.run_once() is Outcome.RETRY
    stuck = [r for r in caplog.records if "STUCK" in r.getMessage()]
    assert stuck and all(r.levelno == logging.ERROR for r in stuck)
    assert "2 record(s) wait" in stuck[-1].getMessage()
    assert messages("stream-failures") == []
    healed.set()
    runner.drain()
    assert function.applied == ["a", "b"]


# --- the runner's own errors ----------------------------------------------------------------------


class Unprintable(Exception):
    def __str__(self) -> str:
        raise RuntimeError("no message")


class FlakyPoller(_Poller):
    """Raises each of ``errors`` in turn, then delivers (counts its deliveries)."""

    def __init__(self, errors: list[BaseException]) -> None:
        super().__init__()
        self.name = "flaky"
        self.errors = list(errors)
        self.delivered = 0

    def poll(self) -> Outcome:
        if self.errors:
            raise self.errors.pop(0)
        self.delivered += 1
        return Outcome.IDLE


@pytest.fixture
def bare_runner(aws: None) -> Iterator[Runner]:
    runner = Runner(functions={}, streams=[], queues=[], poll_interval=0.005)
    yield runner
    runner.stop()


def test_issue_11_no_error_of_a_poller_ends_its_thread(bare_runner: Runner) -> None:
    """An error whose message cannot be read ended the thread before (the logging of the error
    raised); ``SystemExit`` and other ``BaseException`` s are logged and polled past too."""
    flaky = FlakyPoller([Unprintable(), SystemExit(1), GeneratorExit(), ValueError("moto")])
    bare_runner.pollers = [flaky]
    bare_runner.start()
    assert until(lambda: flaky.delivered >= 3)
    assert all(bare_runner.alive().values())


def test_issue_11_a_poller_that_keeps_failing_is_logged_as_stuck_then_as_recovered(
    bare_runner: Runner, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runner_module, "STUCK_LOG_S", 0.0)
    caplog.set_level(logging.WARNING, logger="local.runner")
    flaky = FlakyPoller([ConnectionError("moto is down")] * 5)
    bare_runner.pollers = [flaky]
    bare_runner.start()
    assert until(lambda: flaky.delivered >= 1)
    texts = [(r.levelno, r.getMessage()) for r in caplog.records]
    assert any(level == logging.ERROR and "STUCK" in text for level, text in texts)
    assert any("delivering again" in text for _, text in texts)


# --- the stream itself ---------------------------------------------------------------------------


class FakeStreams:
    """A DynamoDB Streams client over in-memory shards. ``broken`` shards fail every read;
    iterators listed in ``orphaned`` (made by ``get_shard_iterator`` while ``orphan_next``)
    never see a record, as moto's iterators on a shard object that was replaced."""

    class exceptions:
        class ExpiredIteratorException(Exception):
            pass

    def __init__(self, shards: dict[str, list[str]], broken: Iterable[str] = ()) -> None:
        self.shards = shards
        self.broken = set(broken)
        self.orphan_next = False
        self.iterators: dict[str, tuple[str, int, bool]] = {}
        self.made: list[dict[str, Any]] = []

    def describe_stream(self, StreamArn: str) -> dict[str, Any]:
        return {"StreamDescription": {"Shards": [{"ShardId": s} for s in self.shards]}}

    def get_shard_iterator(self, **kwargs: Any) -> dict[str, Any]:
        self.made.append(kwargs)
        shard = kwargs["ShardId"]
        start = 0
        if kwargs["ShardIteratorType"] == "AFTER_SEQUENCE_NUMBER":
            start = int(kwargs["SequenceNumber"]) % 1000 + 1
        return {"ShardIterator": self._iterator(shard, start, self.orphan_next)}

    def _iterator(self, shard: str, position: int, orphaned: bool) -> str:
        name = f"it-{len(self.iterators)}"
        self.iterators[name] = (shard, position, orphaned)
        return name

    def get_records(self, ShardIterator: str, Limit: int) -> dict[str, Any]:
        shard, position, orphaned = self.iterators[ShardIterator]
        if shard in self.broken:
            raise ConnectionError(f"{shard} cannot be read")
        index = list(self.shards).index(shard)
        records = [] if orphaned else self.shards[shard][position : position + Limit]
        shaped = [
            {
                "eventID": f"{shard}-{n}",
                "eventName": "MODIFY",
                "dynamodb": {
                    "SequenceNumber": str(index * 1000 + position + n),
                    "Keys": {"id": {"S": rid}},
                    "NewImage": {"id": {"S": rid}, "quantity": {"N": "1"}},
                    "ApproximateCreationDateTime": time.time(),
                },
            }
            for n, rid in enumerate(records)
        ]
        following = self._iterator(shard, position + len(records), orphaned)
        return {"Records": shaped, "NextShardIterator": following}


class FakeTable:
    def describe_table(self, TableName: str) -> dict[str, Any]:
        return {"Table": {"LatestStreamArn": "arn:aws:dynamodb:eu-west-1:1:table/t/stream/1"}}


def fake_poller(streams: FakeStreams, function: StreamFunction) -> StreamPoller:
    source = StreamSource(function="apply", table="subscriptions", on_failure_queue="")
    return StreamPoller(
        source,
        function,
        table_name="t",
        dynamodb=FakeTable(),
        streams=streams,
        queues=_QueueUrls(None, "test"),
        region="eu-west-1",
    )


def test_issue_11_a_shard_that_cannot_be_read_does_not_hold_up_the_others() -> None:
    streams = FakeStreams({"shard-broken": ["x"], "shard-ok": ["a", "b"]}, broken={"shard-broken"})
    function = StreamFunction(lambda rid, n: False, raises=False)
    poller = fake_poller(streams, function)
    with pytest.raises(ConnectionError):
        poller.run_once()  # the broken shard's error is raised, for the runner to log …
    assert function.applied == ["a", "b"]  # … once the other shard was delivered
    streams.broken.clear()
    poller.run_once()
    assert function.applied == ["a", "b", "x"]


def test_issue_11_an_iterator_that_sees_nothing_is_renewed_even_before_the_first_record(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An iterator on a shard that was replaced (moto's rollback did that) never sees another
    record: renewed every ``ITERATOR_REFRESH_S``, from the start if nothing was read yet."""
    streams = FakeStreams({"shard": ["a"]})
    streams.orphan_next = True
    function = StreamFunction(lambda rid, n: False, raises=False)
    poller = fake_poller(streams, function)
    assert poller.run_once() is Outcome.IDLE
    streams.orphan_next = False
    monkeypatch.setattr(runner_module, "ITERATOR_REFRESH_S", 0.0)
    poller.run_once()
    assert function.applied == ["a"]
    assert streams.made[-1]["ShardIteratorType"] == "TRIM_HORIZON"


def test_r18_issue_11_a_table_created_again_is_delivered_from_its_new_streams_first_record(
    aws: None, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """moto reset (or a restored state) creates the table again: its stream starts over at the
    first sequence number. Before, the runner kept its checkpoint in the old stream and skipped
    the new stream's records until it outgrew the old one: silently."""
    from functions import composition
    from functions.core.persistence import create_tables

    monkeypatch.setattr(runner_module, "SHARD_REFRESH_S", 0.0)
    caplog.set_level(logging.WARNING, logger="local.runner")
    function = StreamFunction(lambda rid, n: False, raises=False)
    runner = stream_runner(function)
    write("a", "b", "c")
    runner.drain()
    assert function.applied == ["a", "b", "c"]

    boto3.client("dynamodb").delete_table(TableName=TABLE)
    create_tables(composition.models())
    write("d")
    runner.drain()
    assert function.applied == ["a", "b", "c", "d"]
    assert any("stream was replaced" in r.getMessage() for r in caplog.records)


# --- idle pollers wait for a write (the local platform's moto server signals them) ---------------


def test_issue_11_a_write_request_names_the_tables_or_queue_it_writes() -> None:
    from local.moto_guard import Writes, written

    def body(value: dict[str, Any]) -> bytes:
        return json.dumps(value).encode()

    assert written("DynamoDB_20120810.PutItem", body({"TableName": "t", "Item": {}})) == {"t"}
    transact = {
        "TransactItems": [
            {"Put": {"TableName": "a", "Item": {}}},
            {"Update": {"TableName": "b", "Key": {}}},
            {"ConditionCheck": {"TableName": "a", "Key": {}}},
        ]
    }
    assert written("DynamoDB_20120810.TransactWriteItems", body(transact)) == {"a", "b"}
    batch = {"RequestItems": {"a": [], "c": []}}
    assert written("DynamoDB_20120810.BatchWriteItem", body(batch)) == {"a", "c"}
    queue = {"QueueUrl": "http://127.0.0.1:5000/123456789012/local-backfill", "MessageBody": "x"}
    assert written("AmazonSQS.SendMessage", body(queue)) == {"local-backfill"}
    assert written("DynamoDB_20120810.PutItem", b"not json") == {Writes.ALL}


def test_issue_11_the_guarded_moto_server_signals_writes_and_not_reads() -> None:
    from local import moto_guard
    from local.platform import _moto_server

    moto_guard.install()
    server = _moto_server()
    server.start()
    try:
        host, port = server.get_host_and_port()
        session = boto3.session.Session(
            aws_access_key_id="local", aws_secret_access_key="local", region_name="eu-west-1"
        )
        dynamodb = session.client("dynamodb", endpoint_url=f"http://{host}:{port}")
        dynamodb.create_table(
            TableName="signalled",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        before = moto_guard.WRITES.seen("signalled")
        dynamodb.get_item(TableName="signalled", Key={"pk": {"S": "a"}})
        assert moto_guard.WRITES.seen("signalled") == before
        dynamodb.put_item(TableName="signalled", Item={"pk": {"S": "a"}, "n": {"N": "1"}})
        assert moto_guard.WRITES.wait("signalled", before, timeout=0)
        # the body moto reads is the one the client sent
        item = dynamodb.get_item(TableName="signalled", Key={"pk": {"S": "a"}})["Item"]
        assert item["n"] == {"N": "1"}
    finally:
        server.stop()
        if server._server is not None:
            server._server.server_close()
