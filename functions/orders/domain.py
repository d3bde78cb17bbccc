"""Subscriptions and orders (SPEC §3: R8, R9). Pure: stdlib and the kernel only.

Dates are ``date`` objects here and ISO strings at the edges. A term ends the day before the
start plus whole terms (months counted from the start's day, clamped to a month's end), so a
subscription started on the 31st runs [Jan 31, Feb 28), [Feb 28, Mar 31) … (R8, R22).
"""

from __future__ import annotations

import calendar
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from functions.core.clock import rfc3339, today_in
from functions.core.errors import BadRequest, Conflict
from functions.core.money import round_money
from functions.orders.coterm import Coterm, check_coterm
from functions.pricelist.domain import (
    ANY_TIME,
    PENALTY,
    Commitment,
)

INACTIVE, ACTIVE, SUSPENDED, CANCELLED, EXPIRED = (
    "inactive",
    "active",
    "suspended",
    "cancelled",
    "expired",
)
TERM_MONTHS = {"monthly": 1, "annual": 12, "triennial": 36}
#: R31: a commitment's term as a subscription's term
COMMITTED_TERM = {"P1M": "monthly", "P1Y": "annual", "P3Y": "triennial"}
MAX_ADDONS = 20  # keeps a cancellation (base + add-ons + their orders) in one transaction

