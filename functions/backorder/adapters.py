"""What back ordering reads and writes in the provider's BSS: the link to a reseller tenant, the
mirrors (written without a read, only over an older source version) and the provider's orders
(put once per deterministic id). The tables are the parties', catalogue's and orders' own."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from pynamodb.attributes import (
    BooleanAttribute,
    ListAttribute,
    NumberAttribute,
    UnicodeAttribute,
    VersionAttribute,
)
from pynamodb.exceptions import UpdateError

from functions.backorder.domain import (
    SYNCED_SUBSCRIPTION_FIELDS,
    DriftItem,
    FailedDelivery,
    Link,
    MirrorRef,
    ProviderProduct,
    ReconciliationRun,
    Root,
)
from functions.backorder.schemas import FAILURE_QUEUES, STREAM_FAILURES_QUEUE
from functions.core.adapters import (
    AccountModel,
    AccountRepository,
    JobModel,
    JobRepository,
    TenantModel,
    TenantRepository,
)
from functions.core.domain import Account, Job, Tenant
from functions.core.errors import BadRequest, present
from functions.core.pagination import Page, decode_cursor, encode_cursor
from functions.core.persistence import (
    BaseTable,
    conditional_failed,
    entity_values,
    put_if,
    save,
    to_entity,
    transaction,
    upsert_actions,
)
from functions.core.settings import Settings
from functions.invoices.adapters import UsageModel, UsageRepository
from functions.invoices.domain import UsageRecord
from functions.orders.adapters import OrderModel, SubscriptionModel
from functions.orders.domain import Order, Subscription
from functions.pricelist.adapters import PriceListRepository, ProductRepository
from functions.pricelist.domain import effective_price

log = logging.getLogger("bss.backorder")


class BackorderRepository:
    def __init__(
        self,
        tenants: TenantRepository,
        accounts: AccountRepository,
        products: ProductRepository,
        price_lists: PriceListRepository,
    ) -> None:
        self.tenants = tenants
        self.accounts = accounts
        self.products = products
        self.price_lists = price_lists

    def link(self, child_tenant_id: str) -> Link | Root | None:
        """The child's link to its provider; ``Root`` for a root tenant; None if there is no
        such tenant or its reseller account (yet)."""
        child = self.tenants.get(child_tenant_id)
        if child is not None and child.parent_id is None:
            return Root(child.id)
        if child is None or child.parent_id is None or child.reseller_account_id is None:
            return None
        account = self.accounts.get(child.parent_id, child.reseller_account_id)
        if account is None:
            return None
        return Link(
            child_tenant_id=child.id,
            provider_tenant_id=child.parent_id,
            reseller_account_id=account.id,
            price_list_id=account.price_list_id,
            currency=account.currency,
            active=child.backordering,
            upgraded=child.upgrade_from is not None,
        )

    def account(self, tenant_id: str, account_id: str) -> Account | None:
        return self.accounts.get(tenant_id, account_id)

    def subscription(self, tenant_id: str, subscription_id: str) -> Subscription | None:
        try:
            return SubscriptionModel.get(tenant_id, subscription_id).entity()
        except SubscriptionModel.DoesNotExist:
            return None

    def create_account(self, account: Account) -> bool:
        """Put a mirror account unless it exists (a concurrent copy is the same copy)."""
        return self.accounts.create_once(account)

    def sync_account(
        self,
        provider_tenant_id: str,
        mirror_id: str,
        fields: dict[str, object],
        version: int,
        *,
        over: int | None = None,
    ) -> bool:
        """Set a mirror account's synced fields from its source's ``version``: one conditional
        update, no read, applied only to an existing mirror holding an older version (R12, R18).
        Its own version grows, so the change flows on up (R17)."""
        item = AccountModel(provider_tenant_id, mirror_id)
        item.version = 0  # any value: the update adds one to the stored version
        actions: list[Any] = [AccountModel.source_version.set(version)]
        for name, value in fields.items():
            attribute = AccountModel.get_attributes()[name]
            actions.append(attribute.remove() if value is None else attribute.set(value))
        newer = AccountModel.source_version.does_not_exist() | (
            AccountModel.source_version < version
        )
        if over is not None:  # a repair (R33): also over the source version it read
            newer = newer | (AccountModel.source_version == over)
        condition = AccountModel.id.exists() & newer
        try:
            item.update(actions=actions, condition=condition, add_version_condition=False)
        except UpdateError as error:
            if conditional_failed(error):
                return False
            raise
        return True

    def provider_product(self, tenant_id: str, product_id: str) -> ProviderProduct | None:
        product = self.products.get(tenant_id, product_id)
        if product is None:
            return None
        return ProviderProduct(
            product.id,
            product.sku,
            product.name,
            product.origin_tenant_id,
            product.origin_product_id,
        )

    def price(self, link: Link, product_id: str, cycle: str) -> Decimal | None:
        """The reseller's price (its assigned list) of a provider product and cycle (R13)."""
        if link.price_list_id is None:
            return None
        entry = self.price_lists.price(
            link.provider_tenant_id, link.price_list_id, product_id, cycle
        )
        product = self.products.get(link.provider_tenant_id, product_id)
        if entry is None or product is None:
            return None
        if entry.price is None and cycle not in product.costs:
            return None
        return effective_price(entry, product, link.currency)

    def upsert_mirror(self, mirror: Subscription, *, over: int | None = None) -> bool:
        """Write the mirror unless it already holds this or a newer source version (R18): one
        conditional update, no read. Its own version still grows by one (R17 cascades on it).
        ``over``: a repair (R33) may also write over the source version it read on the mirror
        (a field changed behind the replicator at the same version, or a mirror ahead of a
        restored source); a mirror that moved on since is left to the stream."""
        item = SubscriptionModel.of(mirror)
        item.version = 0  # any value: the update adds one to the stored version
        condition = SubscriptionModel.id.does_not_exist() | (
            SubscriptionModel.source_version < mirror.source_version
        )
        if over is not None:
            condition = condition | (SubscriptionModel.source_version == over)
        try:
            item.update(
                actions=upsert_actions(item, keep_first=("created_at",)),
                condition=condition,
                add_version_condition=False,
            )
        except UpdateError as error:
            if conditional_failed(error):
                return False
            raise
        return True

    def put_usage_once(self, record: UsageRecord) -> bool:
        """A use copied onto a mirror, once whatever the deliveries (R25, R18)."""
        return UsageRepository().record_once(record)

    def close_orphan(self, closed: Subscription) -> bool:
        """R33: a mirror whose source is gone, cancelled and marked (``domain.orphan_closed``):
        one update of its status fields, conditional on it still being unclosed; its own
        version grows, so a tier above follows (R17). Never deleted: billing history stays."""
        item = SubscriptionModel(closed.tenant_id, closed.id)
        item.version = 0
        actions: list[Any] = [
            SubscriptionModel.status.set(closed.status),
            SubscriptionModel.last_change.set(present(closed.last_change, "last_change")),
            SubscriptionModel.last_change_date.set(present(closed.last_change_date, "date")),
            SubscriptionModel.updated_at.set(closed.updated_at),
        ]
        if closed.cancellation_date:
            actions.append(SubscriptionModel.cancellation_date.set(closed.cancellation_date))
        condition = SubscriptionModel.id.exists() & (
            SubscriptionModel.last_change.does_not_exist()
            | (SubscriptionModel.last_change != closed.last_change)
        )
        try:
            item.update(actions=actions, condition=condition, add_version_condition=False)
        except UpdateError as error:
            if conditional_failed(error):
                return False
            raise
        return True

    def put_order_once(self, order: Order) -> bool:
        """The provider's order of one change, created once whatever the deliveries (R14)."""
        return put_if(OrderModel.of(order), OrderModel.id.does_not_exist())


