"""Back ordering's use case: replicate one version of a reseller tenant's subscription into its
provider's BSS (R12-R14, R17, R18).

Per change the floor is two writes (the mirror's conditional update and the order's conditional
put) and at most one read. What would cost more reads is cached for the life of a warm Lambda
container: a link once back ordering is on (it is irreversible, R11; an inactive link is read
again every time), the provider's products, the mirrored accounts already seen, and the
reseller's prices for ``PRICE_TTL_SECONDS``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import TYPE_CHECKING

from functions.backorder import domain
from functions.backorder.adapters import BackorderRepository
from functions.backorder.domain import Link, ProviderProduct
from functions.core.auth import TENANT_ADMIN, Principal, hidden
from functions.core.clock import now_utc, rfc3339, today_in
from functions.core.domain import Account, Tenant
from functions.core.persistence import save
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

    def _link(self, tenant_id: str) -> Link | None:
        link = self._links.get(tenant_id)
        if link is None:
            link = self.repository.link(tenant_id)
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
    """The provider's side: activate back ordering for a child (R11) and view the hierarchy."""

    def __init__(
        self,
        tenancy: TenancyService,
        replicator: Replicator,
        subscriptions: SubscriptionRepository,
    ) -> None:
        self.tenancy = tenancy
        self.replicator = replicator
        self.subscriptions = subscriptions

    def activate(self, principal: Principal, tenant_id: str) -> tuple[Tenant, int]:
        """R11: switch back ordering on for a child tenant (irreversible; activating an active
        child again is a no-op that re-runs the backfill) and mirror every paid subscription for
        a provider product that is not mirrored yet. Returns the tenant and how many were
        backfilled. The backfill goes through the stream path's own ``Replicator``: ids are
        deterministic, so a repeated or interrupted backfill never doubles a mirror or order."""
        principal.require(TENANT_ADMIN)
        child = self.tenancy.tenants.get(tenant_id)
        if child is None or child.parent_id != principal.tenant_id:
            raise hidden("tenant")
        if not child.backordering:
            save(
                self.tenancy.tenants.model(
                    replace(child, backordering=True, backordering_activated_at=rfc3339(now_utc()))
                )
            )
        today = today_in(child.time_zone).isoformat()
        backfilled, cursor = 0, None
        while True:
            page = self.subscriptions.page(child.id, 100, cursor)
            for sub in page.items:
                first_sight = replace(sub, last_change="new", last_change_date=today)
                if self.replicator.replicate(first_sight) != SKIPPED:
                    backfilled += 1
            cursor = page.next_cursor
            if cursor is None:
                break
        activated = self.tenancy.tenants.get(tenant_id)
        assert activated is not None
        return activated, backfilled

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


MAX_DEPTH = 6
MAX_ITEMS = 100


@dataclass(frozen=True)
class Node:
    account: Account
    subscriptions: list[Subscription]
    children: list[Node]
