"""HTTP routes of back ordering: activation (R11) and the hierarchy view (R12, R15)."""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING

from functions.backorder.schemas import (
    BackfillOut,
    Backordering,
    HierarchyNode,
    HierarchySubscription,
    UpgradeLite,
    UpgradeOut,
    UpgradeProblem,
    UpgradeStep,
)
from functions.core.api import Api, Call
from functions.core.auth import CUSTOMER, RESELLER, TENANT_ADMIN
from functions.core.routes import tenant_out

if TYPE_CHECKING:  # types only: a route module loads its service when first called
    from functions.backorder.services import Node, Upgrade
    from functions.core.domain import Job, Tenant

api = Api("backorder")


def node_out(node: Node, today: date) -> HierarchyNode:
    """``today``: the tenant's date (R8), read once per request by the caller."""
    account = node.account
    return HierarchyNode(
        id=account.id,
        name=account.name,
        kind=account.kind,
        mirrored=account.mirrored,
        source=account.source,
        subscriptions=[
            HierarchySubscription(
                id=s.id,
                product_id=s.product_id,
                quantity=s.quantity,
                billing_cycle=s.billing_cycle,
                status=s.status_on(today),
                mirrored=s.mirrored,
            )
            for s in node.subscriptions
        ],
        children=[node_out(child, today) for child in node.children],
    )


def backordering_out(tenant: Tenant, job: Job | None) -> Backordering:
    backfill = None
    if job is not None:
        backfill = BackfillOut(
            status=job.status,
            pages=job.pages,
            processed=job.processed,
            mirrored=job.applied,
            updated_at=job.updated_at,
            finished_at=job.finished_at,
        )
    return Backordering(
        tenant=tenant_out(tenant),
        active=tenant.backordering,
        activated_at=tenant.backordering_activated_at,
        backfill=backfill,
    )


@api.route(
    "/tenants/{tenant_id}/backordering",
    "POST",
    summary="Activate back ordering for a child tenant and queue its backfill (R11; irreversible)",
    roles=(TENANT_ADMIN,),
    response=Backordering,
    errors=(404, 409),
)
def activate_backordering(call: Call) -> Backordering:
    tenant, job = call.container.backordering.activate(call.principal, call.params["tenant_id"])
    return backordering_out(tenant, job)


@api.route(
    "/tenants/{tenant_id}/backordering",
    "GET",
    summary="A child tenant's back ordering: on or off, and the backfill's progress (R11)",
    roles=(TENANT_ADMIN,),
    response=Backordering,
)
def backordering_state(call: Call) -> Backordering:
    tenant, job = call.container.backordering.state(call.principal, call.params["tenant_id"])
    return backordering_out(tenant, job)


@api.route(
    "/accounts/{account_id}/hierarchy",
    "GET",
    summary="An account with its sub-accounts and subscriptions, mirrors included (R12)",
    roles=(TENANT_ADMIN, RESELLER, CUSTOMER),
    response=HierarchyNode,
)
def account_hierarchy(call: Call) -> HierarchyNode:
    node = call.container.backordering.hierarchy(call.principal, call.params["account_id"])
    return node_out(node, call.container.orders.today(call.principal))


def upgrade_out(upgrade: Upgrade) -> UpgradeOut:
    from functions.backorder.domain import upgrade_progress

    overall, steps = upgrade_progress(upgrade.step, bool(upgrade.problems))
    return UpgradeOut(
        account_id=upgrade.lite.id,
        tenant=tenant_out(upgrade.tenant) if upgrade.tenant else None,
        status=overall,
        steps=[UpgradeStep(step=n, name=name, status=status) for n, name, status in steps],
        problems=[UpgradeProblem(**p) for p in upgrade.problems],
    )


@api.route(
    "/tenants/{tenant_id}/upgrade",
    "POST",
    summary="Upgrade a lite reseller of this tenant to a tenant reseller, four steps (R19)",
    roles=(TENANT_ADMIN,),
    body=UpgradeLite,
    response=UpgradeOut,
    errors=(400, 403, 404, 409),
)
def upgrade_lite_reseller(call: Call) -> UpgradeOut:
    upgrade = call.container.upgrades.upgrade(call.principal, call.params["tenant_id"], call.body)
    return upgrade_out(upgrade)
