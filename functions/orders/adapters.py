"""DynamoDB tables of subscriptions and orders, and their repositories."""

from __future__ import annotations

import hashlib
import heapq
import json
from datetime import date
from itertools import islice
from typing import Any, Generic, TypeVar

from pynamodb.attributes import (
    BooleanAttribute,
    ListAttribute,
    MapAttribute,
    NumberAttribute,
    UnicodeAttribute,
    VersionAttribute,
)
from pynamodb.indexes import (
    AllProjection,
    GlobalSecondaryIndex,
    IncludeProjection,
    KeysOnlyProjection,
    Projection,
)

from functions.core import observability
from functions.core.pagination import Page, decode_cursor, encode_cursor
from functions.core.persistence import (
    BaseTable,
    DecimalAttribute,
    complete_items,
    entity_values,
    put_if,
    to_entity,
)
from functions.orders.domain import Order, OrderLine, Subscription, due_entry
from functions.pricelist.domain import commitment_of

#: R31: a subscription's commitment fields, each stored as JSON (absent: flexible / none)
_COMMITMENT_JSON = ("renewals", "seat_additions", "scheduled_change", "cancellation_terms")


def _index(
    name: str, hash_attr: str, model: str, projection: Projection
) -> type[GlobalSecondaryIndex[Any]]:
    """A GSI on ``hash_attr`` (a ``{tenant_id}#…`` key), ordered by ``id``."""
    meta = type("Meta", (), {"index_name": name, "projection": projection})
    return type(
        f"{model}_{name}",
        (GlobalSecondaryIndex,),
        {
            "Meta": meta,
            hash_attr: UnicodeAttribute(hash_key=True),
            "id": UnicodeAttribute(range_key=True),
        },
    )


BILLING_SHARDS = 16


def billing_shard(tenant_id: str, subscription_id: str) -> str:
    """``{tenant_id}#{nn}``: the tenant's subscriptions spread over ``BILLING_SHARDS`` keys of
    the ``by_billing`` index (a fixed hash of the id: a subscription never changes shard)."""
    digest = hashlib.sha256(subscription_id.encode()).digest()
    return f"{tenant_id}#{int.from_bytes(digest[:4], 'big') % BILLING_SHARDS:02d}"


class SubscriptionsByBilling(GlobalSecondaryIndex["SubscriptionModel"]):
    """What the billing run lists (R20, R24): every subscription's account and reseller, in
    small index items (the keys and two attributes that never change, so DynamoDB writes the
    index once per subscription), over ``BILLING_SHARDS`` partitions per tenant."""

    class Meta:
        index_name = "by_billing"
        projection = IncludeProjection(["account_id", "reseller_account_id"])

    billing_key = UnicodeAttribute(hash_key=True)
    id = UnicodeAttribute(range_key=True)


class SubscriptionsByDue(GlobalSecondaryIndex["SubscriptionModel"]):
    """R31: a tenant's subscriptions with a downgrade waiting for their renewal (sparse: only
    those), by its day, so the daily renewal job reads the due ones with one Query per tenant
    (keys only: the job reads each due subscription from the table before it writes)."""

    class Meta:
        index_name = "by_due"
        projection = KeysOnlyProjection()

    due_key = UnicodeAttribute(hash_key=True)  # {tenant_id}#due
    due_on = UnicodeAttribute(range_key=True)  # {on}#{id}


class HistoryEntryMap(MapAttribute[str, Any]):
    """One change of a subscription (``domain.history_entry``)."""

    on = UnicodeAttribute()
    quantity = NumberAttribute()
    product_id = UnicodeAttribute()
    origin_product_id = UnicodeAttribute(null=True)
    status = UnicodeAttribute()


