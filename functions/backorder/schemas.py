"""Response models of back ordering: the activation result and the account hierarchy."""

from __future__ import annotations

from pydantic import Field

from functions.core.schemas import Out, TenantOut


class Activation(Out):
    tenant: TenantOut
    backfilled: int = Field(description="subscriptions mirrored by this activation's backfill")


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
