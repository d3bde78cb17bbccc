"""HTTP routes of back ordering: activation (R11) and the hierarchy view (R12, R15)."""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING

from functions.backorder.schemas import (
    BackfillOut,
    Backordering,
    FailureOut,
    FailuresOut,
    HierarchyNode,
    HierarchySubscription,
    ReconciliationItemOut,
    ReconciliationItemsQuery,
    ReconciliationOut,
    StartReconciliation,
    UpgradeLite,
    UpgradeOut,
    UpgradeProblem,
    UpgradeStep,
)
from functions.core.api import Api, Call
from functions.core.auth import CUSTOMER, PLATFORM_ADMIN, RESELLER, TENANT_ADMIN
from functions.core.pagination import Page
from functions.core.routes import tenant_out
from functions.core.schemas import ListQuery

if TYPE_CHECKING:  # types only: a route module loads its service when first called
    from functions.backorder.domain import DriftItem, ReconciliationRun
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


# --- R33: reconciliation between tiers -----------------------------------------------------------


def reconciliation_out(
    run: ReconciliationRun, page: Page[DriftItem] | None = None
) -> ReconciliationOut:
    from functions.backorder.domain import DRIFT_KINDS, SET_ASIDE

    items = None
    if page is not None:
        items = [
            ReconciliationItemOut(
                kind=e.kind,
                record=e.record,
                source_id=e.source_id,
                mirror_id=e.mirror_id or None,
                fields=list(e.fields),
                source_version=e.source_version,
                mirror_source_version=e.mirror_source_version,
                detail=e.detail,
                repair=e.repair,
                repair_order_id=e.repair_order_id,
            )
            for e in page.items
        ]
    return ReconciliationOut(
        id=run.id,
        child_tenant_id=run.child_tenant_id,
        provider_tenant_id=run.provider_tenant_id,
        started_by=run.started_by,
        status=run.status,
        phase=run.phase,
        pages=run.pages,
        compared=run.compared,
        counts={kind: run.counts.get(kind, 0) for kind in (*DRIFT_KINDS, SET_ASIDE)},
        repaired=run.repaired,
        repair_orders=run.repair_orders,
        created_at=run.created_at,
        updated_at=run.updated_at,
        finished_at=run.finished_at,
        repair_started_at=run.repair_started_at,
        repaired_at=run.repaired_at,
        items=items,
        next_cursor=page.next_cursor if page is not None else None,
    )


@api.route(
    "/reconciliation-runs",
    "POST",
    summary="Compare a child tenant's records with their mirrors, off the request path (R33)",
    roles=(TENANT_ADMIN,),
    body=StartReconciliation,
    response=ReconciliationOut,
    status=202,
    errors=(400, 404, 409),
)
def start_reconciliation(call: Call) -> ReconciliationOut:
    run = call.container.reconciliation.start(call.principal, call.body.child_tenant_id)
    return reconciliation_out(run)


@api.route(
    "/reconciliation-runs",
    "GET",
    summary="The reconciliation runs the caller's tenant started (R33)",
    roles=(TENANT_ADMIN,),
    query=ListQuery,
    response=ReconciliationOut,
    paginated=True,
)
def list_reconciliations(call: Call) -> Page[ReconciliationOut]:
    page = call.container.reconciliation.list_runs(call.principal, call.limit, call.cursor)
    return Page([reconciliation_out(run) for run in page.items], page.next_cursor)


@api.route(
    "/reconciliation-runs/{run_id}",
    "GET",
    summary="A reconciliation run: its counts and a page of its items (R33)",
    roles=(TENANT_ADMIN,),
    query=ReconciliationItemsQuery,
    response=ReconciliationOut,
)
def get_reconciliation(call: Call) -> ReconciliationOut:
    service = call.container.reconciliation
    run = service.run(call.principal, call.params["run_id"])
    page = service.items(run, call.query.kind, call.limit, call.cursor)
    return reconciliation_out(run, page)


@api.route(
    "/reconciliation-runs/{run_id}/repair",
    "POST",
    summary="Re-drive a finished run's drifted records through the replicator (R33)",
    roles=(TENANT_ADMIN,),
    response=ReconciliationOut,
    status=202,
    errors=(404, 409),
)
def repair_reconciliation(call: Call) -> ReconciliationOut:
    return reconciliation_out(
        call.container.reconciliation.repair(call.principal, call.params["run_id"])
    )


# --- issue 16: what the on-failure and dead-letter queues hold ------------------------------------


@api.route(
    "/failures",
    "GET",
    summary="The platform's failed deliveries: the streams' on-failure queue (R18) and every "
    "dead-letter queue, read without consuming them; at most 100, `truncated` beyond",
    roles=(PLATFORM_ADMIN,),
    response=FailuresOut,
    errors=(),
)
def list_failures(call: Call) -> FailuresOut:
    items, truncated = call.container.failures.list(call.principal)
    return FailuresOut(
        items=[
            FailureOut(
                queue=f.queue,
                message_id=f.message_id,
                sent_at=f.sent_at,
                receive_count=f.receive_count,
                key=f.key,
                error=f.error,
            )
            for f in items
        ],
        truncated=truncated,
    )