class SubscriptionModel(BaseTable):
    base_name = "subscriptions"
    streamed = True

    tenant_id = UnicodeAttribute(hash_key=True)
    id = UnicodeAttribute(range_key=True)
    account_key = UnicodeAttribute()  # {tenant_id}#{account_id}
    reseller_key = UnicodeAttribute(null=True)  # {tenant_id}#{lite reseller}: sparse
    parent_key = UnicodeAttribute(null=True)  # {tenant_id}#{base subscription}: add-ons only
    billing_key = UnicodeAttribute(null=True)  # billing_shard(): what a billing run lists
    due_key = UnicodeAttribute(null=True)  # R31, due_entry(): a scheduled downgrade's, sparse
    due_on = UnicodeAttribute(null=True)
    account_id = UnicodeAttribute()
    product_id = UnicodeAttribute()
    quantity = NumberAttribute()
    billing_cycle = UnicodeAttribute()
    term = UnicodeAttribute()
    terms = NumberAttribute()
    status = UnicodeAttribute()
    start_date = UnicodeAttribute()
    end_date = UnicodeAttribute()
    auto_renew = BooleanAttribute()
    currency = UnicodeAttribute()
    unit_price = DecimalAttribute()
    price_list_id = UnicodeAttribute()
    created_at = UnicodeAttribute()
    updated_at = UnicodeAttribute()
    activation_date = UnicodeAttribute(null=True)
    cancellation_date = UnicodeAttribute(null=True)
    characteristics = MapAttribute[str, Any](default=dict)
    parent_subscription_id = UnicodeAttribute(null=True)
    reseller_account_id = UnicodeAttribute(null=True)
    origin_tenant_id = UnicodeAttribute(null=True)
    origin_product_id = UnicodeAttribute(null=True)
    paid_once = BooleanAttribute(default=False)
    last_change = UnicodeAttribute(null=True)
    last_change_date = UnicodeAttribute(null=True)
    mirrored = BooleanAttribute(default=False)
    source = MapAttribute[str, Any](null=True)
    source_version = NumberAttribute(null=True)
    upstream_id = UnicodeAttribute(null=True)
    history = ListAttribute(of=HistoryEntryMap, default=list)
    #: R31 (JSON): the commitment bought under, renewals, seat windows, a scheduled downgrade
    commitment = UnicodeAttribute(null=True)
    purchased_at = UnicodeAttribute(null=True)
    renewals = UnicodeAttribute(null=True)
    seat_additions = UnicodeAttribute(null=True)
    scheduled_change = UnicodeAttribute(null=True)
    coterm_end = UnicodeAttribute(null=True)  # R31 co-terming: the first term's aligned end
    cancellation_terms = UnicodeAttribute(null=True)
    #: the correlation id of the request or record that wrote it: its stream record carries it
    #: to the replicator, which writes the mirror and the provider's order under it (issue 16)
    correlation_id = UnicodeAttribute(null=True)
    version = VersionAttribute()

    # Keys only: a subscription changes far more often than its account, reseller or base, and
    # DynamoDB writes a keys-only index only when its key changes (a change of quantity or
    # status, or a mirror's update, costs the table's write alone); a listing reads the page's
    # items from the table after the index (``_page``).
    by_account = _index("by_account", "account_key", "Subscription", KeysOnlyProjection())()
    by_reseller = _index("by_reseller", "reseller_key", "Subscription", KeysOnlyProjection())()
    by_parent = _index("by_parent", "parent_key", "Subscription", KeysOnlyProjection())()
    by_billing = SubscriptionsByBilling()
    by_due = SubscriptionsByDue()

    @classmethod
    def of(cls, sub: Subscription) -> SubscriptionModel:
        t = sub.tenant_id
        due_key, due_on = due_entry(sub)
        return cls(
            account_key=f"{t}#{sub.account_id}",
            reseller_key=f"{t}#{sub.reseller_account_id}" if sub.reseller_account_id else None,
            parent_key=f"{t}#{sub.parent_subscription_id}" if sub.parent_subscription_id else None,
            billing_key=billing_shard(t, sub.id),
            due_key=due_key,
            due_on=due_on,
            correlation_id=observability.current(),
            **{
                **entity_values(sub),
                "commitment": json.dumps(sub.commitment.as_dict()) if sub.commitment else None,
                **{
                    name: json.dumps(getattr(sub, name)) if getattr(sub, name) else None
                    for name in _COMMITMENT_JSON
                },
            },
        )

    def entity(self) -> Subscription:
        sub = to_entity(self, Subscription)
        values = {
            **entity_values(sub),
            "quantity": int(self.quantity),
            "terms": int(self.terms),
            "history": [{**e, "quantity": int(e["quantity"])} for e in sub.history],
        }
        if self.source_version is not None:
            values["source_version"] = int(self.source_version)
        values["commitment"] = (
            commitment_of(json.loads(self.commitment)) if self.commitment else None
        )
        values["renewals"] = json.loads(self.renewals or "[]")
        values["seat_additions"] = json.loads(self.seat_additions or "[]")
        values["scheduled_change"] = json.loads(self.scheduled_change or "null")
        values["cancellation_terms"] = json.loads(self.cancellation_terms or "null")
        return Subscription(**values)


