"""The local platform's state between runs (issue 11, finding 3; R18 for the stream checkpoints),
on in-process moto: ``local/state.py`` saves moto's tables, queues and objects and the event
runner's checkpoints, and a restore after moto was reset (what a new ``make run`` does) gives back
every item, message and object without writing a stream record, so each stream record is
delivered exactly once across the restart: those delivered before are not delivered again, those
written or read but not delivered yet are delivered after it. A snapshot that cannot be used is
set aside and the start is fresh."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import boto3
import pytest

from infra.events import StreamSource
from local import state
from local.runner import Runner, StreamPoller, create_queues
from tests.conftest import table_counts

REGION = "us-east-1"  # the aws fixture's
TABLE = "test-subscriptions"
PREFIX = "test"


def write(*ids: str) -> None:
    client = boto3.client("dynamodb")
    for item_id in ids:
        item = {"tenant_id": {"S": "t1"}, "id": {"S": item_id}, "quantity": {"N": "1"}}
        client.put_item(TableName=TABLE, Item=item)


class Recorder:
    """A stream function keeping the ids it applied; the ids in ``failing`` are reported failed."""

    def __init__(self, failing: frozenset[str] = frozenset()) -> None:
        self.failing = failing
        self.applied: list[str] = []

    def __call__(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        failures = []
        for record in event["Records"]:
            item_id = record["dynamodb"]["Keys"]["id"]["S"]
            if item_id in self.failing:
                failures.append({"itemIdentifier": record["dynamodb"]["SequenceNumber"]})
            else:
                self.applied.append(item_id)
        return {"batchItemFailures": failures}


def runner_for(function: Recorder) -> Runner:
    stream = StreamSource(function="apply", table="subscriptions", max_retries=100)
    create_queues(boto3.client("sqs"), PREFIX, streams=[stream], queues=[])
    return Runner(functions={"apply": function}, streams=[stream], queues=[])


def stream_length() -> int:
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.dynamodb.models import dynamodb_backends

    shard = dynamodb_backends[DEFAULT_ACCOUNT_ID][REGION].tables[TABLE].stream_shard
    assert shard is not None
    return len(shard.items)


def reset_moto() -> None:
    """What a new ``make run`` starts from (``/moto-api/reset``)."""
    from moto.moto_api._internal.models import moto_api_backend

    moto_api_backend.reset()


def test_issue_11_a_restore_keeps_every_item_message_and_object_and_delivers_each_record_once(
    aws: None,
) -> None:
    first = Recorder(failing=frozenset({"e"}))
    runner = runner_for(first)
    write("a", "b", "c")
    runner.drain()
    write("d", "e")  # d is delivered; e is read and keeps failing: never checkpointed
    for _ in range(3):
        runner.pollers[0].run_once()
    assert first.applied == ["a", "b", "c", "d"]
    write("f")  # written, not read yet

    sqs = boto3.client("sqs")
    queue = sqs.get_queue_url(QueueName=f"{PREFIX}-backfill")["QueueUrl"]
    sqs.send_message(QueueUrl=queue, MessageBody="page 1")
    s3 = boto3.client("s3")
    s3.put_object(Bucket="test-documents", Key="invoices/i1.pdf", Body=b"%PDF-1.4 one")
    items = table_counts()
    records = stream_length()

    marks = state.checkpoints(runner)
    saved = state.dump_backends(REGION)
    reset_moto()
    assert boto3.client("dynamodb").list_tables()["TableNames"] == []

    backends = pickle.loads(saved)
    dropped = state.trim_streams(backends, marks)
    state.apply_backends(backends, REGION)

    assert table_counts() == items  # every item of every table
    assert dropped == 4  # a, b, c, d: delivered, no longer kept
    assert stream_length() == records - dropped  # and no stream record written by the restore
    [message] = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10)["Messages"]
    assert message["Body"] == "page 1"
    body = s3.get_object(Bucket="test-documents", Key="invoices/i1.pdf")["Body"].read()
    assert body == b"%PDF-1.4 one"

    second = Recorder()
    resumed = runner_for(second)
    assert state.resume(resumed, marks) == 1
    resumed.drain()
    assert second.applied == ["e", "f"]  # nothing delivered twice, nothing lost
    write("g")  # a write after the restore: the next sequence number, delivered once
    resumed.drain()
    assert second.applied == ["e", "f", "g"]


def test_issue_11_a_snapshot_taken_during_a_poll_never_skips_records_not_yet_buffered(
    aws: None,
) -> None:
    """R18: a periodic snapshot reads the runner's checkpoints while it runs. A poll that has
    read records (``last_read`` moved) and not yet buffered them must not be taken for one
    that delivered them: the previous checkpoint is kept (at worst a record comes twice)."""
    runner = runner_for(Recorder())
    write("a")
    runner.drain()
    settled = state.checkpoints(runner)
    [poller] = runner.pollers
    assert isinstance(poller, StreamPoller)
    [shard] = poller.shards.values()
    delivered_a = shard.last_read
    assert delivered_a is not None

    write("b")
    poller.busy = True  # a poll under way: it has read b, not yet buffered it
    shard.last_read = str(int(delivered_a) + 1)
    assert state.checkpoints(runner, previous=settled) == settled
    shard.buffer.append({"dynamodb": {"SequenceNumber": shard.last_read}})  # buffered now
    during = state.checkpoints(runner, previous=settled)
    assert during[_key(runner)]["shards"][shard.id] == delivered_a  # just before b
    poller.busy = False
    shard.buffer.clear()  # b delivered
    after = state.checkpoints(runner, previous=settled)
    assert after[_key(runner)]["shards"][shard.id] == shard.last_read


def _key(runner: Runner) -> str:
    [key] = state.checkpoints(runner).keys()
    return key


def test_issue_11_a_snapshot_round_trips_through_its_file(aws: None, tmp_path: Path) -> None:
    store = state.Store(tmp_path)
    store.acquire()
    runner = runner_for(Recorder())
    write("a")
    runner.drain()
    saver = state.Saver(
        store,
        region=REGION,
        schema=state.schema_fingerprint(),
        platform={"secret": "s" * 48, "demo": {"cloud_id": "tnt_1"}, "tokens": []},
        runner=runner,
    )
    assert saver.save() is True
    assert saver.save() is False  # nothing changed: not written again
    write("b")
    assert saver.save() is True

    loaded = store.load(region=REGION, schema=state.schema_fingerprint())
    snapshot = loaded.snapshot
    assert snapshot is not None
    assert (snapshot.secret, snapshot.demo) == ("s" * 48, {"cloud_id": "tnt_1"})
    assert snapshot.counts.items == sum(table_counts().values())
    assert snapshot.checkpoints == state.checkpoints(runner)
    assert oct((tmp_path / state.FILE_NAME).stat().st_mode & 0o777) == "0o600"  # the secret
    store.release()


def header(**changes: Any) -> bytes:
    outer = {
        "format": state.FORMAT,
        "moto": state._moto_version(),
        "schema": state.schema_fingerprint(),
        "region": REGION,
        "saved_at": "2026-01-01T00:00:00+00:00",
        "platform": {"secret": None, "demo": None, "tokens": []},
        "checkpoints": {},
        "backends": pickle.dumps({"dynamodb": {}, "sqs": {}, "s3": {}}),
    }
    return pickle.dumps({**outer, **changes})


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"not a pickle at all", "the file is damaged"),
        (b"", "the file is damaged"),
        (header(format=99), "layout 99"),
        (header(moto="4.0.0"), "moto 4.0.0 wrote it"),
        (header(schema="0000"), "the tables' definitions changed"),
        (header(region="eu-west-1"), "region eu-west-1"),
        (header(backends=b"\x80\x05garbage"), "its content is damaged"),
        (header(platform={"demo": None}), "its content is damaged"),
    ],
)
def test_issue_11_an_unusable_snapshot_is_set_aside_and_the_start_is_fresh(
    tmp_path: Path, content: bytes, reason: str
) -> None:
    (tmp_path / state.FILE_NAME).write_bytes(content)
    loaded = state.Store(tmp_path).load(region=REGION, schema=state.schema_fingerprint())
    assert loaded.snapshot is None
    assert reason in loaded.reason
    assert loaded.set_aside is not None and loaded.set_aside.read_bytes() == content
    assert loaded.set_aside.name.startswith(f"{state.FILE_NAME}.unusable-")
    assert not (tmp_path / state.FILE_NAME).exists()


def test_issue_11_a_snapshot_the_platform_cannot_read_is_set_aside(tmp_path: Path) -> None:
    (tmp_path / state.FILE_NAME).write_bytes(header())

    def check(snapshot: state.Snapshot) -> None:
        raise TypeError("Demo.__init__() got an unexpected keyword argument 'old'")

    loaded = state.Store(tmp_path).load(
        region=REGION, schema=state.schema_fingerprint(), check=check
    )
    assert loaded.snapshot is None
    assert "does not fit (TypeError" in loaded.reason
    assert loaded.set_aside is not None


def test_issue_11_reset_and_a_missing_file_start_fresh_and_leave_what_is_there(
    tmp_path: Path,
) -> None:
    schema = state.schema_fingerprint()
    missing = state.Store(tmp_path).load(region=REGION, schema=schema)
    assert (missing.snapshot, missing.set_aside) == (None, None)
    assert missing.reason.startswith("no saved state in")

    (tmp_path / state.FILE_NAME).write_bytes(header())
    (tmp_path / f"{state.FILE_NAME}.tmp").write_bytes(b"half a write")
    reset = state.Store(tmp_path, reset=True).load(region=REGION, schema=schema)
    assert (reset.snapshot, reset.reason) == (None, "RESET=1")
    assert (tmp_path / state.FILE_NAME).read_bytes() == header()  # replaced by the next save

    restored = state.Store(tmp_path).load(region=REGION, schema=schema)
    assert restored.snapshot is not None
    assert not (tmp_path / f"{state.FILE_NAME}.tmp").exists()  # a crash's leftover


def test_issue_11_two_platforms_never_share_a_state_directory(tmp_path: Path) -> None:
    first = state.Store(tmp_path)
    first.acquire()
    with pytest.raises(state.StateError, match="another local platform is using"):
        state.Store(tmp_path).acquire()
    first.release()
    second = state.Store(tmp_path)
    second.acquire()
    second.release()


def test_issue_11_the_state_directory_and_reset_come_from_the_environment(
    tmp_path: Path,
) -> None:
    assert state.directory({}) == state.DEFAULT_DIR
    assert state.DEFAULT_DIR.name == ".local"
    assert state.directory({"BSS_LOCAL_DIR": str(tmp_path)}) == tmp_path.resolve()
    for value in ("1", "true", "YES", "on"):
        assert state.reset_requested({"RESET": value}) is True
    for value in ("", "0", "false", "no", "off"):
        assert state.reset_requested({"RESET": value}) is False
    assert state.reset_requested({}) is False
    with pytest.raises(state.StateError, match="RESET must be 1"):
        state.reset_requested({"RESET": "please"})
