"""Back ordering's message and response models: the backfill job message, the activation state
and the account hierarchy."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from functions.core.schemas import Body, CountryCode, Id, Out, TenantOut, TimeZone

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
