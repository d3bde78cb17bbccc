"""HTTP of the storefronts: the reseller plans and storefront settings of the JSON API (R27),
and the storefront pages under ``/store/{alias}`` (R30), which act through the same services
as the API with the signed-in visitor as the caller."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date, timedelta
from typing import Any

from chalice import Blueprint, Response
from pydantic import ValidationError

from functions.core.api import Api, Call
from functions.core.auth import RESELLER, TENANT_ADMIN
from functions.core.clock import rfc3339, today_in
from functions.core.errors import BadRequest, Forbidden
from functions.orders.domain import RESELLER_PLAN, Subscription, commitment_view
from functions.orders.routes import order_out
from functions.orders.schemas import CreateAddon, CreateSubscription, SubscriptionAction
from functions.storefront.domain import Storefront
from functions.storefront.schemas import (
    ChoosePlan,
    ChosenPlan,
    PlanOut,
    PlanQuery,
    ResellerPlans,
    StorefrontOut,
    UpdateStorefront,
)
from functions.storefront.services import LinkRefused, PlanView
from functions.storefront.tokens import nonce
from functions.storefront.web import Page, Pages, Raw, Redirect, Visit, security_headers

api = Api("reseller plans")
pages = Pages()
ADMINS = (TENANT_ADMIN, RESELLER)
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,255}$")
#: what a page shows after a form succeeded (``?done=``): fixed texts, nothing reflected
DONE = {
    "ordered": "Your order is placed.",
    "quantity": "The quantity is changed.",
    "addon": "The add-on is added.",
    "cancelled": "The subscription is cancelled.",
    "plan": "Your plan is changed.",
    "branding": "Your branding is saved.",
    "logo": "Your logo is uploaded.",
    "signed_in": "You are signed in.",
    "signed_out": "You are signed out.",
}


# --- the JSON API ------------------------------------------------------------------------------


def storefront_out(front: Storefront, public_url: str) -> StorefrontOut:
    shown = front.shown_branding
    return StorefrontOut(
        alias=front.alias,
        url=f"{public_url}/store/{front.alias}/",
        status=front.status,
        plan=front.plan,
        name=front.name,
        primary_color=shown.primary_color,
        accent_color=shown.accent_color,
        logo=shown.logo_key is not None,
        domain=shown.domain,
        version=front.version or 0,
    )


def plans_out(view: PlanView, public_url: str) -> dict[str, Any]:
    return {
        "account_id": view.account.id,
        "current_plan": view.current_plan,
        "subscription_id": view.subscription.id if view.subscription else None,
        "storefront": storefront_out(view.storefront, public_url) if view.storefront else None,
        "plans": [
            PlanOut(
                product_id=o.product.id,
                name=o.product.name,
                plan=o.product.plan or "basic",
                currency=o.price_list.currency if o.price_list else None,
                prices=o.prices,
            )
            for o in view.plans
        ],
    }


@api.route(
    "/reseller-plans",
    "GET",
    summary="The reseller plans a lite reseller may take, and its current one (R27)",
    roles=ADMINS,
    query=PlanQuery,
    response=ResellerPlans,
    errors=(400, 404, 409),
)
def list_reseller_plans(call: Call) -> ResellerPlans:
    view = call.container.storefronts.plans(call.principal, call.query.account_id)
    return ResellerPlans(**plans_out(view, call.container.settings.public_url))


@api.route(
    "/reseller-plans",
    "POST",
    summary="Take a reseller plan, switch it (upgrade/downgrade) or cancel it by choosing "
    "Basic: an order of the plan subscription (R27, R9)",
    roles=ADMINS,
    body=ChoosePlan,
    response=ChosenPlan,
    errors=(400, 404, 409),
)
def choose_reseller_plan(call: Call) -> ChosenPlan:
    view, order = call.container.storefronts.choose_plan(
        call.principal, call.body.account_id, call.body.product_id
    )
    return ChosenPlan(**plans_out(view, call.container.settings.public_url), order=order_out(order))


@api.route(
    "/storefront",
    "GET",
    summary="The caller's storefront: a tenant's own, or a lite reseller's (R30)",
    roles=ADMINS,
    response=StorefrontOut,
)
def get_storefront(call: Call) -> StorefrontOut:
    front = call.container.storefronts.own(call.principal)
    return storefront_out(front, call.container.settings.public_url)


@api.route(
    "/storefront",
    "PATCH",
    summary="Branding of the caller's storefront: colours, custom domain (Standard, or a "
    "tenant's own; R27, R30)",
    roles=ADMINS,
    body=UpdateStorefront,
    response=StorefrontOut,
    errors=(400, 404, 409),
)
def update_storefront(call: Call) -> StorefrontOut:
    sent = call.body.model_fields_set
    front = call.container.storefronts.set_branding(
        call.principal,
        primary_color=call.body.primary_color,
        accent_color=call.body.accent_color,
        domain_name=call.body.domain,
        clear_domain="domain" in sent and call.body.domain is None,
    )
    return storefront_out(front, call.container.settings.public_url)


# --- the pages ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _User:
    email: str
    role: str
    account_name: str


@dataclass(frozen=True)
class _Product:
    id: str
    name: str
    sku: str
    description: str | None
    type: str
    unit: str
    categories: list[str]
    prices: list[tuple[str, str]]
    currency: str | None
    addon_for: list[str]


def _product(offer: Any) -> _Product:
    p = offer.product
    return _Product(
        id=p.id,
        name=p.name,
        sku=p.sku,
        description=p.description,
        type=p.type,
        unit=p.unit,
        categories=list(p.categories),
        prices=[
            (cycle, offer.prices[cycle]) for cycle in p.billing_cycles if cycle in offer.prices
        ],
        currency=offer.price_list.currency if offer.price_list else None,
        addon_for=list(p.addon_for),
    )


def _can_brand(visit: Visit) -> bool:
    s = visit.session
    return (
        s is not None
        and visit.front.branded
        and not visit.front.is_tenant
        and s.role == RESELLER
        and s.account_id == visit.front.account_id
    )


def _context(visit: Visit, title: str, **extra: Any) -> dict[str, Any]:
    from functions.storefront.web import _store

    user = None
    if visit.session is not None:
        account = visit.app.tenancy.accounts.get(visit.session.tenant_id, visit.session.account_id)
        user = _User(visit.session.email, visit.session.role, account.name if account else "")
    return {
        "store": _store(visit.front),
        "base": visit.base,
        "user": user,
        "csrf": visit.csrf,
        "can_brand": _can_brand(visit),
        "title": title,
        "flash": DONE.get(visit.query.get("done", "")),
        "form_key": nonce(),  # each rendered form's own (``Visit.once``)
        "error": None,
        **extra,
    }


def _cursor(visit: Visit) -> str | None:
    cursor = visit.query.get("cursor")
    return cursor if cursor and len(cursor) <= 2048 else None


def _next(visit: Visit, path: str, cursor: str | None) -> str | None:
    if cursor is None:
        return None
    from urllib.parse import quote

    return f"{visit.base}{path}?cursor={quote(cursor)}"


CATALOGUE_PAGE = 50


@pages.page("")
def catalogue(visit: Visit) -> Page:
    page = visit.app.storefronts.window(visit.front, visit.session, CATALOGUE_PAGE, _cursor(visit))
    products = [_product(o) for o in page.items if o.product.type != "reseller_plan"]
    return Page(
        "catalogue.html",
        _context(
            visit, visit.front.name, products=products, next_url=_next(visit, "/", page.next_cursor)
        ),
    )


@pages.page("/products/{product_id}")
def product(visit: Visit) -> Page:
    product_id = visit.params["product_id"]
    offers = visit.app.storefronts.catalogue_of(visit.front, visit.session)
    found = next((o for o in offers if o.product.id == product_id), None)
    if found is None or found.product.type == "reseller_plan":
        from functions.core.auth import hidden

        raise hidden("product")
    addons = [_product(o) for o in offers if product_id in o.product.addon_for]
    accounts: list[tuple[str, str]] = []
    if visit.session is not None:
        accounts = _buyers(visit)
    return Page(
        "product.html",
        _context(
            visit,
            found.product.name,
            product=_product(found),
            addons=addons,
            accounts=accounts,
            can_order=visit.session is not None and found.product.type != "addon",
        ),
    )


def _buyers(visit: Visit) -> list[tuple[str, str]]:
    """Who the visitor orders for: itself, and a reseller its customers (R10)."""
    principal = visit.principal
    me = visit.app.tenancy.account(principal, principal.account_id or "")
    buyers = [(me.id, me.name)]
    if principal.role == RESELLER:
        page = visit.app.tenancy.list_accounts(principal, None, 100, None)
        buyers += [(a.id, a.name) for a in page.items if a.id != me.id]
    return buyers


def _validated(model: Any, values: dict[str, Any]) -> Any:
    try:
        return model.model_validate(values)
    except ValidationError as error:
        problem = error.errors()[0]
        where = ".".join(str(p) for p in problem.get("loc", ())) or "form"
        raise BadRequest(f"{where}: {problem.get('msg', 'invalid')}", field=where) from None


def _quantity(value: str | None, name: str = "quantity") -> int:
    try:
        return int((value or "").strip())
    except ValueError:
        raise BadRequest(f"{name}: a whole number, 1 or more", field=name) from None


@pages.page("/orders", ("POST",))
def checkout(visit: Visit) -> Redirect:
    form = visit.form
    values: dict[str, Any] = {
        "account_id": form.get("account_id") or visit.principal.account_id,
        "product_id": form.get("product_id", ""),
        "quantity": _quantity(form.get("quantity")),
        "billing_cycle": form.get("billing_cycle", ""),
    }
    domain_name = (form.get("domain") or "").strip()
    if domain_name:
        values["characteristics"] = {"domain": domain_name}
    body = _validated(CreateSubscription, values)

    def order() -> str:
        visit.app.orders.create_subscription(visit.principal, body)
        return f"{visit.base}/subscriptions?done=ordered"

    return visit.once(order)


@dataclass(frozen=True)
class _Sub:
    id: str
    product_name: str
    account_name: str
    quantity: int
    billing_cycle: str
    status: str
    start_date: str
    end_date: str
    unit_price: str
    currency: str
    domain: str | None
    is_addon: bool
    can_change: bool
    addon_choices: list[tuple[str, str]]
    #: R31: a committed subscription's dates (its page only): the term's last day, until when a
    #: cancellation is refunded, the day one becomes possible again once refused
    term_end: str | None = None
    cancellable_until: str | None = None
    cancellable_from: str | None = None


SUBSCRIPTIONS_PAGE = 30


def _sub_row(
    s: Subscription,
    today: date,
    product_name: str,
    account_name: str,
    addon_choices: list[tuple[str, str]] | None = None,
    *,
    plan: bool = False,
) -> _Sub:
    """``plan``: a reseller plan's subscription, changed on the plan page (R27)."""
    status = s.status_on(today)
    return _Sub(
        id=s.id,
        product_name=product_name,
        account_name=account_name,
        quantity=s.quantity,
        billing_cycle=s.billing_cycle,
        status=status,
        start_date=s.start_date,
        end_date=s.end_date,
        unit_price=f"{s.unit_price:.2f}",
        currency=s.currency,
        domain=s.characteristics.get("domain"),
        is_addon=s.is_addon,
        can_change=status in ("active", "inactive") and not s.mirrored and not plan,
        addon_choices=addon_choices or [],
    )


