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

import logging
import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, replace
from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from functions.backorder import domain
from functions.backorder.domain import Link, ProviderProduct, ReconciliationRun, Root
from functions.backorder.ports import (
    BackfillJobs,
    Backorders,
    Contacts,
    FailureQueues,
    Reconciliations,
    SetAsideRecords,
    Subscriptions,
)
from functions.backorder.schemas import BackfillJob, ReconciliationPage
from functions.core.auth import PLATFORM_ADMIN, TENANT_ADMIN, Principal, hidden
from functions.core.clock import now_utc, rfc3339, today_in
from functions.core.domain import (
    CUSTOMER_KIND,
    JOB_DONE,
    JOB_QUEUED,
    LITE_RESELLER,
    MAX_CONTACTS,
    TENANT_RESELLER,
    Account,
    Job,
    Tenant,
    TenantProfile,
    new_tenant_reseller,
)
from functions.core.errors import BadRequest, ConcurrentUpdate, Conflict, present
from functions.core.ids import derived_id, new_id
from functions.core.pagination import Page
from functions.core.ports import Queue
from functions.core.units import Units
from functions.invoices.domain import UsageRecord
from functions.orders.domain import Subscription
from functions.pricelist.domain import Product

if TYPE_CHECKING:
    from functions.core.services import TenancyService
    from functions.pricelist.services import CatalogueService

log = logging.getLogger("bss.backorder")

PRICE_TTL_SECONDS = 60.0

SKIPPED, APPLIED, STALE = "skipped", "applied", "stale"


class ReplicationError(RuntimeError):
    """A change that cannot be mirrored as it stands: the record fails, is retried, and after
    the retry limit is set aside for a person (R18)."""


