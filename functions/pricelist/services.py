"""Use cases of the catalogue: products, price lists, prices, the buyer's price (R2–R4)."""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from functions.core.auth import TENANT_ADMIN, Principal, hidden
from functions.core.clock import now_utc, rfc3339, today_in
from functions.core.domain import Account, Tenant
from functions.core.errors import BadRequest, ConcurrentUpdate, Forbidden, present
from functions.core.ids import derived_id, new_id
from functions.core.money import format_money, minor_unit, parse_price
from functions.core.pagination import Page
from functions.core.ports import Queue
from functions.core.units import Units
from functions.pricelist import domain
from functions.pricelist.domain import Price, PriceList, Product
from functions.pricelist.ports import (
    Accounts,
    PriceListStore,
    Products,
    ResoldSubscriptions,
    Tenants,
)
from functions.pricelist.schemas import PriceChange

if TYPE_CHECKING:
    from functions.core.services import TenancyService

log = logging.getLogger(__name__)


#: how often the margin alerts are computed again over a product that moved on (R5, R29)
_ALERT_ATTEMPTS = 3


@dataclass(frozen=True)
class Offer:
    """A product as one caller sees it: at its price list's prices; costs for its tenant admin."""

    product: Product
    price_list: PriceList | None
    prices: dict[str, str]
    costs: dict[str, str] | None
    #: the product's margin alerts (R6): shown with its costs, to its tenant admin only
    margin_alerts: list[domain.MarginAlert]


class PriceLists:
    """What the parties need of the price lists (``core.ports.PriceListLookup``): a list's
    currency and the R3 catalogue copy. It needs no tenancy, so the composition root builds it
    before ``TenancyService``, and ``CatalogueService`` (which uses the tenancy) after both."""

    def __init__(self, products: Products, price_lists: PriceListStore) -> None:
        self.products = products
        self.price_lists = price_lists

    def price_list(
        self, tenant_id: str, price_list_id: str, *, field: str = "price_list_id"
    ) -> PriceList:
        price_list = self.price_lists.get(tenant_id, price_list_id)
        if price_list is None:
            raise BadRequest(
                f"unknown price list {price_list_id}", field=field, code="unknown_price_list"
            )
        return price_list

    def currency_of(self, tenant_id: str, price_list_id: str) -> str:
        return self.price_list(tenant_id, price_list_id).currency

    def copy_catalogue(self, provider_id: str, price_list_id: str, child_id: str) -> int:
        """R3: every product of the child's assigned list, copied with its configuration; the
        list's (effective) prices become the child's costs. Ids derive from child + origin, so
        a retried copy rewrites the same items."""
        price_list = self.price_list(provider_id, price_list_id)
        entries: dict[str, list[Price]] = {}
        for entry in self.price_lists.all_prices(provider_id, price_list_id):
            entries.setdefault(entry.product_id, []).append(entry)
        sources = self.products.get_many(provider_id, entries)
        child_ids = {pid: derived_id("prd", child_id, pid) for pid in sources}
        created_at = rfc3339(now_utc())
        copies = []
        for pid, source in sources.items():
            if not source.sellable:
                continue
            costs = {
                e.billing_cycle: domain.effective_price(e, source, price_list.currency)
                for e in entries[pid]
                if e.billing_cycle in source.billing_cycles
                and (e.price is not None or e.billing_cycle in source.costs)
            }
            if not costs:
                continue
            addon_for = [child_ids[b] for b in source.addon_for if b in child_ids]
            copies.append(
                domain.copy_for_child(
                    source, child_id, child_ids[pid], costs, addon_for, created_at=created_at
                )
            )
        self.products.save_many(copies)
        return len(copies)