@pages.page("/subscriptions")
def subscriptions(visit: Visit) -> Page:
    """The visitor's subscriptions (a reseller's: its customers' too), a page at a time; each
    changed on its own page. Reads: the listing (the API's), one BatchGet of their products."""
    principal = visit.principal
    app = visit.app
    tenant = app.tenancy.tenant_of(principal)
    today = today_in(tenant.time_zone)
    page = app.orders.list_subscriptions(principal, None, SUBSCRIPTIONS_PAGE, _cursor(visit))
    subs = sorted(page.items, key=lambda s: (s.parent_subscription_id or s.id, s.is_addon, s.id))
    products = app.catalogue.products.get_many(tenant.id, {s.product_id for s in subs})
    names = dict(_buyers(visit))
    rows = [
        _sub_row(
            s,
            today,
            products[s.product_id].name if s.product_id in products else s.product_id,
            names.get(s.account_id, s.account_id),
            plan=s.product_id in products and products[s.product_id].type == RESELLER_PLAN,
        )
        for s in subs
    ]
    return Page(
        "subscriptions.html",
        _context(
            visit,
            "Subscriptions",
            subscriptions=rows,
            next_url=_next(visit, "/subscriptions", page.next_cursor),
        ),
    )


@pages.page("/subscriptions/{subscription_id}")
def subscription(visit: Visit) -> Page:
    """One subscription with its changes: quantity, an add-on (those of the visitor's
    catalogue that attach to its product), cancel."""
    principal = visit.principal
    app = visit.app
    sub = app.orders.subscription(principal, visit.params["subscription_id"])
    tenant = app.tenancy.tenant_of(principal)
    product_ = app.catalogue.products.get(tenant.id, sub.product_id)
    account = app.tenancy.account(principal, sub.account_id)
    addons = (
        []
        if sub.is_addon
        else app.storefronts.addons_for(visit.front, visit.session, sub.product_id)
    )
    at, zone = app.orders.moment(principal)
    row = _sub_row(
        sub,
        today_in(zone, at=at),
        product_.name if product_ else sub.product_id,
        account.name,
        [(o.product.id, o.product.name) for o in addons],
        plan=product_ is not None and product_.type == RESELLER_PLAN,
    )
    view = commitment_view(sub, at, zone)
    row = replace(
        row,
        term_end=view["term_end"],
        cancellable_until=(  # shown while the refund window is open
            view["cancellable_until"]
            if view["cancellable_until"] and view["cancellable_until"] > rfc3339(at)
            else None
        ),
        cancellable_from=view["cancellable_from"],
    )
    return Page("subscription.html", _context(visit, row.product_name, s=row))


