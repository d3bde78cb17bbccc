"""Use cases of the storefront: subscriptions, add-ons, actions, each with its order in the same
transaction (R8–R10)."""

from __future__ import annotations

import logging
from collections.abc import Collection
from dataclasses import replace
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from functions.core import clock
from functions.core.auth import RESELLER, TENANT_ADMIN, Principal, hidden
from functions.core.clock import rfc3339, today_in
from functions.core.domain import LITE_RESELLER, Account, Tenant, in_scope
from functions.core.errors import BadRequest, Conflict, present
from functions.core.ids import new_id
from functions.core.pagination import Page
from functions.core.periods import monthly_period
from functions.core.units import Units
from functions.orders import domain
from functions.orders.coterm import Coterm, month_end
from functions.orders.domain import Order, ProductRef, Subscription
from functions.orders.ports import Orders, R, Records, Subscriptions
from functions.pricelist.domain import Product, Resold

log = logging.getLogger("bss.orders")

#: who writes the automatic renewals of due downgrades (R31), as an order's ``created_by``
RENEWAL_SCHEDULE = "renewal-schedule"

if TYPE_CHECKING:
    from functions.core.services import TenancyService
    from functions.pricelist.services import CatalogueService

MAX_BACKDATE = timedelta(days=365)
MAX_FORWARD = timedelta(days=365)


def _ref(product: Product) -> ProductRef:
    return ProductRef(
        product.id,
        product.sku,
        product.name,
        product.type,
        product.billing_cycles,
        product.addon_for,
        product.origin_tenant_id,
        product.origin_product_id,
    )


