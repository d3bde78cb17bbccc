"""Use cases of the storefronts (R27, R30): a tenant's own storefront opened with it, a
reseller's provisioned by its plan subscription, sign-in by emailed link, branding, and the
reseller plans of ``/reseller-plans``. The pages (``routes.py``) act through the services of
the API (catalogue, orders, invoices) with the signed-in visitor as the caller, so every rule
and scope of the API holds on the pages (R28)."""

from __future__ import annotations

import hashlib
import html
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from functions.core.auth import CUSTOMER, RESELLER, TENANT_ADMIN, Principal, hidden
from functions.core.clock import now_utc, rfc3339, today_in
from functions.core.domain import CUSTOMER_KIND, LITE_RESELLER, Account, Tenant
from functions.core.errors import BadRequest, Conflict
from functions.core.pagination import Page
from functions.core.units import Units
from functions.orders import domain as orders_domain
from functions.orders.domain import Order, Subscription
from functions.storefront import domain, tokens
from functions.storefront.domain import (
    ACTIVATED,
    ACTIVE,
    BASIC,
    TENANT,
    AliasEntry,
    DomainEntry,
    PlanChange,
    Storefront,
)
from functions.storefront.ports import Logos, Mailer, Storefronts
from functions.storefront.tokens import InvalidToken, LoginLink, Session

if TYPE_CHECKING:
    from functions.core.services import TenancyService
    from functions.orders.services import OrderService
    from functions.pricelist.services import CatalogueService, Offer

log = logging.getLogger("bss.storefront")

#: how many accounts one email signs in to at most (an address shared by a few accounts)
MAX_ACCOUNTS_PER_EMAIL = 3
#: how many sign-in links an account has unused and unexpired at once: more requests send
#: nothing (no one floods a customer's mailbox through the sign-in page)
MAX_LIVE_LINKS = 3
#: how far ``/reseller-plans`` and a product's page read a catalogue (pages of 100)
MAX_CATALOGUE_PAGES = 20


def _all(read: Callable[[str | None], Page[Offer]]) -> list[Offer]:
    """Every offer of a catalogue read a page at a time, at most ``MAX_CATALOGUE_PAGES``."""
    offers: list[Offer] = []
    cursor: str | None = None
    for _ in range(MAX_CATALOGUE_PAGES):
        page = read(cursor)
        offers.extend(page.items)
        cursor = page.next_cursor
        if cursor is None:
            break
    return offers


def free_alias(storefronts: Storefronts, name: str) -> str:
    """The first alias for ``name`` no storefront holds (one BatchGet); a race for it is the
    unit of work's 409 (``concurrent_update``: the alias claim must not exist)."""
    candidates = domain.alias_candidates(name)
    taken = storefronts.taken(candidates)
    for alias in candidates:
        if alias not in taken:
            return alias
    raise Conflict(f"no free storefront alias for {name!r}", code="alias_taken")


class TenantStorefronts:
    """A new tenant's own storefront (R30), written in the tenant's own unit of work."""

    def __init__(self, storefronts: Storefronts) -> None:
        self.storefronts = storefronts

    def __call__(self, tenant: Tenant) -> list[object]:
        now = rfc3339(now_utc())
        front = Storefront(
            tenant_id=tenant.id,
            account_id=None,
            alias=free_alias(self.storefronts, tenant.name),
            name=tenant.name,
            plan=TENANT,
            status=ACTIVE,
            created_at=now,
            updated_at=now,
        )
        return [front, AliasEntry(front)]