@pages.page("/subscriptions/{subscription_id}", ("POST",))
def subscription_action(visit: Visit) -> Redirect:
    sub_id = visit.params["subscription_id"]
    action = visit.form.get("action", "")
    orders = visit.app.orders
    principal = visit.principal
    run: Callable[[], object]
    if action == "change_quantity":
        body = _validated(
            SubscriptionAction,
            {"action": action, "quantity": _quantity(visit.form.get("quantity"))},
        )
        run, done = (lambda: orders.act(principal, sub_id, body)), "quantity"
    elif action == "cancel":
        cancel = _validated(SubscriptionAction, {"action": "cancel"})
        run, done = (lambda: orders.act(principal, sub_id, cancel)), "cancelled"
    elif action == "add_addon":
        addon = _validated(
            CreateAddon,
            {
                "product_id": visit.form.get("product_id", ""),
                "quantity": _quantity(visit.form.get("quantity")),
            },
        )
        run, done = (lambda: orders.add_addon(principal, sub_id, addon)), "addon"
    else:
        raise BadRequest("action: change_quantity, add_addon or cancel", field="action")

    def change() -> str:
        run()
        return f"{visit.base}/subscriptions?done={done}"

    return visit.once(change)


@dataclass(frozen=True)
class _Invoice:
    id: str
    number: str | None
    period: str
    total: str
    currency: str
    status: str
    has_pdf: bool


