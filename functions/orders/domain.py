"""Subscriptions and orders (SPEC §3: R8, R9). Pure: stdlib and the kernel only.

Dates are ``date`` objects here and ISO strings at the edges. A term ends the day before the
start plus whole terms (months counted from the start's day, clamped to a month's end), so a
subscription started on the 31st runs [Jan 31, Feb 28), [Feb 28, Mar 31) … (R8, R22).
"""

from __future__ import annotations

import calendar
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from functions.core.errors import BadRequest, Conflict
from functions.core.money import round_money

INACTIVE, ACTIVE, SUSPENDED, CANCELLED, EXPIRED = (
    "inactive",
    "active",
    "suspended",
    "cancelled",
    "expired",
)
TERM_MONTHS = {"monthly": 1, "annual": 12}
MAX_ADDONS = 20  # keeps a cancellation (base + add-ons + their orders) in one transaction

# order types (R9)
NEW, QUANTITY_CHANGE, UPGRADE, DOWNGRADE = "new", "quantity_change", "upgrade", "downgrade"
ADDON_ADDED, ADDON_REMOVED, RENEW = "addon_added", "addon_removed", "renew"
SUSPEND, RESUME, CANCEL, TRIAL_TO_PAID = "suspend", "resume", "cancel", "trial_to_paid"


def add_months(start: date, months: int) -> date:
    """Same day ``months`` later, clamped to that month's last day."""
    month_index = start.month - 1 + months
    year, month = start.year + month_index // 12, month_index % 12 + 1
    return date(year, month, min(start.day, calendar.monthrange(year, month)[1]))


def term_end(start: date, term: str, terms: int) -> date:
    """R8: end date = start + ``terms`` terms − 1 day."""
    return add_months(start, TERM_MONTHS[term] * terms) - timedelta(days=1)


@dataclass(frozen=True)
class Subscription:
    id: str
    tenant_id: str
    account_id: str
    product_id: str
    quantity: int
    billing_cycle: str
    term: str
    terms: int  # how many terms the subscription runs (renewals add one)
    status: str  # stored status; ``status_on(today)`` is what it is on a day
    start_date: str
    end_date: str
    auto_renew: bool
    currency: str
    unit_price: Decimal  # at the buyer's price list when last ordered
    price_list_id: str
    created_at: str
    updated_at: str
    activation_date: str | None = None
    cancellation_date: str | None = None
    characteristics: dict[str, str] = field(default_factory=dict)
    parent_subscription_id: str | None = None
    reseller_account_id: str | None = None  # the lite reseller whose scope holds it
    #: the provider's product this one is a copy of (R1), so back ordering needs no product read
    origin_tenant_id: str | None = None
    origin_product_id: str | None = None
    #: paid at some point (R8): from then on every change is mirrored (R13), even to free
    paid_once: bool = False
    #: the order type and effective date of the latest change (what back ordering replays, R14)
    last_change: str | None = None
    last_change_date: str | None = None
    mirrored: bool = False
    source: dict[str, Any] | None = None
    #: a mirror's source version: a mirror is written only over an older one (R18)
    source_version: int | None = None
    #: a copy made by a lite → tenant upgrade (R19): the provider's subscription it continues,
    #: which becomes its mirror
    upstream_id: str | None = None
    #: every change as ``{on, quantity, product_id, origin_product_id, status}``, oldest first:
    #: what billing prorates (R22)
    history: list[dict[str, Any]] = field(default_factory=list)
    version: int | None = None

    @property
    def paid(self) -> bool:
        """R8: paid when its price is above zero (trials are not)."""
        return self.unit_price > 0

    @property
    def is_addon(self) -> bool:
        return self.parent_subscription_id is not None

    def status_on(self, today: date) -> str:
        """R8: ``inactive`` until the start date; ``expired`` after the end of a term that does
        not renew itself."""
        if self.status == INACTIVE and date.fromisoformat(self.start_date) <= today:
            return ACTIVE
        if (
            self.status in (ACTIVE, INACTIVE)
            and not self.auto_renew
            and date.fromisoformat(self.end_date) < today
        ):
            return EXPIRED
        return self.status

    def activation_on(self, today: date) -> str | None:
        if self.activation_date is None and self.status_on(today) not in (INACTIVE,):
            return self.start_date if date.fromisoformat(self.start_date) <= today else None
        return self.activation_date