class CatalogueService(PriceLists):
    """The catalogue's use cases; the tenancy gives it the caller's tenant and account."""

    def __init__(
        self,
        units: Units,
        tenancy: TenancyService,
        tenants: Tenants,
        accounts: Accounts,
        products: Products,
        price_lists: PriceListStore,
    ) -> None:
        super().__init__(products, price_lists)
        self.units = units
        self.tenancy = tenancy
        self.tenants = tenants
        self.accounts = accounts

    def default_at_cost(self, tenant_id: str, currency: str, *, created_at: str) -> str:
        """A tenant's default list selling every product it has at cost (a markup of 0 %):
        what an upgraded lite reseller's customers buy at until it sets its own prices (R19).
        Deterministic ids: a retry rewrites the same items."""
        price_list = PriceList(
            id=derived_id("prl", tenant_id, "at-cost"),
            tenant_id=tenant_id,
            name="At cost (from the upgrade)",
            currency=currency,
            created_at=created_at,
            version=1,
        )
        entries = [
            Price(
                tenant_id=tenant_id,
                price_list_id=price_list.id,
                product_id=product.id,
                billing_cycle=cycle,
                updated_at=created_at,
                markup_percent=Decimal(0),
                version=1,
            )
            for product in self.products.all(tenant_id)
            for cycle in product.costs
        ]
        self.price_lists.save_list(price_list, entries)
        return price_list.id

    # --- products ---

    def product(self, principal: Principal, product_id: str) -> Product:
        product = self.products.get(principal.tenant(), product_id)
        if product is None:
            raise hidden("product")
        return product

    def create_product(self, principal: Principal, body: Any) -> Offer:
        tenant = self.tenancy.tenant_of(principal)
        bases = []
        for base_id in body.addon_for:
            base = self.products.get(tenant.id, base_id)
            if base is None:
                raise BadRequest(
                    f"unknown product {base_id}", field="addon_for", code="unknown_product"
                )
            bases.append(base)
        domain.check_addon_bases(bases)
        costs = body.costs.model_dump(exclude_none=True) if body.costs else None
        product = domain.new_product(
            new_id("prd"),
            tenant.id,
            sku=body.sku,
            name=body.name,
            type=body.type,
            billing_cycles=list(body.billing_cycles),
            unit=body.unit,
            created_at=rfc3339(now_utc()),
            currency=tenant.currency,
            costs=costs,
            addon_for=bases,
            description=body.description,
            categories=list(body.categories),
            visible=body.visible,
            plan=body.plan,
            commitments=_commitments_body(body.commitments),
        )
        self._holding_sku(product, lambda: self.products.create_own(product))
        return self.offer(principal, product.id)

    def update_product(self, principal: Principal, product_id: str, body: Any) -> Offer:
        product = self.product(principal, product_id)
        changes = body.model_dump(exclude_unset=True)
        if "costs" in changes:
            tenant = self.tenancy.tenant_of(principal)
            raw = changes["costs"] or {}
            changes["costs"] = {
                cycle: parse_price(amount, tenant.currency, field=f"costs.{cycle}")
                for cycle, amount in raw.items()
                if amount is not None
            }
        if "commitments" in changes:
            changes["commitments"] = _commitments_body(body.commitments)
        for name in ("name", "visible", "sku", "type", "billing_cycles", "unit", "status"):
            if name in changes and changes[name] is None:
                raise BadRequest(f"{name} cannot be null", field=name)
        updated = domain.update_product(product, changes)
        if updated.sku != product.sku:
            self._holding_sku(updated, lambda: self.products.change_sku(updated, product))
        elif updated != product:  # an empty or no-op PATCH writes nothing
            self.units.save(updated)
        return self.offer(principal, product_id)

    def _holding_sku(self, product: Product, write: Callable[[], None]) -> None:
        """R1, R29: write an own product that takes its SKU (a transaction conditional on no
        product holding it); if it fails, a SKU taken meanwhile is a 400 ``sku_taken`` naming
        ``sku``, anything else the 409 of a concurrent change."""
        domain.check_sku_free(
            product.sku, self.products.sku_holders(product.tenant_id, product.sku), product.id
        )
        try:
            write()
        except ConcurrentUpdate:
            holders = self.products.sku_holders(product.tenant_id, product.sku)
            domain.check_sku_free(product.sku, holders, product.id)
            raise

    def offer(
        self, principal: Principal, product_id: str, price_list_id: str | None = None
    ) -> Offer:
        product = self.product(principal, product_id)
        tenant = self.tenancy.tenant_of(principal)  # once per request (issue 12)
        price_list = self._caller_list(principal, tenant, price_list_id)
        if principal.role != TENANT_ADMIN and (
            price_list is None or not product.visible or not self._offered(price_list, product)
        ):
            raise hidden("product")
        return self._offers([product], price_list, principal, tenant)[0]

    def list_products(
        self,
        principal: Principal,
        price_list_id: str | None,
        limit: int,
        cursor: str | None,
        *,
        margin_alert: bool = False,
    ) -> Page[Offer]:
        """The caller's catalogue at the caller's prices (R10): a tenant admin sees every
        product (with costs; with ``margin_alert``, only those with a fixed price below cost);
        a reseller or customer sees the visible, sellable products of its price list."""
        tenant = self.tenancy.tenant_of(principal)  # once per request (issue 12)
        price_list = self._caller_list(principal, tenant, price_list_id)
        tenant_id = principal.tenant()
        if margin_alert and principal.role != TENANT_ADMIN:
            raise Forbidden("margin alerts are the tenant admin's", field="margin_alert")
        if principal.role == TENANT_ADMIN:
            page = self.products.page(tenant_id, limit, cursor, margin_alert=margin_alert)
            return Page(self._offers(page.items, price_list, principal, tenant), page.next_cursor)
        return self.shop_window(tenant, price_list, limit, cursor)

    def shop_window(
        self, tenant: Tenant, price_list: PriceList | None, limit: int, cursor: str | None
    ) -> Page[Offer]:
        """The visible, sellable products of ``price_list`` at its prices (R10): what a
        reseller or customer sees, and an anonymous storefront visitor at the storefront's
        list (R30). One Query of the list's entries, one BatchGet of their products."""
        if price_list is None:
            return Page([])
        entries, next_cursor = self.price_lists.products_page(
            tenant.id, price_list.id, limit, cursor
        )
        products = self.products.get_many(tenant.id, (e.product_id for e in entries))
        shown = [
            products[pid]
            for pid in dict.fromkeys(e.product_id for e in entries)
            if pid in products and products[pid].visible and products[pid].sellable
        ]
        return Page(self._offers(shown, price_list, None, tenant, entries), next_cursor)

    def _offered(self, price_list: PriceList, product: Product) -> bool:
        return (
            bool(
                self.price_lists.prices_for(
                    price_list.tenant_id, price_list.id, [product.id], product.billing_cycles
                )
            )
            and product.sellable
        )

    def _offers(
        self,
        products: list[Product],
        price_list: PriceList | None,
        principal: Principal | None,
        tenant: Tenant,
        entries: list[Price] | None = None,
    ) -> list[Offer]:
        by_product: dict[str, list[Price]] = {}
        if price_list is not None and products:
            if entries is None:
                entries = self.price_lists.prices_for(
                    price_list.tenant_id,
                    price_list.id,
                    [p.id for p in products],
                    domain.BILLING_CYCLES,
                )
            for entry in entries:
                by_product.setdefault(entry.product_id, []).append(entry)
        # costs (and margin alerts) are the tenant admin's, in the tenant's own currency
        admin = principal is not None and principal.role == TENANT_ADMIN
        currency = tenant.currency if admin else None
        offers = []
        for product in products:
            prices = (
                domain.price_view(by_product.get(product.id, []), product, price_list.currency)
                if price_list
                else {}
            )
            if currency is None:
                offers.append(Offer(product, price_list, prices, None, []))
                continue
            costs = {c: format_money(a, currency) for c, a in product.costs.items()}
            offers.append(Offer(product, price_list, prices, costs, list(product.margin_alerts)))
        return offers

    def _caller_list(
        self, principal: Principal, tenant: Tenant, price_list_id: str | None
    ) -> PriceList | None:
        tenant_id = principal.tenant()
        if principal.role == TENANT_ADMIN:
            if price_list_id is not None:
                return self.price_list(tenant_id, price_list_id)
            if tenant.default_price_list_id is None:
                return None
            return self.price_lists.get(tenant_id, tenant.default_price_list_id)
        if price_list_id is not None:
            raise BadRequest("only a tenant admin picks a price list", field="price_list_id")
        account = self.tenancy.account(principal, principal.account_id or "")
        list_id = self.buyer_list_id(tenant, account)
        return self.price_lists.get(tenant_id, list_id) if list_id else None

    # --- the buyer's price (orders) ---

    def buyer_list_id(self, tenant: Tenant, account: Account) -> str | None:
        """The list an account buys at (R2, R20): its own assignment, else its lite reseller's
        (who is billed for it), else the tenant's default list for direct customers."""
        if account.price_list_id:
            return account.price_list_id
        if account.parent_account_id:
            parent = self.accounts.get(tenant.id, account.parent_account_id)
            if parent is not None and parent.price_list_id:
                return parent.price_list_id
        return tenant.default_price_list_id

    def buyer_price(
        self, tenant: Tenant, account: Account, product: Product, cycle: str
    ) -> tuple[PriceList, Decimal]:
        list_id = self.buyer_list_id(tenant, account)
        price_list = self.price_lists.get(tenant.id, list_id) if list_id else None
        if price_list is None:
            raise BadRequest(
                "the account has no price list to buy at", field="account_id", code="no_price_list"
            )
        if price_list.currency != account.currency:
            raise BadRequest(
                f"the price list is in {price_list.currency}, the account in {account.currency}",
                field="account_id",
                code="currency_mismatch",
            )
        entry = self.price_lists.price(tenant.id, price_list.id, product.id, cycle)
        if entry is None or (entry.price is None and cycle not in product.costs):
            raise BadRequest(
                f"{product.sku} is not offered {cycle} in the buyer's price list",
                field="product_id",
                code="not_in_price_list",
            )
        return price_list, domain.effective_price(entry, product, price_list.currency)

    # --- price lists ---

    def create_price_list(self, principal: Principal, body: Any) -> PriceList:
        tenant = self.tenancy.tenant_of(principal)
        minor_unit(body.currency)
        if body.default and body.currency != tenant.currency:  # R29: refused before any write
            raise BadRequest(
                "the default list must be in the tenant's currency",
                field="currency",
                code="currency_mismatch",
            )
        price_list = PriceList(
            id=new_id("prl"),
            tenant_id=tenant.id,
            name=body.name,
            currency=body.currency,
            created_at=rfc3339(now_utc()),
        )
        becomes_default = (body.default or tenant.default_price_list_id is None) and (
            body.currency == tenant.currency
        )
        if becomes_default:  # the list and the tenant's pointer to it, together
            with self.units() as uow:
                uow.save(price_list)
                uow.save(replace(tenant, default_price_list_id=price_list.id))
        else:
            self.units.save(price_list)
        return self.get_price_list(principal, price_list.id)

    def get_price_list(self, principal: Principal, price_list_id: str) -> PriceList:
        price_list = self.price_lists.get(principal.tenant(), price_list_id)
        if price_list is None:
            raise hidden("price list")
        return price_list

    def is_default(self, principal: Principal, price_list: PriceList) -> bool:
        return self.tenancy.tenant_of(principal).default_price_list_id == price_list.id

    def list_price_lists(
        self, principal: Principal, limit: int, cursor: str | None
    ) -> tuple[Page[PriceList], str | None]:
        """A page of the tenant's price lists, and the id of its default one (R2)."""
        default = self.tenancy.tenant_of(principal).default_price_list_id
        return self.price_lists.page(principal.tenant(), limit, cursor), default

    def set_price(
        self, principal: Principal, price_list_id: str, body: Any
    ) -> tuple[Price, Decimal]:
        price_list = self.get_price_list(principal, price_list_id)
        product = self.products.get(price_list.tenant_id, body.product_id)
        if product is None:
            raise BadRequest(
                f"unknown product {body.product_id}", field="product_id", code="unknown_product"
            )
        previous = self.price_lists.price(
            price_list.tenant_id, price_list.id, product.id, body.billing_cycle
        )
        entry = domain.new_price(
            price_list,
            product,
            billing_cycle=body.billing_cycle,
            price=body.price,
            markup_percent=body.markup_percent,
            updated_at=rfc3339(now_utc()),
            previous=previous,
        )
        self.units.save(entry)
        stored = present(
            self.price_lists.price(
                price_list.tenant_id, price_list.id, product.id, body.billing_cycle
            ),
            "the price just set",
        )
        self._refresh_margin_alerts(principal, product)
        return stored, domain.effective_price(stored, product, price_list.currency)

    def set_prices(
        self, principal: Principal, price_list_id: str, bodies: list[Any]
    ) -> list[tuple[Price, Decimal]]:
        """Several entries at once (``POST /pricelists/{id}/prices`` with ``entries``): each
        checked as one entry is (a refusal names ``entries.{i}.{field}``), then all written in
        one transaction, each conditional on the version read, or none (R29). The propagation
        of each follows from the prices stream as for one entry (R5)."""
        price_list = self.get_price_list(principal, price_list_id)
        products, current = self.current_entries(price_list, bodies)
        entries = domain.proposed_entries(
            price_list,
            products,
            [body.model_dump() for body in bodies],
            current,
            updated_at=rfc3339(now_utc()),
        )
        with self.units() as uow:
            for entry in entries:
                uow.save(entry)
        stored = {
            (e.product_id, e.billing_cycle): e
            for e in self.price_lists.prices_for(
                price_list.tenant_id,
                price_list.id,
                products,
                domain.BILLING_CYCLES,
            )
        }
        for product in products.values():
            self._refresh_margin_alerts(principal, product)
        return [
            (
                stored[(e.product_id, e.billing_cycle)],
                domain.effective_price(
                    stored[(e.product_id, e.billing_cycle)],
                    products[e.product_id],
                    price_list.currency,
                ),
            )
            for e in entries
        ]

    def current_entries(
        self, price_list: PriceList, bodies: list[Any]
    ) -> tuple[dict[str, Product], dict[tuple[str, str], Price | None]]:
        """The products the bodies name (those that exist) and the list's entries for them
        now, every cycle (R34: what a proposal is compared with)."""
        products = self.products.get_many(
            price_list.tenant_id, dict.fromkeys(body.product_id for body in bodies)
        )
        current: dict[tuple[str, str], Price | None] = {
            (e.product_id, e.billing_cycle): e
            for e in self.price_lists.prices_for(
                price_list.tenant_id, price_list.id, products, domain.BILLING_CYCLES
            )
        }
        return products, current

    def _refresh_margin_alerts(self, principal: Principal, product: Product) -> None:
        """R5: a fixed price set below the cost is flagged at once, one set above it clears.
        The price is stored already: when the product moved on meanwhile (another price or a
        rename, R29), the alerts are computed again over what is stored now, so they never lag
        the prices."""
        currency = self.tenancy.tenant_of(principal).currency
        for attempt in range(1, _ALERT_ATTEMPTS + 1):
            if not product.costs:
                return
            prices = self.price_lists.entries_in_lists(product.tenant_id, currency, product.id)
            alerts = domain.margin_alerts(product, prices)
            if alerts == product.margin_alerts:
                return
            try:
                self.products.set_margin_alerts(product, alerts)
                return
            except ConcurrentUpdate:
                fresh = self.products.get(product.tenant_id, product.id)
                if fresh is None or attempt == _ALERT_ATTEMPTS:
                    raise
                product = fresh

    def retire_product(self, principal: Principal, product_id: str) -> Offer:
        """``DELETE /products/{id}`` (R4): no longer sold, off the storefront; subscriptions go
        on. A copy its provider still offers is refused."""
        product = self.product(principal, product_id)
        retired = domain.retire_product(product)
        if retired != product:
            self.units.save(retired)
        return self.offer(principal, product_id)

    def list_prices(
        self, principal: Principal, price_list_id: str, limit: int, cursor: str | None
    ) -> tuple[PriceList, Page[tuple[Price, Decimal | None]]]:
        price_list = self.get_price_list(principal, price_list_id)
        page = self.price_lists.prices(price_list.tenant_id, price_list.id, limit, cursor)
        products = self.products.get_many(price_list.tenant_id, (e.product_id for e in page.items))
        rows = []
        for entry in page.items:
            product = products.get(entry.product_id)
            amount = None
            if product is not None and (
                entry.price is not None or entry.billing_cycle in product.costs
            ):
                amount = domain.effective_price(entry, product, price_list.currency)
            rows.append((entry, amount))
        return price_list, Page(rows, page.next_cursor)


