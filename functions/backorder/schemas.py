"""Back ordering's message and response models: the backfill job message, the activation state
and the account hierarchy."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from functions.core.schemas import Out, TenantOut

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