@dataclass(frozen=True)
class OrderLine:
    product_id: str
    sku: str
    name: str
    billing_cycle: str
    quantity: int
    unit_price: Decimal
    amount: Decimal  # the recurring charge per billing cycle after the change
    previous_quantity: int | None = None
    previous_product_id: str | None = None


@dataclass(frozen=True)
class Order:
    """R9: one commercial action, dated at its effective date, priced at the buyer's list."""

    id: str
    number: str
    tenant_id: str
    account_id: str
    subscription_id: str
    type: str
    date: str
    currency: str
    lines: list[OrderLine]
    total: Decimal
    created_at: str
    created_by: str
    price_list_id: str
    reseller_account_id: str | None = None
    status: str = "completed"
    #: a provider's order of a mirrored change (R14): the end customer's mirror and the source
    end_customer_account_id: str | None = None
    source: dict[str, Any] | None = None


@dataclass(frozen=True)
class ProductRef:
    """What an order line needs of a product."""

    id: str
    sku: str
    name: str
    type: str
    billing_cycles: list[str]
    addon_for: list[str]
    origin_tenant_id: str | None = None
    origin_product_id: str | None = None


RESELLER_PLAN = "reseller_plan"  # a product type of the catalogue (R27)


def check_plan_order(
    *,
    plans_enabled: bool,
    reseller: bool,
    enable_reselling: bool,
    plan: str | None,
    quantity: int,
    current_plan_ids: list[str],
) -> None:
    """R27: who may take a reseller plan. The provider tenant has the reseller add-on
    (``plans_enabled``), the account is a lite reseller with "enable reselling", the plan is
    Free or Standard (Basic is the state without a plan subscription), one licence, and the
    account holds no other plan (plans are switched by upgrade or downgrade). 409 naming the
    reason otherwise."""
    if not plans_enabled:
        raise Conflict(
            "this tenant does not offer reseller plans (its provider has not enabled them)",
            code="reseller_plans_disabled",
            field="product_id",
        )
    if not reseller or not enable_reselling:
        raise Conflict(
            "only a lite reseller with reselling enabled takes a reseller plan",
            code="reselling_not_enabled",
            field="account_id",
        )
    if plan == "basic":
        raise Conflict(
            "Basic is every reseller's plan without a plan subscription: cancel the plan "
            "subscription to return to it",
            code="basic_is_default",
            field="product_id",
        )
    if quantity != 1:
        raise BadRequest("a reseller plan is one licence", field="quantity", code="out_of_range")
    if current_plan_ids:
        raise Conflict(
            "the reseller already has a plan: switch it with an upgrade or a downgrade",
            code="plan_exists",
            field="product_id",
            details={"subscription_id": current_plan_ids[0]},
        )


def check_plan_licence(
    product_type: str, quantity: int | None = None, *, addon: bool = False
) -> None:
    """R27: a plan subscription stays one licence, with no add-ons."""
    if product_type != RESELLER_PLAN:
        return
    if addon:
        raise BadRequest("a reseller plan takes no add-ons", field="subscription_id")
    if quantity is not None and quantity != 1:
        raise BadRequest("a reseller plan is one licence", field="quantity", code="out_of_range")


def check_plan_switch(current_type: str, new_type: str, new_plan: str | None) -> None:
    """R27: a plan subscription switches to another Free or Standard plan only; no other
    subscription becomes a plan."""
    if (current_type == RESELLER_PLAN) != (new_type == RESELLER_PLAN):
        raise Conflict(
            "a reseller plan switches to another reseller plan only",
            code="incompatible_product",
            field="product_id",
        )
    if new_plan == "basic":
        raise Conflict(
            "Basic is the plan without a plan subscription: cancel to return to it",
            code="basic_is_default",
            field="product_id",
        )