class Replicator:
    def __init__(self, repository: Backorders, clock: Callable[[], float] = time.monotonic) -> None:
        self.repository = repository
        self.clock = clock
        self._links: dict[str, Link] = {}
        self._roots: set[str] = set()
        self._products: dict[tuple[str, str], ProviderProduct] = {}
        self._accounts: dict[tuple[str, str], str] = {}  # (provider, account) → its mirror
        self._parents: dict[tuple[str, str], str] = {}  # (child, base) → its mirror
        self._mirrored: dict[tuple[str, str], str] = {}  # (child, subscription) → its mirror
        self._prices: dict[tuple[str, str, str, str], tuple[float, Decimal]] = {}

    def replicate(self, sub: Subscription) -> str:
        """One version of a child's subscription → its mirror and the provider's order."""
        link = self._link(sub.tenant_id)
        if link is None or not domain.is_mirrored(link, sub):
            return SKIPPED
        applied, _ = self._replicate(link, sub)
        return APPLIED if applied else STALE

    def _replicate(
        self, link: Link, sub: Subscription, *, over: int | None = None, repair: str | None = None
    ) -> tuple[bool, str | None]:
        """The mirror's conditional write and the order's conditional put: whether the mirror
        was written, and the id of the order if this call created it."""
        origin_product_id = present(sub.origin_product_id, "a mirrored subscription's origin")
        account_mirror = self._ensure_account(link, sub.account_id)
        product = self._product(link, origin_product_id)
        now = rfc3339(now_utc())
        mirror = domain.mirror_subscription(
            link,
            sub,
            product,
            unit_price=self._price(link, product.id, sub.billing_cycle),
            now=now,
            account_mirror=account_mirror,
            parent_mirror=self._parent_mirror(link, sub),
            products={
                origin: self._product(link, origin)
                for origin in {
                    *(e.get("origin_product_id") for e in sub.history),
                    (sub.scheduled_change or {}).get("origin_product_id"),
                }
                if origin
            },
        )
        applied = self.repository.upsert_mirror(mirror, over=over)
        created = None
        # carried over by an upgrade (R19) or closed as an orphan (R33): not a sale
        if sub.last_change not in (domain.TRANSFER, domain.ORPHANED):
            order = domain.provider_order(
                link,
                sub,
                mirror,
                product,
                now=now,
                scheduled=self._scheduled(link, sub),
                repair=repair,
            )
            if self.repository.put_order_once(order):
                created = order.id
        return applied, created

    # --- R33: what a reconciliation run's repair re-drives through the same path ---

    def repair(
        self, link: Link, sub: Subscription, *, run_id: str, over: int | None
    ) -> tuple[bool, str | None]:
        """A missing, stale or mismatched mirror written again from its source's current state
        (``over``: the source version the repair read on the mirror, which it may overwrite),
        and the order of the source's current version put once: a change whose stream record
        was lost gets its one order (marked as the run's repair), one that was ordered gets
        nothing twice. Its account's mirror is checked again (it may have been deleted)."""
        self._accounts.pop((link.provider_tenant_id, sub.account_id), None)
        return self._replicate(link, sub, over=over, repair=run_id)

    def repair_account(self, link: Link, account: Account, mirror: Account | None) -> bool:
        """A missing account mirror made again (its lite reseller's first), or a stale or
        mismatched one's synced fields written over the source version read on it."""
        if mirror is None:
            self._accounts.pop((link.provider_tenant_id, account.id), None)
            self._ensure_account(link, account.id)
            return True
        return self.repository.sync_account(
            link.provider_tenant_id,
            mirror.id,
            domain.synced_fields(account),
            present(account.version, "the account's version"),
            over=mirror.source_version or 0,
        )

    def close_orphan(self, mirror: Subscription, today: str) -> bool:
        """A mirror whose source is gone: cancelled and marked, never deleted (R33)."""
        closed = domain.orphan_closed(mirror, today=today, now=rfc3339(now_utc()))
        return self.repository.close_orphan(closed)

    def link(self, child_tenant_id: str) -> Link | None:
        """The child's link (cached once active)."""
        return self._link(child_tenant_id)

    def replicate_usage(self, record: UsageRecord) -> str:
        """R25: a use of a mirrored subscription reaches its mirror (and on up, R17). The
        subscription is read once per container (mirrored stays mirrored: paid once, activation
        irreversible)."""
        link = self._link(record.tenant_id)
        if link is None or not link.active:
            return SKIPPED
        key = (record.tenant_id, record.subscription_id)
        if key not in self._mirrored:
            sub = self.repository.subscription(record.tenant_id, record.subscription_id)
            if sub is None:
                raise ReplicationError(f"subscription {record.subscription_id} is gone")
            if not domain.is_mirrored(link, sub):
                return SKIPPED
            self._mirrored[key] = domain.subscription_mirror_id(link, sub)
        copied = domain.mirror_usage(link, record, self._mirrored[key])
        return APPLIED if self.repository.put_usage_once(copied) else STALE

    def sync_account(self, account: Account) -> str:
        """R12: an account's change reaches its mirror's synced fields, if it has a mirror (an
        account is copied on its first paid subscription, which reads its latest state)."""
        link = self._link(account.tenant_id)
        if link is None or not link.active or account.version is None:
            return SKIPPED
        applied = self.repository.sync_account(
            link.provider_tenant_id,
            domain.account_mirror_id(link, account),
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

    def _ensure_account(self, link: Link, account_id: str) -> str:
        """R12: the end customer's mirror, its lite reseller's first, on its first change; its
        id. An upgraded child's account may continue one of the provider's (R19): then that is
        the mirror, and its source is read to know it."""
        key = (link.provider_tenant_id, account_id)
        if key in self._accounts:
            return self._accounts[key]
        source = (
            self.repository.account(link.child_tenant_id, account_id) if link.upgraded else None
        )
        mirror_id = (
            domain.account_mirror_id(link, source)
            if source is not None
            else domain.mirror_account_id(link, account_id)
        )
        if self.repository.account(link.provider_tenant_id, mirror_id) is None:
            source = source or self.repository.account(link.child_tenant_id, account_id)
            if source is None:
                raise ReplicationError(f"account {account_id} of {link.child_tenant_id} is gone")
            parent_mirror = None
            if source.parent_account_id:
                parent_mirror = self._ensure_account(link, source.parent_account_id)
            self.repository.create_account(
                domain.mirror_account(
                    link, source, parent_mirror_id=parent_mirror, created_at=rfc3339(now_utc())
                )
            )
        self._accounts[key] = mirror_id
        return mirror_id

    def _parent_mirror(self, link: Link, sub: Subscription) -> str | None:
        """An add-on's base's mirror: derived from its id, unless the child was upgraded and
        the base continues one of the provider's subscriptions (R19; one read, cached)."""
        if sub.parent_subscription_id is None or not link.upgraded:
            return None
        key = (link.child_tenant_id, sub.parent_subscription_id)
        if key not in self._parents:
            base = self.repository.subscription(link.child_tenant_id, sub.parent_subscription_id)
            if base is None:
                raise ReplicationError(f"the base of add-on {sub.id} is gone")
            self._parents[key] = domain.subscription_mirror_id(link, base)
        return self._parents[key]

    def _product(self, link: Link, product_id: str) -> ProviderProduct:
        key = (link.provider_tenant_id, product_id)
        if key not in self._products:
            product = self.repository.provider_product(*key)
            if product is None:
                raise ReplicationError(f"product {product_id} of {key[0]} is gone")
            self._products[key] = product
        return self._products[key]

    def _scheduled(self, link: Link, sub: Subscription) -> tuple[ProviderProduct, Decimal] | None:
        """R31: the provider's product a scheduled downgrade moves to, at the reseller's price."""
        origin = (sub.scheduled_change or {}).get("origin_product_id")
        if not domain.is_scheduled(sub) or not origin:
            return None
        target = self._product(link, str(origin))
        return target, self._price(link, target.id, sub.billing_cycle)

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
        subscriptions: Subscriptions,
        jobs: BackfillJobs,
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
            activated = (
                None
                if child.backordering
                else replace(child, backordering=True, backordering_activated_at=rfc3339(now))
            )
            self.jobs.activate(activated, job)
            job = self._reload_job(job)
        if job.status != JOB_DONE:
            self._send(job)
        tenant = present(self.tenancy.tenants.get(tenant_id), f"tenant {tenant_id}")
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
            # A copy an upgrade linked to the provider's own record (R19) is no new sale: it
            # keeps its own last change (a transfer orders nothing).
            first_sight = (
                sub
                if sub.upstream_id
                else replace(sub, last_change="new", last_change_date=job.as_of)
            )
            if self.replicator.replicate(first_sight) != SKIPPED:
                applied += 1
        now = rfc3339(now_utc())
        advanced = job.advanced(page.next_cursor, len(page.items), applied, now)
        try:
            self.jobs.save(advanced)
        except ConcurrentUpdate:
            current = self._reload_job(job)
            if not current.expects(message.cursor):
                return "duplicate"  # another delivery of this page moved the job on
            # only its ``next_sent`` mark moved (``_send`` marks the job after sending, so this
            # page read it before): advance from the job as it is; another conflict fails it
            advanced = current.advanced(page.next_cursor, len(page.items), applied, now)
            self.jobs.save(advanced)
        if advanced.status != JOB_DONE:
            self._send(self._reload_job(advanced))
        return "done" if advanced.status == JOB_DONE else "page"

    def _send(self, job: Job) -> None:
        self.backfill_queue.send(
            BackfillJob(tenant_id=job.tenant_id, job_id=job.id, cursor=job.cursor).model_dump()
        )
        with suppress(ConcurrentUpdate):  # the job moved on: its next message is not ours
            self.jobs.save(replace(job, next_sent=True))

    def _reload_job(self, job: Job) -> Job:
        stored = present(self.jobs.get(job.tenant_id, job.id), f"job {job.id}")
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


@dataclass(frozen=True)
class Upgrade:
    """Where a lite reseller's upgrade stands (R19): the tenant made for it once step 1 ran, the
    last step done (0-4) and the problems of a failed step."""

    lite: Account
    tenant: Tenant | None

    @property
    def step(self) -> int:
        return self.tenant.upgrade_step if self.tenant else 0

    @property
    def problems(self) -> list[dict[str, str]]:
        return list(self.tenant.upgrade_problems) if self.tenant else []


class UpgradeService:
    """R19: a lite reseller of the caller's tenant becomes a tenant reseller in four steps, run
    in order by ``POST /tenants/{id}/upgrade`` from the first not done; each is idempotent
    (deterministic ids, conditional puts), so a failed or interrupted step is run again.

    1. create the tenant (R3: its catalogue copied from the lite reseller's list; a default list
       selling at cost until it sets its own prices); the lite reseller keeps ordering;
    2. copy the lite reseller's customers, with their contacts, as the tenant's customers;
    3. pre-check every running subscription of those customers (currency, product, add-ons,
       billing cycle in the new catalogue) and refuse with every problem, else copy them;
    4. copy what was ordered meanwhile, make the provider's records the mirrors of the copies
       (linked, not duplicated: the provider bills on from the same records, no gap and no
       double), turn the lite reseller's account into the tenant reseller account and activate
       back ordering (its backfill finds the copies already mirrored)."""

    PAGE = 100

    def __init__(
        self,
        tenancy: TenancyService,
        catalogue: CatalogueService,
        subscriptions: Subscriptions,
        account_items: Contacts,
        backordering: BackorderService,
        units: Units,
    ) -> None:
        self.units = units
        self.tenancy = tenancy
        self.catalogue = catalogue
        self.subscriptions = subscriptions
        self.account_items = account_items
        self.backordering = backordering

    def upgrade(self, principal: Principal, tenant_id: str, body: Any) -> Upgrade:
        provider, lite = self._lite(principal, tenant_id, body.account_id)
        tenant = self._tenant(provider, lite)
        if tenant is None:
            tenant = self._create_tenant(provider, lite, body)
        if tenant.upgrade_step < 2:
            tenant = self._transfer_accounts(provider, lite, tenant)
        if tenant.upgrade_step < 3:
            self._transfer_subscriptions(provider, lite, tenant, failing_step=3)
            tenant = self._done(tenant, 3)
        if tenant.upgrade_step < 4:
            tenant = self._activate(principal, provider, lite, tenant)
        return Upgrade(self._account(provider.id, lite.id), tenant)

    # --- the steps ---

    def _create_tenant(self, provider: Tenant, lite: Account, body: Any) -> Tenant:
        if lite.price_list_id is None:
            raise BadRequest(
                "the lite reseller has no price list to copy the catalogue from (R3)",
                field="account_id",
                code="no_price_list",
            )
        price_list = self.catalogue.price_list(provider.id, lite.price_list_id)
        profile = TenantProfile(
            name=lite.name,
            country=body.country,
            time_zone=body.time_zone,
            billing_day=body.billing_day,
        )
        now = rfc3339(now_utc())
        tenant_id = domain.upgraded_tenant_id(provider.id, lite.id)
        tenant, _ = new_tenant_reseller(
            provider,
            tenant_id,
            lite.id,
            profile,
            price_list_currency=price_list.currency,
            email=lite.email,
            created_at=now,
        )
        # The catalogue and a default list first (deterministic ids: a retry rewrites them),
        # then the lite reseller's account points at the tenant (its list's changes reach it,
        # R5), and the tenant appears last.
        self.catalogue.copy_catalogue(provider.id, price_list.id, tenant_id)
        default = self.catalogue.default_at_cost(tenant_id, price_list.currency, created_at=now)
        if lite.child_tenant_id != tenant_id:
            self.units.save(replace(lite, child_tenant_id=tenant_id))
        tenant = replace(
            tenant,
            default_price_list_id=default,
            upgrade_from=lite.id,
            upgrade_step=1,
            propagation=body.propagation,
        )
        with suppress(ConcurrentUpdate):  # a concurrent request made it: go on from there
            self.units.save(tenant)
        return present(self.tenancy.tenants.get(tenant_id), f"tenant {tenant_id}")

    def _transfer_accounts(self, provider: Tenant, lite: Account, tenant: Tenant) -> Tenant:
        self._copy_accounts(provider, lite, tenant)
        return self._done(tenant, 2)

    def _copy_accounts(self, provider: Tenant, lite: Account, tenant: Tenant) -> None:
        """Step 2 (and again before steps 3 and 4, for customers added meanwhile): each
        customer with its contacts; what was copied already is left as it is."""
        now = rfc3339(now_utc())
        for customer in self._customers(provider.id, lite.id):
            copy = domain.transferred_account(tenant.id, customer, created_at=now)
            self.tenancy.accounts.create_once(copy)
            contacts = self.account_items.contacts(provider.id, customer.id, MAX_CONTACTS, None)
            for contact in contacts.items:
                self.account_items.add_contact_once(domain.transferred_contact(copy, contact))

    def _transfer_subscriptions(
        self, provider: Tenant, lite: Account, tenant: Tenant, *, failing_step: int
    ) -> list[tuple[Subscription, Subscription]]:
        """Step 3 (and again in step 4): pre-check, then copy; the (provider's, copy) pairs.
        Customers the lite reseller added since step 2 are copied first."""
        self._copy_accounts(provider, lite, tenant)
        today = today_in(tenant.time_zone)
        running = [
            sub
            for customer in self._customers(provider.id, lite.id)
            for sub in self._subscriptions(provider.id, customer.id)
            if sub.status_on(today) in ("active", "inactive", "suspended") and not sub.mirrored
        ]
        wanted = {sub.product_id for sub in running} | {
            str(sub.scheduled_change["product_id"]) for sub in running if sub.scheduled_change
        }
        copies = {
            product_id: self.catalogue.products.get(
                tenant.id, domain.transferred_product_id(tenant.id, product_id)
            )
            for product_id in wanted
        }

        def scheduled(sub: Subscription) -> Product | None:
            change = sub.scheduled_change
            return copies[str(change["product_id"])] if change else None

        own = {
            sub.id: domain.transfer_problems(
                sub,
                currency=tenant.currency,
                copy=copies[sub.product_id],
                base_transferred=True,
                scheduled_copy=scheduled(sub),
            )
            for sub in running
        }
        problems = []
        for sub in running:  # an add-on whose base cannot go cannot go either
            base = sub.parent_subscription_id
            problems += domain.transfer_problems(
                sub,
                currency=tenant.currency,
                copy=copies[sub.product_id],
                base_transferred=base is None or (base in own and not own[base]),
                scheduled_copy=scheduled(sub),
            )
        if problems:
            self._failed(tenant, problems)
            raise Conflict(
                f"step {failing_step} ({domain.UPGRADE_STEPS[failing_step - 1]}): "
                f"{len(problems)} problem(s) to resolve first",
                code="upgrade_precheck_failed",
                field="account_id",
                details={"problems": problems, "step": failing_step},
            )
        now = rfc3339(now_utc())
        accounts: dict[str, Account | None] = {}
        pairs = []
        for sub in running:
            if sub.account_id not in accounts:
                accounts[sub.account_id] = self.tenancy.accounts.get(
                    tenant.id, derived_id("acc", tenant.id, sub.account_id)
                )
            # steps 2 and 3 made them
            account = present(accounts[sub.account_id], f"the copy of account {sub.account_id}")
            product = present(copies[sub.product_id], f"the copy of product {sub.product_id}")
            later = scheduled(sub)
            pairs.append(
                (sub, self._copy_subscription(tenant, sub, account, product, later, today, now))
            )
        return pairs

    def _copy_subscription(
        self,
        tenant: Tenant,
        sub: Subscription,
        account: Account,
        product: Product,
        scheduled: Product | None,
        today: date,
        now: str,
    ) -> Subscription:
        """The copy (one conditional put), or the one a run before made. R31: a scheduled
        downgrade at the new tenant's price of its copy of the product (``scheduled``)."""
        price_list, price = self.catalogue.buyer_price(tenant, account, product, sub.billing_cycle)
        scheduled_price = (
            self.catalogue.buyer_price(tenant, account, scheduled, sub.billing_cycle)[1]
            if scheduled is not None
            else None
        )
        copy = domain.transferred_subscription(
            tenant.id,
            sub,
            account_id=account.id,
            product_id=product.id,
            price_list_id=price_list.id,
            unit_price=price,
            today=today.isoformat(),
            now=now,
            scheduled_unit_price=scheduled_price,
        )
        if self.subscriptions.create_once(copy):
            return replace(copy, version=1)  # as the put stored it
        return present(self.subscriptions.get(tenant.id, copy.id), f"subscription {copy.id}")

    def _activate(
        self, principal: Principal, provider: Tenant, lite: Account, tenant: Tenant
    ) -> Tenant:
        pairs = self._transfer_subscriptions(provider, lite, tenant, failing_step=4)
        for customer in self._customers(provider.id, lite.id):
            if customer.mirrored:
                continue
            account_copy = self.tenancy.accounts.get(
                tenant.id, derived_id("acc", tenant.id, customer.id)
            )
            if account_copy is not None:
                linked_account = domain.linked_account(customer, account_copy, lite.id)
                self.units.save(linked_account)
        today = today_in(tenant.time_zone).isoformat()
        for sub, copy in pairs:
            linked = domain.linked_subscription(sub, copy, today=today)
            self.units.save(linked)
        account = self._account(provider.id, lite.id)
        if account.kind != TENANT_RESELLER:
            converted = replace(account, kind=TENANT_RESELLER, enable_reselling=True)
            self.units.save(converted)
        activated, _ = self.backordering.activate(principal, tenant.id)
        return self._done(activated, 4)

    # --- helpers ---

    def _lite(
        self, principal: Principal, tenant_id: str, account_id: str
    ) -> tuple[Tenant, Account]:
        principal.require(TENANT_ADMIN)
        if tenant_id != principal.tenant_id:
            raise hidden("tenant")
        provider = self.tenancy.tenant_of(principal)
        lite = self.tenancy.accounts.get(provider.id, account_id)
        upgraded = lite is not None and lite.child_tenant_id == domain.upgraded_tenant_id(
            provider.id, lite.id
        )
        if lite is None or lite.mirrored or (lite.kind != LITE_RESELLER and not upgraded):
            raise BadRequest(
                "not a lite reseller of this tenant", field="account_id", code="not_a_lite_reseller"
            )
        return provider, lite

    def _tenant(self, provider: Tenant, lite: Account) -> Tenant | None:
        return self.tenancy.tenants.get(domain.upgraded_tenant_id(provider.id, lite.id))

    def _account(self, tenant_id: str, account_id: str) -> Account:
        return present(self.tenancy.accounts.get(tenant_id, account_id), f"account {account_id}")

    def _customers(self, provider_id: str, lite_id: str) -> list[Account]:
        found: list[Account] = []
        cursor = None
        while True:
            page = self.tenancy.accounts.children(provider_id, lite_id, self.PAGE, cursor)
            found += [a for a in page.items if a.kind == CUSTOMER_KIND]
            cursor = page.next_cursor
            if cursor is None:
                return found

    def _subscriptions(self, provider_id: str, account_id: str) -> list[Subscription]:
        found: list[Subscription] = []
        cursor = None
        while True:
            page = self.subscriptions.for_account(provider_id, account_id, self.PAGE, cursor)
            found += page.items
            cursor = page.next_cursor
            if cursor is None:
                return found

    def _done(self, tenant: Tenant, step: int) -> Tenant:
        current = present(self.tenancy.tenants.get(tenant.id), f"tenant {tenant.id}")
        if current.upgrade_step < step or current.upgrade_problems:
            self.units.save(
                replace(current, upgrade_step=max(step, current.upgrade_step), upgrade_problems=[])
            )
        return present(self.tenancy.tenants.get(tenant.id), f"tenant {tenant.id}")

    def _failed(self, tenant: Tenant, problems: list[dict[str, str]]) -> None:
        current = present(self.tenancy.tenants.get(tenant.id), f"tenant {tenant.id}")
        self.units.save(replace(current, upgrade_problems=problems))


# --- R33: reconciliation between tiers ---------------------------------------------------------

#: the child's records per page (one queue message): one Query (1 MB of items, ~1,000
#: subscriptions) and ``BatchGetItem`` of their mirrors, 100 keys a request
RECONCILE_PAGE = 1000
#: the provider's mirrors per page of the orphan check: keys from a keys-only index (~200 bytes
#: each: one Query of 1 MB), then their sources by key
MIRRORS_PAGE = 3000
#: the run's items per page of a repair (each re-read and re-driven)
REPAIR_PAGE = 100


class ReconciliationService:
    """R33: compare a child tenant's mirrorable subscriptions and accounts with their mirrors in
    its provider's BSS (``missing``, ``stale``, ``orphan``, ``mismatch``), page by page off the
    request path, with the stream records set aside on the failure queue listed beside; and
    repair what drifted through the ``Replicator``'s own path."""

    def __init__(
        self,
        tenancy: TenancyService,
        replicator: Replicator,
        runs: Reconciliations,
        queue: Queue,
        set_aside: SetAsideRecords,
    ) -> None:
        self.tenancy = tenancy
        self.replicator = replicator
        self.runs = runs
        self.queue = queue
        self.set_aside = set_aside

    # --- the API ---

    def start(
        self, principal: Principal, child_tenant_id: str, *, started_by: str = "api"
    ) -> ReconciliationRun:
        """A provider's tenant admin for one of its children, or a child's for itself."""
        principal.require(TENANT_ADMIN)
        owner = principal.tenant()
        child = self.tenancy.tenants.get(child_tenant_id)
        if child is None or owner not in (child.id, child.parent_id):
            raise hidden("tenant")
        now = rfc3339(now_utc())
        return self._begin(owner, child, new_id("rec"), started_by, now)

    def _begin(
        self, owner: str, child: Tenant, run_id: str, started_by: str, now: str
    ) -> ReconciliationRun:
        link = self.replicator.link(child.id)
        if link is None or not link.active:
            raise Conflict(
                "back ordering is not active for this tenant: there is nothing to reconcile",
                field="child_tenant_id",
                code="backordering_inactive",
            )
        run = domain.ReconciliationRun(
            tenant_id=owner,
            id=run_id,
            child_tenant_id=child.id,
            provider_tenant_id=link.provider_tenant_id,
            started_by=started_by,
            status=domain.RUN_QUEUED,
            created_at=now,
            updated_at=now,
        )
        self.runs.create(run)
        run = self._reload(run)  # the schedule's run of the day may exist: it is that one
        if not run.finished and not run.sent:
            # its message was not sent yet (or a crash lost it): a duplicate is a no-op
            self._send(run)
        return self._reload(run)

    def run(self, principal: Principal, run_id: str) -> ReconciliationRun:
        principal.require(TENANT_ADMIN)
        run = self.runs.get(principal.tenant(), run_id)
        if run is None:
            raise hidden("reconciliation run")
        return run

    def list_runs(
        self, principal: Principal, limit: int, cursor: str | None
    ) -> Page[ReconciliationRun]:
        principal.require(TENANT_ADMIN)
        return self.runs.runs(principal.tenant(), limit, cursor)

    def items(
        self, run: ReconciliationRun, kind: str | None, limit: int, cursor: str | None
    ) -> Page[domain.DriftItem]:
        return self.runs.items(run.tenant_id, run.id, kind, limit, cursor)

    def repair(self, principal: Principal, run_id: str) -> ReconciliationRun:
        """Queue the repair of a finished run's items (its pages re-read each record and
        re-drive what still drifts). Asked again while it runs, it re-sends the current page's
        message (a duplicate is a no-op); asked after it finished, it answers the run."""
        run = self.run(principal, run_id)
        if run.phase not in (domain.DONE, domain.REPAIR):
            if run.phase == domain.REPAIRED:
                return run
            raise Conflict(
                "the run has not finished comparing yet: repair it once it is done",
                field="run_id",
                code="run_not_finished",
            )
        if run.phase == domain.DONE:
            # a concurrent request queued it: its page's message is sent again below
            with suppress(ConcurrentUpdate):
                self.runs.save(run.repairing(rfc3339(now_utc())))
        run = self._reload(run)
        if not run.finished:
            self._send(run)
        return self._reload(run)

    # --- the daily schedule ---

    def schedule(self, on: datetime) -> list[str]:
        """Every child with back ordering on gets a run of its provider's, once a day (the
        run's id is derived from the provider, child and day). The tenants are walked down
        the tree by the parent index (never a Scan)."""
        started, failed = [], []
        day = on.date().isoformat()
        now = rfc3339(on)
        for tenant in self.tenancy.all_tenants():
            if not tenant.backordering or tenant.parent_id is None:
                continue
            run_id = domain.reconciliation_run_id(tenant.parent_id, tenant.id, day)
            try:  # one child's trouble does not hold up the others' runs
                started.append(self._begin(tenant.parent_id, tenant, run_id, "schedule", now).id)
            except Exception:
                log.exception("the reconciliation run of tenant %s could not start", tenant.id)
                failed.append(tenant.id)
        if failed:  # fail the invocation so the schedule's retry starts what is missing
            raise RuntimeError(f"reconciliation runs not started for tenants {failed}")
        return started

    # --- one page (the queue's consumer) ---

    def run_page(self, message: ReconciliationPage) -> str:
        run = self.runs.get(message.tenant_id, message.run_id)
        if run is None:
            raise ReplicationError(f"reconciliation run {message.run_id} is gone")
        if run.resends_after(message.phase, message.cursor):
            self._send(run)
            return "resent"
        if not run.expects(message.phase, message.cursor):
            return "duplicate"
        link = self.replicator.link(run.child_tenant_id)
        if link is None or not link.active:
            raise ReplicationError(f"the link of {run.child_tenant_id} is gone")
        here = domain.position(run.phase, run.cursor)
        repaired = orders = 0
        if run.phase == "subscriptions":
            next_cursor, compared, found = self._subscriptions(link, run, here)
        elif run.phase == "mirrors":
            next_cursor, compared, found = self._mirrors(link, run, here)
        elif run.phase == "accounts":
            next_cursor, compared, found = self._accounts(link, run, here)
        else:
            next_cursor, compared, found, repaired, orders = self._repair(link, run)
        now = rfc3339(now_utc())

        def advance(base: ReconciliationRun) -> ReconciliationRun:
            return base.advanced(
                next_cursor,
                compared=compared,
                found=found,
                now=now,
                repaired=repaired,
                repair_orders=orders,
            )

        advanced = advance(run)
        try:
            self.runs.save(advanced)
        except ConcurrentUpdate:
            current = self._reload(run)
            if not current.expects(run.phase, run.cursor):
                return "duplicate"  # another delivery of this page moved the run on
            # only its ``sent`` mark moved (``_send`` marks the run after sending, so this
            # page read it before): advance from the run as it is; another conflict fails it
            advanced = advance(current)
            self.runs.save(advanced)
        if not advanced.finished:
            self._send(self._reload(advanced))
        return advanced.phase

    def _found(
        self, run: ReconciliationRun, here: str, entries: list[domain.DriftItem]
    ) -> dict[str, int]:
        """Write a page's items and count them. An item another page found already (an
        account of subscriptions on two pages) is neither written nor counted again; one this
        page wrote before a crash is (the page is being done again)."""
        shared = [e.key for e in entries if e.record == domain.ACCOUNT]
        known = self.runs.found_on(run.tenant_id, run.id, shared) if shared else {}
        fresh = list({e.key: e for e in entries if known.get(e.key, here) == here}.values())
        self.runs.put_items(run.tenant_id, run.id, fresh)
        counts: dict[str, int] = {}
        for entry in fresh:
            counts[entry.kind] = counts.get(entry.kind, 0) + 1
        return counts

    def _subscriptions(
        self, link: Link, run: ReconciliationRun, here: str
    ) -> tuple[str | None, int, dict[str, int]]:
        page = self.runs.subscriptions_page(link.child_tenant_id, RECONCILE_PAGE, run.cursor)
        mirrorable = [s for s in page.items if domain.is_mirrored(link, s)]
        mirror_ids = {s.id: domain.subscription_mirror_id(link, s) for s in mirrorable}
        mirrors = self.runs.subscriptions(link.provider_tenant_id, mirror_ids.values())
        entries = []
        for sub in mirrorable:
            mirror = mirrors.get(mirror_ids[sub.id])
            drift = domain.subscription_drift(link, sub, mirror)
            if drift is not None:
                entries.append(
                    domain.DriftItem(
                        kind=drift.kind,
                        record=domain.SUBSCRIPTION,
                        source_id=sub.id,
                        mirror_id=mirror_ids[sub.id],
                        found_on=here,
                        fields=drift.fields,
                        source_version=sub.version,
                        mirror_source_version=mirror.source_version if mirror else None,
                    )
                )
        entries += self._missing_accounts(link, here, {s.account_id for s in mirrorable})
        if run.cursor is None:  # the first page lists the records set aside beside the run
            entries += [
                domain.DriftItem(
                    kind=domain.SET_ASIDE,
                    record=record,
                    source_id=record_id,
                    mirror_id="",
                    found_on=here,
                    detail=detail,
                )
                for record, record_id, detail in self.set_aside.records(link.child_tenant_id)
            ]
        return page.next_cursor, len(page.items), self._found(run, here, entries)

    def _missing_accounts(
        self, link: Link, here: str, account_ids: set[str]
    ) -> list[domain.DriftItem]:
        """R12: the accounts of mirrored subscriptions, and their lite resellers, each with its
        mirror (two or three ``BatchGetItem`` per 100 accounts)."""
        accounts = self.runs.accounts(link.child_tenant_id, account_ids)
        parents = {a.parent_account_id for a in accounts.values() if a.parent_account_id}
        accounts |= self.runs.accounts(link.child_tenant_id, parents - set(accounts))
        mirror_ids = {a.id: domain.account_mirror_id(link, a) for a in accounts.values()}
        mirrors = self.runs.accounts(link.provider_tenant_id, mirror_ids.values())
        return [
            domain.DriftItem(
                kind=domain.MISSING,
                record=domain.ACCOUNT,
                source_id=account.id,
                mirror_id=mirror_ids[account.id],
                found_on=here,
                source_version=account.version,
            )
            for account in accounts.values()
            if mirror_ids[account.id] not in mirrors
        ]

    def _mirrors(
        self, link: Link, run: ReconciliationRun, here: str
    ) -> tuple[str | None, int, dict[str, int]]:
        page = self.runs.reseller_mirrors(
            link.provider_tenant_id, link.reseller_account_id, MIRRORS_PAGE, run.cursor
        )
        ours = [
            ref
            for ref in page.items
            if ref.mirrored and ref.source_tenant_id == link.child_tenant_id and ref.source_id
        ]
        existing = self.runs.existing(link.child_tenant_id, [r.source_id or "" for r in ours])
        entries = [
            domain.DriftItem(
                kind=domain.ORPHAN,
                record=domain.SUBSCRIPTION,
                source_id=ref.source_id or "",
                mirror_id=ref.id,
                found_on=here,
            )
            for ref in ours
            if ref.source_id not in existing and ref.last_change != domain.ORPHANED
        ]
        return page.next_cursor, len(ours), self._found(run, here, entries)

    def _accounts(
        self, link: Link, run: ReconciliationRun, here: str
    ) -> tuple[str | None, int, dict[str, int]]:
        page = self.runs.accounts_page(link.child_tenant_id, RECONCILE_PAGE, run.cursor)
        mirror_ids = {a.id: domain.account_mirror_id(link, a) for a in page.items}
        mirrors = self.runs.accounts(link.provider_tenant_id, mirror_ids.values())
        entries = []
        for account in page.items:
            mirror = mirrors.get(mirror_ids[account.id])
            if mirror is None:
                continue  # not mirrored yet, or missing: the subscriptions' phase tells which
            drift = domain.account_drift(account, mirror, expected=True)
            if drift is not None:
                entries.append(
                    domain.DriftItem(
                        kind=drift.kind,
                        record=domain.ACCOUNT,
                        source_id=account.id,
                        mirror_id=mirror.id,
                        found_on=here,
                        fields=drift.fields,
                        source_version=account.version,
                        mirror_source_version=mirror.source_version,
                    )
                )
        return page.next_cursor, len(page.items), self._found(run, here, entries)

    def _repair(
        self, link: Link, run: ReconciliationRun
    ) -> tuple[str | None, int, dict[str, int], int, int]:
        """One page of the run's items: each record and its mirror read again (batched) and,
        if it still drifts, re-driven; its outcome written on the item."""
        here = domain.position(run.phase, run.cursor)
        page = self.runs.items(run.tenant_id, run.id, None, REPAIR_PAGE, run.cursor)
        # an item this page re-drove before a crash keeps its outcome (and is counted again)
        redone = [e for e in page.items if e.repaired_on == here]
        todo = [e for e in page.items if e.kind != domain.SET_ASIDE and e.repair is None]
        subs = [e for e in todo if e.record == domain.SUBSCRIPTION]
        accounts = [e for e in todo if e.record == domain.ACCOUNT]
        child, provider = link.child_tenant_id, link.provider_tenant_id
        sources = self.runs.subscriptions(child, [e.source_id for e in subs], whole=True)
        mirrors = self.runs.subscriptions(provider, [e.mirror_id for e in subs])
        account_sources = self.runs.accounts(child, [e.source_id for e in accounts])
        account_mirrors = self.runs.accounts(provider, [e.mirror_id for e in accounts])
        today = now_utc().date().isoformat()
        done: list[domain.DriftItem] = []
        for entry in todo:  # accounts sort before subscriptions within a kind
            try:
                if entry.record == domain.ACCOUNT:
                    source = account_sources.get(entry.source_id)
                    mirror = account_mirrors.get(entry.mirror_id)
                    outcome, order_id = self._repair_account(link, source, mirror), None
                else:
                    outcome, order_id = self._repair_subscription(
                        link, run, sources.get(entry.source_id), mirrors.get(entry.mirror_id), today
                    )
            except ReplicationError as error:
                outcome, order_id = f"failed: {error}", None
            done.append(replace(entry, repair=outcome, repair_order_id=order_id, repaired_on=here))
        self.runs.put_items(run.tenant_id, run.id, done)
        done += redone
        repaired = sum(1 for e in done if e.repair == REPAIRED_ITEM)
        orders = sum(1 for e in done if e.repair_order_id is not None)
        return page.next_cursor, len(done), {}, repaired, orders

    def _repair_subscription(
        self,
        link: Link,
        run: ReconciliationRun,
        source: Subscription | None,
        mirror: Subscription | None,
        today: str,
    ) -> tuple[str, str | None]:
        drift = domain.subscription_drift(link, source, mirror)
        if drift is None:
            return CONVERGED, None
        if drift.kind == domain.ORPHAN:
            self.replicator.close_orphan(present(mirror, "an orphan's mirror"), today)
            return REPAIRED_ITEM, None
        sub = present(source, "a drifted subscription's source")
        over = mirror.source_version if mirror is not None else None
        _, order_id = self.replicator.repair(link, sub, run_id=run.id, over=over)
        return REPAIRED_ITEM, order_id

    def _repair_account(self, link: Link, source: Account | None, mirror: Account | None) -> str:
        drift = domain.account_drift(source, mirror, expected=True)
        if drift is None:
            return CONVERGED
        if drift.kind == domain.ORPHAN or source is None:
            return "left: an account mirror whose source is gone is kept as it is"
        self.replicator.repair_account(link, source, mirror)
        return REPAIRED_ITEM

    def _send(self, run: ReconciliationRun) -> None:
        self.queue.send(
            ReconciliationPage(
                tenant_id=run.tenant_id, run_id=run.id, phase=run.phase, cursor=run.cursor
            ).model_dump()
        )
        with suppress(ConcurrentUpdate):  # the run moved on: its next message is not ours
            self.runs.save(replace(run, sent=True))

    def _reload(self, run: ReconciliationRun) -> ReconciliationRun:
        return present(self.runs.get(run.tenant_id, run.id), f"reconciliation run {run.id}")


REPAIRED_ITEM, CONVERGED = "repaired", "converged"


class FailureService:
    """Issue 16: what the on-failure queue of the streams (R18) and the dead-letter queues of
    ``infra/events.py`` hold, for the platform admin (``GET /failures``, ``bss failures``): read
    only, never consumed."""

    def __init__(self, queues: FailureQueues) -> None:
        self.queues = queues

    def list(self, principal: Principal) -> tuple[list[domain.FailedDelivery], bool]:
        principal.require(PLATFORM_ADMIN)
        return self.queues.deliveries(domain.FAILURES_LIMIT)