@dataclass
class Reached:
    """R34: one tenant a simulated change reaches, and what it would do there."""

    tenant: Tenant
    tier: int
    provider_id: str | None
    price_list_id: str
    forecast: domain.Forecast
    invoice_truncated: bool = False


@dataclass
class Simulation:
    """R34: a proposed change of ``price_list``, tier by tier; nothing was written."""

    price_list: PriceList
    reached: list[Reached] = field(default_factory=list)
    skipped: int = 0
    truncated: bool = False


class Simulator:
    """R34: ``POST /pricelists/{id}/simulate``. Reads what propagation (R5, R6) would read —
    the list's offer now and proposed, each assignee's copies, lists and entries, down every
    tier — and what each child is billed for (``ResoldSubscriptions``), and lets the domain
    (``simulate_list``, ``simulate_child``: propagation's own rules) say what would change.
    Writes nothing. Bounded: at most ``MAX_TENANTS`` tenants (breadth first: tier 1 first) and
    ``MAX_SUBSCRIPTIONS`` subscriptions read; beyond them the answer says ``truncated``."""

    MAX_TENANTS = 100
    MAX_SUBSCRIPTIONS = 1_000
    PAGE = 100

    def __init__(self, catalogue: CatalogueService, resold: ResoldSubscriptions) -> None:
        self.catalogue = catalogue
        self.tenants = catalogue.tenants
        self.accounts = catalogue.accounts
        self.products = catalogue.products
        self.price_lists = catalogue.price_lists
        self.resold = resold

    def simulate(self, principal: Principal, price_list_id: str, bodies: list[Any]) -> Simulation:
        catalogue = self.catalogue
        price_list = catalogue.get_price_list(principal, price_list_id)
        owner = catalogue.tenancy.tenant_of(principal)
        now = rfc3339(now_utc())
        products, current = catalogue.current_entries(price_list, bodies)
        proposed = domain.proposed_entries(
            price_list, products, [body.model_dump() for body in bodies], current, updated_at=now
        )
        fixed = {
            pid: self.price_lists.entries_in_lists(owner.id, owner.currency, pid)
            for pid, product in products.items()
            if product.costs
        }
        forecast, changes = domain.simulate_list(
            owner, price_list, products, current, proposed, fixed
        )
        simulation = Simulation(
            price_list, [Reached(owner, 0, owner.parent_id, price_list.id, forecast)]
        )
        known = {owner.id: owner}
        overwritten: dict[str, dict[str, dict[str, Price]]] = {}
        budget = [self.MAX_SUBSCRIPTIONS]
        queue = deque([(owner.id, price_list.id, 1, changes)])
        while queue:
            provider_id, list_id, tier, offers = queue.popleft()
            cursor: str | None = None
            while True:
                room = self.MAX_TENANTS - len(simulation.reached) + 1 - simulation.skipped
                if room <= 0:  # the bound: is anyone left out?
                    more = self.accounts.assignees(provider_id, list_id, 1, cursor)
                    simulation.truncated |= any(c not in known for c in more.items)
                    break
                page = self.accounts.assignees(provider_id, list_id, min(self.PAGE, room), cursor)
                for child_id in page.items:
                    if child_id in known:
                        continue
                    reached = self._child(
                        known[provider_id],
                        child_id,
                        list_id,
                        tier,
                        offers,
                        budget,
                        now,
                        overwritten.get(provider_id, {}),
                    )
                    if reached is None:
                        simulation.skipped += 1
                        continue
                    known[child_id] = reached.tenant
                    overwritten[child_id] = reached.forecast.overwritten
                    simulation.reached.append(reached)
                    simulation.truncated |= reached.invoice_truncated
                    onward: dict[str, list[domain.OfferChange]] = {}
                    for change in reached.forecast.onward:
                        onward.setdefault(change.price_list_id, []).append(change)
                    for next_list, next_offers in onward.items():
                        queue.append((child_id, next_list, tier + 1, next_offers))
                cursor = page.next_cursor
                if cursor is None:
                    break
        return simulation

    def _retail(
        self,
        provider: Tenant,
        child: Tenant,
        list_id: str,
        offers: list[domain.OfferChange],
        overwritten: dict[str, dict[str, Price]],
    ) -> dict[str, dict[str, Price]]:
        """``overwrite_sell_prices`` (R5 option): the provider's default-list entries of the
        changed products after publishing: as they are, with the provider's own overwritten
        ones (``overwritten``), or the proposal itself when that list is the one changing."""
        if not domain.sells_at_retail(child, provider):
            return {}
        default = present(provider.default_price_list_id, "a default list")
        sources = [change.after.product.id for change in offers]
        retail: dict[str, dict[str, Price]] = {}
        for entry in self.price_lists.prices_for(
            provider.id, default, sources, domain.BILLING_CYCLES
        ):
            retail.setdefault(entry.product_id, {})[entry.billing_cycle] = entry
        for product_id, entries in overwritten.items():
            retail[product_id] = {**retail.get(product_id, {}), **entries}
        for change in offers:
            if list_id == default:
                retail[change.after.product.id] = dict(change.after.entries)
        return retail

    def _child(
        self,
        provider: Tenant,
        child_id: str,
        list_id: str,
        tier: int,
        offers: list[domain.OfferChange],
        budget: list[int],
        now: str,
        overwritten: dict[str, dict[str, Price]],
    ) -> Reached | None:
        """One child's book (what propagation would read of it, and what it is billed for),
        and the domain's forecast of it; None when propagation would skip it."""
        child = self.tenants.get(child_id)
        if child is None or not domain.propagates_to(child, provider.id):
            return None
        sources = [change.after.product for change in offers]
        copy_ids = {
            pid: derived_id("prd", child_id, pid)
            for source in sources
            for pid in (source.id, *source.addon_for)
        }
        wanted = [copy_ids[source.id] for source in sources]
        copies = self.products.get_many(child_id, wanted)
        lists = self.price_lists.all_lists(child_id)
        entries: dict[tuple[str, str], dict[str, Price]] = {}
        for child_list in lists:
            for entry in self.price_lists.prices_for(
                child_id, child_list.id, wanted, domain.BILLING_CYCLES
            ):
                entries.setdefault((child_list.id, entry.product_id), {})[entry.billing_cycle] = (
                    entry
                )
        resold: list[domain.Resold] = []
        truncated = False
        if child.reseller_account_id is not None:
            resold, read, truncated = self.resold.resold(
                provider.id,
                child.reseller_account_id,
                {source.id for source in sources},
                today_in(provider.time_zone),
                budget[0],
            )
            budget[0] -= read
        book = domain.ChildBook(
            tenant=child,
            copies={cid: copies.get(cid) for cid in wanted},
            lists=lists,
            entries=entries,
            resold=resold,
            provider=provider,
            retail=self._retail(provider, child, list_id, offers, overwritten),
        )
        forecast = domain.simulate_child(offers, book, copy_ids=copy_ids, now=now)
        if forecast is None:
            return None
        return Reached(child, tier, provider.id, list_id, forecast, truncated)