@pages.page("/invoices")
def invoices(visit: Visit) -> Page:
    page = visit.app.invoices.invoices(visit.principal, None, 50, _cursor(visit))
    rows = [
        _Invoice(
            id=i.id,
            number=i.number,
            period=f"{i.period_start} – {_last_day(i.period_end)}",
            total=f"{i.total:.2f}",
            currency=i.currency,
            status=i.status,
            has_pdf=i.document_key is not None,
        )
        for i in page.items
    ]
    return Page(
        "invoices.html",
        _context(
            visit, "Invoices", invoices=rows, next_url=_next(visit, "/invoices", page.next_cursor)
        ),
    )


def _last_day(period_end: str) -> str:
    """A period's last day (its stored end is the next period's first)."""
    return (date.fromisoformat(period_end) - timedelta(days=1)).isoformat()


@pages.page("/invoices/{invoice_id}/pdf")
def invoice_pdf(visit: Visit) -> Raw:
    return Raw(
        visit.app.invoices.document(visit.principal, visit.params["invoice_id"]),
        "application/pdf",
    )


@dataclass(frozen=True)
class _Customer:
    id: str
    name: str
    email: str | None
    subscriptions: int


@pages.page("/customers")
def customers(visit: Visit) -> Page:
    principal = visit.principal
    if principal.role != RESELLER:
        raise Forbidden("this page is a reseller's")
    accounts = visit.app.tenancy.list_accounts(principal, None, 100, _cursor(visit))
    subs = visit.app.orders.list_subscriptions(principal, None, 100, None).items
    rows = [
        _Customer(a.id, a.name, a.email, sum(1 for s in subs if s.account_id == a.id))
        for a in accounts.items
        if a.id != principal.account_id
    ]
    return Page(
        "customers.html",
        _context(
            visit,
            "Customers",
            customers=rows,
            next_url=_next(visit, "/customers", accounts.next_cursor),
        ),
    )