class OrderService:
    def __init__(
        self,
        units: Units,
        tenancy: TenancyService,
        catalogue: CatalogueService,
        subscriptions: Subscriptions,
        orders: Orders,
    ) -> None:
        self.units = units
        self.tenancy = tenancy
        self.catalogue = catalogue
        self.subscriptions = subscriptions
        self.orders = orders

    # --- reading ---

    def subscription(self, principal: Principal, subscription_id: str) -> Subscription:
        return self._visible(principal, self.subscriptions, subscription_id, "subscription")

    def today(self, principal: Principal) -> date:
        return today_in(self.tenancy.tenant_of(principal).time_zone)

    def moment(self, principal: Principal) -> tuple[datetime, str]:
        """Now and the tenant's time zone: what a subscription's commitment dates need (R31)."""
        return clock.now_utc(), self.tenancy.tenant_of(principal).time_zone

    def list_subscriptions(
        self, principal: Principal, account_id: str | None, limit: int, cursor: str | None
    ) -> Page[Subscription]:
        return self._listing(principal, self.subscriptions, account_id, limit, cursor)

    def list_addons(self, principal: Principal, subscription_id: str) -> Page[Subscription]:
        sub = self.subscription(principal, subscription_id)
        return self.subscriptions.addons(sub.tenant_id, sub.id)

    def order(self, principal: Principal, order_id: str) -> Order:
        return self._visible(principal, self.orders, order_id, "order")

    def list_orders(
        self, principal: Principal, account_id: str | None, limit: int, cursor: str | None
    ) -> Page[Order]:
        return self._listing(principal, self.orders, account_id, limit, cursor)

    def _visible(self, principal: Principal, records: Records[R], record_id: str, what: str) -> R:
        """A subscription or order in the caller's scope (R12); any other is a 404 (R28)."""
        record = records.get(principal.tenant(), record_id)
        if record is None or not in_scope(principal, record.account_id, record.reseller_account_id):
            raise hidden(what)
        return record

    def _listing(
        self,
        principal: Principal,
        records: Records[R],
        account_id: str | None,
        limit: int,
        cursor: str | None,
    ) -> Page[R]:
        """One account's (in the caller's scope), else all the caller may see: the tenant's for
        its admin, a reseller's customers' and its own, a customer's own (R12)."""
        tenant_id = principal.tenant()
        if account_id is not None:
            self.tenancy.account(principal, account_id)
            return records.for_account(tenant_id, account_id, limit, cursor)
        if principal.role == TENANT_ADMIN:
            return records.page(tenant_id, limit, cursor)
        if principal.role == RESELLER:
            return records.for_reseller(tenant_id, principal.account_id or "", limit, cursor)
        return records.for_account(tenant_id, principal.account_id or "", limit, cursor)

    # --- ordering ---

    def _product(self, principal: Principal, tenant: Tenant, product_id: str) -> Product:
        product = self.catalogue.products.get(tenant.id, product_id)
        if product is None or (principal.role != TENANT_ADMIN and not product.visible):
            raise BadRequest(
                f"unknown product {product_id}", field="product_id", code="unknown_product"
            )
        if not product.sellable:
            raise BadRequest(
                f"{product.sku} is discontinued", field="product_id", code="product_discontinued"
            )
        return product

    def _buyer(self, principal: Principal, account_id: str) -> Account:
        account = self.tenancy.account(principal, account_id)
        if account.mirrored:  # R16: the provider does not sell to a reseller's customer
            raise Conflict(
                "this account is a reseller's customer; it buys from its reseller",
                code="locked_by_reseller",
                field="account_id",
            )
        return account

    def create_subscription(self, principal: Principal, body: Any) -> tuple[Subscription, Order]:
        tenant = self.tenancy.tenant_of(principal)
        account = self._buyer(principal, body.account_id)
        product = self._product(principal, tenant, body.product_id)
        if product.type == domain.RESELLER_PLAN:
            domain.check_plan_order(
                plans_enabled=tenant.reseller_plans,
                reseller=account.kind == LITE_RESELLER,
                enable_reselling=account.enable_reselling,
                plan=product.plan,
                quantity=body.quantity,
                current_plan_ids=self.plan_subscriptions(tenant, account.id),
            )
        return self._order_new(
            principal,
            tenant,
            account,
            product,
            body,
            parent=None,
            billing_cycle=body.billing_cycle,
            term=body.term,
            start=body.start_date,
            auto_renew=body.auto_renew,
            coterm=getattr(body, "coterm", None),
        )

    def _coterm(
        self, tenant: Tenant, account: Account, asked: Any, start: date, today: date
    ) -> Coterm | None:
        """R31 co-terming: ``{"subscription_id": …}`` (a live subscription of the same account;
        any other, or another tenant's, is a 400 naming ``coterm.subscription_id``) or
        ``{"month_end": true}``; exactly one (400 naming ``coterm``)."""
        if asked is None:
            return None
        if (asked.subscription_id is None) == (asked.month_end is None):
            raise BadRequest(
                "coterm takes exactly one of subscription_id and month_end",
                field="coterm",
                code="invalid_value",
            )
        if asked.month_end is False:
            raise BadRequest(
                "month_end is true or left out", field="coterm.month_end", code="invalid_value"
            )
        if asked.month_end:
            return Coterm(month_end(start))
        target = self.subscriptions.get(tenant.id, asked.subscription_id)
        if target is None or target.account_id != account.id:
            raise BadRequest(
                f"unknown subscription {asked.subscription_id} of account {account.id}",
                field="coterm.subscription_id",
                code="unknown_subscription",
            )
        return domain.coterm_with(target, start, today)

    def plan_subscriptions(self, tenant: Tenant, account_id: str) -> list[str]:
        """The account's reseller plan subscriptions not cancelled or expired (R27): its own
        subscriptions (a lite reseller buys few for itself) and their products."""
        today = today_in(tenant.time_zone)
        found: list[str] = []
        cursor: str | None = None
        while True:
            page = self.subscriptions.for_account(tenant.id, account_id, 100, cursor)
            for sub in page.items:
                if sub.account_id != account_id or sub.is_addon:
                    continue
                if sub.status_on(today) in (domain.CANCELLED, domain.EXPIRED):
                    continue
                product = self.catalogue.products.get(tenant.id, sub.product_id)
                if product is not None and product.type == domain.RESELLER_PLAN:
                    found.append(sub.id)
            cursor = page.next_cursor
            if cursor is None:
                return found

    def add_addon(
        self, principal: Principal, subscription_id: str, body: Any
    ) -> tuple[Subscription, Order]:
        tenant = self.tenancy.tenant_of(principal)
        parent = self.subscription(principal, subscription_id)
        domain.check_unlocked(parent)
        if parent.is_addon:
            raise BadRequest("an add-on has no add-ons of its own", field="subscription_id")
        today = today_in(tenant.time_zone)
        active = [
            a
            for a in self.subscriptions.addons(tenant.id, parent.id).items
            if a.status_on(today) != domain.CANCELLED
        ]
        if len(active) >= domain.MAX_ADDONS:
            raise Conflict(f"a subscription carries at most {domain.MAX_ADDONS} add-ons")
        base = self.catalogue.products.get(tenant.id, parent.product_id)
        if base is not None:
            domain.check_plan_licence(base.type, addon=True)
        account = self._buyer(principal, parent.account_id)
        product = self._product(principal, tenant, body.product_id)
        return self._order_new(
            principal,
            tenant,
            account,
            product,
            body,
            parent=parent,
            billing_cycle=parent.billing_cycle,
            term=parent.term,
            start=None,
            auto_renew=parent.auto_renew,
        )

    def _order_new(
        self,
        principal: Principal,
        tenant: Tenant,
        account: Account,
        product: Product,
        body: Any,
        *,
        parent: Subscription | None,
        billing_cycle: str,
        term: str | None,
        start: date | None,
        auto_renew: bool,
        coterm: Any = None,
    ) -> tuple[Subscription, Order]:
        today = today_in(tenant.time_zone)
        start = start or today
        if not today - MAX_BACKDATE <= start <= today + MAX_FORWARD:
            raise BadRequest(
                "start_date must be within a year of today", field="start_date", code="out_of_range"
            )
        aligned = self._coterm(tenant, account, coterm, start, today)
        if billing_cycle not in product.billing_cycles:
            raise BadRequest(
                f"{product.sku} is not sold {billing_cycle}",
                field="billing_cycle",
                code="unsupported_billing_cycle",
            )
        price_list, unit_price = self.catalogue.buyer_price(tenant, account, product, billing_cycle)
        at = clock.now_utc()
        now = rfc3339(at)
        sub = domain.new_subscription(
            new_id("sub"),
            tenant_id=tenant.id,
            account_id=account.id,
            reseller_account_id=account.reseller_scope,
            product=_ref(product),
            quantity=body.quantity,
            billing_cycle=billing_cycle,
            term=term,
            start=start,
            today=today,
            auto_renew=auto_renew,
            characteristics=body.characteristics,
            currency=price_list.currency,
            unit_price=unit_price,
            price_list_id=price_list.id,
            parent=parent,
            now=now,
            commitment=product.commitments.get(billing_cycle),  # R31: the one in force now
            at=at,
            time_zone=tenant.time_zone,
            coterm=aligned,
        )
        order_type = domain.ADDON_ADDED if parent else domain.NEW
        order = domain.order_for(
            new_id("ord"),
            order_type,
            sub,
            _ref(product),
            effective=date.fromisoformat(sub.start_date),
            now=now,
            created_by=principal.sub,
        )
        self._commit([sub], [order])
        return self.subscription(principal, sub.id), order

    def act(
        self, principal: Principal, subscription_id: str, body: Any
    ) -> tuple[Subscription, Order]:
        """One action of ``POST /subscriptions/{id}/actions`` and its order (R9); cancelling a
        subscription cancels its add-ons too, each with an ``addon_removed`` order. R31: the
        subscription's commitment is enforced at the instant asked, in the tenant's zone; a
        refused action writes nothing."""
        tenant = self.tenancy.tenant_of(principal)
        sub = self.subscription(principal, subscription_id)
        at = clock.now_utc()
        zone = tenant.time_zone
        today = today_in(zone, at=at)
        now = rfc3339(at)
        action = body.action  # with the fields it takes (``schemas.SubscriptionAction``)
        effective = self._effective(principal, tenant, sub, body, today)
        product = self.catalogue.products.get(tenant.id, sub.product_id)
        if product is None:
            raise Conflict("the subscription's product no longer exists")
        addons: list[Subscription] = []
        cancelled: list[Subscription] = []
        terms = domain.CancelTerms()
        shown: Subscription | None = None  # what the order shows, if not the updated one
        status = domain.COMPLETED
        if action == "change_quantity":
            domain.check_plan_licence(product.type, body.quantity)
            updated, order_type = (
                domain.change_quantity(sub, body.quantity, effective, now, at=at, time_zone=zone),
                domain.QUANTITY_CHANGE,
            )
        elif action in ("upgrade", "downgrade"):
            domain.check_unlocked(sub)
            current_type = product.type
            product = self._product(principal, tenant, body.product_id)
            domain.check_plan_switch(current_type, product.type, product.plan)
            account = self._buyer(principal, sub.account_id)
            _, unit_price = self.catalogue.buyer_price(tenant, account, product, sub.billing_cycle)
            updated, order_type = domain.change_product(
                sub, _ref(product), unit_price, action, effective, now
            )
            if updated.scheduled_change is not None and updated.product_id == sub.product_id:
                # R31: scheduled for the renewal, dated at it
                status = domain.SCHEDULED
                effective = date.fromisoformat(str(updated.scheduled_change["on"]))
                shown = replace(updated, product_id=product.id, unit_price=unit_price)
        elif action == "suspend":
            updated, order_type = domain.suspend(sub, effective, now), domain.SUSPEND
        elif action == "resume":
            updated, order_type = domain.resume(sub, effective, now), domain.RESUME
        elif action == "renew":
            updated, order_type = (
                domain.renew(sub, today, now, at=at, time_zone=zone),
                domain.RENEW,
            )
            if updated.product_id != sub.product_id:  # R31: a scheduled downgrade applied
                product = self._renewed_product(tenant, updated)
        elif action == "set_auto_renew":
            updated, order_type = (
                domain.set_auto_renew(sub, body.auto_renew, today, now),
                domain.AUTO_RENEW_CHANGE,
            )
        else:
            addons = [] if sub.is_addon else self.subscriptions.addons(tenant.id, sub.id).items
            live = [a for a in addons if a.status_on(today) in domain.CANCELLABLE]
            # R31: an add-on's own commitment holds as well, and brings its own refund
            addon_terms = {addon.id: domain.cancel_terms(addon, at, zone) for addon in live}
            terms = domain.cancel_terms(sub, at, zone)
            updated, cancelled = domain.cancel_with_addons(sub, addons, effective, today, now)
            updated = domain.with_cancel_terms(updated, terms, today)
            cancelled = [
                domain.with_cancel_terms(a, addon_terms.get(a.id, domain.CancelTerms()), today)
                for a in cancelled
            ]
            order_type = domain.ADDON_REMOVED if sub.is_addon else domain.CANCEL
        order = domain.order_for(
            new_id("ord"),
            order_type,
            shown or updated,
            _ref(product),
            effective=effective,
            now=now,
            created_by=principal.sub,
            previous=sub,
        )
        order = replace(order, status=status, refund=terms.refund, penalty=terms.penalty)
        before = {addon.id: addon for addon in addons}
        removed = [self._addon_removed(principal, before[a.id], a, now) for a in cancelled]
        self._commit([updated, *cancelled], [order, *removed])
        return self.subscription(principal, sub.id), order

    # --- R31: the daily automatic renewal of due downgrades (``renewal_schedule``) ---

    def renew_due(self, at: datetime) -> dict[str, int]:
        """Every tenant (down the tree by the parent index, never a Scan): its auto-renewing
        subscriptions whose scheduled downgrade is due by today, in its time zone (the sparse
        ``by_due`` index, a Query a page), renewed with it: a ``renew`` order dated at the new
        term's first day, by ``renewal-schedule``. Done again, it finds nothing (an applied
        downgrade leaves the index); a subscription written since is refused by its version.
        One subscription's failure does not hold up the others; the invocation then fails so
        the schedule's retry picks it up."""
        done, failed = 0, []
        for tenant in self.tenancy.all_tenants():
            today = today_in(tenant.time_zone, at=at)
            cursor: str | None = None
            while True:
                page = self.subscriptions.due(tenant.id, today, 100, cursor)
                for subscription_id in page.items:
                    try:
                        done += self._renew_due(tenant, subscription_id, today, at)
                    except Exception:  # logged; the invocation fails below
                        log.exception("the renewal of %s could not be written", subscription_id)
                        failed.append(subscription_id)
                cursor = page.next_cursor
                if cursor is None:
                    break
        if failed:
            raise RuntimeError(f"scheduled renewals not written: {failed}")
        return {"renewed": done}

    def _renew_due(self, tenant: Tenant, subscription_id: str, today: date, at: datetime) -> int:
        sub = self.subscriptions.get(tenant.id, subscription_id)
        if sub is None:
            return 0
        now = rfc3339(at)
        updated = domain.renew_due(sub, today, now, tenant.time_zone)
        if updated is None:
            return 0
        product = self._renewed_product(tenant, updated)
        change = present(sub.scheduled_change, "the scheduled change")
        order = domain.order_for(
            new_id("ord"),
            domain.RENEW,
            updated,
            _ref(product),
            effective=date.fromisoformat(str(change["on"])),
            now=now,
            created_by=RENEWAL_SCHEDULE,
            previous=sub,
        )
        self._commit([updated], [order])
        return 1

    def _renewed_product(self, tenant: Tenant, sub: Subscription) -> Product:
        product = self.catalogue.products.get(tenant.id, sub.product_id)
        if product is None:
            raise Conflict("the scheduled downgrade's product no longer exists")
        return product

    def _addon_removed(
        self, principal: Principal, before: Subscription, after: Subscription, now: str
    ) -> Order:
        """The ``addon_removed`` order (R9) of an add-on cancelled with its base, with the
        refund or penalty of its own commitment (R31)."""
        product = self.catalogue.products.get(after.tenant_id, after.product_id)
        if product is None:
            raise Conflict("an add-on's product no longer exists")
        terms = domain.terms_of(after)
        order = domain.order_for(
            new_id("ord"),
            domain.ADDON_REMOVED,
            after,
            _ref(product),
            effective=date.fromisoformat(present(after.cancellation_date, "cancellation date")),
            now=now,
            created_by=principal.sub,
            previous=before,
        )
        return replace(order, refund=terms.refund, penalty=terms.penalty)

    def _effective(
        self, principal: Principal, tenant: Tenant, sub: Subscription, body: Any, today: date
    ) -> date:
        """The day an action takes effect: today, or a tenant admin's ``effective_date`` back
        to the start of the previous billing period (the last a billing run still corrects,
        R22), never before the subscription's start or its last change."""
        if body.effective_date is None:
            return today
        if principal.role != TENANT_ADMIN:
            raise BadRequest(
                "only a tenant admin may backdate a change",
                field="effective_date",
                code="not_allowed",
            )
        current = monthly_period(tenant.billing_day, today)
        previous = monthly_period(tenant.billing_day, current.start - timedelta(days=1))
        return domain.backdated(sub, body.effective_date, today=today, earliest=previous.start)

    def _commit(self, subs: list[Subscription], orders: list[Order]) -> None:
        """Subscriptions (conditional on the version read) and their orders, all or nothing."""
        with self.units() as uow:
            for sub, order in zip(subs, orders, strict=True):
                uow.save(domain.recorded(sub, order))
                uow.save(order)


