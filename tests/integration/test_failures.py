"""``GET /failures`` (issue 16, ``bss failures``) on moto: what the streams' on-failure queue and
the dead-letter queues hold, listed for the platform admin without consuming anything."""

from __future__ import annotations

import json

import boto3

from functions import composition
from functions.backorder.schemas import BACKFILL_QUEUE
from local.streams import read_records, stream_arn
from tests.conftest import Api, token
from tests.integration.test_backorder import ok
from tests.integration.test_reconciliation import failures_left, set_aside


def test_failures_lists_a_set_aside_stream_record_by_its_keys_and_a_dead_letter(
    api: Api,
) -> None:
    platform = token("platform_admin")
    tenant = ok(
        api.call(
            "POST",
            "/tenants",
            platform,
            {"name": "Cloud", "country": "DE", "time_zone": "Europe/Berlin", "currency": "EUR"},
        ),
        201,
    )["id"]
    admin = token("tenant_admin", tenant)
    account = ok(api.call("POST", "/accounts", admin, {"name": "Customer X"}), 201)["id"]
    settings = composition.container().settings
    arn = stream_arn(boto3.client("dynamodb"), settings.table_prefix + "-accounts")
    records = [
        r
        for r in read_records(boto3.client("dynamodbstreams"), arn)
        if r["dynamodb"]["Keys"]["id"]["S"] == account
    ]
    set_aside(records[-1:], arn)
    sqs = boto3.client("sqs")
    dlq = sqs.get_queue_url(QueueName=settings.queue_name(f"{BACKFILL_QUEUE}-dlq"))["QueueUrl"]
    sqs.send_message(QueueUrl=dlq, MessageBody=json.dumps({"job_id": "job_1", "page": None}))

    listed = ok(api.call("GET", "/failures", platform))
    assert listed["truncated"] is False
    by_queue = {item["queue"]: item for item in listed["items"]}
    assert set(by_queue) == {"stream-failures", f"{BACKFILL_QUEUE}-dlq"}
    stream = by_queue["stream-failures"]
    assert stream["key"] == {"table": "accounts", "tenant_id": tenant, "id": account}
    assert stream["error"] == "RetryAttemptsExhausted, after 6 invocations"
    assert stream["sent_at"].endswith("Z") and stream["receive_count"] >= 1
    dead = by_queue[f"{BACKFILL_QUEUE}-dlq"]
    assert dead["key"] is None and "job_1" in dead["error"]

    # read only: the messages stay, and a second listing finds the same
    assert failures_left() == 1
    again = ok(api.call("GET", "/failures", platform))
    assert {i["message_id"] for i in again["items"]} == {i["message_id"] for i in listed["items"]}

    for role in (admin, token("customer", tenant, account)):
        status, body = api.call("GET", "/failures", role)
        assert status == 403 and body["error"]["code"] == "forbidden"


def test_failures_is_empty_on_a_quiet_platform(api: Api) -> None:
    assert ok(api.call("GET", "/failures", token("platform_admin"))) == {
        "items": [],
        "truncated": False,
    }