@dataclass(frozen=True)
class _Plan:
    product_id: str
    name: str
    plan: str
    price: str | None


@pages.page("/plan")
def plan(visit: Visit) -> Page:
    if visit.principal.role != RESELLER:
        raise Forbidden("this page is a reseller's")
    view = visit.app.storefronts.plans(visit.principal, None)
    rows = []
    for o in view.plans:
        monthly = o.prices.get("monthly")
        currency = o.price_list.currency if o.price_list else ""
        rows.append(
            _Plan(
                o.product.id,
                o.product.name,
                o.product.plan or "basic",
                f"{monthly} {currency} / month" if monthly is not None else None,
            )
        )
    url = None
    if view.storefront is not None and view.storefront.serving:
        url = f"{visit.app.settings.public_url}/store/{view.storefront.alias}/"
    return Page(
        "plan.html",
        _context(visit, "Your plan", current=view.current_plan, plans=rows, storefront_url=url),
    )


@pages.page("/plan", ("POST",))
def choose_plan(visit: Visit) -> Redirect:
    if visit.principal.role != RESELLER:
        raise Forbidden("this page is a reseller's")
    product_id = visit.form.get("product_id", "")

    def choose() -> str:
        visit.app.storefronts.choose_plan(visit.principal, None, product_id)
        return f"{visit.base}/plan?done=plan"

    return visit.once(choose)


def _brander(visit: Visit) -> None:
    if not _can_brand(visit):
        visit.principal  # noqa: B018 - signs in first when anonymous
        raise Forbidden("branding is the storefront's own reseller's, on the Standard plan")


@pages.page("/branding")
def branding(visit: Visit) -> Page:
    _brander(visit)
    b = visit.front.branding
    return Page(
        "branding.html",
        _context(
            visit,
            "Branding",
            primary_color=b.primary_color,
            accent_color=b.accent_color,
            domain=b.domain,
        ),
    )


