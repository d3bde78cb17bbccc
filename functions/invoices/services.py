"""Use cases of billing: usage records (R25)."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

from functions.core.auth import Principal
from functions.core.clock import now_utc, rfc3339
from functions.core.errors import BadRequest, Conflict
from functions.core.pagination import Page
from functions.invoices import domain
from functions.invoices.adapters import UsageRepository
from functions.invoices.domain import UsageRecord

if TYPE_CHECKING:
    from functions.orders.services import OrderService


class UsageService:
    def __init__(self, orders: OrderService, usage: UsageRepository) -> None:
        self.orders = orders
        self.usage = usage

    def record(self, principal: Principal, body: Any) -> UsageRecord:
        """R25: record a use once per key. The same key with the same use answers the stored
        record (a retry); with another use it is a 409 and nothing changes."""
        sub = self.orders.subscription(principal, body.subscription_id)
        if sub.mirrored:
            raise Conflict(
                "usage of a mirrored subscription is its reseller's to report (R15)",
                code="locked_by_reseller",
                field="subscription_id",
            )
        product = self.orders.catalogue.products.get(sub.tenant_id, sub.product_id)
        if product is None or product.type != "usage":
            raise BadRequest(
                "only a usage (pay as you go) subscription is metered",
                field="subscription_id",
                code="not_metered",
            )
        record = domain.usage_record(
            sub.tenant_id,
            sub.id,
            key=body.key,
            quantity=Decimal(body.quantity),
            unit=body.unit,
            product_unit=product.unit,
            at=rfc3339(body.at),
            recorded_at=rfc3339(now_utc()),
        )
        if self.usage.record_once(record):
            return record
        stored = self.usage.get(sub.tenant_id, sub.id, record.key)
        assert stored is not None
        if not stored.same_use(record):
            raise Conflict(
                f"key {record.key!r} was recorded with another quantity, unit or time",
                code="usage_key_reused",
                field="key",
            )
        return stored

    def list(
        self, principal: Principal, subscription_id: str, limit: int, cursor: str | None
    ) -> Page[UsageRecord]:
        sub = self.orders.subscription(principal, subscription_id)
        return self.usage.page(sub.tenant_id, sub.id, limit, cursor)