def new_subscription(
    subscription_id: str,
    *,
    tenant_id: str,
    account_id: str,
    reseller_account_id: str | None,
    product: ProductRef,
    quantity: int,
    billing_cycle: str,
    term: str | None,
    start: date,
    today: date,
    auto_renew: bool,
    characteristics: dict[str, str],
    currency: str,
    unit_price: Decimal,
    price_list_id: str,
    parent: Subscription | None,
    now: str,
) -> Subscription:
    if billing_cycle not in product.billing_cycles:
        raise BadRequest(
            f"{product.sku} is not sold {billing_cycle}",
            field="billing_cycle",
            code="unsupported_billing_cycle",
        )
    term = term or billing_cycle
    if TERM_MONTHS[term] < TERM_MONTHS[billing_cycle]:
        raise BadRequest("a term cannot be shorter than its billing cycle", field="term")
    if parent is None and product.type == "addon":
        raise BadRequest(
            "an add-on is ordered on a subscription: POST /subscriptions/{id}/addons",
            field="product_id",
            code="addon_needs_base",
        )
    if parent is not None:
        if product.type != "addon":
            raise BadRequest(
                "only an add-on product attaches to a subscription",
                field="product_id",
                code="not_an_addon",
            )
        if product.addon_for and parent.product_id not in product.addon_for:
            raise BadRequest(
                "this add-on does not attach to the subscription's product",
                field="product_id",
                code="addon_not_compatible",
            )
        if parent.billing_cycle != billing_cycle:
            raise BadRequest(
                "an add-on is billed in its subscription's cycle", field="billing_cycle"
            )
        require_state(parent, today, (ACTIVE, INACTIVE), "add an add-on to")
        start = max(start, date.fromisoformat(parent.start_date))
    status = INACTIVE if start > today else ACTIVE
    return Subscription(
        id=subscription_id,
        tenant_id=tenant_id,
        account_id=account_id,
        product_id=product.id,
        quantity=quantity,
        billing_cycle=billing_cycle,
        term=term,
        terms=1,
        status=status,
        start_date=start.isoformat(),
        end_date=term_end(start, term, 1).isoformat(),
        activation_date=start.isoformat() if status == ACTIVE else None,
        auto_renew=auto_renew,
        characteristics=dict(characteristics),
        currency=currency,
        unit_price=unit_price,
        price_list_id=price_list_id,
        created_at=now,
        updated_at=now,
        parent_subscription_id=parent.id if parent else None,
        reseller_account_id=reseller_account_id,
        origin_tenant_id=product.origin_tenant_id,
        origin_product_id=product.origin_product_id,
        paid_once=unit_price > 0,
    )


def last_change_on(sub: Subscription) -> date:
    """The subscription's start, or its latest change if later."""
    days = [sub.start_date, *(str(entry["on"]) for entry in sub.history)]
    return max(date.fromisoformat(day) for day in days)


def backdated(sub: Subscription, wanted: date, *, today: date, earliest: date) -> date:
    """R22: a change backdated to ``wanted``: from ``earliest`` (a period billing can still
    correct) and the subscription's last change, up to today."""
    floor = max(earliest, last_change_on(sub))
    if not floor <= wanted <= today:
        raise BadRequest(
            f"effective_date must be from {floor} to {today}",
            field="effective_date",
            code="out_of_range",
        )
    return wanted


def require_state(sub: Subscription, today: date, allowed: tuple[str, ...], verb: str) -> str:
    status = sub.status_on(today)
    if status not in allowed:
        raise Conflict(
            f"cannot {verb} a subscription that is {status}",
            code="invalid_state",
            details={"status": status},
        )
    return status


def check_unlocked(sub: Subscription) -> None:
    """R15: a mirror belongs to its reseller."""
    if sub.mirrored:
        raise Conflict("this subscription is kept by the reseller", code="locked_by_reseller")