class BackfillJobRepository:
    """An R11 backfill's job, kept in the parties' jobs table, and the activation that creates
    it together with the child's switch (one transaction over the tenants and jobs tables)."""

    def __init__(self, settings: Settings, tenants: TenantRepository, jobs: JobRepository) -> None:
        self.settings = settings
        self.tenants = tenants
        self.jobs = jobs

    def get(self, tenant_id: str, job_id: str) -> Job | None:
        return self.jobs.get(tenant_id, job_id)

    def activate(self, activated: Tenant | None, job: Job) -> None:
        """All or nothing: the child switched on (``activated``; None if it is already) and its
        job created, unless one exists (a concurrent activation: the 409 of ``transaction``)."""
        with transaction(self.settings) as tx:
            if activated is not None:
                tx.save(TenantModel.of(activated))
            tx.save(JobModel.of(job), condition=JobModel.id.does_not_exist())

    def save(self, job: Job) -> None:
        """Conditional on the version read: a concurrent change is a 409 (``ConcurrentUpdate``)."""
        save(JobModel.of(job))


# --- stream images (the back-ordering functions, ``handlers.py``) ----------------------------


def subscription_of_image(image: dict[str, Any]) -> Subscription:
    """The subscription a subscriptions-stream record carries."""
    return SubscriptionModel.from_raw_data(image).entity()


