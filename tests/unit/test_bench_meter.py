"""The benchmarks' DynamoDB meter (``bench/meter.py``) bills global secondary indexes as
DynamoDB does (issue 12, item 7): an ALL index on every write of the item; an INCLUDE or
KEYS_ONLY one only when a write changes its key (two writes) or a projected attribute (one), by
the index item's size (keys and projected attributes + 100 bytes), not the whole item's."""

from __future__ import annotations

from typing import Any

import pytest

from bench.meter import Index, Meter, Tally

TABLE = "bench-things"
INDEXES = (
    Index("by_all", "all_key", "id", "ALL"),
    Index("by_include", "include_key", "id", "INCLUDE", ("a", "b")),
    Index("by_keys", "keys_key", "id", "KEYS_ONLY"),
)
KEY = {"tenant_id": {"S": "tnt_1"}, "id": {"S": "thing_1"}}
BIG = "x" * 2500  # the item is 3 KB: 3 WRU for the table and an ALL index


@pytest.fixture
def meter() -> Meter:
    meter = Meter()
    meter.tables[TABLE] = ("things", INDEXES)
    return meter


def put(meter: Meter, attributes: dict[str, str]) -> Tally:
    tally = Tally()
    item = {**KEY, **{name: {"S": value} for name, value in attributes.items()}}
    meter._account(tally, "PutItem", {"TableName": TABLE, "Item": item}, {})
    return tally


def update(meter: Meter, attributes: dict[str, str], remove: tuple[str, ...] = ()) -> Tally:
    """An UpdateItem as PynamoDB writes one: SET #n = :v …, REMOVE #m …"""
    names: dict[str, str] = {}
    assigned: dict[str, Any] = {}
    expression = []
    for n, (name, value) in enumerate(attributes.items()):
        names[f"#s{n}"], assigned[f":v{n}"] = name, {"S": value}
        expression.append(f"#s{n} = :v{n}")
    removed = []
    for n, name in enumerate(remove):
        names[f"#r{n}"] = name
        removed.append(f"#r{n}")
    text = "SET " + ", ".join(expression) + (" REMOVE " + ", ".join(removed) if removed else "")
    params = {
        "TableName": TABLE,
        "Key": KEY,
        "UpdateExpression": text,
        "ExpressionAttributeNames": names,
        "ExpressionAttributeValues": assigned,
    }
    tally = Tally()
    meter._account(tally, "UpdateItem", params, {})
    return tally


def units(tally: Tally) -> dict[str, float]:
    return {target: n for target, n in tally.units_by_target.items() if n}


FIRST = {"all_key": "k", "include_key": "k", "keys_key": "k", "a": "1", "b": "2", "big": BIG}


def test_a_new_item_writes_every_index_an_include_one_by_its_projected_size(meter: Meter) -> None:
    assert units(put(meter, FIRST)) == {
        "things": 3,
        "things.by_all": 3,
        "things.by_include": 1,  # keys, a and b: not the 3 KB item
        "things.by_keys": 1,
    }


def test_a_write_of_the_same_keys_and_projected_values_writes_the_table_and_all_only(
    meter: Meter,
) -> None:
    put(meter, FIRST)
    rewritten = {**FIRST, "big": BIG.upper()}  # only an attribute no index projects changes
    assert units(update(meter, rewritten)) == {"things": 3, "things.by_all": 3}
    assert units(put(meter, rewritten)) == {"things": 3, "things.by_all": 3}
    assert units(update(meter, {"big": "small"})) == {"things": 1}  # an update leaving the keys out


def test_a_changed_projected_attribute_writes_an_include_index_once(meter: Meter) -> None:
    put(meter, FIRST)
    assert units(update(meter, {**FIRST, "a": "changed"})) == {
        "things": 3,
        "things.by_all": 3,
        "things.by_include": 1,
    }
    assert units(update(meter, {"b": "changed"})) == {"things": 1, "things.by_include": 1}


def test_a_changed_index_key_is_a_delete_and_a_put(meter: Meter) -> None:
    put(meter, FIRST)
    assert units(update(meter, {**FIRST, "include_key": "k2", "keys_key": "k2"})) == {
        "things": 3,
        "things.by_all": 3,
        "things.by_include": 2,
        "things.by_keys": 2,
    }


def test_a_removed_key_deletes_the_index_item_once(meter: Meter) -> None:
    put(meter, FIRST)
    assert units(update(meter, {"a": "1"}, remove=("include_key",))) == {
        "things": 1,
        "things.by_include": 1,
    }
    assert units(update(meter, {"a": "3"})) == {"things": 1}  # out of the index now


def test_a_large_projected_attribute_is_billed_by_its_size(meter: Meter) -> None:
    assert units(put(meter, {"include_key": "k", "a": BIG}))["things.by_include"] == 3


def test_learn_records_the_projection_and_projected_attributes() -> None:
    from functions.orders.adapters import OrderModel, SubscriptionModel

    indexes = {}
    for model in (SubscriptionModel, OrderModel):  # unbound: one table name, so one at a time
        meter = Meter()
        meter.learn([model])
        indexes.update(
            {
                (model.base_name, index.name): index
                for index in meter.tables[model.Meta.table_name][1]
            }
        )
    billing = indexes[("subscriptions", "by_billing")]
    assert (billing.hash_key, billing.range_key) == ("billing_key", "id")
    assert (billing.projection, billing.projected) == (
        "INCLUDE",
        ("account_id", "reseller_account_id"),
    )
    assert indexes[("subscriptions", "by_account")].projection == "KEYS_ONLY"
    assert indexes[("orders", "by_account")].projection == "ALL"