def _settle(sub: Subscription, today: date, now: str) -> dict[str, Any]:
    """Make the stored status what it is today (an activation or expiry that came due)."""
    status = sub.status_on(today)
    return {
        "status": status,
        "activation_date": sub.activation_on(today),
        "updated_at": now,
    }


def change_quantity(sub: Subscription, quantity: int, today: date, now: str) -> Subscription:
    check_unlocked(sub)
    require_state(sub, today, (ACTIVE, INACTIVE), "change the quantity of")
    if quantity == sub.quantity:
        raise BadRequest("quantity is unchanged", field="quantity", code="unchanged")
    return replace(sub, **_settle(sub, today, now), quantity=quantity)


def change_product(
    sub: Subscription,
    product: ProductRef,
    unit_price: Decimal,
    direction: str,
    today: date,
    now: str,
) -> tuple[Subscription, str]:
    """Upgrade (to a dearer product) or downgrade (to a cheaper one); from a free product to a
    paid one it is a trial → paid order (R9)."""
    check_unlocked(sub)
    require_state(sub, today, (ACTIVE, INACTIVE), direction)
    if product.id == sub.product_id:
        raise BadRequest(
            "the subscription already has this product", field="product_id", code="unchanged"
        )
    if product.type == "addon" or sub.is_addon:
        raise BadRequest("add-ons are added and removed, not upgraded", field="product_id")
    if sub.billing_cycle not in product.billing_cycles:
        raise BadRequest(
            f"{product.sku} is not sold {sub.billing_cycle}",
            field="product_id",
            code="unsupported_billing_cycle",
        )
    if direction == UPGRADE and unit_price <= sub.unit_price:
        raise BadRequest(
            "an upgrade moves to a dearer product", field="product_id", code="not_an_upgrade"
        )
    if direction == DOWNGRADE and unit_price >= sub.unit_price:
        raise BadRequest(
            "a downgrade moves to a cheaper product", field="product_id", code="not_a_downgrade"
        )
    order_type = TRIAL_TO_PAID if sub.unit_price == 0 and unit_price > 0 else direction
    updated = replace(
        sub,
        **_settle(sub, today, now),
        product_id=product.id,
        unit_price=unit_price,
        origin_tenant_id=product.origin_tenant_id,
        origin_product_id=product.origin_product_id,
        paid_once=sub.paid_once or unit_price > 0,
    )
    return updated, order_type


def suspend(sub: Subscription, today: date, now: str) -> Subscription:
    check_unlocked(sub)
    require_state(sub, today, (ACTIVE,), "suspend")
    return replace(sub, **{**_settle(sub, today, now), "status": SUSPENDED})


def resume(sub: Subscription, today: date, now: str) -> Subscription:
    check_unlocked(sub)
    require_state(sub, today, (SUSPENDED,), "resume")
    return replace(sub, status=ACTIVE, updated_at=now)


def renew(sub: Subscription, today: date, now: str) -> Subscription:
    """One more term on the end date."""
    check_unlocked(sub)
    require_state(sub, today, (ACTIVE, SUSPENDED, EXPIRED), "renew")
    terms = sub.terms + 1
    end = term_end(date.fromisoformat(sub.start_date), sub.term, terms)
    settled = _settle(sub, today, now)
    status = ACTIVE if settled["status"] == EXPIRED else settled["status"]
    if end < today:
        raise Conflict("a renewal must reach today; the subscription ended too long ago")
    return replace(sub, **{**settled, "status": status}, terms=terms, end_date=end.isoformat())


#: the states a subscription may be cancelled from (and its add-ons with it)
CANCELLABLE = (ACTIVE, INACTIVE, SUSPENDED)


def cancel(sub: Subscription, today: date, now: str) -> Subscription:
    check_unlocked(sub)
    require_state(sub, today, CANCELLABLE, "cancel")
    settled = _settle(sub, today, now)
    return replace(sub, **{**settled, "status": CANCELLED}, cancellation_date=today.isoformat())