def account_of_image(image: dict[str, Any]) -> Account:
    """The account an accounts-stream record carries."""
    return to_entity(AccountModel.from_raw_data(image), Account)


def usage_of_image(image: dict[str, Any]) -> UsageRecord:
    """The use a usage-stream record carries."""
    return UsageModel.from_raw_data(image).entity()


# --- R33: reconciliation runs -----------------------------------------------------------------


class ReconciliationRunModel(BaseTable):
    """A run, in the partition of the tenant that started it (the provider, or the child)."""

    base_name = "reconciliation_runs"

    tenant_id = UnicodeAttribute(hash_key=True)
    id = UnicodeAttribute(range_key=True)
    child_tenant_id = UnicodeAttribute()
    provider_tenant_id = UnicodeAttribute()
    started_by = UnicodeAttribute()
    status = UnicodeAttribute()
    created_at = UnicodeAttribute()
    updated_at = UnicodeAttribute()
    phase = UnicodeAttribute()
    cursor = UnicodeAttribute(null=True)
    previous = UnicodeAttribute(null=True)
    sent = BooleanAttribute(default=False)
    pages = NumberAttribute(default=0)
    compared = UnicodeAttribute(default="{}")  # JSON: phase → records looked at
    counts = UnicodeAttribute(default="{}")  # JSON: kind → items found
    repaired = NumberAttribute(default=0)
    repair_orders = NumberAttribute(default=0)
    finished_at = UnicodeAttribute(null=True)
    repair_started_at = UnicodeAttribute(null=True)
    repaired_at = UnicodeAttribute(null=True)
    version = VersionAttribute()

    @classmethod
    def of(cls, run: ReconciliationRun) -> ReconciliationRunModel:
        values = entity_values(run)
        values["compared"] = json.dumps(run.compared, sort_keys=True)
        values["counts"] = json.dumps(run.counts, sort_keys=True)
        return cls(**values)

    def entity(self) -> ReconciliationRun:
        run = to_entity(self, ReconciliationRun)
        return replace(
            run,
            pages=int(self.pages),
            compared=json.loads(self.compared),
            counts=json.loads(self.counts),
            repaired=int(self.repaired),
            repair_orders=int(self.repair_orders),
            version=int(self.version) if self.version is not None else None,
        )


class ReconciliationItemModel(BaseTable):
    """A run's drifted records: partition ``{owner}#{run}``, sort key ``{kind}#{record}#{source}``
    (a ``?kind=`` page is one ``begins_with`` Query)."""

    base_name = "reconciliation_items"

    run_key = UnicodeAttribute(hash_key=True)
    item = UnicodeAttribute(range_key=True)
    kind = UnicodeAttribute()
    record = UnicodeAttribute()
    source_id = UnicodeAttribute()
    mirror_id = UnicodeAttribute()
    found_on = UnicodeAttribute()
    fields = ListAttribute(of=UnicodeAttribute, default=list)
    source_version = NumberAttribute(null=True)
    mirror_source_version = NumberAttribute(null=True)
    detail = UnicodeAttribute(null=True)
    repair = UnicodeAttribute(null=True)
    repair_order_id = UnicodeAttribute(null=True)
    repaired_on = UnicodeAttribute(null=True)

    @classmethod
    def of(cls, tenant_id: str, run_id: str, entry: DriftItem) -> ReconciliationItemModel:
        values = entity_values(entry)
        values["fields"] = list(entry.fields)
        return cls(run_key=f"{tenant_id}#{run_id}", item=entry.key, **values)

    def entity(self) -> DriftItem:
        entry = to_entity(self, DriftItem)
        return replace(
            entry,
            fields=tuple(str(name) for name in self.fields or ()),
            source_version=_int(self.source_version),
            mirror_source_version=_int(self.mirror_source_version),
        )


