"""DynamoDB Streams as Lambda sees them, on moto: read a table's stream records and shape them
into the event a Lambda event source mapping delivers (NOTES-stack: moto's records lack
``eventSourceARN``, say ``awsRegion`` us-east-1 whatever the table's region, and carry
``ApproximateCreationDateTime`` as a datetime; Lambda events carry epoch seconds).

One more moto difference, seen with moto 5.2.5: an ``UpdateItem`` that creates an item emits a
key-only INSERT and then the full INSERT (AWS emits the full one only). ``read_records`` (and the
local runner, through ``key_only_insert``) drops the key-only record, so the handlers see what
AWS would send them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any


def stream_arn(dynamodb: Any, table_name: str) -> str:
    return str(dynamodb.describe_table(TableName=table_name)["Table"]["LatestStreamArn"])


def read_records(streams: Any, arn: str, *, after: str | None = None) -> list[dict[str, Any]]:
    """Every record of the stream (all shards, oldest first), after a sequence number."""
    records: list[dict[str, Any]] = []
    for shard in streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]:
        kwargs: dict[str, Any] = {"StreamArn": arn, "ShardId": shard["ShardId"]}
        if after is None:
            kwargs["ShardIteratorType"] = "TRIM_HORIZON"
        else:
            kwargs.update(ShardIteratorType="AFTER_SEQUENCE_NUMBER", SequenceNumber=after)
        iterator = streams.get_shard_iterator(**kwargs)["ShardIterator"]
        while iterator:
            page = streams.get_records(ShardIterator=iterator, Limit=1000)
            records.extend(r for r in page["Records"] if not key_only_insert(r))
            if not page["Records"]:
                break
            iterator = page.get("NextShardIterator")
    return records


def lambda_event(records: list[dict[str, Any]], arn: str) -> dict[str, Any]:
    """The event of one batch, as the event source mapping builds it."""
    region = arn.split(":")[3] if arn.count(":") >= 5 else None
    shaped = []
    for record in records:
        dynamodb = dict(record["dynamodb"])
        created = dynamodb.get("ApproximateCreationDateTime")
        if isinstance(created, datetime):
            dynamodb["ApproximateCreationDateTime"] = created.timestamp()
        shaped.append(
            {
                **record,
                "awsRegion": region or record.get("awsRegion"),
                "dynamodb": dynamodb,
                "eventSourceARN": arn,
            }
        )
    return {"Records": shaped}


def created_at(record: dict[str, Any]) -> float | None:
    """The record's ``ApproximateCreationDateTime`` in epoch seconds (boto3 gives a datetime)."""
    created = record.get("dynamodb", {}).get("ApproximateCreationDateTime")
    if isinstance(created, datetime):
        return created.timestamp()
    if isinstance(created, int | float):
        return float(created)
    return None


def key_only_insert(record: dict[str, Any]) -> bool:
    """moto's spurious record before the real INSERT of an item an UpdateItem created."""
    dynamodb = record["dynamodb"]
    return record["eventName"] == "INSERT" and dynamodb.get("NewImage") == dynamodb.get("Keys")