def cancel_with_addons(
    base: Subscription, addons: Iterable[Subscription], effective: date, today: date, now: str
) -> tuple[Subscription, list[Subscription]]:
    """R8/R9: cancelling a base subscription cancels every add-on still live today (active,
    inactive or suspended) with it, each from the base's day or its own last change if later
    (a change is never dated before the add-on's history). An add-on alone is just cancelled.
    Returns the cancelled base and the cancelled add-ons, in the order given."""
    cancelled = cancel(base, effective, now)
    if base.is_addon:
        return cancelled, []
    return cancelled, [
        cancel(addon, max(effective, last_change_on(addon)), now)
        for addon in addons
        if addon.status_on(today) in CANCELLABLE
    ]


#: order types whose line carries no recurring charge
NO_RECURRING = frozenset({CANCEL, SUSPEND, ADDON_REMOVED})


def recurring_amount(order_type: str, sub: Subscription) -> Decimal:
    """An order line's amount: the recurring charge per cycle after the change (R9)."""
    if order_type in NO_RECURRING:
        return round_money(Decimal(0), sub.currency)
    return round_money(sub.unit_price * sub.quantity, sub.currency)


def order_for(
    order_id: str,
    order_type: str,
    sub: Subscription,
    product: ProductRef,
    *,
    effective: date,
    now: str,
    created_by: str,
    previous: Subscription | None = None,
) -> Order:
    """The order (R9) of one action on one subscription, at the buyer's price list."""
    amount = recurring_amount(order_type, sub)
    line = OrderLine(
        product_id=product.id,
        sku=product.sku,
        name=product.name,
        billing_cycle=sub.billing_cycle,
        quantity=sub.quantity,
        unit_price=sub.unit_price,
        amount=amount,
        previous_quantity=previous.quantity
        if previous and previous.quantity != sub.quantity
        else None,
        previous_product_id=(
            previous.product_id if previous and previous.product_id != sub.product_id else None
        ),
    )
    return Order(
        id=order_id,
        number=f"SO-{effective:%Y%m%d}-{order_id[-8:].upper()}",
        tenant_id=sub.tenant_id,
        account_id=sub.account_id,
        subscription_id=sub.id,
        type=order_type,
        date=effective.isoformat(),
        currency=sub.currency,
        lines=[line],
        total=line.amount,
        created_at=now,
        created_by=created_by,
        price_list_id=sub.price_list_id,
        reseller_account_id=sub.reseller_account_id,
    )


def history_entry(sub: Subscription, on: str) -> dict[str, Any]:
    return {
        "on": on,
        "quantity": sub.quantity,
        "product_id": sub.product_id,
        "origin_product_id": sub.origin_product_id,
        "status": sub.status,
    }


HISTORY_DAYS = 400  # what billing can still need: an annual period, and the one before


def recorded(sub: Subscription, order: Order) -> Subscription:
    """The subscription as committed with its order: it remembers its latest change (R14) and
    adds it to its history, which billing prorates (R22). Billing prorates by day and a day's
    last state is the one it bills, so a change on the day of the last entry replaces it (ten
    changes in a day: one entry; issue 12, the mirror item a replicated change writes stays
    under 1 KB). Entries older than ``HISTORY_DAYS`` are dropped, but for the last of them (the
    state they lead to), so the item stays small."""
    entry = history_entry(sub, order.date)
    same_day = bool(sub.history) and str(sub.history[-1]["on"]) == order.date
    history = [*sub.history[:-1], entry] if same_day else [*sub.history, entry]
    cutoff = (date.fromisoformat(order.date) - timedelta(days=HISTORY_DAYS)).isoformat()
    old = [entry for entry in history if str(entry["on"]) < cutoff]
    kept = old[-1:] + [entry for entry in history if str(entry["on"]) >= cutoff]
    return replace(sub, last_change=order.type, last_change_date=order.date, history=kept)