def _int(value: Any) -> int | None:
    return None if value is None else int(value)


MODELS: tuple[type[BaseTable], ...] = (ReconciliationRunModel, ReconciliationItemModel)

#: what a reconciliation reads of a subscription, source or mirror: whether it is mirrored
#: (R13), the mirror's id, the synced fields and the versions (a projection: the items carry a
#: history of up to 400 days that a comparison does not need; DynamoDB bills the whole item
#: either way, the transfer and the parsing are the projection's)
COMPARED = [
    "tenant_id",
    "id",
    "account_id",
    "version",
    "origin_tenant_id",
    "origin_product_id",
    "paid_once",
    "upstream_id",
    "mirrored",
    "source",
    "source_version",
    "last_change",
    "last_change_date",
    "updated_at",
    *SYNCED_SUBSCRIPTION_FIELDS,
]
#: the entity's required fields a projection leaves out, as placeholders (never written back)
_LEFT_OUT: dict[str, Any] = {
    "currency": "",
    "unit_price": Decimal(0),
    "price_list_id": "",
    "created_at": "",
}


def _compared(item: SubscriptionModel) -> Subscription:
    """A subscription read with the ``COMPARED`` projection, as an entity to compare."""
    for name, placeholder in _LEFT_OUT.items():
        if getattr(item, name, None) is None:
            setattr(item, name, placeholder)
    return item.entity()


_TABLE_KEYS = frozenset({"tenant_id", "id"})  # the runs', subscriptions' and accounts'
_ITEM_KEYS = frozenset({"run_key", "item"})
#: what the orphan check reads of a mirror (a projection: the mirror's item is ~1 KB)
_MIRROR_REF = ["tenant_id", "id", "mirrored", "source", "last_change"]


