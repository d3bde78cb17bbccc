"""Back ordering's message and response models: the backfill job message, the activation state
and the account hierarchy."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from functions.core.schemas import Body, CountryCode, Id, ListQuery, Out, TenantOut, TimeZone
from functions.pricelist.schemas import PRICE_CHANGES_QUEUE

#: the queue of backfill pages (``infra/events.py`` wires its consumer)
BACKFILL_QUEUE = "backfill"


class BackfillJob(BaseModel):
    """One page of an R11 backfill: the job (in the provider's partition) and the page's cursor
    (None = the first page)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    tenant_id: str
    job_id: str
    cursor: str | None


class BackfillOut(Out):
    status: str = Field(description="queued, running or done")
    pages: int
    processed: int = Field(description="the child's subscriptions looked at")
    mirrored: int = Field(description="of which mirrored (paid, for a provider product)")
    updated_at: str
    finished_at: str | None


class Backordering(Out):
    tenant: TenantOut
    active: bool
    activated_at: str | None
    backfill: BackfillOut | None = Field(description="the R11 backfill; None before activation")


class HierarchySubscription(Out):
    id: str
    product_id: str
    quantity: int
    billing_cycle: str
    status: str
    mirrored: bool


class HierarchyNode(Out):
    id: str
    name: str
    kind: str
    mirrored: bool
    source: dict[str, str] | None
    subscriptions: list[HierarchySubscription]
    children: list[HierarchyNode]


# --- R19: upgrading a lite reseller --------------------------------------------------------------


class UpgradeLite(Body):
    """Upgrade a lite reseller of the caller's tenant to a tenant reseller (R19): runs the steps
    from the first not done. The profile is used by step 1 (the tenant takes the lite
    reseller's name, email and price list)."""

    account_id: Id = Field(description="the lite reseller")
    country: CountryCode
    time_zone: TimeZone
    billing_day: int = Field(default=1, ge=1, le=31)
    propagation: Literal["full", "partial"] = "full"


class UpgradeStep(Out):
    step: int
    name: str
    status: str = Field(description="done, failed or pending")


class UpgradeProblem(Out):
    subscription_id: str
    field: str
    code: str
    message: str


class UpgradeOut(Out):
    account_id: str
    tenant: TenantOut | None = Field(description="the tenant made for it, from step 1 on")
    status: str = Field(description="not_started, in_progress, failed or done")
    steps: list[UpgradeStep]
    problems: list[UpgradeProblem] = Field(description="what the failed step found")


# --- R33: reconciliation runs ------------------------------------------------------------------

#: where the event source mappings of the streams set a failed batch's description aside
#: (R18; ``infra/events.py``), which a reconciliation run lists (R33)
STREAM_FAILURES_QUEUE = "stream-failures"

#: the queue of reconciliation pages (``infra/events.py`` wires its consumer)
RECONCILIATION_QUEUE = "reconciliation"


def dead_letter_queue(queue: str) -> str:
    """A consumed queue's dead-letter queue (``infra/events.py``'s ``QueueSource``)."""
    return f"{queue}-dlq"


#: what ``GET /failures`` reads (issue 16): the streams' on-failure queue and the dead-letter
#: queue of each consumed queue (tests/unit/test_failure_queues.py: as ``infra/events.py`` has them)
FAILURE_QUEUES: tuple[str, ...] = (
    STREAM_FAILURES_QUEUE,
    dead_letter_queue(BACKFILL_QUEUE),
    dead_letter_queue(RECONCILIATION_QUEUE),
    dead_letter_queue(PRICE_CHANGES_QUEUE),
)


class ReconciliationPage(BaseModel):
    """One page of an R33 run: the run (in its owner's partition), the phase and the page's
    cursor (None = the phase's first page)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    tenant_id: str
    run_id: str
    phase: str
    cursor: str | None


class StartReconciliation(Body):
    """R33: compare a child tenant's records with their mirrors in its provider's BSS: a
    provider's tenant admin names one of its children, a child's names itself."""

    child_tenant_id: Id = Field(description="the child tenant (the caller's own, or a child's)")


class ReconciliationItemsQuery(ListQuery):
    kind: Literal["missing", "stale", "orphan", "mismatch", "set_aside"] | None = Field(
        default=None, description="only the items of this kind"
    )


class ReconciliationItemOut(Out):
    kind: str = Field(description="missing, stale, orphan, mismatch, or set_aside")
    record: str = Field(description="subscription or account")
    source_id: str = Field(description="the child's record")
    mirror_id: str | None = Field(description="its mirror in the provider's BSS")
    fields: list[str] = Field(description="the synced fields that differ")
    source_version: int | None
    mirror_source_version: int | None = Field(description="the source version the mirror holds")
    detail: str | None = Field(description="a set-aside record: where it is on the stream")
    repair: str | None = Field(description="repaired, converged, failed: … (after a repair)")
    repair_order_id: str | None = Field(description="the provider order the repair created")


class ReconciliationOut(Out):
    id: str
    child_tenant_id: str
    provider_tenant_id: str
    started_by: str = Field(description="api or schedule")
    status: str = Field(description="queued, running, done, repair or repaired")
    phase: str = Field(description="subscriptions, mirrors, accounts, done, repair or repaired")
    pages: int
    compared: dict[str, int] = Field(description="records looked at, per phase")
    counts: dict[str, int] = Field(
        description="items found per kind: missing, stale, orphan, mismatch, set_aside"
    )
    repaired: int
    repair_orders: int = Field(description="provider orders the repair created (lost changes)")
    created_at: str
    updated_at: str
    finished_at: str | None
    repair_started_at: str | None
    repaired_at: str | None
    items: list[ReconciliationItemOut] | None = Field(
        default=None, description="GET of one run: a page of its items (?kind=&limit=&cursor=)"
    )
    next_cursor: str | None = None


# --- issue 16: the failed deliveries (`GET /failures`) ------------------------------------------


class FailureOut(Out):
    queue: str = Field(description="the queue's base name: stream-failures or a dead-letter queue")
    message_id: str
    sent_at: str | None = Field(description="when the message was sent to the queue")
    receive_count: int = Field(description="how often it was received (listing it counts too)")
    key: dict[str, str] | None = Field(
        description="a stream batch's record: its table and keys; null for another message"
    )
    error: str = Field(description="the failure's condition, or a summary of the message")


class FailuresOut(Out):
    items: list[FailureOut]
    truncated: bool = Field(description="more failed deliveries than listed (at most 100)")
