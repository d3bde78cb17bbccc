"""HTTP routes of billing: usage records (R25)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from functions.core.api import Api, Call
from functions.core.auth import CUSTOMER, RESELLER, TENANT_ADMIN
from functions.core.pagination import Page
from functions.invoices.schemas import RecordUsage, UsageOut, UsageQuery

if TYPE_CHECKING:  # the services import PynamoDB: keep it off the cold-start import
    from functions.invoices.domain import UsageRecord

api = Api("billing")


def usage_out(record: UsageRecord) -> UsageOut:
    return UsageOut(
        subscription_id=record.subscription_id,
        key=record.key,
        quantity=str(record.quantity),
        unit=record.unit,
        at=record.at,
        recorded_at=record.recorded_at,
        source=record.source,
    )


@api.route(
    "/usage",
    "POST",
    summary="Record a metered use of a subscription, once per deduplication key (R25)",
    roles=(TENANT_ADMIN,),
    body=RecordUsage,
    response=UsageOut,
    status=201,
    errors=(400, 404, 409),
)
def record_usage(call: Call) -> UsageOut:
    return usage_out(call.container.usage.record(call.principal, call.body))


@api.route(
    "/usage",
    "GET",
    summary="A subscription's usage records, oldest first (R25)",
    roles=(TENANT_ADMIN, RESELLER, CUSTOMER),
    query=UsageQuery,
    response=UsageOut,
    paginated=True,
)
def list_usage(call: Call) -> Page[UsageOut]:
    page = call.container.usage.list(
        call.principal, call.query.subscription_id, call.limit, call.cursor
    )
    return Page([usage_out(r) for r in page.items], page.next_cursor)