class LinkRefused(Exception):
    """A sign-in link that signs nobody in: ``reason`` is ``forged``, ``expired`` or ``used``."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class PlanView:
    """``GET /reseller-plans``: the plans a reseller may take, and its current one."""

    account: Account
    plans: list[Offer]
    subscription: Subscription | None
    storefront: Storefront | None

    @property
    def current_plan(self) -> str:
        if self.subscription is None:
            return BASIC
        for offer in self.plans:
            if offer.product.id == self.subscription.product_id:
                return offer.product.plan or BASIC
        return BASIC


class StorefrontService:
    def __init__(
        self,
        *,
        secret: str,
        public_url: str,
        units: Units,
        storefronts: Storefronts,
        tenancy: TenancyService,
        catalogue: CatalogueService,
        orders: OrderService,
        logos: Callable[[], Logos],
        mailer: Callable[[], Mailer],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.secret = secret
        self.public_url = public_url
        self.units = units
        self.storefronts = storefronts
        self.tenancy = tenancy
        self.catalogue = catalogue
        self.orders = orders
        self.logos = logos
        self.mailer = mailer
        self.clock = clock

    # --- finding a storefront ---

    def resolve(self, alias: str, host: str | None = None) -> Storefront:
        """The storefront of ``alias`` (a 404 if none). On a custom domain (a ``host`` some
        storefront claims) only that storefront answers."""
        front = self.storefronts.by_alias(alias) if domain.valid_alias(alias) else None
        if front is None:
            raise hidden("storefront")
        if host and host.lower() != front.shown_branding.domain:
            claimed = self.storefronts.by_domain(host.lower())
            if claimed is not None and claimed != alias:
                raise hidden("storefront")
        return front

    def alias_of_host(self, host: str) -> str | None:
        """The alias a custom domain serves (a Standard storefront's), if any."""
        alias = self.storefronts.by_domain(host.lower())
        if alias is None:
            return None
        front = self.storefronts.by_alias(alias)
        if front is None or front.shown_branding.domain != host.lower() or not front.serving:
            return None
        return alias

    def provider_of(self, front: Storefront) -> Storefront | None:
        """Where an inactive reseller storefront sends its visitors: its tenant's own."""
        return None if front.is_tenant else self.storefronts.get(front.tenant_id, None)

    def own(self, principal: Principal) -> Storefront:
        """The caller's storefront: a tenant admin's tenant's, a reseller's own (404 if it
        never had a plan)."""
        principal.require(TENANT_ADMIN, RESELLER)
        account_id = principal.account_id if principal.role == RESELLER else None
        front = self.storefronts.get(principal.tenant(), account_id)
        if front is None:
            raise hidden("storefront")
        return front

    # --- provisioning (the plan subscription's stream) ---

    def plan_changed(self, sub: Subscription) -> str:
        """R27: a lite reseller's plan subscription changed: its storefront follows (opened on
        activation with a sign-in link by email, switched, closed on cancellation). Replays
        and older changes are no-ops (the storefront holds the version it applied)."""
        if sub.mirrored or sub.is_addon or sub.account_id != sub.reseller_account_id:
            return "skipped"
        product = self.catalogue.products.get(sub.tenant_id, sub.product_id)
        if product is None or product.type != orders_domain.RESELLER_PLAN:
            return "skipped"
        tenant = self.tenancy.tenants.get(sub.tenant_id)
        account = self.tenancy.accounts.get(sub.tenant_id, sub.account_id)
        if tenant is None or account is None:
            return "skipped"
        live = sub.status_on(today_in(tenant.time_zone)) in (
            orders_domain.ACTIVE,
            orders_domain.INACTIVE,
        )
        change = PlanChange(sub.id, sub.version or 0, product.plan or BASIC, live)
        current = self.storefronts.get(tenant.id, account.id)
        updated, outcome = domain.apply_plan(current, change)
        now = rfc3339(now_utc())
        if current is None:
            if outcome != ACTIVATED:
                return outcome
            updated = Storefront(
                tenant_id=tenant.id,
                account_id=account.id,
                alias=free_alias(self.storefronts, account.name),
                name=account.name,
                plan=change.plan,
                status=ACTIVE,
                created_at=now,
                updated_at=now,
                plan_subscription_id=sub.id,
                plan_version=change.version,
            )
        elif updated is None or updated == current:
            return outcome
        updated = replace(updated, updated_at=now)
        if outcome == ACTIVATED and account.email:
            # before the commit: a failed commit is retried and mails again (at least once);
            # a mail lost after a commit would never be sent again
            self._send_link(updated, account, RESELLER, account.email, welcome=True)
        with self.units() as uow:
            uow.save(updated)
            uow.save(AliasEntry(updated))
        log.info("storefront %s: %s (plan %s)", updated.alias, outcome, updated.plan)
        return outcome

    # --- signing in ---

    def member_role(self, front: Storefront, account: Account) -> str | None:
        """Who ``account`` is on ``front`` (R28, R30): a reseller's storefront serves the
        reseller and its customers; a tenant's serves its direct customers and its Basic
        resellers (and their customers). Anyone else gets nothing."""
        if account.mirrored or account.status != "active" or account.tenant_id != front.tenant_id:
            return None
        if not front.is_tenant:
            if account.id == front.account_id and account.kind == LITE_RESELLER:
                return RESELLER
            if account.parent_account_id == front.account_id:
                return CUSTOMER
            return None
        if account.kind == LITE_RESELLER:
            own = self.storefronts.get(front.tenant_id, account.id)
            return None if own is not None and own.serving else RESELLER
        if account.kind != CUSTOMER_KIND:
            return None
        if account.parent_account_id is None:
            return CUSTOMER
        reseller = self.storefronts.get(front.tenant_id, account.parent_account_id)
        return None if reseller is not None and reseller.serving else CUSTOMER

    def request_link(self, front: Storefront, email: str) -> None:
        """Email a sign-in link to each account of this storefront with that address. The
        answer is the same whether or not any has it (no account is revealed)."""
        if not front.serving:
            return
        accounts = self.tenancy.accounts.by_email(front.tenant_id, email)
        now = int(self.clock())
        for account in accounts[:MAX_ACCOUNTS_PER_EMAIL]:
            role = self.member_role(front, account)
            if role is None:
                continue
            if self.storefronts.live_links(front.tenant_id, account.id, now) >= MAX_LIVE_LINKS:
                log.warning(
                    "sign-in links for %s/%s: %d live, none sent",
                    front.tenant_id,
                    account.id,
                    MAX_LIVE_LINKS,
                )
                continue
            self._send_link(front, account, role, email)

    def link_url(self, front: Storefront, account: Account, role: str, email: str) -> str:
        """A new single-use sign-in link (recorded), e.g. for the demo's banner."""
        expires = int(self.clock()) + tokens.LINK_SECONDS
        link = LoginLink(
            front.tenant_id, account.id, role, email, front.alias, tokens.nonce(), expires
        )
        self.storefronts.record_link(front.tenant_id, account.id, link.nonce, expires)
        token = tokens.sign(self.secret, tokens.LINK, link.payload())
        return f"{self.public_url}/store/{front.alias}/login/confirm?token={token}"

    def _send_link(
        self, front: Storefront, account: Account, role: str, email: str, *, welcome: bool = False
    ) -> None:
        url = self.link_url(front, account, role, email)
        minutes = tokens.LINK_SECONDS // 60
        if welcome:
            subject = f"Your storefront {front.name} is ready"
            lead = (
                f"Your reseller plan is active: your storefront is at "
                f"{self.public_url}/store/{front.alias}/ . Sign in to set it up:"
            )
        else:
            subject = f"Sign in to {front.name}"
            lead = f"Here is your link to sign in to {front.name}:"
        text = f"{lead}\n\n{url}\n\nThe link works once, for {minutes} minutes.\n"
        body = (
            f'<p>{html.escape(lead)}</p><p><a href="{html.escape(url)}">Sign in</a></p>'
            f"<p>The link works once, for {minutes} minutes.</p>"
        )
        self.mailer().send(email, subject, text, body)

    def check_link(self, front: Storefront, token: str) -> LoginLink:
        """A sign-in link's content, not used yet (the confirmation page)."""
        try:
            link = LoginLink.of(tokens.verify(self.secret, tokens.LINK, token, self.clock()))
        except InvalidToken as error:
            raise LinkRefused(error.reason) from None
        if link.alias != front.alias or link.tenant_id != front.tenant_id:
            raise LinkRefused("forged")
        return link

    def redeem(self, front: Storefront, token: str) -> Session:
        """Sign in with a link: once (its nonce is marked used), while it has not expired,
        while the account still belongs to this storefront."""
        link = self.check_link(front, token)
        account = self.tenancy.accounts.get(link.tenant_id, link.account_id)
        if account is None or self.member_role(front, account) != link.role:
            raise LinkRefused("forged")
        if not self.storefronts.use_link(link.tenant_id, link.account_id, link.nonce, _now()):
            raise LinkRefused("used")
        return Session(
            link.tenant_id,
            link.account_id,
            link.role,
            link.email,
            front.alias,
            tokens.nonce(),
            int(self.clock()) + tokens.SESSION_SECONDS,
        )

    def session(self, front: Storefront, cookie: str | None) -> Session | None:
        """The visitor's session on this storefront, if its cookie is ours and current."""
        if not cookie:
            return None
        try:
            found = Session.of(tokens.verify(self.secret, tokens.SESSION, cookie, self.clock()))
        except InvalidToken:
            return None
        if found.alias != front.alias or found.tenant_id != front.tenant_id:
            return None
        return found

    def session_cookie(self, session: Session) -> str:
        return tokens.sign(self.secret, tokens.SESSION, session.payload())

    def csrf(self, seed: str) -> str:
        return tokens.csrf_token(self.secret, seed)

    def csrf_ok(self, seed: str | None, given: str | None) -> bool:
        return tokens.csrf_ok(self.secret, seed, given)

    @staticmethod
    def principal(session: Session) -> Principal:
        return Principal(
            sub=session.email,
            role=session.role,
            tenant_id=session.tenant_id,
            account_id=session.account_id,
        )

    # --- what a page shows ---

    def window(
        self, front: Storefront, session: Session | None, limit: int, cursor: str | None
    ) -> Page[Offer]:
        """The catalogue at the visitor's prices (R10): a signed-in visitor's own (the same
        call as ``GET /products``); an anonymous one at the storefront's list: the
        reseller's (what its customers buy at) or the tenant's default list."""
        if session is not None:
            return self.catalogue.list_products(self.principal(session), None, limit, cursor)
        tenant = self.tenancy.tenants.get(front.tenant_id)
        if tenant is None:
            raise hidden("storefront")
        list_id = tenant.default_price_list_id
        if front.account_id is not None:
            reseller = self.tenancy.accounts.get(front.tenant_id, front.account_id)
            if reseller is not None and reseller.price_list_id:
                list_id = reseller.price_list_id
        price_list = self.catalogue.price_lists.get(tenant.id, list_id) if list_id else None
        return self.catalogue.shop_window(tenant, price_list, limit, cursor)

    def catalogue_of(self, front: Storefront, session: Session | None) -> list[Offer]:
        """The visitor's whole catalogue (pages of 100, at most ``MAX_CATALOGUE_PAGES``): a
        product's page finds the product and the add-ons that attach to it."""
        return _all(lambda cursor: self.window(front, session, 100, cursor))

    def addons_for(
        self, front: Storefront, session: Session | None, product_id: str
    ) -> list[Offer]:
        """The add-ons of the visitor's catalogue that attach to ``product_id`` (an add-on
        names its bases, R1: found by reading the catalogue)."""
        return [
            o
            for o in self.catalogue_of(front, session)
            if o.product.type == "addon" and product_id in o.product.addon_for
        ]

    # --- branding (Standard, and a tenant's own) ---

    def set_branding(
        self,
        principal: Principal,
        *,
        primary_color: str | None = None,
        accent_color: str | None = None,
        domain_name: str | None = None,
        clear_domain: bool = False,
    ) -> Storefront:
        front = self.own(principal)
        domain.can_brand(front)
        branding = front.branding
        if primary_color is not None:
            branding = replace(
                branding, primary_color=domain.check_color(primary_color, "primary_color")
            )
        if accent_color is not None:
            branding = replace(
                branding, accent_color=domain.check_color(accent_color, "accent_color")
            )
        old_domain = branding.domain
        if clear_domain:
            branding = replace(branding, domain=None)
        elif domain_name:
            host = domain.check_domain(domain_name)
            claimed = self.storefronts.by_domain(host)
            if claimed is not None and claimed != front.alias:
                raise Conflict(
                    "another storefront has this domain", code="domain_taken", field="domain"
                )
            branding = replace(branding, domain=host)
        if branding == front.branding:
            return front
        updated = replace(front, branding=branding, updated_at=rfc3339(now_utc()))
        with self.units() as uow:
            uow.save(updated)
            uow.save(AliasEntry(updated))
            claim = branding.domain
            if claim and claim != old_domain and self.storefronts.by_domain(claim) is None:
                uow.save(DomainEntry(claim, front.alias, front.tenant_id))
        if old_domain and old_domain != branding.domain:
            self.storefronts.release_domain(old_domain, front.alias)
        return updated

    def set_logo(self, principal: Principal, data: bytes) -> Storefront:
        front = self.own(principal)
        domain.can_brand(front)
        media_type = domain.logo_type(data)
        digest = hashlib.sha256(data).hexdigest()[:16]
        key = f"storefront/{front.tenant_id}/{front.account_id or '-'}/logo-{digest}"
        self.logos().put(key, data, media_type)
        branding = replace(front.branding, logo_key=key, logo_type=media_type)
        updated = replace(front, branding=branding, updated_at=rfc3339(now_utc()))
        with self.units() as uow:
            uow.save(updated)
            uow.save(AliasEntry(updated))
        return updated

    def logo(self, front: Storefront) -> tuple[bytes, str]:
        shown = front.shown_branding
        if shown.logo_key is None or shown.logo_type is None:
            raise hidden("logo")
        return self.logos().get(shown.logo_key), shown.logo_type

    # --- reseller plans (R27) ---

    def _plan_account(self, principal: Principal, account_id: str | None) -> Account:
        principal.require(TENANT_ADMIN, RESELLER)
        if principal.role == RESELLER:
            if account_id not in (None, principal.account_id):
                raise hidden("account")
            account_id = principal.account_id
        if account_id is None:
            raise BadRequest(
                "name the reseller's account", field="account_id", code="missing_field"
            )
        account = self.tenancy.account(principal, account_id)
        if account.kind != LITE_RESELLER:
            raise Conflict(
                "reseller plans are for lite resellers",
                code="reselling_not_enabled",
                field="account_id",
            )
        return account

    def plans(self, principal: Principal, account_id: str | None) -> PlanView:
        account = self._plan_account(principal, account_id)
        tenant = self.tenancy.tenant_of(principal)
        list_id = self.catalogue.buyer_list_id(tenant, account)
        price_list = self.catalogue.price_lists.get(tenant.id, list_id) if list_id else None
        offers = [
            o
            for o in _all(
                lambda cursor: self.catalogue.shop_window(tenant, price_list, 100, cursor)
            )
            if o.product.type == orders_domain.RESELLER_PLAN
        ]
        order = {"basic": 0, "free": 1, "standard": 2}
        offers.sort(key=lambda o: (order.get(o.product.plan or "", 9), o.product.name))
        current = self.orders.plan_subscriptions(tenant, account.id)
        sub = self.orders.subscriptions.get(tenant.id, current[0]) if current else None
        return PlanView(account, offers, sub, self.storefronts.get(tenant.id, account.id))

    def choose_plan(
        self, principal: Principal, account_id: str | None, product_id: str
    ) -> tuple[PlanView, Order]:
        """R27: take a plan (a new monthly subscription), switch it (an upgrade or a
        downgrade of the plan subscription, by price) or, choosing Basic, cancel it. Each is
        an order (R9) of the orders service, so it is billed and back-ordered like any other."""
        view = self.plans(principal, account_id)
        chosen = next((o for o in view.plans if o.product.id == product_id), None)
        if chosen is None:
            raise BadRequest(
                "not a reseller plan of this catalogue", field="product_id", code="not_a_plan"
            )
        current = view.subscription
        if current is None:
            if chosen.product.plan == BASIC:
                raise Conflict(
                    "the reseller is on Basic already", code="unchanged", field="product_id"
                )
            _, order = self.orders.create_subscription(
                principal,
                _Body(
                    account_id=view.account.id,
                    product_id=product_id,
                    quantity=1,
                    billing_cycle="monthly",
                    term=None,
                    start_date=None,
                    auto_renew=True,
                    characteristics={},
                ),
            )
        elif chosen.product.id == current.product_id:
            raise Conflict("the reseller is on this plan already", code="unchanged")
        elif chosen.product.plan == BASIC:
            _, order = self.orders.act(
                principal, current.id, _Body(action="cancel", effective_date=None)
            )
        else:
            price = Decimal(chosen.prices.get(current.billing_cycle, "0"))
            action = "upgrade" if price > current.unit_price else "downgrade"
            _, order = self.orders.act(
                principal,
                current.id,
                _Body(action=action, product_id=product_id, effective_date=None),
            )
        return self.plans(principal, view.account.id), order


class _Body:
    """A request body built by the service (the attributes the orders service reads)."""

    def __init__(self, **values: Any) -> None:
        self.__dict__.update(values)


def _now() -> str:
    return rfc3339(now_utc())