class OrderLineMap(MapAttribute[str, Any]):
    product_id = UnicodeAttribute()
    sku = UnicodeAttribute()
    name = UnicodeAttribute()
    billing_cycle = UnicodeAttribute()
    quantity = NumberAttribute()
    unit_price = DecimalAttribute()
    amount = DecimalAttribute()
    previous_quantity = NumberAttribute(null=True)
    previous_product_id = UnicodeAttribute(null=True)


class OrderModel(BaseTable):
    base_name = "orders"
    streamed = True

    tenant_id = UnicodeAttribute(hash_key=True)
    id = UnicodeAttribute(range_key=True)
    account_key = UnicodeAttribute()
    reseller_key = UnicodeAttribute(null=True)
    number = UnicodeAttribute()
    account_id = UnicodeAttribute()
    subscription_id = UnicodeAttribute()
    type = UnicodeAttribute()
    date = UnicodeAttribute()
    currency = UnicodeAttribute()
    lines = ListAttribute(of=OrderLineMap)
    total = DecimalAttribute()
    created_at = UnicodeAttribute()
    created_by = UnicodeAttribute()
    price_list_id = UnicodeAttribute()
    reseller_account_id = UnicodeAttribute(null=True)
    status = UnicodeAttribute()
    end_customer_account_id = UnicodeAttribute(null=True)
    source = MapAttribute[str, Any](null=True)
    refund = UnicodeAttribute(null=True)  # R31: prorated or full, a cancellation in its window
    penalty = DecimalAttribute(null=True)  # R31: a cancellation after it, under a penalty

    # All attributes: an order is written once, so its index copies cost the same either way
    # (an order is under 1 KB: a keys-only copy would cost the same 1 WRU).
    by_account = _index("by_account", "account_key", "Order", AllProjection())()
    # Sparse: only an order of another account than its reseller's. An order of the reseller's
    # own account (a provider's order of a mirrored change: bought by the tenant reseller
    # account, in its own scope; a lite reseller's own order) would be a second copy under the
    # key it has in ``by_account`` already: the reseller's listing reads it there
    # (``OrderRepository.for_reseller``).
    by_reseller = _index("by_reseller", "reseller_key", "Order", AllProjection())()
    #: the correlation id of the request or record that wrote it (issue 16: logs follow a change)
    correlation_id = UnicodeAttribute(null=True)

    @classmethod
    def of(cls, order: Order) -> OrderModel:
        values = entity_values(order)
        values["lines"] = [OrderLineMap(**entity_values(line)) for line in order.lines]
        t = order.tenant_id
        reseller = order.reseller_account_id
        return cls(
            account_key=f"{t}#{order.account_id}",
            reseller_key=f"{t}#{reseller}" if reseller and reseller != order.account_id else None,
            correlation_id=observability.current(),
            **values,
        )

    def entity(self) -> Order:
        lines = []
        for line in self.lines:
            values = {k: getattr(line, k) for k in OrderLine.__dataclass_fields__}
            values["quantity"] = int(values["quantity"])
            if values["previous_quantity"] is not None:
                values["previous_quantity"] = int(values["previous_quantity"])
            lines.append(OrderLine(**values))
        values = {k: getattr(self, k) for k in Order.__dataclass_fields__}
        values["source"] = self.source.as_dict() if self.source else None
        return Order(**{**values, "lines": lines})


_TABLE_KEYS = frozenset({"tenant_id", "id"})

E = TypeVar("E")


def _page(
    model: Any, index: Any, hash_name: str, hash_value: str, limit: int, cursor: str | None
) -> Page[Any]:
    names = _TABLE_KEYS | {hash_name}
    start = decode_cursor(cursor, {hash_name: {"S": hash_value}}, names)
    result = index.query(hash_value, limit=limit, last_evaluated_key=start)
    # a keys-only index's items (and any item lacking attributes its entity needs: issue 11)
    # are read from the table, one BatchGetItem, in index order; one gone since is left out
    items = complete_items(model, result, what=f"{model.__name__} list")
    return Page([item.entity() for item in items], encode_cursor(result.last_evaluated_key))