class ReconciliationRepository:
    """The runs and their items (R33), and the batched reads a run's pages make of both tiers:
    a Query page of the child's records, then ``BatchGetItem`` of their deterministic mirrors,
    100 keys a request; never a Scan."""

    # runs

    def get(self, tenant_id: str, run_id: str) -> ReconciliationRun | None:
        try:
            return ReconciliationRunModel.get(tenant_id, run_id, consistent_read=True).entity()
        except ReconciliationRunModel.DoesNotExist:
            return None

    def create(self, run: ReconciliationRun) -> bool:
        """The run, unless one of its id exists (the schedule's derived id: False)."""
        return put_if(ReconciliationRunModel.of(run), ReconciliationRunModel.id.does_not_exist())

    def save(self, run: ReconciliationRun) -> None:
        """Conditional on the version read: a concurrent change is a ``ConcurrentUpdate``."""
        save(ReconciliationRunModel.of(run))

    def runs(self, tenant_id: str, limit: int, cursor: str | None) -> Page[ReconciliationRun]:
        start = decode_cursor(cursor, {"tenant_id": {"S": tenant_id}}, _TABLE_KEYS)
        result = ReconciliationRunModel.query(
            tenant_id, scan_index_forward=False, limit=limit, last_evaluated_key=start
        )
        return Page([item.entity() for item in result], encode_cursor(result.last_evaluated_key))

    # items

    def items(
        self, tenant_id: str, run_id: str, kind: str | None, limit: int, cursor: str | None
    ) -> Page[DriftItem]:
        partition = f"{tenant_id}#{run_id}"
        start = decode_cursor(cursor, {"run_key": {"S": partition}}, _ITEM_KEYS)
        if start is not None and kind and not start["item"]["S"].startswith(f"{kind}#"):
            raise BadRequest(
                "cursor does not belong to this list", field="cursor", code="invalid_cursor"
            )
        condition = ReconciliationItemModel.item.startswith(f"{kind}#") if kind else None
        result = ReconciliationItemModel.query(
            partition, range_key_condition=condition, limit=limit, last_evaluated_key=start
        )
        return Page([item.entity() for item in result], encode_cursor(result.last_evaluated_key))

    def found_on(self, tenant_id: str, run_id: str, keys: Iterable[str]) -> dict[str, str]:
        """Of these item keys, those the run holds already: key → the page that found it."""
        partition = f"{tenant_id}#{run_id}"
        wanted = [(partition, key) for key in dict.fromkeys(keys)]
        if not wanted:
            return {}
        return {
            item.item: item.found_on
            for item in ReconciliationItemModel.batch_get(
                wanted, attributes_to_get=["run_key", "item", "found_on"]
            )
        }

    def put_items(self, tenant_id: str, run_id: str, entries: Iterable[DriftItem]) -> None:
        """Written whole and identically by a page done again (no condition needed)."""
        with ReconciliationItemModel.batch_write() as batch:
            for entry in entries:
                batch.save(ReconciliationItemModel.of(tenant_id, run_id, entry))

    # the two tiers' records

    def subscriptions_page(
        self, tenant_id: str, limit: int, cursor: str | None
    ) -> Page[Subscription]:
        """A page of the tenant's subscriptions, with what a comparison reads (``COMPARED``)."""
        start = decode_cursor(cursor, {"tenant_id": {"S": tenant_id}}, _TABLE_KEYS)
        result = SubscriptionModel.query(
            tenant_id, limit=limit, last_evaluated_key=start, attributes_to_get=COMPARED
        )
        items = [_compared(item) for item in result]
        return Page(items, encode_cursor(result.last_evaluated_key))

    def accounts_page(self, tenant_id: str, limit: int, cursor: str | None) -> Page[Account]:
        start = decode_cursor(cursor, {"tenant_id": {"S": tenant_id}}, _TABLE_KEYS)
        result = AccountModel.query(tenant_id, limit=limit, last_evaluated_key=start)
        items = [to_entity(item, Account) for item in result]
        return Page(items, encode_cursor(result.last_evaluated_key))

    def subscriptions(
        self, tenant_id: str, ids: Iterable[str], *, whole: bool = False
    ) -> dict[str, Subscription]:
        """By id, with what a comparison reads (``COMPARED``), or ``whole`` (what a repair
        re-drives)."""
        keys = [(tenant_id, i) for i in dict.fromkeys(ids)]
        if not keys:
            return {}
        if whole:
            return {item.id: item.entity() for item in SubscriptionModel.batch_get(keys)}
        found = SubscriptionModel.batch_get(keys, attributes_to_get=COMPARED)
        return {item.id: _compared(item) for item in found}

    def accounts(self, tenant_id: str, ids: Iterable[str]) -> dict[str, Account]:
        keys = [(tenant_id, i) for i in dict.fromkeys(ids)]
        if not keys:
            return {}
        return {item.id: to_entity(item, Account) for item in AccountModel.batch_get(keys)}

    def existing(self, tenant_id: str, ids: Iterable[str]) -> set[str]:
        """Which of these subscription ids the tenant holds (keys only)."""
        keys = [(tenant_id, i) for i in dict.fromkeys(ids)]
        if not keys:
            return set()
        return {
            item.id
            for item in SubscriptionModel.batch_get(keys, attributes_to_get=["tenant_id", "id"])
        }

    def reseller_mirrors(
        self, tenant_id: str, reseller_account_id: str, limit: int, cursor: str | None
    ) -> Page[MirrorRef]:
        """The subscriptions under a tenant reseller account in its provider's BSS (the
        ``by_reseller`` index, keys only), each with its source (one projected
        ``BatchGetItem`` per 100)."""
        partition = f"{tenant_id}#{reseller_account_id}"
        names = _TABLE_KEYS | {"reseller_key"}
        start = decode_cursor(cursor, {"reseller_key": {"S": partition}}, names)
        result = SubscriptionModel.by_reseller.query(
            partition, limit=limit, last_evaluated_key=start
        )
        keys = [(item.tenant_id, item.id) for item in result]
        refs = []
        if keys:
            for item in SubscriptionModel.batch_get(keys, attributes_to_get=_MIRROR_REF):
                source = dict(item.source.as_dict()) if item.source is not None else None
                refs.append(
                    MirrorRef(
                        id=item.id,
                        mirrored=bool(item.mirrored),
                        source_tenant_id=(source or {}).get("tenant_id"),
                        source_id=(source or {}).get("subscription_id"),
                        last_change=item.last_change,
                    )
                )
        return Page(refs, encode_cursor(result.last_evaluated_key))


