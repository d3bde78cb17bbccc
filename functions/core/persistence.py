"""PynamoDB at the edge: the base model, a ``Decimal`` attribute, binding to settings at run time,
transactions, and the table definitions that tests, the local platform and ``infra/`` all use.

Models are declared with a base table name only; ``bind`` gives them their prefixed name, region
and endpoint when the composition root starts, so nothing is read at import time.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager, suppress
from decimal import Decimal
from typing import Any, TypeVar

from pynamodb.attributes import Attribute, VersionAttribute
from pynamodb.connection import Connection
from pynamodb.constants import NUMBER, STREAM_NEW_AND_OLD_IMAGE
from pynamodb.exceptions import PutError, TransactWriteError, UpdateError
from pynamodb.models import Model
from pynamodb.transactions import TransactWrite

from functions.core.errors import ConcurrentUpdate
from functions.core.settings import Settings

E = TypeVar("E")


class DecimalAttribute(Attribute[Decimal]):
    """A DynamoDB number read back as ``Decimal`` (PynamoDB's NumberAttribute gives floats)."""

    attr_type = NUMBER

    def serialize(self, value: Decimal) -> str:
        return str(value)

    def deserialize(self, value: str) -> Decimal:
        return Decimal(value)


class BaseTable(Model):
    """Every table: a base name (prefixed at bind time), on-demand billing, and, where later
    issues replicate from it, a stream of new and old images."""

    class Meta:
        table_name = "unbound"
        billing_mode = "PAY_PER_REQUEST"

    #: the table's name without the deployment prefix
    base_name: str = ""
    #: whether DynamoDB Streams (NEW_AND_OLD_IMAGES) is on for this table
    streamed: bool = False
    #: attribute expiring items (TTL), if any
    ttl_attribute: str | None = None


def bind(models: Iterable[type[BaseTable]], settings: Settings) -> None:
    """Give every model its prefixed table name, region and endpoint, and one connection for
    all of them (``connection``): PynamoDB would make a botocore session and client per model,
    ~0.15 s each, on a cold container's first request to each table."""
    _connections.clear()
    shared = connection(settings)
    for model in models:
        if "Meta" not in vars(model):  # give every model a Meta of its own to bind
            setattr(model, "Meta", type("Meta", (model.Meta,), {}))  # noqa: B010
        meta: Any = model.Meta
        meta.table_name = f"{settings.table_prefix}-{model.base_name}"
        meta.region = settings.region
        meta.host = settings.aws_endpoint
        if model.streamed:
            meta.stream_view_type = STREAM_NEW_AND_OLD_IMAGE
        model._connection = None  # drop a connection made with an earlier binding
        table = model._get_connection()  # its schema; its own Connection is never used
        with suppress(ValueError):  # two models of one table (none today) share its schema
            shared.add_meta_table(table.get_meta_table())
        table.connection = shared


#: The one connection per settings, for every table and for transactions, kept while the
#: binding holds: its botocore client is made on first use, once.
_connections: dict[Settings, Connection] = {}


def connection(settings: Settings) -> Connection:
    found = _connections.get(settings)
    if found is None:
        found = _connections.setdefault(
            settings, Connection(region=settings.region, host=settings.aws_endpoint)
        )
    return found


@contextmanager
def transaction(settings: Settings) -> Iterator[TransactWrite]:
    """All-or-nothing writes; a failed condition (a concurrent change) is a 409."""
    try:
        with TransactWrite(connection=connection(settings)) as tx:
            yield tx
    except TransactWriteError as error:
        reasons = [r.code for r in (error.cancellation_reasons or []) if r is not None]
        if "ConditionalCheckFailed" in reasons or "TransactionConflict" in reasons:
            raise ConcurrentUpdate() from error
        raise


class DynamoUnit:
    """A unit of work over DynamoDB (``functions.core.units.UnitOfWork``): the entities saved
    are turned into items by the writer registered for their type and written on a clean exit
    of the ``with`` block: one item with a version-conditional put, several in one
    transaction. Nothing is written if the block raises."""

    def __init__(self, settings: Settings, writers: Mapping[type, Callable[[Any], Model]]) -> None:
        self.settings = settings
        self.writers = writers
        self.items: list[Model] = []

    def save(self, entity: object) -> None:
        writer = self.writers.get(type(entity))
        if writer is None:
            raise TypeError(f"no table is registered for {type(entity).__name__}")
        self.items.append(writer(entity))

    def __enter__(self) -> DynamoUnit:
        return self

    def __exit__(self, kind: Any, error: Any, trace: Any) -> None:
        if kind is None:
            self.commit()

    def commit(self) -> None:
        items, self.items = self.items, []
        if len(items) == 1:
            save(items[0])
        elif items:
            with transaction(self.settings) as tx:
                for item in items:
                    tx.save(item)


class DynamoUnits:
    """``functions.core.units.Units`` over DynamoDB: the composition root registers each
    context's ``WRITERS`` (entity type → its item) once."""

    def __init__(self, settings: Settings, writers: Mapping[type, Callable[[Any], Model]]) -> None:
        self.settings = settings
        self.writers = dict(writers)

    def __call__(self) -> DynamoUnit:
        return DynamoUnit(self.settings, self.writers)

    def save(self, entity: object) -> None:
        with self() as unit:
            unit.save(entity)


def conditional_failed(error: PutError | UpdateError) -> bool:
    return error.cause_response_code == "ConditionalCheckFailedException"


def put_if(item: Model, condition: Any) -> bool:
    """Put ``item`` if ``condition`` holds; False when it did not. For writes keyed by a
    deterministic id: a second put of the same thing is a no-op, not an error."""
    try:
        item.save(condition=condition)
    except PutError as error:
        if conditional_failed(error):
            return False
        raise
    return True


def upsert_actions(item: Model, *, keep_first: tuple[str, ...] = ()) -> list[Any]:
    """SET every attribute of ``item`` (REMOVE the unset ones) for an update that writes the
    whole item without reading it; ``keep_first`` attributes keep their first written value."""
    actions: list[Any] = []
    for name, attribute in item.get_attributes().items():
        if (
            attribute.is_hash_key
            or attribute.is_range_key
            or isinstance(attribute, VersionAttribute)
        ):
            continue
        value = getattr(item, name)
        if value is None:
            actions.append(attribute.remove())
        elif name in keep_first:
            actions.append(attribute.set(attribute | value))  # if_not_exists
        else:
            actions.append(attribute.set(value))
    return actions


def update(item: Model, actions: list[Any], condition: Any = None) -> None:
    """Update ``item`` with ``actions``, conditional on ``condition`` and the version it was
    read at (PynamoDB adds it): a concurrent change in between is a 409 (``ConcurrentUpdate``)."""
    try:
        item.update(actions=actions, condition=condition)
    except UpdateError as error:
        if conditional_failed(error):
            raise ConcurrentUpdate() from error
        raise


def save(item: Model) -> None:
    """Put an item, conditional on the version it was read at (PynamoDB's VersionAttribute):
    a concurrent change in between is a 409, never a lost update."""
    try:
        item.save()
    except PutError as error:
        if conditional_failed(error):
            raise ConcurrentUpdate() from error
        raise


# --- mapping between pure-domain dataclasses and models ---------------------------------------


def to_entity(item: Model, cls: type[E]) -> E:
    """Copy the model attributes named like the dataclass fields (``dataclasses.fields``)."""
    values = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        value = getattr(item, f.name, None)
        if value is not None and hasattr(value, "as_dict"):
            value = value.as_dict()
        elif isinstance(value, list):
            value = [v.as_dict() if hasattr(v, "as_dict") else v for v in value]
        values[f.name] = value
    return cls(**values)


def entity_values(entity: Any) -> dict[str, Any]:
    """The dataclass's set fields (a put replaces the whole item, so an unset one is removed)."""
    values = ((f.name, getattr(entity, f.name)) for f in dataclasses.fields(entity))
    return {name: value for name, value in values if value is not None}


# --- items read without attributes (issue 11) --------------------------------------------------

M = TypeVar("M", bound=Model)

log = logging.getLogger("bss.persistence")


def missing_attributes(item: Model) -> list[str]:
    """The attributes ``item``'s model requires (not nullable, no default) that it lacks: an
    index item projected without them, or an item caught half written (moto's threaded server
    did that before ``local/moto_guard.py``)."""
    return sorted(
        name
        for name, attribute in item.get_attributes().items()
        if not attribute.null and getattr(item, name, None) is None
    )


def item_key(model: type[Model], item: Model) -> Any:
    """The item's table key as ``batch_get`` takes it: the hash key, or (hash, range)."""
    if model._range_keyname is None:
        return getattr(item, str(model._hash_keyname))
    return getattr(item, str(model._hash_keyname)), getattr(item, model._range_keyname)


def complete_items(model: type[M], items: Iterable[M], *, what: str) -> list[M]:
    """The items of a query, in order, each holding every attribute its entity needs: an item
    lacking some (``missing_attributes``) is read again from the table by its key, in one
    batch; one the table has no complete item for is left out with a warning (logger
    ``bss.persistence``) naming it and what it lacked, never a 500 (R29)."""
    items = list(items)
    incomplete = [item for item in items if missing_attributes(item)]
    if not incomplete:
        return items
    keys = list(dict.fromkeys(item_key(model, item) for item in incomplete))
    reread = {item_key(model, item): item for item in model.batch_get(keys)}
    complete: list[M] = []
    for item in items:
        lacking = missing_attributes(item)
        if not lacking:
            complete.append(item)
            continue
        key = item_key(model, item)
        fresh = reread.get(key)
        if fresh is not None and not missing_attributes(fresh):
            complete.append(fresh)
        else:
            log.warning(
                "%s: left out %s %s: %s",
                what,
                model.__name__,
                "/".join(map(str, key)) if isinstance(key, tuple) else key,
                "gone from the table"
                if fresh is None
                else f"lacks {', '.join(missing_attributes(fresh))} in the table too",
            )
    return complete


# --- table definitions (CloudFormation form) --------------------------------------------------


def _keys(schema: Any) -> list[dict[str, str]]:
    """HASH first, as CloudFormation wants it."""
    keys = [{"AttributeName": k["AttributeName"], "KeyType": k["KeyType"]} for k in schema]
    return sorted(keys, key=lambda k: k["KeyType"] != "HASH")


def _projection(projection: dict[str, Any]) -> dict[str, Any]:
    shaped: dict[str, Any] = {"ProjectionType": projection["ProjectionType"]}
    if projection.get("NonKeyAttributes"):
        shaped["NonKeyAttributes"] = sorted(projection["NonKeyAttributes"])
    return shaped


def table_resource(model: type[BaseTable], name: Any) -> dict[str, Any]:
    """The ``AWS::DynamoDB::Table`` for a model; ``name`` may be a CloudFormation expression."""
    meta: Any = model._get_schema()
    definitions = {a["AttributeName"]: a["AttributeType"] for a in meta["attribute_definitions"]}
    props: dict[str, Any] = {
        "TableName": name,
        "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": [
            {"AttributeName": n, "AttributeType": t} for n, t in sorted(definitions.items())
        ],
        "KeySchema": _keys(meta["key_schema"]),
        "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
        "SSESpecification": {"SSEEnabled": True},
    }
    for kind, prop in (
        ("global_secondary_indexes", "GlobalSecondaryIndexes"),
        ("local_secondary_indexes", "LocalSecondaryIndexes"),
    ):
        if meta.get(kind):
            props[prop] = [
                {
                    "IndexName": index["index_name"],
                    "KeySchema": _keys(index["key_schema"]),
                    "Projection": _projection(index["projection"]),
                }
                for index in sorted(meta[kind], key=lambda i: i["index_name"])
            ]
    if model.streamed:
        props["StreamSpecification"] = {"StreamViewType": "NEW_AND_OLD_IMAGES"}
    if model.ttl_attribute:
        props["TimeToLiveSpecification"] = {"AttributeName": model.ttl_attribute, "Enabled": True}
    return {
        "Type": "AWS::DynamoDB::Table",
        "DeletionPolicy": "Retain",
        "UpdateReplacePolicy": "Retain",
        "Properties": props,
    }


def create_tables(models: Iterable[type[BaseTable]]) -> None:
    """Create the bound tables that do not exist yet (tests and the local platform)."""
    for model in models:
        if not model.exists():
            model.create_table(wait=True, billing_mode="PAY_PER_REQUEST")