class _Records(Generic[E]):
    """What subscriptions and orders share: by id, a tenant's in id order, an account's
    (``by_account``). ``model`` is the table; ``entity()`` of an item gives an ``E``."""

    model: Any

    def get(self, tenant_id: str, record_id: str) -> E | None:
        try:
            found: E = self.model.get(tenant_id, record_id).entity()
        except self.model.DoesNotExist:
            return None
        return found

    def page(self, tenant_id: str, limit: int, cursor: str | None) -> Page[E]:
        return _page(self.model, self.model, "tenant_id", tenant_id, limit, cursor)

    def for_account(
        self, tenant_id: str, account_id: str, limit: int, cursor: str | None
    ) -> Page[E]:
        key = f"{tenant_id}#{account_id}"
        return _page(self.model, self.model.by_account, "account_key", key, limit, cursor)


class SubscriptionRepository(_Records[Subscription]):
    model = SubscriptionModel

    def for_reseller(
        self, tenant_id: str, reseller_id: str, limit: int, cursor: str | None
    ) -> Page[Subscription]:
        return _page(
            SubscriptionModel,
            SubscriptionModel.by_reseller,
            "reseller_key",
            f"{tenant_id}#{reseller_id}",
            limit,
            cursor,
        )

    def addons(
        self, tenant_id: str, subscription_id: str, limit: int = 100, cursor: str | None = None
    ) -> Page[Subscription]:
        return _page(
            SubscriptionModel,
            SubscriptionModel.by_parent,
            "parent_key",
            f"{tenant_id}#{subscription_id}",
            limit,
            cursor,
        )

    def due(self, tenant_id: str, on: date, limit: int, cursor: str | None) -> Page[str]:
        """R31: the ids of the tenant's subscriptions whose scheduled change is due by ``on``
        (``by_due``: one Query a page)."""
        partition = f"{tenant_id}#due"
        names = _TABLE_KEYS | {"due_key", "due_on"}
        start = decode_cursor(cursor, {"due_key": {"S": partition}}, names)
        result = SubscriptionModel.by_due.query(
            partition,
            SubscriptionModel.due_on <= f"{on.isoformat()}#~",
            limit=limit,
            last_evaluated_key=start,
        )
        ids = [str(item.id) for item in result]
        return Page(ids, encode_cursor(result.last_evaluated_key))

    def create_once(self, sub: Subscription) -> bool:
        """Put a new subscription unless one with its (deterministic) id exists."""
        return put_if(SubscriptionModel.of(sub), SubscriptionModel.id.does_not_exist())


class OrderRepository(_Records[Order]):
    model = OrderModel

    def for_reseller(
        self, tenant_id: str, reseller_id: str, limit: int, cursor: str | None
    ) -> Page[Order]:
        """The orders whose reseller is ``reseller_id``, in id order: its customers' from
        ``by_reseller`` and its own account's from ``by_account`` (``OrderModel.of`` leaves them
        out of ``by_reseller``; one written before that is in both, and read from
        ``by_reseller``), merged. The cursor is the ``by_reseller`` key of the page's last
        order, a position in both indexes; a page is full unless the list ends there."""
        key = f"{tenant_id}#{reseller_id}"
        start = decode_cursor(cursor, {"reseller_key": {"S": key}}, _TABLE_KEYS | {"reseller_key"})

        def query(index: Any, hash_name: str) -> Any:  # from after the cursor's order, lazily
            after = start and {
                "tenant_id": start["tenant_id"],
                "id": start["id"],
                hash_name: {"S": key},
            }
            return index.query(key, last_evaluated_key=after, page_size=limit + 1)

        customers = query(OrderModel.by_reseller, "reseller_key")
        own = (
            item
            for item in query(OrderModel.by_account, "account_key")
            if item.reseller_key is None and item.reseller_account_id == reseller_id
        )
        found = list(islice(heapq.merge(customers, own, key=lambda item: item.id), limit + 1))
        page = found[:limit]
        last = (
            {"tenant_id": {"S": tenant_id}, "id": {"S": page[-1].id}, "reseller_key": {"S": key}}
            if len(found) > limit
            else None
        )
        items = complete_items(OrderModel, page, what="OrderModel list")
        return Page([item.entity() for item in items], encode_cursor(last))


#: What a unit of work (``functions.core.persistence.DynamoUnits``) writes each entity as.
WRITERS: dict[type, Any] = {Subscription: SubscriptionModel.of, Order: OrderModel.of}

MODELS: tuple[type[BaseTable], ...] = (SubscriptionModel, OrderModel)