@pages.page("/branding", ("POST",))
def save_branding(visit: Visit) -> Redirect:
    _brander(visit)
    domain_name = (visit.form.get("domain") or "").strip()
    visit.app.storefronts.set_branding(
        visit.principal,
        primary_color=visit.form.get("primary_color") or None,
        accent_color=visit.form.get("accent_color") or None,
        domain_name=domain_name or None,
        clear_domain=not domain_name,
    )
    return Redirect(f"{visit.base}/branding?done=branding")


@pages.page("/branding/logo", ("POST",))
def upload_logo(visit: Visit) -> Redirect:
    _brander(visit)
    visit.app.storefronts.set_logo(visit.principal, visit.files.get("logo", b""))
    return Redirect(f"{visit.base}/branding?done=logo")


@pages.page("/logo")
def logo(visit: Visit) -> Raw:
    data, media_type = visit.app.storefronts.logo(visit.front)
    return Raw(data, media_type, cache="public, max-age=300")


@pages.page("/theme.css", serving=False)
def theme(visit: Visit) -> Raw:
    from functions.storefront.web import render

    shown = visit.front.shown_branding
    css = render("theme.css", {"primary": shown.primary_color, "accent": shown.accent_color})
    return Raw(css, "text/css; charset=utf-8", cache="public, max-age=300")


# --- signing in ----------------------------------------------------------------------------------


@pages.page("/login")
def login(visit: Visit) -> Page:
    return Page("login.html", _context(visit, "Sign in"))


@pages.page("/login", ("POST",))
def send_link(visit: Visit) -> Page:
    email = (visit.form.get("email") or "").strip()
    if not _EMAIL.match(email):
        raise BadRequest("email: an email address such as name@example.com", field="email")
    visit.app.storefronts.request_link(visit.front, email)
    return Page("login_sent.html", _context(visit, "Check your email", email=email))


_REFUSED = {
    "expired": (410, "This sign-in link has expired", "Links work for 15 minutes."),
    "used": (410, "This sign-in link was used already", "Each link signs in once."),
    "forged": (400, "This sign-in link is not valid", "It was not made by this storefront."),
}


def _refused(visit: Visit, error: LinkRefused) -> Page:
    status, heading, why = _REFUSED[error.reason]
    return Page(
        "message.html",
        _context(
            visit,
            heading,
            heading=heading,
            message=f"{why} Ask for a new one: it reaches your email in a moment.",
            link=(f"{visit.base}/login", "Email me a new link"),
        ),
        status=status,
    )


@pages.page("/login/confirm")
def confirm(visit: Visit) -> Page:
    token = visit.query.get("token", "")
    try:
        link = visit.app.storefronts.check_link(visit.front, token)
    except LinkRefused as error:
        return _refused(visit, error)
    return Page("confirm.html", _context(visit, "Sign in", token=token, email=link.email))


@pages.page("/login/confirm", ("POST",))
def redeem(visit: Visit) -> Page | Redirect:
    try:
        session = visit.app.storefronts.redeem(visit.front, visit.form.get("token", ""))
    except LinkRefused as error:
        return _refused(visit, error)
    cookie = visit.app.storefronts.session_cookie(session)
    return Redirect(f"{visit.base}/?done=signed_in", cookie=cookie)


@pages.page("/logout", ("POST",))
def logout(visit: Visit) -> Redirect:
    return Redirect(f"{visit.base}/?done=signed_out", cookie="")


# --- a custom domain's root ----------------------------------------------------------------------

domains = Blueprint("bss.storefront.domains")


@domains.route("/", methods=["GET"])
def domain_root() -> Response:
    """A Standard storefront's custom domain: its root leads to the storefront (R30)."""
    from functions.composition import container
    from functions.core.api import _json
    from functions.core.errors import path_not_found
    from functions.storefront.web import custom_host

    app = container()
    request = domains.current_request
    host = custom_host(request.headers or {}, app.settings.public_url)
    alias = app.storefronts.alias_of_host(host) if host else None
    if alias is None:
        return _json(404, path_not_found().body())
    headers = security_headers()
    headers["Location"] = f"/store/{alias}/"
    return Response(body="", status_code=302, headers=headers)