class StreamFailures:
    """R33: the stream records set aside on the ``stream-failures`` queue (R18: the event
    source mapping sends a batch's description there after its retries) that name a child's
    subscriptions or accounts, listed beside a run without consuming them.

    The queue is read with ``VisibilityTimeout=0`` (each message stays visible; its receive
    count grows, and the queue has no redrive policy, so nothing moves): up to ``MAX_MESSAGES``
    distinct messages, ten per request, until a request brings nothing new. Each message's
    ``DDBStreamBatchInfo`` names a shard and a range of sequence numbers: the records are read
    again from the stream (``GetShardIterator`` at the first, ``GetRecords`` of the batch's
    size) for their keys, which lead with the tenant id, so only the child's are listed. A
    record older than the stream's 24 hours can no longer be read: it is not listed (its
    effect is what the run finds as ``stale`` or ``missing``)."""

    MAX_MESSAGES = 100
    TABLES = {"subscriptions": "subscription", "accounts": "account"}

    def __init__(self, settings: Settings, sqs: Any, streams: Any) -> None:
        self.settings = settings
        self.sqs = sqs  # callables: the clients are made on first use
        self.streams = streams

    def records(self, child_tenant_id: str) -> list[tuple[str, str, str]]:
        found: dict[tuple[str, str], str] = {}
        for body in self._messages():
            info = body.get("DDBStreamBatchInfo") if isinstance(body, dict) else None
            if not isinstance(info, dict):
                continue
            for record, record_id, where in self._batch(info):
                if record_id[0] == child_tenant_id:
                    found.setdefault((record, record_id[1]), where)
        return [(record, record_id, where) for (record, record_id), where in found.items()]

    def _messages(self) -> list[Any]:
        sqs = self.sqs()
        url = sqs.get_queue_url(QueueName=self.settings.queue_name(STREAM_FAILURES_QUEUE))[
            "QueueUrl"
        ]
        bodies: list[Any] = []
        for message in peek_messages(sqs, url, self.MAX_MESSAGES):
            try:
                bodies.append(json.loads(message["Body"]))
            except ValueError:
                bodies.append(None)
        return bodies

    def _batch(self, info: dict[str, Any]) -> list[tuple[str, tuple[str, str], str]]:
        base = stream_table(info, self.settings.table_prefix)
        record = self.TABLES.get(base or "")
        if record is None:
            return []
        shard = info.get("shardId")
        named = []
        for sequence, keys in read_batch(self.streams(), info) or []:
            tenant, record_id = keys.get("tenant_id"), keys.get("id")
            if tenant and record_id:
                where = f"{base} stream, shard {shard}, sequence {sequence}"
                named.append((record, (tenant, record_id), where))
        return named


def peek_messages(sqs: Any, url: str, most: int) -> list[dict[str, Any]]:
    """Up to ``most`` distinct messages of a queue, read with ``VisibilityTimeout=0`` (each
    stays visible, nothing is consumed; its receive count grows), ten per request, until a
    request brings nothing new (SQS answers a sample of the queue)."""
    seen: dict[str, dict[str, Any]] = {}
    while len(seen) < most:
        messages = sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0, AttributeNames=["All"]
        ).get("Messages", [])
        new = [m for m in messages if m["MessageId"] not in seen]
        if not new:
            break
        seen.update((m["MessageId"], m) for m in new)
    return list(seen.values())


def stream_table(info: dict[str, Any], table_prefix: str) -> str | None:
    """The base name of the table whose stream a batch's description (``DDBStreamBatchInfo``)
    names, or None for another prefix's table."""
    arn = str(info.get("streamArn", ""))
    table = arn.split(":table/", 1)[-1].split("/stream/", 1)[0]
    base = table.removeprefix(f"{table_prefix}-")
    return None if table == base else base


def read_batch(streams: Any, info: dict[str, Any]) -> list[tuple[str, dict[str, str]]] | None:
    """The (sequence number, table keys) of each record of a stream batch's description, read
    again from the stream (``GetShardIterator`` at the first, ``GetRecords`` of the batch's
    size); None once they are gone (trimmed past 24 h, or the stream replaced)."""
    arn, shard = str(info.get("streamArn", "")), info.get("shardId")
    first = str(info.get("startSequenceNumber") or "0")
    last = str(info.get("endSequenceNumber") or first)
    try:
        iterator = streams.get_shard_iterator(
            StreamArn=arn,
            ShardId=shard,
            ShardIteratorType="AT_SEQUENCE_NUMBER",
            SequenceNumber=first,
        )["ShardIterator"]
        page = streams.get_records(ShardIterator=iterator, Limit=int(info.get("batchSize", 1)))
    except Exception:  # trimmed past 24 h, or the stream replaced: nothing to name
        log.warning("stream-failures: the records of %s at %s are gone", shard, first)
        return None
    records = []
    for entry in page.get("Records", []):
        sequence = entry["dynamodb"]["SequenceNumber"]
        if int(sequence) > int(last):
            break
        keys = {
            name: str(next(iter(value.values()), ""))
            for name, value in entry["dynamodb"].get("Keys", {}).items()
        }
        records.append((sequence, keys))
    return records


