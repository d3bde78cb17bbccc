"""Back ordering's use case: replicate one version of a reseller tenant's subscription into its
provider's BSS (R12-R14, R17, R18).

Per change the floor is two writes (the mirror's conditional update and the order's conditional
put) and at most one read. What would cost more reads is cached for the life of a warm Lambda
container: a link once back ordering is on (it is irreversible, R11; an inactive link is read
again every time), that a tenant is a root (its own records, the mirrors, reach the same
handler), the provider's products, the mirrored accounts already seen, and the reseller's
prices for ``PRICE_TTL_SECONDS``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import TYPE_CHECKING

from functions.backorder import domain
from functions.backorder.adapters import BackorderRepository
from functions.backorder.domain import Link, ProviderProduct, Root
from functions.backorder.schemas import BackfillJob
from functions.core.adapters import JobModel, JobRepository
from functions.core.auth import TENANT_ADMIN, Principal, hidden
from functions.core.clock import now_utc, rfc3339, today_in
from functions.core.domain import JOB_DONE, JOB_QUEUED, Account, Job, Tenant
from functions.core.errors import ConcurrentUpdate
from functions.core.ids import derived_id
from functions.core.persistence import save, transaction
from functions.core.queues import Queue
from functions.orders.adapters import SubscriptionRepository
from functions.orders.domain import Subscription

if TYPE_CHECKING:
    from functions.core.services import TenancyService

PRICE_TTL_SECONDS = 60.0

SKIPPED, APPLIED, STALE = "skipped", "applied", "stale"


class ReplicationError(RuntimeError):
    """A change that cannot be mirrored as it stands: the record fails, is retried, and after
    the retry limit is set aside for a person (R18)."""


class Replicator:
    def __init__(
        self, repository: BackorderRepository, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.repository = repository
        self.clock = clock
        self._links: dict[str, Link] = {}
        self._roots: set[str] = set()
        self._products: dict[tuple[str, str], ProviderProduct] = {}
        self._accounts: set[tuple[str, str]] = set()
        self._prices: dict[tuple[str, str, str, str], tuple[float, Decimal]] = {}

    def replicate(self, sub: Subscription) -> str:
        """One version of a child's subscription → its mirror and the provider's order."""
        link = self._link(sub.tenant_id)
        if link is None or not domain.is_mirrored(link, sub):
            return SKIPPED
        assert sub.origin_product_id is not None
        self._ensure_account(link, sub.account_id)
        product = self._product(link, sub.origin_product_id)
        now = rfc3339(now_utc())
        mirror = domain.mirror_subscription(
            link, sub, product, unit_price=self._price(link, product.id, sub.billing_cycle), now=now
        )
        applied = self.repository.upsert_mirror(mirror)
        self.repository.put_order_once(domain.provider_order(link, sub, mirror, product, now=now))
        return APPLIED if applied else STALE

    def sync_account(self, account: Account) -> str:
        """R12: an account's change reaches its mirror's synced fields, if it has a mirror (an
        account is copied on its first paid subscription, which reads its latest state)."""
        link = self._link(account.tenant_id)
        if link is None or not link.active or account.version is None:
            return SKIPPED
        applied = self.repository.sync_account(
            link.provider_tenant_id,
            domain.mirror_account_id(link, account.id),
            domain.synced_fields(account),
            account.version,
        )
        return APPLIED if applied else STALE

    def _link(self, tenant_id: str) -> Link | None:
        if tenant_id in self._roots:
            return None
        link = self._links.get(tenant_id)
        if link is None:
            found = self.repository.link(tenant_id)
            if isinstance(found, Root):
                self._roots.add(tenant_id)
                return None
            link = found
            if link is not None and link.active:
                self._links[tenant_id] = link
        return link

    def _ensure_account(self, link: Link, account_id: str) -> None:
        """R12: the end customer's mirror, its lite reseller's first, on its first change."""
        if (link.provider_tenant_id, account_id) in self._accounts:
            return
        mirror_id = domain.mirror_account_id(link, account_id)
        if self.repository.account(link.provider_tenant_id, mirror_id) is None:
            source = self.repository.account(link.child_tenant_id, account_id)
            if source is None:
                raise ReplicationError(f"account {account_id} of {link.child_tenant_id} is gone")
            parent_mirror = None
            if source.parent_account_id:
                self._ensure_account(link, source.parent_account_id)
                parent_mirror = domain.mirror_account_id(link, source.parent_account_id)
            self.repository.create_account(
                domain.mirror_account(
                    link, source, parent_mirror_id=parent_mirror, created_at=rfc3339(now_utc())
                )
            )
        self._accounts.add((link.provider_tenant_id, account_id))

    def _product(self, link: Link, product_id: str) -> ProviderProduct:
        key = (link.provider_tenant_id, product_id)
        if key not in self._products:
            product = self.repository.provider_product(*key)
            if product is None:
                raise ReplicationError(f"product {product_id} of {key[0]} is gone")
            self._products[key] = product
        return self._products[key]

    def _price(self, link: Link, product_id: str, cycle: str) -> Decimal:
        key = (link.provider_tenant_id, link.price_list_id or "", product_id, cycle)
        cached = self._prices.get(key)
        if cached is not None and self.clock() - cached[0] < PRICE_TTL_SECONDS:
            return cached[1]
        price = self.repository.price(link, product_id, cycle)
        if price is None:
            raise ReplicationError(
                f"the reseller's price list {link.price_list_id} has no {cycle} price for "
                f"{product_id}"
            )
        self._prices[key] = (self.clock(), price)
        return price


class BackorderService:
    """The provider's side: activate back ordering for a child (R11), run its backfill page by
    page off the request path, and view the hierarchy."""

    def __init__(
        self,
        tenancy: TenancyService,
        replicator: Replicator,
        subscriptions: SubscriptionRepository,
        jobs: JobRepository,
        backfill_queue: Queue,
    ) -> None:
        self.tenancy = tenancy
        self.replicator = replicator
        self.subscriptions = subscriptions
        self.jobs = jobs
        self.backfill_queue = backfill_queue

    def activate(self, principal: Principal, tenant_id: str) -> tuple[Tenant, Job]:
        """R11: switch back ordering on for a child tenant (irreversible) and queue the backfill
        of its paid subscriptions for provider products, in one transaction; the first page's
        message follows. Activating an active child again is not an error: it answers the state
        and re-sends the message of an unfinished backfill's current page (a lost message is
        repaired by asking again; a duplicate is a no-op)."""
        child = self._child(principal, tenant_id)
        job = self.jobs.get(child.parent_id or "", backfill_job_id(child))
        if job is None:
            now = now_utc()
            job = Job(
                tenant_id=principal.tenant(),
                id=backfill_job_id(child),
                kind="backfill",
                subject=child.id,
                as_of=today_in(child.time_zone, at=now).isoformat(),
                status=JOB_QUEUED,
                created_at=rfc3339(now),
                updated_at=rfc3339(now),
            )
            with transaction(self.tenancy.settings) as tx:
                if not child.backordering:
                    activated = replace(
                        child, backordering=True, backordering_activated_at=rfc3339(now)
                    )
                    tx.save(self.tenancy.tenants.model(activated))
                tx.save(self.jobs.model(job), condition=JobModel.id.does_not_exist())
            job = self._reload_job(job)
        if job.status != JOB_DONE:
            self._send(job)
        tenant = self.tenancy.tenants.get(tenant_id)
        assert tenant is not None
        return tenant, job

    def state(self, principal: Principal, tenant_id: str) -> tuple[Tenant, Job | None]:
        """A child's back ordering: on or off, and its backfill's progress."""
        child = self._child(principal, tenant_id)
        return child, self.jobs.get(principal.tenant(), backfill_job_id(child))

    def backfill_page(self, message: BackfillJob) -> str:
        """One page of a backfill: every subscription on it goes through the stream path's own
        ``Replicator`` as a ``new`` change dated at activation. Ids are deterministic, so a page
        done twice doubles nothing; the job's cursor makes a duplicate message a no-op, and the
        job is saved before the next page's message is sent, so no page is skipped."""
        job = self.jobs.get(message.tenant_id, message.job_id)
        if job is None:
            raise ReplicationError(f"backfill job {message.job_id} of {message.tenant_id} is gone")
        if job.resends_after(message.cursor):
            self._send(job)
            return "resent"
        if not job.expects(message.cursor):
            return "duplicate"
        page = self.subscriptions.page(job.subject, BACKFILL_PAGE, message.cursor)
        applied = 0
        for sub in page.items:
            first_sight = replace(sub, last_change="new", last_change_date=job.as_of)
            if self.replicator.replicate(first_sight) != SKIPPED:
                applied += 1
        advanced = job.advanced(page.next_cursor, len(page.items), applied, rfc3339(now_utc()))
        try:
            save(self.jobs.model(advanced))
        except ConcurrentUpdate:
            # Either a duplicate message did this page meanwhile (the job moved on), or the job
            # only changed under us (its ``next_sent`` mark): then this page is not done yet and
            # the message must fail, to be delivered again.
            if self._reload_job(job).expects(message.cursor):
                raise
            return "duplicate"
        if advanced.status != JOB_DONE:
            self._send(self._reload_job(advanced))
        return "done" if advanced.status == JOB_DONE else "page"

    def _send(self, job: Job) -> None:
        self.backfill_queue.send(
            BackfillJob(tenant_id=job.tenant_id, job_id=job.id, cursor=job.cursor).model_dump()
        )
        with suppress(ConcurrentUpdate):  # the job moved on: its next message is not ours
            save(self.jobs.model(replace(job, next_sent=True)))

    def _reload_job(self, job: Job) -> Job:
        stored = self.jobs.get(job.tenant_id, job.id)
        assert stored is not None
        return stored

    def _child(self, principal: Principal, tenant_id: str) -> Tenant:
        principal.require(TENANT_ADMIN)
        child = self.tenancy.tenants.get(tenant_id)
        if child is None or child.parent_id != principal.tenant_id:
            raise hidden("tenant")
        return child

    def hierarchy(self, principal: Principal, account_id: str) -> Node:
        """An account with its sub-accounts and their subscriptions, as deep as they go (at most
        ``MAX_DEPTH`` levels; ``MAX_ITEMS`` children and subscriptions per account)."""
        root = self.tenancy.account(principal, account_id)
        return self._node(root, 0)

    def _node(self, account: Account, depth: int) -> Node:
        tenant_id = account.tenant_id
        subs = self.subscriptions.for_account(tenant_id, account.id, MAX_ITEMS, None).items
        children: list[Node] = []
        if depth < MAX_DEPTH:
            page = self.tenancy.accounts.children(tenant_id, account.id, MAX_ITEMS, None)
            children = [self._node(child, depth + 1) for child in page.items]
        return Node(account, subs, children)


def backfill_job_id(child: Tenant) -> str:
    return derived_id("job", child.parent_id or "", "backfill", child.id)


BACKFILL_PAGE = 100
MAX_DEPTH = 6
MAX_ITEMS = 100


@dataclass(frozen=True)
class Node:
    account: Account
    subscriptions: list[Subscription]
    children: list[Node]
