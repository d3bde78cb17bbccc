"""A DynamoDB meter for the benchmarks: the requests PynamoDB's clients make, and the write and
read units DynamoDB would bill for them, computed from the payloads. Figures, not a test.

How: every botocore session PynamoDB makes while ``metered()`` is on
(``pynamodb.connection.base.get_session`` is wrapped) carries two event hooks on ``dynamodb``,
``before-parameter-build`` (the request's parameters) and ``after-call`` (the parsed answer);
while ``Meter.tally`` is set, each request is counted by operation and table (a query of an
index: ``table.index``) in that ``Tally``. Clients made otherwise (boto3's own sessions, such as
``local.runner``'s polling of streams and queues, or SQS clients) are never seen.

Units: moto answers PynamoDB's ``ReturnConsumedCapacity=TOTAL`` with a flat 1.0 per PutItem,
0.5 per GetItem and nothing for UpdateItem, blind to sizes and indexes, so units are computed
from the payloads as DynamoDB bills them: a write is 1 WRU per started KB of the item (an
update: of the item it writes, from its SET and ADD clauses; a batch write: each of its puts and
deletes alike), plus the writes of each global secondary index holding the item, by its
projection (``Meter.learn`` records each index's key, projection type and projected attributes):

- ALL: on every write of the item, as many units as the table's;
- INCLUDE and KEYS_ONLY: only when the write changes what the index holds. A new item (or one
  whose index key appears) is one put, one whose key goes away (a delete, a REMOVE) one delete,
  a changed index key a delete and a put (two writes), a changed projected attribute one write;
  a write that sets the key and the projected attributes to the values they had, or leaves
  them out, writes nothing there. An index item's size is its index key, the table key and
  the projected attributes, plus 100 bytes (1 WRU per started KB of that). The meter learns
  what each item's index entries hold from the writes it sees (``index_entries``), so an item
  it first sees updated counts as new.

A failed condition bills the table only; an eventually consistent read is 0.5 RRU per started
4 KB (a strongly consistent one 1), a query's items summed, a batch get's items each on their
own and a key not found at the minimum; a transaction doubles.

Prices: us-east-1 on-demand, and Lambda's, for the benchmarks' cost lines.
"""

from __future__ import annotations

import math
import os
import re
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

#: The environment the benchmarks run the BSS in, on in-process moto (``mock_aws``).
SECRET = "bench-secret-0123456789abcdef-0123456789"
ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",  # moto 5.2.5 + botocore ≥ 1.44.4 (NOTES-stack)
    "BSS_TABLE_PREFIX": "bench",
    "BSS_JWT_SECRET": SECRET,
    "BSS_AWS_ENDPOINT": "",
    "BSS_BILLING_STATE_MACHINE": (
        "arn:aws:states:us-east-1:123456789012:stateMachine:bench-billing-run"
    ),
    "BSS_DOCUMENTS_BUCKET": "bench-documents",
    "BSS_MAIL_FROM": "billing@bss.test",
    "BSS_PUBLIC_URL": "http://bss.test",
}

# us-east-1 on-demand prices (DynamoDB's since its November 2024 cut: before it, $1.25 and
# $0.25); DynamoDB Streams reads by Lambda are free.
USD_PER_WRITE_UNIT = 0.625 / 1e6
USD_PER_READ_UNIT = 0.125 / 1e6
USD_PER_INVOCATION = 0.20 / 1e6
USD_PER_GB_SECOND = 0.0000166667
LAMBDA_MB = 256
#: Lambda gives a function one full vCPU at 1,769 MB and a proportional share below: CPU-bound
#: work measured here on a full core runs that many times slower at ``LAMBDA_MB``.
FULL_VCPU_MB = 1769
#: Assumed round trip of one DynamoDB request from a Lambda function in the same region.
DYNAMODB_ROUND_TRIP_S = 0.008