class FailureQueues:
    """Issue 16 (``GET /failures``): the messages of the streams' on-failure queue (R18) and of
    every dead-letter queue (``schemas.FAILURE_QUEUES``, as ``infra/events.py`` declares them),
    each read with ``VisibilityTimeout=0`` as ``StreamFailures`` reads (nothing is consumed or
    moved; the receive count grows). A stream batch's description gives one item per record,
    keyed by its table's keys (read again from the stream); another message is summarised."""

    #: distinct messages read per queue (ten a request; a request that brings nothing new
    #: ends the queue sooner)
    MAX_MESSAGES = 200

    def __init__(self, settings: Settings, sqs: Any, streams: Any) -> None:
        self.settings = settings
        self.sqs = sqs  # callables: the clients are made on first use
        self.streams = streams

    def queues(self) -> list[tuple[str, str]]:
        """(base name, URL) of each of ``FAILURE_QUEUES`` that exists."""
        sqs = self.sqs()
        found = []
        for base in FAILURE_QUEUES:
            try:
                url = sqs.get_queue_url(QueueName=self.settings.queue_name(base))["QueueUrl"]
            except sqs.exceptions.QueueDoesNotExist:
                continue
            found.append((base, url))
        return found

    def deliveries(self, limit: int) -> tuple[list[FailedDelivery], bool]:
        items: list[FailedDelivery] = []
        for base, url in self.queues():
            for message in peek_messages(self.sqs(), url, self.MAX_MESSAGES):
                items += self._items(base, message)
                if len(items) > limit:
                    return items[:limit], True
        return items, False

    def _items(self, queue: str, message: dict[str, Any]) -> list[FailedDelivery]:
        attributes = message.get("Attributes", {})
        sent = attributes.get("SentTimestamp")
        sent_at = (
            datetime.fromtimestamp(int(sent) / 1000, UTC).isoformat(timespec="seconds")
            if sent and str(sent).isdigit()
            else None
        )
        common = {
            "queue": queue,
            "message_id": message["MessageId"],
            "sent_at": sent_at.replace("+00:00", "Z") if sent_at else None,
            "receive_count": int(attributes.get("ApproximateReceiveCount", 0) or 0),
        }
        try:
            body = json.loads(message.get("Body", ""))
        except ValueError:
            body = None
        info = body.get("DDBStreamBatchInfo") if isinstance(body, dict) else None
        if not isinstance(info, dict) or not isinstance(body, dict):
            return [FailedDelivery(**common, key=None, error=_summary(message.get("Body", "")))]
        error = _condition(body)
        table = stream_table(info, self.settings.table_prefix) or "?"
        records = read_batch(self.streams(), info)
        if not records:
            gone = "; its records are no longer on the stream" if records is None else ""
            return [FailedDelivery(**common, key=None, error=error + gone)]
        return [
            FailedDelivery(**common, key={"table": table, **keys}, error=error)
            for _, keys in records
        ]


def _condition(body: dict[str, Any]) -> str:
    """What an on-failure destination's record says went wrong."""
    request: dict[str, Any] = body.get("requestContext") or {}
    response: dict[str, Any] = body.get("responseContext") or {}
    if not isinstance(request, dict) or not isinstance(response, dict):
        return "failed"
    parts = [str(request.get("condition") or "failed")]
    if response.get("functionError"):
        parts.append(str(response["functionError"]))
    if request.get("approximateInvokeCount"):
        parts.append(f"after {request['approximateInvokeCount']} invocations")
    return ", ".join(parts)


def _summary(body: str, size: int = 200) -> str:
    text = " ".join(str(body).split())
    return "moved after its retries: " + (text if len(text) <= size else text[: size - 1] + "…")
