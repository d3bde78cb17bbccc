"""The local platform's moto holds under concurrent clients (issue 11, finding 2; R18, R29).

moto 5.2.5 rolled a cancelled transaction back by putting back a copy of the whole table (losing
other requests' writes and orphaning the stream's shard), and its threaded server checked and
wrote transactions with nothing held between them. ``local/moto_guard.py`` serializes the
server's requests and makes a rollback undo the transaction's own writes only.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from local import moto_guard

TABLE = "guard-test"


def _create(dynamodb: Any) -> str:
    table = dynamodb.create_table(
        TableName=TABLE,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )
    return str(table["TableDescription"]["LatestStreamArn"])


def _put(dynamodb: Any, pk: str, **extra: Any) -> None:
    dynamodb.put_item(TableName=TABLE, Item={"pk": {"S": pk}, **extra})


def _cancelled_transaction(dynamodb: Any) -> None:
    """Writes ``written`` then fails a condition on ``missing``: cancelled as a whole."""
    with pytest.raises(ClientError) as caught:
        dynamodb.transact_write_items(
            TransactItems=[
                {"Put": {"TableName": TABLE, "Item": {"pk": {"S": "written"}}}},
                {
                    "Update": {
                        "TableName": TABLE,
                        "Key": {"pk": {"S": "missing"}},
                        "UpdateExpression": "SET n = :one",
                        "ConditionExpression": "attribute_exists(pk)",
                        "ExpressionAttributeValues": {":one": {"N": "1"}},
                    }
                },
            ]
        )
    assert caught.value.response["Error"]["Code"] == "TransactionCanceledException"


@pytest.fixture
def in_process(aws: None) -> Iterator[tuple[Any, Any, str]]:
    dynamodb = boto3.client("dynamodb")
    streams = boto3.client("dynamodbstreams")
    yield dynamodb, streams, _create(dynamodb)


def test_a_stream_iterator_sees_the_writes_after_a_cancelled_transaction_r18(
    in_process: tuple[Any, Any, str],
) -> None:
    """Before: the rollback replaced the table's shard with a copy, so the runner's iterator
    (on the old shard) never saw another record: back ordering stopped after a 409."""
    dynamodb, streams, arn = in_process
    shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
    iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType="LATEST")[
        "ShardIterator"
    ]
    _cancelled_transaction(dynamodb)
    _put(dynamodb, "after")
    records = streams.get_records(ShardIterator=iterator)["Records"]
    assert [r["dynamodb"]["Keys"]["pk"]["S"] for r in records] == ["after"]


def test_a_cancelled_transaction_undoes_its_own_writes_only_r29(
    in_process: tuple[Any, Any, str],
) -> None:
    dynamodb, _, _ = in_process
    _put(dynamodb, "kept", n={"N": "7"})
    _cancelled_transaction(dynamodb)
    assert "Item" not in dynamodb.get_item(TableName=TABLE, Key={"pk": {"S": "written"}})
    assert "Item" not in dynamodb.get_item(TableName=TABLE, Key={"pk": {"S": "missing"}})
    kept = dynamodb.get_item(TableName=TABLE, Key={"pk": {"S": "kept"}})["Item"]
    assert kept["n"] == {"N": "7"}


def test_the_stream_holds_no_record_of_a_cancelled_transaction(
    in_process: tuple[Any, Any, str],
) -> None:
    dynamodb, streams, arn = in_process
    _cancelled_transaction(dynamodb)
    _put(dynamodb, "after")
    shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
    iterator = streams.get_shard_iterator(
        StreamArn=arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    keys = [
        r["dynamodb"]["Keys"]["pk"]["S"]
        for r in streams.get_records(ShardIterator=iterator)["Records"]
    ]
    assert keys == ["after"]


def test_parallel_conditional_transactions_on_one_version_let_exactly_one_through() -> None:
    """Ten clients change one item at the version they read, through the local platform's moto
    server: one wins, nine get a cancelled transaction (a 409 in the API), every write of the
    winners is kept (before: several passed the same condition, and rollbacks lost writes)."""
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
        _create(dynamodb)
        for rounds in range(5):
            _put(dynamodb, "sub", v={"N": str(rounds)})
            outcomes: list[str] = []

            def change(i: int, version: int = rounds, outcomes: list[str] = outcomes) -> None:
                try:
                    dynamodb.transact_write_items(
                        TransactItems=[
                            {
                                "Update": {
                                    "TableName": TABLE,
                                    "Key": {"pk": {"S": "sub"}},
                                    "UpdateExpression": "SET v = :next, q = :q",
                                    "ConditionExpression": "v = :read",
                                    "ExpressionAttributeValues": {
                                        ":read": {"N": str(version)},
                                        ":next": {"N": str(version + 1)},
                                        ":q": {"N": str(i)},
                                    },
                                }
                            },
                            {
                                "Put": {
                                    "TableName": TABLE,
                                    "Item": {"pk": {"S": f"order-{version}-{i}"}},
                                }
                            },
                        ]
                    )
                    outcomes.append("ok")
                except ClientError as error:
                    outcomes.append(error.response["Error"]["Code"])

            threads = [threading.Thread(target=change, args=(i,)) for i in range(10)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            assert outcomes.count("ok") == 1, outcomes
            assert set(outcomes) == {"ok", "TransactionCanceledException"}
            orders = [
                i
                for i in range(10)
                if "Item"
                in dynamodb.get_item(TableName=TABLE, Key={"pk": {"S": f"order-{rounds}-{i}"}})
            ]
            item = dynamodb.get_item(TableName=TABLE, Key={"pk": {"S": "sub"}})["Item"]
            assert len(orders) == 1 and item["q"] == {"N": str(orders[0])}
            assert item["v"] == {"N": str(rounds + 1)}
    finally:
        server.stop()
        if server._server is not None:
            server._server.server_close()