WRITE_OPERATIONS = frozenset(
    {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"}
)

# --- DynamoDB item sizes and billed units ---------------------------------------------------


def value_size(value: dict[str, Any]) -> int:
    """Bytes of one attribute value as DynamoDB sizes it (names are counted by the caller)."""
    ((kind, data),) = value.items()
    if kind == "S":
        return len(data.encode())
    if kind == "N":
        return number_size(data)
    if kind == "B":
        return len(data)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "M":
        return 3 + sum(len(k.encode()) + value_size(v) + 1 for k, v in data.items())
    if kind == "L":
        return 3 + sum(value_size(v) + 1 for v in data)
    if kind == "SS":
        return sum(len(s.encode()) for s in data)
    if kind == "NS":
        return sum(number_size(n) for n in data)
    if kind == "BS":
        return sum(len(b) for b in data)
    raise ValueError(f"unknown DynamoDB type {kind}")


def number_size(text: str) -> int:
    """1 byte per two significant digits, plus 1."""
    mantissa = text.lstrip("-").split("E")[0].split("e")[0].replace(".", "")
    digits = mantissa.strip("0") or "0"
    return (len(digits) + 1) // 2 + 1


def item_size(item: dict[str, Any]) -> int:
    return sum(len(name.encode()) + value_size(value) for name, value in item.items())


_ASSIGNMENT = re.compile(r"(#\w+)\s*=\s*(?:if_not_exists\s*\(\s*#\w+\s*,\s*)?(:\w+)")
_ADDITION = re.compile(r"(#\w+)\s+(:\w+)")


def updated_item(params: dict[str, Any]) -> dict[str, Any]:
    """The item an UpdateItem writes, from its key and its SET and ADD clauses (REMOVE drops;
    an ADD to a number counts the operand's size)."""
    names = params.get("ExpressionAttributeNames", {})
    values = params.get("ExpressionAttributeValues", {})
    item = dict(params["Key"])
    clauses = re.split(r"\b(SET|REMOVE|ADD|DELETE)\b", params.get("UpdateExpression", ""))
    for keyword, body in zip(clauses[1::2], clauses[2::2], strict=True):
        pattern = {"SET": _ASSIGNMENT, "ADD": _ADDITION}.get(keyword)
        if pattern is not None:
            for name, value in pattern.findall(body):
                item[names.get(name, name)] = values[value]
    return item


def removed_attributes(params: dict[str, Any]) -> frozenset[str]:
    """The attributes an UpdateItem's REMOVE clauses drop."""
    names = params.get("ExpressionAttributeNames", {})
    clauses = re.split(r"\b(SET|REMOVE|ADD|DELETE)\b", params.get("UpdateExpression", ""))
    return frozenset(
        names.get(name, name)
        for keyword, body in zip(clauses[1::2], clauses[2::2], strict=True)
        if keyword == "REMOVE"
        for name in re.findall(r"#?\w+", body)
    )


#: Bytes DynamoDB adds to each index item's size (besides its keys and projected attributes).
INDEX_ITEM_OVERHEAD = 100


def write_units(size: int) -> int:
    return max(1, math.ceil(size / 1024))


def read_units(size: int, consistent: bool) -> float:
    return max(1, math.ceil(size / 4096)) * (1.0 if consistent else 0.5)


# --- the meter: botocore hooks on PynamoDB's clients ---------------------------------------------


@dataclass(frozen=True)
class Index:
    """A global secondary index as the meter bills it."""

    name: str
    hash_key: str
    range_key: str | None
    projection: str  # ALL, INCLUDE or KEYS_ONLY
    projected: tuple[str, ...] = ()  # an INCLUDE index's non-key attributes

    @property
    def keys(self) -> tuple[str, ...]:
        return (self.hash_key,) if self.range_key is None else (self.hash_key, self.range_key)


def index_entry(
    index: Index, table_key: dict[str, Any], values: dict[str, Any]
) -> dict[str, Any] | None:
    """What an INCLUDE or KEYS_ONLY index holds for an item whose attributes are ``values``:
    the index key, the table key and the projected attributes; None if the item lacks the index
    key (a sparse index leaves it out)."""
    if any(key not in values for key in index.keys):
        return None
    names = (*index.keys, *index.projected)
    return {**table_key, **{name: values[name] for name in names if name in values}}


@dataclass
class Tally:
    """What one stretch of the handler cost."""

    requests: Counter[tuple[str, str]] = field(default_factory=Counter)  # (operation, table)
    write_units: float = 0.0  # table and indexes
    table_write_units: float = 0.0
    units_by_target: Counter[str] = field(default_factory=Counter)  # write units: table, index
    read_units: float = 0.0
    reported_units: float = 0.0  # ConsumedCapacity as moto reports it
    failed_conditions: int = 0
    call_seconds: float = 0.0  # inside DynamoDB requests (botocore + moto)
    seconds: Counter[str] = field(default_factory=Counter)  # the same, by operation
    meter_seconds: float = 0.0  # in this meter's own accounting (not the handler's time)
    item_bytes: Counter[tuple[str, str]] = field(default_factory=Counter)  # by request site
    largest_item: Counter[tuple[str, str]] = field(default_factory=Counter)  # bytes, the same
    clients: int = 0  # botocore sessions (and so clients) PynamoDB made
    wall_seconds: float = 0.0
    batches: int = 0
    records: int = 0
    changes: int = 0  # mirrored changes among the records

    def __iadd__(self, other: Tally) -> Tally:
        self.requests.update(other.requests)
        self.seconds.update(other.seconds)
        self.units_by_target.update(other.units_by_target)
        self.item_bytes.update(other.item_bytes)
        self.largest_item = self.largest_item | other.largest_item  # the larger of each
        for name in (
            "write_units",
            "table_write_units",
            "read_units",
            "reported_units",
            "failed_conditions",
            "call_seconds",
            "meter_seconds",
            "clients",
            "wall_seconds",
            "batches",
            "records",
            "changes",
        ):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        return self

    def operations(self) -> Counter[str]:
        counts: Counter[str] = Counter()
        for (operation, _), n in self.requests.items():
            counts[operation] += n
        return counts

    @property
    def writes(self) -> int:
        return sum(n for (op, _), n in self.requests.items() if op in WRITE_OPERATIONS)

    @property
    def reads(self) -> int:
        return sum(n for (op, _), n in self.requests.items() if op not in WRITE_OPERATIONS)

    @property
    def total_requests(self) -> int:
        return sum(self.requests.values())


def total(tallies: Sequence[Tally]) -> Tally:
    result = Tally()
    for tally in tallies:
        result += tally
    return result


class Meter:
    """Counts the DynamoDB requests of PynamoDB's clients while ``tally`` is set."""

    def __init__(self) -> None:
        self.tally: Tally | None = None
        #: table name → (base name, its global secondary indexes)
        self.tables: dict[str, tuple[str, tuple[Index, ...]]] = {}
        #: (table, item key, index) → what an INCLUDE or KEYS_ONLY index holds for the item (its
        #: index key, table key and projected attributes): what tells whether a write changes
        #: it, and so writes the index (only the handler writes mirrors)
        self.index_entries: dict[tuple[str, str, str], dict[str, Any]] = {}
        #: the first order put and mirror update the handler made (the raw baselines' models)
        self.sample_order: dict[str, Any] | None = None
        self.sample_update: dict[str, Any] | None = None

    def learn(self, models: Sequence[Any]) -> None:
        for model in models:
            schema = model._get_schema()
            indexes = []
            for index in schema["global_secondary_indexes"]:
                keys = {key["KeyType"]: key["AttributeName"] for key in index["key_schema"]}
                projection = index["projection"]
                indexes.append(
                    Index(
                        index["index_name"],
                        keys["HASH"],
                        keys.get("RANGE"),
                        projection["ProjectionType"],
                        tuple(projection.get("NonKeyAttributes", ())),
                    )
                )
            self.tables[model.Meta.table_name] = (model.base_name, tuple(indexes))

    def register(self, session: Any) -> None:
        session.register("before-parameter-build.dynamodb", self._before)
        session.register("after-call.dynamodb", self._after)

    def _before(self, params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        if self.tally is not None:
            context["bench"] = (time.perf_counter(), params)

    def _after(self, parsed: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
        started = context.pop("bench", None)
        tally = self.tally
        if started is None or tally is None:
            return
        now = time.perf_counter()
        elapsed = now - started[0]
        tally.call_seconds += elapsed
        tally.seconds[model.name] += elapsed
        self._account(tally, model.name, started[1], parsed)
        tally.meter_seconds += time.perf_counter() - now

    def _account(
        self, tally: Tally, operation: str, params: dict[str, Any], parsed: dict[str, Any]
    ) -> None:
        failed = parsed.get("Error", {}).get("Code") == "ConditionalCheckFailedException"
        tally.failed_conditions += failed
        reported = parsed.get("ConsumedCapacity")
        for capacity in reported if isinstance(reported, list) else [reported or {}]:
            tally.reported_units += float(capacity.get("CapacityUnits", 0))
        if operation == "TransactWriteItems":
            for entry in params["TransactItems"]:
                ((kind, request),) = entry.items()
                self._write(tally, kind, request, failed, factor=2)
            tally.requests[(operation, "(transaction)")] += 1
            return
        if operation in ("BatchGetItem", "BatchWriteItem"):
            self._batch(tally, operation, params, parsed)
            return
        table = self._base(params.get("TableName", "?"))
        site = (operation, f"{table}.{params['IndexName']}" if "IndexName" in params else table)
        tally.requests[site] += 1
        if operation in ("PutItem", "UpdateItem", "DeleteItem"):
            size = self._write(tally, operation, params, failed, factor=1)
            tally.item_bytes[site] += size
            tally.largest_item[site] = max(tally.largest_item[site], size)
            if site == ("PutItem", "orders") and self.sample_order is None:
                self.sample_order = dict(params["Item"])
            if operation == "UpdateItem" and self.sample_update is None and not failed:
                self.sample_update = dict(params)
        elif operation == "GetItem":
            size = item_size(parsed.get("Item") or {})
            tally.item_bytes[site] += size
            tally.read_units += read_units(size, bool(params.get("ConsistentRead")))
        elif operation in ("Query", "Scan"):
            size = sum(item_size(item) for item in parsed.get("Items", []))
            tally.item_bytes[site] += size
            tally.read_units += read_units(size, bool(params.get("ConsistentRead")))

    def _batch(
        self, tally: Tally, operation: str, params: dict[str, Any], parsed: dict[str, Any]
    ) -> None:
        """A batch get bills each key as a get of its own (a key not found: the minimum); a
        batch write each put or delete as a write of its own. One request, counted under its
        table (several: joined with ``+``)."""
        requested = params["RequestItems"]
        site = (operation, "+".join(sorted(self._base(t) for t in requested)))
        tally.requests[site] += 1
        if operation == "BatchGetItem":
            for table, request in requested.items():
                found = parsed.get("Responses", {}).get(table, [])
                consistent = bool(request.get("ConsistentRead"))
                sizes = [item_size(item) for item in found]
                sizes += [0] * max(0, len(request.get("Keys", [])) - len(found))
                tally.item_bytes[site] += sum(sizes)
                tally.read_units += sum(read_units(size, consistent) for size in sizes)
            return
        for table, entries in requested.items():
            for entry in entries:
                ((kind, request),) = entry.items()
                kind = "PutItem" if kind == "PutRequest" else "DeleteItem"
                size = self._write(tally, kind, {**request, "TableName": table}, False, 1)
                tally.item_bytes[site] += size

    def _base(self, table: str) -> str:
        return self.tables.get(table, (table, ()))[0]

    def _write(
        self, tally: Tally, kind: str, request: dict[str, Any], failed: bool, factor: int
    ) -> int:
        """Bill one write; returns the item's size."""
        removed: frozenset[str] = frozenset()
        if kind in ("PutItem", "Put"):
            item = request["Item"]
        elif kind in ("UpdateItem", "Update"):
            item, removed = updated_item(request), removed_attributes(request)
        else:  # a delete or a condition check: the key's unit
            item = request["Key"]
        size = item_size(item)
        units = write_units(size) * factor
        table = request["TableName"]
        base, indexes = self.tables.get(table, (table, ()))
        tally.table_write_units += units
        tally.write_units += units
        tally.units_by_target[f"{base}"] += units
        if failed or kind == "ConditionCheck":
            return size
        table_key = request.get("Key") or dict(self._key_of(table, item))
        item_key = repr(sorted(table_key.items()))
        for index in indexes:
            if index.projection == "ALL":  # every write that changes the item copies it
                index_units = units if index.hash_key in item else 0
            else:
                state = (table, item_key, index.name)
                entry_units = self._entry_writes(state, index, kind, table_key, item, removed)
                index_units = entry_units * factor
            tally.write_units += index_units
            tally.units_by_target[f"{base}.{index.name}"] += index_units
        return size

    def _entry_writes(
        self,
        state: tuple[str, str, str],
        index: Index,
        kind: str,
        table_key: dict[str, Any],
        item: dict[str, Any],
        removed: frozenset[str],
    ) -> int:
        """Write units of one INCLUDE or KEYS_ONLY index for one write of an item: a put of
        its entry when it appears, a delete when it goes, both when its key changes, one write
        when a projected attribute changes, none otherwise."""
        previous = self.index_entries.get(state)
        if kind in ("PutItem", "Put"):
            current = index_entry(index, table_key, item)
        elif kind in ("UpdateItem", "Update"):  # what the write leaves out stays as it was
            kept = {k: v for k, v in (previous or {}).items() if k not in removed}
            current = index_entry(index, table_key, {**kept, **item})
        else:  # a delete
            current = None
        if current is None:
            self.index_entries.pop(state, None)
        else:
            self.index_entries[state] = current
        if previous == current:
            return 0
        units = 0
        if previous is not None and (
            current is None or any(previous[k] != current[k] for k in index.keys)
        ):
            units += write_units(item_size(previous) + INDEX_ITEM_OVERHEAD)  # the old entry goes
        if current is not None:  # a new entry, or the same one with new projected values
            units += write_units(item_size(current) + INDEX_ITEM_OVERHEAD)
        return units

    def _key_of(self, table: str, item: dict[str, Any]) -> list[tuple[str, Any]]:
        """A put item's table key: this schema's tables are all (tenant_id, id)."""
        return sorted((name, item[name]) for name in ("tenant_id", "id") if name in item)


@contextmanager
def metered() -> Iterator[Meter]:
    """Every botocore session PynamoDB creates from now on carries the meter's hooks."""
    from pynamodb.connection import base

    meter = Meter()
    original: Callable[[], Any] = base.get_session

    def get_session() -> Any:
        session = original()
        meter.register(session)
        if meter.tally is not None:
            meter.tally.clients += 1
        return session

    base.get_session = get_session
    try:
        yield meter
    finally:
        base.get_session = original


@contextmanager
def environment(values: dict[str, str]) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