class ResoldReader:
    """``pricelist.ports.ResoldSubscriptions`` (R34): what a price-list simulation reads of the
    subscriptions, which this context owns. The mirrors under a tenant reseller account are
    in the ``by_reseller`` index (keys only: a page is completed with one BatchGetItem); the
    ones counted are active on ``today`` and paid (R8), as the next invoice would bill them."""

    PAGE = 100

    def __init__(self, subscriptions: Subscriptions) -> None:
        self.subscriptions = subscriptions

    def resold(
        self,
        tenant_id: str,
        reseller_account_id: str,
        product_ids: Collection[str],
        today: date,
        limit: int,
    ) -> tuple[list[Resold], int, bool]:
        found: list[Resold] = []
        read = 0
        cursor: str | None = None
        while read < limit:
            page = self.subscriptions.for_reseller(
                tenant_id, reseller_account_id, min(self.PAGE, limit - read), cursor
            )
            read += len(page.items)
            found += [
                Resold(
                    sub.id,
                    sub.account_id,
                    sub.product_id,
                    sub.billing_cycle,
                    sub.quantity,
                    sub.price_list_id,
                )
                for sub in page.items
                if sub.product_id in product_ids
                and sub.status_on(today) == domain.ACTIVE
                and sub.paid
            ]
            cursor = page.next_cursor
            if cursor is None:
                return found, read, False
        return found, read, True