class Propagator:
    """R5, R6: a provider's price-list change reaching every active tenant reseller the list is
    assigned to, a page of ``PAGE`` tenants per queue message, and on down every tier.

    - A prices-stream record (an entry of a list changed or added) or a products-stream record
      (a product's offer changed: a provider's edit, or a copy re-derived one tier up) becomes
      one message per list holding the product: ``(provider, list, product, cursor=None)``.
    - A message reads the offer as it is now (consistent reads), re-derives the copy of each
      assignee on its page (one conditional write per copy, only over an older offer), then
      sends the next page's message. A duplicate or late message finds the copies at its offer
      or a newer one and writes nothing (``domain.rederive_copy``).
    - A copy's write is a products-stream record in the child: the change flows on to the
      child's own lists' assignees (R6).
    """

    PAGE = 100
    ATTEMPTS = 3

    def __init__(
        self,
        tenants: Tenants,
        accounts: Accounts,
        products: Products,
        price_lists: PriceListStore,
        queue: Queue,
        units: Units,
    ) -> None:
        self.units = units
        self.tenants = tenants
        self.accounts = accounts
        self.products = products
        self.price_lists = price_lists
        self.queue = queue

    # --- the streams: what changed → messages ---

    def price_changed(self, entry: Price) -> int:
        """An entry of a list was set (a price changed, a product or cycle added)."""
        if not self._assigned(entry.tenant_id, entry.price_list_id):
            return 0
        self._send(
            PriceChange(
                provider_tenant_id=entry.tenant_id,
                price_list_id=entry.price_list_id,
                product_id=entry.product_id,
            )
        )
        return 1

    def product_changed(self, before: Product | None, after: Product) -> int:
        """A product's offer changed: every list of its tenant holding it fans out (R6)."""
        if not domain.offer_changed(before, after):
            return 0
        sent = 0
        for price_list in self.price_lists.all_lists(after.tenant_id):
            if not self._assigned(after.tenant_id, price_list.id):
                continue
            if self.price_lists.entries(after.tenant_id, price_list.id, after.id):
                self._send(
                    PriceChange(
                        provider_tenant_id=after.tenant_id,
                        price_list_id=price_list.id,
                        product_id=after.id,
                    )
                )
                sent += 1
        return sent

    # --- the queue: one page of assignees ---

    def propagate_page(self, change: PriceChange) -> int:
        """Re-derive the copies of one page of the list's assignees; returns how many copies
        were written."""
        offered = self._offered(change)
        if offered is None:
            return 0
        page = self.accounts.assignees(
            change.provider_tenant_id, change.price_list_id, self.PAGE, change.cursor
        )
        now = rfc3339(now_utc())
        written = sum(self._apply(child_id, offered, now) for child_id in page.items)
        if page.next_cursor is not None:  # after the page: a retried page sends it once more
            self._send(change.model_copy(update={"cursor": page.next_cursor}))
        return written

    def _offered(self, change: PriceChange) -> domain.Offered | None:
        provider = change.provider_tenant_id
        product = self.products.get(provider, change.product_id, consistent=True)
        price_list = self.price_lists.get(provider, change.price_list_id, consistent=True)
        if product is None or price_list is None:
            return None
        entries = self.price_lists.entries(provider, price_list.id, product.id, consistent=True)
        return domain.Offered(product, entries, price_list.currency)

    def _apply(self, child_id: str, offered: domain.Offered, now: str) -> int:
        """One child's copy (R5): read, re-derive, write once; again if it changed meanwhile."""
        child = self.tenants.get(child_id)
        if child is None or not domain.propagates_to(child, offered.product.tenant_id):
            return 0
        propagation = domain.Propagation(
            child.propagation, child.overwrite_sell_prices, child.overwrite_names
        )
        copy_id = derived_id("prd", child_id, offered.product.id)
        addon_for = [derived_id("prd", child_id, base) for base in offered.product.addon_for]
        for _ in range(self.ATTEMPTS):
            copy = self.products.get(child_id, copy_id, consistent=True)
            updated = domain.rederive_copy(
                offered,
                copy,
                child_tenant_id=child_id,
                copy_id=copy_id,
                addon_for=addon_for,
                propagation=propagation,
                now=now,
            )
            if updated is None:
                return 0
            if copy is None or updated.costs != copy.costs:
                prices = self.price_lists.entries_in_lists(child_id, child.currency, copy_id)
                updated = replace(updated, margin_alerts=domain.margin_alerts(updated, prices))
            if self.products.write_copy(updated, copy):
                if copy is None:
                    self._warn_shared_sku(updated)
                if propagation.overwrite_sell_prices:
                    self._overwrite_sell_prices(child, updated, offered)
                return 1
        raise ConcurrentUpdate()  # the message fails and is retried

    def _warn_shared_sku(self, copy: Product) -> None:
        """A new copy whose SKU one of the child's own products holds too (made before the
        provider offered it): the copy is made all the same (R5: the provider's offer reaches
        its tenants) and both keep the SKU; the child's admin may rename its own one."""
        others = self.products.sku_holders(copy.tenant_id, copy.sku) - {copy.id}
        if others:
            log.warning(
                "tenant %s: the copy %s of %s shares SKU %s with %s",
                copy.tenant_id,
                copy.id,
                copy.origin_product_id,
                copy.sku,
                ", ".join(sorted(others)),
            )

    def _overwrite_sell_prices(self, child: Tenant, copy: Product, offered: domain.Offered) -> None:
        """R5 option: the child's default list sells the product at its provider's own (default
        list) prices; markup prices are left to follow the cost."""
        provider = self.tenants.get(offered.product.tenant_id)
        if provider is None or not domain.sells_at_retail(child, provider):
            return
        retail = self.price_lists.entries(
            provider.id,
            present(provider.default_price_list_id, "a default list"),
            offered.product.id,
        )
        default = present(child.default_price_list_id, "a default list")
        mine = self.price_lists.entries(child.id, default, copy.id)
        changed = domain.retail_prices(
            offered.product, retail, mine, child.currency, updated_at=rfc3339(now_utc())
        )
        for entry in changed.values():
            self.units.save(entry)

    def _assigned(self, tenant_id: str, price_list_id: str) -> bool:
        """Whether any tenant reseller has the list: a retail list, or one nobody is assigned
        yet, sends no message (a tenant assigned it later copies its catalogue then, R3)."""
        return bool(self.accounts.assignees(tenant_id, price_list_id, 1, None).items)

    def _send(self, change: PriceChange) -> None:
        self.queue.send(change.model_dump())


def _commitments_body(body: Any) -> dict[str, Any] | None:
    """R31: a request's ``commitments`` (``schemas.CycleCommitments``) as the domain takes it:
    ``{cycle: {field: value}}``, the fields given, the cycles set."""
    if body is None:
        return None
    return {
        cycle: {k: v for k, v in value.items() if v is not None}
        for cycle, value in body.model_dump().items()
        if value is not None
    }
