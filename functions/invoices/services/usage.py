"""``UsageService``: usage records (R25), each recorded once per deduplication key, only in a
period a billing run will still bill."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from functions.core import clock
from functions.core.auth import Principal
from functions.core.clock import now_utc, rfc3339, today_in
from functions.core.errors import BadRequest, Conflict, present
from functions.core.pagination import Page
from functions.invoices import domain
from functions.invoices.domain import UsageRecord
from functions.invoices.ports import Runs, Usage
from functions.invoices.services.local_time import midnight
from functions.orders.domain import Subscription
from functions.pricelist.domain import USAGE as METERED

if TYPE_CHECKING:
    from functions.orders.services import OrderService


class UsageService:
    """Usage records (R25): recorded once per key, read per subscription."""

    def __init__(self, orders: OrderService, usage: Usage, runs: Runs) -> None:
        self.orders = orders
        self.usage = usage
        self.runs = runs

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
        if product is None or product.type != METERED:
            raise BadRequest(
                "only a usage (pay as you go) subscription is metered",
                field="subscription_id",
                code="not_metered",
            )
        quantity = Decimal(body.quantity)
        try:
            self._check_time(principal, sub, body.at)
        except BadRequest:
            stored = self.usage.get(sub.tenant_id, sub.id, body.key)
            if stored is not None and stored.same_use_at(quantity, body.unit, body.at):
                return stored  # a retry of a use recorded while its period was open
            raise
        record = domain.usage_record(
            sub.tenant_id,
            sub.id,
            key=body.key,
            quantity=quantity,
            unit=body.unit,
            product_unit=product.unit,
            at=rfc3339(body.at),
            recorded_at=rfc3339(now_utc()),
        )
        if self.usage.record_once(record):
            return record
        # not written: a record under its key is there (a retry or a reuse of the key)
        stored = present(
            self.usage.get(sub.tenant_id, sub.id, record.key), f"usage record {record.key!r}"
        )
        if not stored.same_use(record):
            raise Conflict(
                f"key {record.key!r} was recorded with another quantity, unit or time",
                code="usage_key_reused",
                field="key",
            )
        return stored

    def _check_time(self, principal: Principal, sub: Subscription, at: datetime) -> None:
        """R25, R29: ``at`` from the subscription's start, in a period whose usage a run will
        still bill, and not in the future (``domain.check_usage_time``)."""
        tenant = self.orders.tenancy.tenant_of(principal)
        now = clock.now_utc()  # the clock today_in reads
        current = domain.monthly_period(tenant.billing_day, today_in(tenant.time_zone, at=now))
        billing = domain.run_for(tenant.billing_day, current.start)
        open_from = domain.usage_open_from(
            billing,
            lambda start: self.runs.run(tenant.id, domain.run_id(tenant.id, start)) is not None,
        )
        domain.check_usage_time(
            at,
            starts=midnight(date.fromisoformat(sub.start_date), tenant.time_zone),
            open_from=midnight(open_from, tenant.time_zone),
            now=now,
        )

    def list(
        self, principal: Principal, subscription_id: str, limit: int, cursor: str | None
    ) -> Page[UsageRecord]:
        sub = self.orders.subscription(principal, subscription_id)
        return self.usage.page(sub.tenant_id, sub.id, limit, cursor)