# order types (R9)
NEW, QUANTITY_CHANGE, UPGRADE, DOWNGRADE = "new", "quantity_change", "upgrade", "downgrade"
ADDON_ADDED, ADDON_REMOVED, RENEW = "addon_added", "addon_removed", "renew"
SUSPEND, RESUME, CANCEL, TRIAL_TO_PAID = "suspend", "resume", "cancel", "trial_to_paid"
AUTO_RENEW_CHANGE = "auto_renew_change"  # R31: auto-renew turned on or off
#: an order's status: done, or waiting for the renewal (R31: a committed downgrade)
COMPLETED, SCHEDULED = "completed", "scheduled"


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
    #: R31: the commitment it was bought under (its product's for the cycle then: a later change
    #: of the product's policy does not touch it); None: flexible. A mirror carries its source's
    commitment: Commitment | None = None
    #: R31: the purchase instant (RFC 3339 UTC), from which the first window counts
    purchased_at: str | None = None
    #: R31: each explicit renewal: ``{term, at}`` (the term it added, its instant)
    renewals: list[dict[str, Any]] = field(default_factory=list)
    #: R31: the seats of the current (and a renewed next) term, each with its window:
    #: ``{term, quantity (still refundable within it), at, until}``; the first of a term is its
    #: opening quantity
    seat_additions: list[dict[str, Any]] = field(default_factory=list)
    #: R31: a downgrade waiting for the renewal: ``{type, on, product_id, origin_tenant_id,
    #: origin_product_id, unit_price}``
    scheduled_change: dict[str, Any] | None = None
    #: R31 co-terming: the first term's last day when it was aligned to another subscription's
    #: end or a month's end (a shorter first term, R22-prorated); later terms are full terms
    #: from the day after it. None: the first term is a full one
    coterm_end: str | None = None
    #: R31: what its cancellation brought, for billing: ``{refund (prorated, full or None),
    #: penalty (a money string or None), on (the day it was reckoned), term_start}``
    cancellation_terms: dict[str, Any] | None = None
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
    status: str = COMPLETED
    #: R31: a cancellation inside its window: the refund its policy grants (prorated, full)
    refund: str | None = None
    #: R31: a cancellation after the window of a penalty policy: the amount owed
    penalty: Decimal | None = None
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
    commitment: Commitment | None = None,
    at: datetime | None = None,
    time_zone: str = "UTC",
    coterm: Coterm | None = None,
) -> Subscription:
    """A new subscription. R31: with a ``commitment`` (its product's for the cycle) the term is
    the commitment's, and the purchase instant ``at`` opens the first window; with ``coterm``
    its first term ends on the aligned day (``check_coterm``)."""
    if billing_cycle not in product.billing_cycles:
        raise BadRequest(
            f"{product.sku} is not sold {billing_cycle}",
            field="billing_cycle",
            code="unsupported_billing_cycle",
        )
    if commitment is not None:
        committed = COMMITTED_TERM[commitment.term]
        if term is not None and term != committed:
            raise BadRequest(
                f"this product is sold {billing_cycle} on a {commitment.term} commitment: "
                f"its term is {committed} (R31)",
                field="term",
                code="commitment_term",
            )
        term = committed
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
    aligned = check_coterm(coterm, start, term_end(start, term, 1)) if coterm else None
    created = Subscription(
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
        end_date=(aligned or term_end(start, term, 1)).isoformat(),
        coterm_end=aligned.isoformat() if aligned else None,
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
    if commitment is None:
        return created
    bought = _instant(at, today, time_zone)
    created = replace(created, commitment=commitment, purchased_at=rfc3339(bought))
    return replace(created, seat_additions=seat_blocks(created, term_on(created, today), time_zone))


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


def change_quantity(
    sub: Subscription,
    quantity: int,
    today: date,
    now: str,
    *,
    at: datetime | None = None,
    time_zone: str = "UTC",
) -> Subscription:
    """R31: on a committed subscription an increase opens a window of its own for the seats it
    adds; a reduction takes only seats still inside their windows (latest first), unless the
    policy frees reductions or it is the term's last day: 409 ``seat_reduction_not_allowed``
    otherwise, naming the date it becomes possible. ``at``: the instant it is asked."""
    check_unlocked(sub)
    require_state(sub, today, (ACTIVE, INACTIVE), "change the quantity of")
    if quantity == sub.quantity:
        raise BadRequest("quantity is unchanged", field="quantity", code="unchanged")
    changed = replace(sub, **_settle(sub, today, now), quantity=quantity)
    if sub.commitment is None:
        return changed
    moment = _instant(at, today, time_zone)
    return replace(
        changed, seat_additions=_seats_after(sub, quantity, moment, time_zone, sub.commitment)
    )


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
    if direction == DOWNGRADE and sub.commitment is not None:
        # R31: a committed subscription keeps its product to the term's end; the renewal
        # applies the downgrade (``renew``)
        term = term_on(sub, today)
        scheduled = {
            "type": DOWNGRADE,
            "on": (term.end + timedelta(days=1)).isoformat(),
            "product_id": product.id,
            "origin_tenant_id": product.origin_tenant_id,
            "origin_product_id": product.origin_product_id,
            "unit_price": str(unit_price),
        }
        return replace(sub, **_settle(sub, today, now), scheduled_change=scheduled), DOWNGRADE
    updated = replace(
        sub,
        **_settle(sub, today, now),
        product_id=product.id,
        unit_price=unit_price,
        origin_tenant_id=product.origin_tenant_id,
        origin_product_id=product.origin_product_id,
        paid_once=sub.paid_once or unit_price > 0,
        scheduled_change=None,  # R31: a change now replaces one waiting for the renewal
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


def renew(
    sub: Subscription,
    today: date,
    now: str,
    *,
    at: datetime | None = None,
    time_zone: str = "UTC",
) -> Subscription:
    """One more term on the end date. R31: a scheduled downgrade takes effect with it; a
    committed subscription records the renewal's instant and opens the new term's window (from
    the later of the instant and the new term's first day) for its seats."""
    check_unlocked(sub)
    require_state(sub, today, (ACTIVE, SUSPENDED, EXPIRED), "renew")
    terms = sub.terms + 1
    new_term = term_bounds(sub, terms)
    end = new_term.end
    settled = _settle(sub, today, now)
    status = ACTIVE if settled["status"] == EXPIRED else settled["status"]
    if end < today:
        raise Conflict("a renewal must reach today; the subscription ended too long ago")
    renewed = replace(sub, **{**settled, "status": status}, terms=terms, end_date=end.isoformat())
    renewed = scheduled_applied(renewed)
    if sub.commitment is None:
        return renewed
    moment = _instant(at, today, time_zone)
    renewed = replace(renewed, renewals=[*sub.renewals, {"term": terms, "at": rfc3339(moment)}])
    current = term_on(sub, today).number
    kept = [b for b in sub.seat_additions if int(b["term"]) >= current]
    fresh = replace(renewed, seat_additions=[b for b in kept if int(b["term"]) != terms])
    return replace(
        fresh, seat_additions=[*fresh.seat_additions, *seat_blocks(fresh, new_term, time_zone)]
    )


def scheduled_applied(sub: Subscription) -> Subscription:
    """R31: a scheduled downgrade taking effect (its product, origin and price)."""
    change = sub.scheduled_change
    if change is None:
        return sub
    price = Decimal(str(change["unit_price"]))
    return replace(
        sub,
        product_id=str(change["product_id"]),
        origin_tenant_id=change.get("origin_tenant_id"),
        origin_product_id=change.get("origin_product_id"),
        unit_price=price,
        paid_once=sub.paid_once or price > 0,
        scheduled_change=None,
    )


def renew_due(sub: Subscription, today: date, now: str, time_zone: str) -> Subscription | None:
    """R31: the automatic renewal that applies a due downgrade (its ``on``, the new term's first
    day, is today or past): the term beginning on ``on`` is written (and the terms before it
    that renewed by themselves), the downgrade applied, the renewal's instant is the term's
    first instant (its window opens then). A term written already (an explicit renewal ahead)
    just takes the downgrade. None when nothing is due: no downgrade, not yet, a mirror (its
    source's renewal reaches it, R13), auto-renew off (the term ends; ``renew`` still applies
    it), or no longer live."""
    change = sub.scheduled_change
    if change is None or sub.mirrored or not sub.auto_renew:
        return None
    on = date.fromisoformat(str(change["on"]))
    if on > today or sub.status_on(today) not in (ACTIVE, SUSPENDED):
        return None
    number = term_on(sub, on).number
    if sub.terms >= number:
        return replace(scheduled_applied(sub), updated_at=now)
    previous = term_bounds(sub, number - 1)  # R31 co-terming: a short first term counts
    written = replace(sub, terms=number - 1, end_date=previous.end.isoformat())
    return renew(written, on, now, at=start_of(on, time_zone), time_zone=time_zone)


def due_entry(sub: Subscription) -> tuple[str | None, str | None]:
    """R31: a subscription's keys in the adapters' sparse ``by_due`` index, when it has a
    scheduled change of its own that an automatic renewal will apply (auto-renewing, not
    cancelled; not a mirror's: the mirror follows its source, R13). Turning auto-renew off
    takes it out; the explicit ``renew`` still applies it."""
    change = sub.scheduled_change
    if change is None or sub.mirrored or not sub.auto_renew or sub.status == CANCELLED:
        return None, None
    return f"{sub.tenant_id}#due", f"{change['on']}#{sub.id}"


#: the states a subscription may be cancelled from (and its add-ons with it)
CANCELLABLE = (ACTIVE, INACTIVE, SUSPENDED)


def cancel(sub: Subscription, today: date, now: str) -> Subscription:
    """The cancellation itself; ``cancel_terms`` says first whether its policy allows it."""
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
    if order.status == SCHEDULED:  # R31: nothing changes until the renewal applies it
        return replace(sub, last_change=order.type, last_change_date=order.date)
    entry = history_entry(sub, order.date)
    same_day = bool(sub.history) and str(sub.history[-1]["on"]) == order.date
    history = [*sub.history[:-1], entry] if same_day else [*sub.history, entry]
    cutoff = (date.fromisoformat(order.date) - timedelta(days=HISTORY_DAYS)).isoformat()
    old = [entry for entry in history if str(entry["on"]) < cutoff]
    kept = old[-1:] + [entry for entry in history if str(entry["on"]) >= cutoff]
    return replace(sub, last_change=order.type, last_change_date=order.date, history=kept)


# --- R31: commitment terms ---------------------------------------------------------------------


@dataclass(frozen=True)
class Term:
    """One term of a subscription: its number (1 = the first) and days ``[start, end]``; a
    co-termed first term is part of the full term ``[full_start, end]`` (R22's denominator)."""

    number: int
    start: date
    end: date  # its last day
    full_start: date | None = None  # a co-termed first term: where a full term would start

    @property
    def full_days(self) -> int:
        """The days of a full term ending on ``end`` (this term's, unless co-termed)."""
        return (self.end - (self.full_start or self.start)).days + 1


def term_bounds(sub: Subscription, number: int) -> Term:
    """Term ``number`` of a subscription (R8): counted from the start; a co-termed one's first
    term ends on its aligned day and the later ones are full terms from the day after (R31)."""
    start = date.fromisoformat(sub.start_date)
    months = TERM_MONTHS[sub.term]
    if sub.coterm_end is None:
        first = add_months(start, months * (number - 1))
        return Term(number, first, term_end(start, sub.term, number))
    aligned = date.fromisoformat(sub.coterm_end)
    renews = aligned + timedelta(days=1)
    if number == 1:
        return Term(1, start, aligned, full_start=add_months(renews, -months))
    return Term(
        number, add_months(renews, months * (number - 2)), term_end(renews, sub.term, number - 1)
    )


def anniversary(sub: Subscription) -> date:
    """R21: the day an annual cycle's periods start on: the start, or a co-termed
    subscription's renewal day (its first period is then the part of a full one, R22)."""
    if sub.coterm_end is None:
        return date.fromisoformat(sub.start_date)
    return date.fromisoformat(sub.coterm_end) + timedelta(days=1)


def _instant(at: datetime | None, today: date, time_zone: str) -> datetime:
    """The instant of an action (UTC); without one, the start of ``today`` in the zone."""
    return (at or start_of(today, time_zone)).astimezone(UTC)


def start_of(day: date, time_zone: str) -> datetime:
    """The first instant of ``day`` in the tenant's time zone, in UTC."""
    return datetime.combine(day, time(), ZoneInfo(time_zone)).astimezone(UTC)


def _parse(instant: object) -> datetime:
    return datetime.fromisoformat(str(instant).replace("Z", "+00:00")).astimezone(UTC)


def term_on(sub: Subscription, today: date) -> Term:
    """The term ``today`` falls in (the first before the start). An auto-renewing subscription
    renews by itself past its end date (nothing writes it; billing goes on, R21): its later
    terms are counted from the start like the written ones."""
    number = 1
    while term_bounds(sub, number).end < today:
        number += 1
    return term_bounds(sub, number)


#: the states of a subscription another may be co-termed with (R31)
COTERMABLE = (ACTIVE, INACTIVE, SUSPENDED)


def coterm_with(target: Subscription, start: date, today: date) -> Coterm:
    """R31 co-terming with ``target`` (the caller checked it is the same account's): its term
    that ``start`` falls in ends on the aligned day; a subscription that does not renew itself
    ends on its end date. A cancelled or expired one is 409 ``invalid_state``."""
    field = "coterm.subscription_id"
    status = target.status_on(today)
    if status not in COTERMABLE:
        raise Conflict(
            f"cannot co-term with a subscription that is {status}",
            code="invalid_state",
            field=field,
            details={"status": status},
        )
    if target.auto_renew:
        return Coterm(term_on(target, start).end, field)
    return Coterm(date.fromisoformat(target.end_date), field)


def window(sub: Subscription, term: Term, time_zone: str) -> tuple[datetime, datetime]:
    """R31: a term's cancellation window ``[opens, closes)``: from the later of the term's first
    instant (tenant time) and the instant it was bought (the purchase for the first term, the
    explicit renewal that added it for a later one), for the policy's hours."""
    commitment = sub.commitment
    hours = commitment.cancellation_window_hours if commitment else 0
    opens = start_of(term.start, time_zone)
    if term.number == 1 and sub.purchased_at:
        opens = max(opens, _parse(sub.purchased_at))
    for renewal in sub.renewals:
        if int(renewal["term"]) == term.number:
            opens = max(opens, _parse(renewal["at"]))
    return opens, opens + timedelta(hours=hours)


def seat_blocks(sub: Subscription, term: Term, time_zone: str) -> list[dict[str, Any]]:
    """R31: a term's seats by the order that added them, each refundable until its own window
    closes. A term nothing has written yet (bought, or renewed by itself) opens with all the
    subscription's seats in the term's window."""
    written = [dict(b) for b in sub.seat_additions if int(b["term"]) == term.number]
    if written:
        return written
    opens, closes = window(sub, term, time_zone)
    return [
        {
            "term": term.number,
            "quantity": sub.quantity,
            "at": rfc3339(opens),
            "until": rfc3339(closes),
        }
    ]


@dataclass(frozen=True)
class Refundable:
    quantity: int
    until: str  # RFC 3339 UTC: when its window closes


def refundable(sub: Subscription, at: datetime, time_zone: str) -> list[Refundable]:
    """R31: the seats a reduction may still take now, per addition, with their deadlines."""
    if sub.commitment is None:
        return []
    term = term_on(sub, today_in(time_zone, at=at))
    return [
        Refundable(int(b["quantity"]), str(b["until"]))
        for b in seat_blocks(sub, term, time_zone)
        if int(b["quantity"]) > 0 and at < _parse(b["until"])
    ]


def _refusal_details(term: Term, closes: datetime | None = None) -> dict[str, Any]:
    details: dict[str, Any] = {
        "possible_on": term.end.isoformat(),
        "term_end": term.end.isoformat(),
    }
    if closes is not None:
        details["window_closed_at"] = rfc3339(closes)
    return details


def _seats_after(
    sub: Subscription, quantity: int, at: datetime, time_zone: str, commitment: Commitment
) -> list[dict[str, Any]]:
    """The seat blocks after a quantity change at ``at`` (R31), or 409 for a reduction the
    policy refuses (the subscription unchanged)."""
    today = today_in(time_zone, at=at)
    term = term_on(sub, today)
    blocks = seat_blocks(sub, term, time_zone)
    # a term renewed ahead opens with the seats the subscription has when it begins: one block
    # of the new quantity in its window (its seats were not bought in it one by one)
    firsts: dict[int, dict[str, Any]] = {}
    for block in sub.seat_additions:
        if int(block["term"]) > term.number:
            firsts.setdefault(int(block["term"]), dict(block))
    others = [{**first, "quantity": quantity} for _, first in sorted(firsts.items())]
    if quantity > sub.quantity:  # an increase: its own window, any time
        added = {
            "term": term.number,
            "quantity": quantity - sub.quantity,
            "at": rfc3339(at),
            "until": rfc3339(at + timedelta(hours=commitment.cancellation_window_hours)),
        }
        return [*blocks, added, *others]
    to_remove = sub.quantity - quantity
    free = commitment.seat_reduction == ANY_TIME or today >= term.end
    open_seats = sum(int(b["quantity"]) for b in blocks if at < _parse(b["until"]))
    if not free and to_remove > open_seats:
        raise Conflict(
            f"only {open_seats} seat(s) are still within their cancellation window; the others "
            f"are committed to the term's end on {term.end} (R31)",
            code="seat_reduction_not_allowed",
            field="quantity",
            details={
                **_refusal_details(term),
                "quantity": sub.quantity,
                "minimum_quantity": sub.quantity - open_seats,
                "refundable_quantity": open_seats,
            },
        )
    for block in reversed(blocks):  # the latest additions first
        if to_remove == 0:
            break
        if free or at < _parse(block["until"]):
            taken = min(to_remove, int(block["quantity"]))
            block["quantity"] = int(block["quantity"]) - taken
            to_remove -= taken
    return [*blocks, *others]


@dataclass(frozen=True)
class CancelTerms:
    """R31: what a permitted cancellation brings: the refund inside the window (``prorated``,
    ``full``) or a penalty after it, or neither (flexible; the term's last day)."""

    refund: str | None = None
    penalty: Decimal | None = None


def cancel_terms(sub: Subscription, at: datetime, time_zone: str) -> CancelTerms:
    """R31: whether a cancellation at ``at`` is allowed and on what terms; 409
    ``outside_cancellation_window`` (naming the term's last day, when it becomes possible) when
    the window has closed and the policy refuses. The penalty is ``penalty_percent`` of the
    remaining committed value at the subscription's price: price × quantity × the billing
    cycles of a term × the term's days left (from today) / its days, rounded (R23)."""
    commitment = sub.commitment
    today = today_in(time_zone, at=at)
    if commitment is None or sub.mirrored or sub.status_on(today) not in CANCELLABLE:
        return CancelTerms()  # ``cancel`` refuses what is not its to refuse (R15, state)
    term = term_on(sub, today)
    _, closes = window(sub, term, time_zone)
    if at < closes:
        return CancelTerms(refund=commitment.refund)
    if today >= term.end:
        return CancelTerms()
    if commitment.after_window != PENALTY:
        raise Conflict(
            f"the cancellation window closed at {rfc3339(closes)}; this {commitment.term} "
            f"commitment may be cancelled on its last day, {term.end}, or left to end by "
            "turning auto-renew off (R31)",
            code="outside_cancellation_window",
            details=_refusal_details(term, closes),
        )
    return CancelTerms(penalty=penalty_on(sub, today, sub.unit_price, sub.currency))


def penalty_on(sub: Subscription, today: date, unit_price: Decimal, currency: str) -> Decimal:
    """R31: the penalty of cancelling on ``today`` at ``unit_price``: ``penalty_percent`` of the
    committed value left, unit price × quantity × the billing cycles of a term × the term's
    days left (from today, inclusive) / its days, rounded half-up (R23). Each tier reckons it at
    its own buyer's price (the mirror at the reseller's, R14)."""
    commitment = sub.commitment
    percent = commitment.penalty_percent if commitment else None
    term = term_on(sub, today)
    cycles = Decimal(TERM_MONTHS[sub.term]) / Decimal(TERM_MONTHS[sub.billing_cycle])
    days_left = Decimal((term.end - today).days + 1)
    term_days = Decimal(term.full_days)  # R22: a co-termed first term is a part of a full one
    committed = unit_price * sub.quantity * cycles * days_left / term_days
    return round_money(committed * (percent or Decimal(0)) / 100, currency)


def terms_of(sub: Subscription) -> CancelTerms:
    """R31: what a cancelled subscription's cancellation brought (``with_cancel_terms``)."""
    kept = sub.cancellation_terms or {}
    penalty = kept.get("penalty")
    return CancelTerms(
        refund=kept.get("refund"), penalty=None if penalty is None else Decimal(str(penalty))
    )


def with_cancel_terms(sub: Subscription, terms: CancelTerms, today: date) -> Subscription:
    """R31: a cancelled subscription remembers what its cancellation brought, for billing (R22):
    a ``full`` refund credits its term from ``term_start``, a penalty is charged once. Nothing
    is kept when it brought neither (flexible; the term's last day)."""
    if terms.refund is None and terms.penalty is None:
        return sub
    return replace(
        sub,
        cancellation_terms={
            "refund": terms.refund,
            "penalty": None if terms.penalty is None else str(terms.penalty),
            "on": today.isoformat(),
            "term_start": max(
                term_on(sub, today).start, date.fromisoformat(sub.start_date)
            ).isoformat(),
        },
    )


def set_auto_renew(sub: Subscription, auto_renew: bool, today: date, now: str) -> Subscription:
    """R31: auto-renew may be turned off (or on) at any time, whatever the commitment. Turned
    off past the written end date (terms renewed by themselves), the current term is written,
    so the subscription ends with it."""
    check_unlocked(sub)
    require_state(sub, today, (ACTIVE, INACTIVE, SUSPENDED), "change auto-renew of")
    if auto_renew == sub.auto_renew:
        raise BadRequest("auto_renew is unchanged", field="auto_renew", code="unchanged")
    settled = _settle(sub, today, now)
    term = term_on(sub, today)
    if term.number > sub.terms:
        return replace(
            sub, **settled, auto_renew=auto_renew, terms=term.number, end_date=term.end.isoformat()
        )
    return replace(sub, **settled, auto_renew=auto_renew)


def commitment_view(sub: Subscription, at: datetime, time_zone: str) -> dict[str, Any]:
    """R31: what a storefront shows: the current term's last day; until when a cancellation is
    allowed with a refund (``cancellable_until``, the window's close) and, once it has closed
    under a refusing policy, the day it becomes possible again (``cancellable_from``); the
    seats still refundable, each with its deadline. Flexible: nulls and an empty list."""
    today = today_in(time_zone, at=at)
    if sub.commitment is None:
        return {
            "term_end": None,
            "cancellable_until": None,
            "cancellable_from": None,
            "refundable_quantity": [],
        }
    term = term_on(sub, today)
    _, closes = window(sub, term, time_zone)
    refused = at >= closes and today < term.end and sub.commitment.after_window != PENALTY
    return {
        "term_end": term.end.isoformat(),
        "cancellable_until": rfc3339(closes),
        "cancellable_from": term.end.isoformat() if refused else None,
        "refundable_quantity": [
            {"quantity": r.quantity, "until": r.until} for r in refundable(sub, at, time_zone)
        ],
    }
