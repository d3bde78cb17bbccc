"""DynamoDB table of usage records (R25) and its repository."""

from __future__ import annotations

from decimal import Decimal

from pynamodb.attributes import MapAttribute, UnicodeAttribute
from pynamodb.indexes import AllProjection, LocalSecondaryIndex

from functions.core.pagination import Page, decode_cursor, encode_cursor
from functions.core.persistence import BaseTable, DecimalAttribute, put_if, to_entity
from functions.invoices.domain import UsageRecord


class UsageByTime(LocalSecondaryIndex["UsageModel"]):
    """A subscription's usage in time order: what a period's rating sums (R21)."""

    class Meta:
        index_name = "by_time"
        projection = AllProjection()

    subscription_key = UnicodeAttribute(hash_key=True)
    at_key = UnicodeAttribute(range_key=True)  # {at}#{key}


class UsageModel(BaseTable):
    base_name = "usage"
    streamed = True

    subscription_key = UnicodeAttribute(hash_key=True)  # {tenant_id}#{subscription_id}
    key = UnicodeAttribute(range_key=True)  # the deduplication key
    at_key = UnicodeAttribute()
    tenant_id = UnicodeAttribute()
    subscription_id = UnicodeAttribute()
    quantity = DecimalAttribute()
    unit = UnicodeAttribute()
    at = UnicodeAttribute()
    recorded_at = UnicodeAttribute()
    source = MapAttribute[str, str](null=True)
    by_time = UsageByTime()

    @classmethod
    def of(cls, record: UsageRecord) -> UsageModel:
        return cls(
            subscription_key=f"{record.tenant_id}#{record.subscription_id}",
            key=record.key,
            at_key=f"{record.at}#{record.key}",
            tenant_id=record.tenant_id,
            subscription_id=record.subscription_id,
            quantity=record.quantity,
            unit=record.unit,
            at=record.at,
            recorded_at=record.recorded_at,
            source=record.source,
        )

    def entity(self) -> UsageRecord:
        return to_entity(self, UsageRecord)


_USAGE_TIME_KEYS = frozenset({"subscription_key", "key", "at_key"})


class UsageRepository:
    def record_once(self, record: UsageRecord) -> bool:
        """Put the record unless its key is taken; False if it was (R25)."""
        return put_if(UsageModel.of(record), UsageModel.key.does_not_exist())

    def get(self, tenant_id: str, subscription_id: str, key: str) -> UsageRecord | None:
        try:
            return UsageModel.get(f"{tenant_id}#{subscription_id}", key).entity()
        except UsageModel.DoesNotExist:
            return None

    def page(
        self, tenant_id: str, subscription_id: str, limit: int, cursor: str | None
    ) -> Page[UsageRecord]:
        """A subscription's usage, oldest first."""
        partition = f"{tenant_id}#{subscription_id}"
        start = decode_cursor(cursor, {"subscription_key": {"S": partition}}, _USAGE_TIME_KEYS)
        result = UsageModel.by_time.query(partition, limit=limit, last_evaluated_key=start)
        return Page([item.entity() for item in result], encode_cursor(result.last_evaluated_key))

    def total(self, tenant_id: str, subscription_id: str, start: str, end: str) -> Decimal:
        """The quantity used in ``[start, end)`` (RFC 3339 UTC): a period's usage (R21). The
        sort key ``{at}#{key}`` of a record at ``end`` sorts after ``end``: not counted."""
        query = UsageModel.by_time.query(
            f"{tenant_id}#{subscription_id}",
            range_key_condition=UsageModel.at_key.between(start, end),
        )
        return sum((item.quantity for item in query), Decimal(0))


MODELS: tuple[type[BaseTable], ...] = (UsageModel,)
