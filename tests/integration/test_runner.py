"""The local event runner on in-process moto (R18): stream batches retried the way Lambda's event
source mapping retries them, a poison record set aside on the on-failure queue while the records
behind it are applied, and a queue message that keeps failing moved to its dead-letter queue.

Test functions are wired in place of the app's, on the real ``subscriptions`` table's stream."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import boto3
import pytest

from infra.events import QueueSource, StreamSource, queue_names
from local.runner import Runner, app_functions, create_queues
from local.streams import stream_arn

TABLE = "test-subscriptions"
PREFIX = "test"


def write(*ids: str) -> None:
    client = boto3.client("dynamodb")
    for item_id in ids:
        # not keys only: moto's spurious key-only INSERT is dropped (local.streams)
        item = {"tenant_id": {"S": "t1"}, "id": {"S": item_id}, "quantity": {"N": "1"}}
        client.put_item(TableName=TABLE, Item=item)


def item_id(record: dict[str, Any]) -> str:
    return str(record["dynamodb"]["Keys"]["id"]["S"])


def sequence_numbers() -> dict[str, str]:
    """Item id → the sequence number of its INSERT."""
    from local.streams import read_records

    arn = stream_arn(boto3.client("dynamodb"), TABLE)
    records = read_records(boto3.client("dynamodbstreams"), arn)
    return {item_id(r): r["dynamodb"]["SequenceNumber"] for r in records}


def messages(queue: str) -> list[dict[str, Any]]:
    sqs = boto3.client("sqs")
    url = sqs.get_queue_url(QueueName=f"{PREFIX}-{queue}")["QueueUrl"]
    received = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
    return [json.loads(m["Body"]) for m in received.get("Messages", [])]


class StreamFunction:
    """A stream consumer: ``fails(id, invocation)`` decides; each invocation's ids are kept."""

    def __init__(self, fails: Callable[[str, int], bool], *, raises: bool) -> None:
        self.fails = fails
        self.raises = raises
        self.invocations: list[list[str]] = []
        self.applied: list[str] = []
        self.events: list[dict[str, Any]] = []

    def __call__(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        self.events.append(event)
        ids = [item_id(r) for r in event["Records"]]
        self.invocations.append(ids)
        failures = []
        for record, rid in zip(event["Records"], ids, strict=True):
            if self.fails(rid, len(self.invocations)):
                if self.raises:
                    raise RuntimeError(f"cannot apply {rid}")
                failures.append({"itemIdentifier": record["dynamodb"]["SequenceNumber"]})
            else:
                self.applied.append(rid)
        return {"batchItemFailures": failures}


def stream_runner(function: StreamFunction, **source: Any) -> Runner:
    settings = {"batch_size": 10, "max_retries": 2, "on_failure_queue": "stream-failures"}
    stream = StreamSource(function="apply", table="subscriptions", **{**settings, **source})
    create_queues(boto3.client("sqs"), PREFIX, streams=[stream], queues=[])
    return Runner(functions={"apply": function}, streams=[stream], queues=[])


def test_create_queues_creates_every_declared_queue_with_its_redrive_policy(aws: None) -> None:
    sqs = boto3.client("sqs")
    urls = create_queues(sqs, PREFIX)
    assert set(urls) == set(queue_names())
    assert create_queues(sqs, PREFIX) == urls  # idempotent
    backfill = sqs.get_queue_attributes(QueueUrl=urls["backfill"], AttributeNames=["All"])
    policy = json.loads(backfill["Attributes"]["RedrivePolicy"])
    assert policy["deadLetterTargetArn"].endswith(":test-backfill-dlq")
    assert policy["maxReceiveCount"] == 5
    assert backfill["Attributes"]["VisibilityTimeout"] == "300"


def test_every_declared_function_is_a_function_of_the_app() -> None:
    from infra.events import QUEUES, STREAMS

    assert {s.function for s in (*STREAMS, *QUEUES)} <= set(app_functions())


def test_a_lambda_shaped_event_reaches_the_function(aws: None) -> None:
    function = StreamFunction(lambda rid, n: False, raises=False)
    runner = stream_runner(function)
    write("a", "b")
    runner.drain()
    assert function.invocations == [["a", "b"]]
    [event] = function.events
    arn = stream_arn(boto3.client("dynamodb"), TABLE)
    for record in event["Records"]:
        assert record["eventSourceARN"] == arn
        assert record["awsRegion"] == "us-east-1"
        assert isinstance(record["dynamodb"]["ApproximateCreationDateTime"], float)
    write("c")
    runner.drain()
    assert function.invocations == [["a", "b"], ["c"]]  # the checkpoint moved past a and b


def test_r18_a_poison_record_is_set_aside_after_the_retry_limit_and_later_records_apply(
    aws: None, caplog: pytest.LogCaptureFixture
) -> None:
    function = StreamFunction(lambda rid, n: rid == "p", raises=True)
    runner = stream_runner(function, max_retries=2, bisect=True)
    write("a", "b", "p", "c", "d", "e")
    caplog.set_level(logging.WARNING, logger="local.runner")
    runner.drain()

    # bisected down to the poison record alone (splits cost no retry), then 1 + 2 retries
    assert function.invocations.count(["p"]) == 3
    assert "p" not in function.applied
    assert sorted(set(function.applied)) == ["a", "b", "c", "d", "e"]
    seq = sequence_numbers()
    [failure] = messages("stream-failures")
    info = failure["DDBStreamBatchInfo"]
    assert (info["startSequenceNumber"], info["endSequenceNumber"], info["batchSize"]) == (
        seq["p"],
        seq["p"],
        1,
    )
    assert info["streamArn"] == stream_arn(boto3.client("dynamodb"), TABLE)
    assert info["shardId"].startswith("shardId-")
    assert info["approximateArrivalOfFirstRecord"].endswith("Z")
    assert info["approximateArrivalOfLastRecord"].endswith("Z")
    context = failure["requestContext"]
    assert context["condition"] == "RetryAttemptsExhausted"
    assert context["approximateInvokeCount"] == 3
    assert context["functionArn"].endswith(":function:apply")
    assert failure["responseContext"]["functionError"] == "Unhandled"
    assert failure["version"] == "1.0"
    set_aside = [r for r in caplog.records if "set aside" in r.getMessage()]
    assert len(set_aside) == 1
    assert seq["p"] in set_aside[0].getMessage()

    write("f")  # the shard is not blocked
    runner.drain()
    assert function.invocations[-1] == ["f"]
    assert messages("stream-failures") == []


def test_r18_a_partial_failure_is_retried_from_the_lowest_failed_sequence_number(
    aws: None,
) -> None:
    # b and d fail on the first invocation only
    function = StreamFunction(lambda rid, n: rid in {"b", "d"} and n == 1, raises=False)
    runner = stream_runner(function, bisect=True)
    write("a", "b", "c", "d", "e")
    runner.drain()
    assert function.invocations == [
        ["a", "b", "c", "d", "e"],
        ["b", "c", "d", "e"],  # from b (the lowest failure): c and e again, at least once
    ]
    assert messages("stream-failures") == []


def test_r18_a_record_reported_failed_past_the_retry_limit_is_set_aside_with_its_batch(
    aws: None,
) -> None:
    function = StreamFunction(lambda rid, n: rid == "b", raises=False)
    runner = stream_runner(function, max_retries=1)
    write("a", "b", "c")
    runner.drain()
    assert function.invocations == [["a", "b", "c"], ["b", "c"]]  # 1 retry, from b
    seq = sequence_numbers()
    [failure] = messages("stream-failures")
    info = failure["DDBStreamBatchInfo"]
    # the retried batch: from the failed record to the end of the batch
    assert (info["startSequenceNumber"], info["endSequenceNumber"], info["batchSize"]) == (
        seq["b"],
        seq["c"],
        2,
    )
    assert "functionError" not in failure["responseContext"]  # it answered; it did not raise
    write("d")
    runner.drain()
    assert function.invocations[-1] == ["d"]


def test_an_identifier_not_in_the_batch_fails_the_whole_batch(aws: None) -> None:
    calls: list[int] = []

    def confused(event: dict[str, Any], context: Any) -> dict[str, Any]:
        calls.append(len(event["Records"]))
        return {"batchItemFailures": [{"itemIdentifier": "not-a-sequence-number"}]}

    stream = StreamSource(function="confused", table="subscriptions", max_retries=1, bisect=False)
    create_queues(boto3.client("sqs"), PREFIX, streams=[stream], queues=[])
    runner = Runner(functions={"confused": confused}, streams=[stream], queues=[])
    write("a", "b")
    runner.drain()
    assert calls == [2, 2]  # the whole batch, retried once, then set aside
    [failure] = messages("stream-failures")
    assert failure["DDBStreamBatchInfo"]["batchSize"] == 2


def test_records_older_than_the_maximum_age_are_set_aside_without_an_invocation(
    aws: None,
) -> None:
    function = StreamFunction(lambda rid, n: False, raises=False)
    stream = StreamSource(function="apply", table="subscriptions", max_record_age_s=60)
    create_queues(boto3.client("sqs"), PREFIX, streams=[stream], queues=[])
    later = Runner(
        functions={"apply": function},
        streams=[stream],
        queues=[],
        clock=lambda: time.time() + 3600,
    )
    write("old")
    later.drain()
    assert function.invocations == []
    [failure] = messages("stream-failures")
    assert failure["requestContext"]["condition"] == "RecordAgeExceeded"


def test_r18_a_queue_message_failing_past_max_receives_lands_on_the_dead_letter_queue(
    aws: None, caplog: pytest.LogCaptureFixture
) -> None:
    source = QueueSource(function="job", queue="jobs", batch_size=5, max_receives=3)
    urls = create_queues(boto3.client("sqs"), PREFIX, streams=[], queues=[source])
    assert set(urls) == {"jobs", "jobs-dlq"}
    seen: list[tuple[str, str]] = []
    records: list[dict[str, Any]] = []

    def job(event: dict[str, Any], context: Any) -> dict[str, Any]:
        records.extend(event["Records"])
        failures = []
        for record in event["Records"]:
            seen.append((record["body"], record["attributes"]["ApproximateReceiveCount"]))
            if record["body"] == "poison":
                failures.append({"itemIdentifier": record["messageId"]})
        return {"batchItemFailures": failures}

    sqs = boto3.client("sqs")
    for body in ("one", "poison", "two"):
        sqs.send_message(QueueUrl=urls["jobs"], MessageBody=body)
    runner = Runner(functions={"job": job}, streams=[], queues=[source], retry_delay_s=0)
    caplog.set_level(logging.WARNING, logger="local.runner")
    runner.drain()

    assert sorted(body for body, _ in seen if body != "poison") == ["one", "two"]  # once each
    assert [count for body, count in seen if body == "poison"] == ["1", "2", "3"]
    record = records[0]
    assert record["eventSource"] == "aws:sqs"
    assert record["eventSourceARN"].endswith(":test-jobs")
    assert record["receiptHandle"] and record["messageId"] and record["md5OfBody"]
    assert {"SentTimestamp", "ApproximateFirstReceiveTimestamp"} <= set(record["attributes"])
    assert sqs.receive_message(QueueUrl=urls["jobs"]).get("Messages", []) == []
    dead = sqs.receive_message(QueueUrl=urls["jobs-dlq"], MaxNumberOfMessages=10)["Messages"]
    assert [m["Body"] for m in dead] == ["poison"]
    assert len([r for r in caplog.records if "set aside message" in r.getMessage()]) == 1


def test_a_raising_queue_function_fails_the_whole_batch(aws: None) -> None:
    source = QueueSource(function="job", queue="jobs", batch_size=5, max_receives=2)
    urls = create_queues(boto3.client("sqs"), PREFIX, streams=[], queues=[source])
    calls: list[int] = []

    def job(event: dict[str, Any], context: Any) -> None:
        calls.append(len(event["Records"]))
        raise ValueError("no")

    sqs = boto3.client("sqs")
    for body in ("a", "b"):
        sqs.send_message(QueueUrl=urls["jobs"], MessageBody=body)
    Runner(functions={"job": job}, streams=[], queues=[source], retry_delay_s=0).drain()
    assert calls == [2, 2]
    dead = sqs.receive_message(QueueUrl=urls["jobs-dlq"], MaxNumberOfMessages=10)["Messages"]
    assert sorted(m["Body"] for m in dead) == ["a", "b"]


def test_on_threads_a_crashing_handler_does_not_stop_the_runner(aws: None) -> None:
    crashed = threading.Event()

    def fails(rid: str, n: int) -> bool:
        if n == 1:
            crashed.set()
            return True
        return False

    function = StreamFunction(fails, raises=True)
    source = {"bisect": False}
    runner = stream_runner(function, **source)
    runner.poll_interval = 0.02
    with runner:
        write("a")
        assert crashed.wait(5)
        deadline = time.monotonic() + 5
        while "a" not in function.applied and time.monotonic() < deadline:
            time.sleep(0.02)
        assert function.applied == ["a"]
        write("b")
        assert runner.wait_idle(5)
        assert function.applied == ["a", "b"]
        assert all(t.is_alive() for t in runner._threads)
    assert runner._threads == []
