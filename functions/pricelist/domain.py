"""Catalogue and price lists (SPEC §2: R1–R7; R34: a change simulated). Pure: stdlib and the
kernel only."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

from functions.core.domain import Tenant
from functions.core.errors import BadRequest, Conflict, present
from functions.core.money import format_money, parse_price, round_money

LICENSE, USAGE, ADDON, RESELLER_PLAN = "license", "usage", "addon", "reseller_plan"
PRODUCT_TYPES = (LICENSE, USAGE, ADDON, RESELLER_PLAN)
MONTHLY, ANNUAL = "monthly", "annual"
BILLING_CYCLES = (MONTHLY, ANNUAL)
ACTIVE, DISCONTINUED = "active", "discontinued"
#: R27: what a ``reseller_plan`` product grants: Basic (the default, no storefront of its own),
#: Free (a storefront), Standard (a storefront with branding)
BASIC, FREE, STANDARD = "basic", "free", "standard"
PLAN_LEVELS = (BASIC, FREE, STANDARD)
PRODUCT_STATUSES = (ACTIVE, DISCONTINUED)

MAX_MARKUP = Decimal("1000")

# --- R31: commitment terms -----------------------------------------------------------------

#: a commitment's term (ISO 8601 durations) and its length in months
COMMITMENT_TERMS = {"P1M": 1, "P1Y": 12, "P3Y": 36}
CYCLE_MONTHS = {MONTHLY: 1, ANNUAL: 12}
PRORATED, FULL_REFUND = "prorated", "full"
REFUNDS = (PRORATED, FULL_REFUND)
REFUSED, PENALTY = "refused", "penalty"
AFTER_WINDOW = (REFUSED, PENALTY)
WITHIN_WINDOW, ANY_TIME = "within_window", "any_time"
SEAT_REDUCTIONS = (WITHIN_WINDOW, ANY_TIME)
MAX_WINDOW_HOURS = 8760  # a year


@dataclass(frozen=True)
class Commitment:
    """R31: the commitment a product is sold under in one billing cycle (the cycle is the
    billing frequency): the term, and the cancellation policy. ``cancellation_window_hours``
    counts from the purchase instant and from each renewal; inside it a cancellation is refunded
    (``refund``: prorated or full); after it a cancellation is ``refused`` until the term's last
    day, or allowed with a ``penalty`` of ``penalty_percent`` of the remaining committed value.
    ``seat_reduction``: ``within_window`` (seats go only within the window of the order that
    added them; NCE) or ``any_time``. A product and cycle without one is flexible (today's
    behaviour: cancel and reduce any time)."""

    term: str
    cancellation_window_hours: int
    refund: str = PRORATED
    after_window: str = REFUSED
    penalty_percent: Decimal | None = None
    seat_reduction: str = WITHIN_WINDOW

    def as_dict(self) -> dict[str, Any]:
        """The JSON form (API, storage, mirrors): the percentage as a decimal string."""
        return {
            "term": self.term,
            "cancellation_window_hours": self.cancellation_window_hours,
            "refund": self.refund,
            "after_window": self.after_window,
            "penalty_percent": None if self.penalty_percent is None else str(self.penalty_percent),
            "seat_reduction": self.seat_reduction,
        }


def commitment_of(raw: dict[str, Any]) -> Commitment:
    """A stored commitment (``Commitment.as_dict``) read back; trusted, not validated."""
    percent = raw.get("penalty_percent")
    return Commitment(
        term=str(raw["term"]),
        cancellation_window_hours=int(raw["cancellation_window_hours"]),
        refund=str(raw.get("refund", PRORATED)),
        after_window=str(raw.get("after_window", REFUSED)),
        penalty_percent=None if percent is None else Decimal(str(percent)),
        seat_reduction=str(raw.get("seat_reduction", WITHIN_WINDOW)),
    )


def _one_of(value: object, allowed: tuple[str, ...], field: str) -> str:
    if not isinstance(value, str) or value not in allowed:
        raise BadRequest(f"{field} must be one of {', '.join(allowed)}", field=field)
    return value


def new_commitment(cycle: str, raw: dict[str, Any]) -> Commitment:
    """R31: a commitment as given by a product's owner, validated; each fault a 400 naming its
    field (``commitments.<cycle>.<name>``). The term is at least the billing cycle; a penalty
    policy names its percentage (0 < p ≤ 100), any other none."""
    at = f"commitments.{cycle}"
    term = _one_of(raw.get("term"), tuple(COMMITMENT_TERMS), f"{at}.term")
    if COMMITMENT_TERMS[term] < CYCLE_MONTHS[cycle]:
        raise BadRequest(f"a {term} term is shorter than the {cycle} cycle", field=f"{at}.term")
    hours = raw.get("cancellation_window_hours")
    if isinstance(hours, bool) or not isinstance(hours, int) or not 0 <= hours <= MAX_WINDOW_HOURS:
        raise BadRequest(
            f"cancellation_window_hours must be a whole number from 0 to {MAX_WINDOW_HOURS}",
            field=f"{at}.cancellation_window_hours",
        )
    after = _one_of(raw.get("after_window", REFUSED), AFTER_WINDOW, f"{at}.after_window")
    percent_raw = raw.get("penalty_percent")
    percent: Decimal | None = None
    if after == PENALTY:
        if percent_raw is None:
            raise BadRequest(
                "a penalty policy names its penalty_percent",
                field=f"{at}.penalty_percent",
                code="missing_field",
            )
        try:
            percent = Decimal(str(percent_raw))
        except ArithmeticError:
            percent = None
        if (
            isinstance(percent_raw, (bool, float))
            or percent is None
            or not percent.is_finite()
            or not Decimal(0) < percent <= Decimal(100)
            or percent != percent.quantize(Decimal("0.01"))
        ):
            raise BadRequest(
                'penalty_percent must be a decimal string above 0, at most 100 (e.g. "25")',
                field=f"{at}.penalty_percent",
            )
    elif percent_raw is not None:
        raise BadRequest(
            "only a penalty policy takes a penalty_percent", field=f"{at}.penalty_percent"
        )
    return Commitment(
        term=term,
        cancellation_window_hours=hours,
        refund=_one_of(raw.get("refund", PRORATED), REFUNDS, f"{at}.refund"),
        after_window=after,
        penalty_percent=percent,
        seat_reduction=_one_of(
            raw.get("seat_reduction", WITHIN_WINDOW), SEAT_REDUCTIONS, f"{at}.seat_reduction"
        ),
    )


def new_commitments(cycles: list[str], raw: dict[str, Any] | None) -> dict[str, Commitment]:
    """R31: a product's commitments by billing cycle, each for a cycle the product has."""
    found: dict[str, Commitment] = {}
    for cycle, value in (raw or {}).items():
        if value is None:
            continue
        if cycle not in cycles:
            raise BadRequest(
                f"a commitment for {cycle}, a cycle the product lacks",
                field=f"commitments.{cycle}",
            )
        found[cycle] = new_commitment(cycle, value)
    return found


@dataclass(frozen=True)
class MarginAlert:
    """R5: a fixed sell price of one of the tenant's lists below the product's cost."""

    price_list_id: str
    billing_cycle: str
    price: Decimal
    cost: Decimal


@dataclass(frozen=True)
class Product:
    """R1. ``origin_*`` is set on a copy of the provider's product (R3); ``costs`` are then the
    provider's list prices per billing cycle (the tenant's purchase prices)."""

    id: str
    tenant_id: str
    sku: str
    name: str
    type: str
    billing_cycles: list[str]
    unit: str
    created_at: str
    description: str | None = None
    categories: list[str] = field(default_factory=list)
    visible: bool = True
    status: str = ACTIVE  # or DISCONTINUED: no longer sold; subscriptions go on (R5)
    origin_tenant_id: str | None = None
    origin_product_id: str | None = None
    costs: dict[str, Decimal] = field(default_factory=dict)
    addon_for: list[str] = field(default_factory=list)
    #: a ``reseller_plan`` product: the plan it grants (``PLAN_LEVELS``, R27); None otherwise
    plan: str | None = None
    #: a copy: the provider's offer it was last derived from (``Offered.version``, R5, R6)
    source_version: int | None = None
    #: a copy: when its costs last changed (R7: from the next period not yet invoiced)
    costs_changed_at: str | None = None
    #: fixed sell prices of the tenant's own lists now below cost (R5's margin alert)
    margin_alerts: list[MarginAlert] = field(default_factory=list)
    #: R31: the commitment per billing cycle; a cycle without one is flexible. A copy's are its
    #: provider's (R3, R4, R5): a child never grants a longer window than its provider
    commitments: dict[str, Commitment] = field(default_factory=dict)
    version: int | None = None

    @property
    def inherited(self) -> bool:
        return self.origin_product_id is not None

    @property
    def sellable(self) -> bool:
        return self.status == "active"


@dataclass(frozen=True)
class PriceList:
    """R2: one currency, per product and billing cycle a price."""

    id: str
    tenant_id: str
    name: str
    currency: str
    created_at: str
    version: int | None = None


@dataclass(frozen=True)
class Price:
    """A fixed price, or a markup % over the product's cost for that cycle (R4)."""

    tenant_id: str
    price_list_id: str
    product_id: str
    billing_cycle: str
    updated_at: str
    price: Decimal | None = None
    markup_percent: Decimal | None = None
    version: int | None = None


def _cycles(cycles: list[str], *, field: str = "billing_cycles") -> list[str]:
    if not cycles:
        raise BadRequest("at least one billing cycle is required", field=field)
    if len(set(cycles)) != len(cycles):
        raise BadRequest("billing cycles must not repeat", field=field)
    return [c for c in BILLING_CYCLES if c in cycles]


def new_product(
    product_id: str,
    tenant_id: str,
    *,
    sku: str,
    name: str,
    type: str,
    billing_cycles: list[str],
    unit: str,
    created_at: str,
    currency: str,
    costs: dict[str, str] | None,
    addon_for: list[Product],
    **details: Any,
) -> Product:
    """A tenant's own product (R1)."""
    cycles = _cycles(billing_cycles)
    plan = details.get("plan")
    if type == RESELLER_PLAN and plan is None:
        raise BadRequest(
            "a reseller plan names the plan it grants: basic, free or standard (R27)",
            field="plan",
            code="missing_field",
        )
    if type != RESELLER_PLAN and plan is not None:
        raise BadRequest("only a reseller_plan product grants a plan", field="plan")
    if type == ADDON and not addon_for:
        raise BadRequest(
            "an add-on names the products it attaches to", field="addon_for", code="missing_field"
        )
    if type != ADDON and addon_for:
        raise BadRequest("only an add-on attaches to other products", field="addon_for")
    for base in addon_for:
        if base.type == ADDON:
            raise BadRequest("an add-on attaches to base products, not add-ons", field="addon_for")
    parsed: dict[str, Decimal] = {}
    for cycle, amount in (costs or {}).items():
        if cycle not in cycles:
            raise BadRequest(f"cost for {cycle}, a cycle the product lacks", field=f"costs.{cycle}")
        parsed[cycle] = parse_price(amount, currency, field=f"costs.{cycle}")
    commitments = new_commitments(cycles, details.pop("commitments", None))
    return Product(
        id=product_id,
        tenant_id=tenant_id,
        sku=sku,
        name=name,
        type=type,
        billing_cycles=cycles,
        unit=unit,
        created_at=created_at,
        costs=parsed,
        addon_for=[b.id for b in addon_for],
        commitments=commitments,
        **details,
    )


def check_sku_free(sku: str, holders: set[str], product_id: str) -> None:
    """R1, R29: an own product's SKU is its own in the tenant's catalogue: no other product,
    own or copied from the provider (R3, R5), holds it. ``holders``: the products holding it."""
    others = sorted(holders - {product_id})
    if others:
        raise BadRequest(
            f"SKU {sku} is already in the catalogue (product {others[0]})",
            field="sku",
            code="sku_taken",
            details={"product_id": others[0]},
        )


#: what a tenant may not change on a product copied from its provider (R4)
INHERITED_FIELDS = (
    "sku",
    "type",
    "billing_cycles",
    "unit",
    "costs",
    "addon_for",
    "status",
    "plan",
    "commitments",
)


def update_product(product: Product, changes: dict[str, Any]) -> Product:
    """R4: on a copied product only the tenant's own presentation may change."""
    if product.inherited:
        for name in INHERITED_FIELDS:
            if name in changes:
                raise Conflict(
                    f"{name} of a product copied from the provider cannot be changed (R4)",
                    code="inherited_product",
                    field=name,
                )
    if "type" in changes and (changes["type"] == RESELLER_PLAN) != (product.type == RESELLER_PLAN):
        raise BadRequest(
            "a reseller plan stays a reseller plan, and no other product becomes one (R27)",
            field="type",
            code="invalid_value",
        )
    if "billing_cycles" in changes:
        changes = {**changes, "billing_cycles": _cycles(changes["billing_cycles"])}
    cycles = changes.get("billing_cycles", product.billing_cycles)
    if "commitments" in changes:  # R31: the whole map is replaced; null clears it
        changes = {**changes, "commitments": new_commitments(cycles, changes["commitments"])}
    else:  # a cycle dropped takes its commitment with it
        kept = {c: v for c, v in product.commitments.items() if c in cycles}
        if kept != product.commitments:
            changes = {**changes, "commitments": kept}
    return replace(product, **changes)


def copy_for_child(
    source: Product,
    child_tenant_id: str,
    child_product_id: str,
    costs: dict[str, Decimal],
    addon_for: list[str],
    *,
    created_at: str,
) -> Product:
    """R3: the child's copy: the product's configuration, the list's prices as its costs."""
    return Product(
        id=child_product_id,
        tenant_id=child_tenant_id,
        sku=source.sku,
        name=source.name,
        type=source.type,
        billing_cycles=[c for c in BILLING_CYCLES if c in costs],
        unit=source.unit,
        created_at=created_at,
        description=source.description,
        categories=list(source.categories),
        visible=source.visible,
        origin_tenant_id=source.tenant_id,
        origin_product_id=source.id,
        costs=dict(costs),
        addon_for=addon_for,
        plan=source.plan,
        commitments=_commitments_for(source, costs),
    )


def _commitments_for(source: Product, costs: dict[str, Decimal]) -> dict[str, Commitment]:
    """R31, R3: a copy's commitments are its provider's, for the cycles it is offered in."""
    return {c: v for c, v in source.commitments.items() if c in costs}


def new_price(
    price_list: PriceList,
    product: Product,
    *,
    billing_cycle: str,
    price: str | None,
    markup_percent: str | None,
    updated_at: str,
    previous: Price | None,
) -> Price:
    if billing_cycle not in product.billing_cycles:
        raise BadRequest(
            f"the product is not sold {billing_cycle}",
            field="billing_cycle",
            code="unsupported_billing_cycle",
        )
    if (price is None) == (markup_percent is None):
        raise BadRequest("give either price or markup_percent", field="price")
    fixed = markup = None
    if price is not None:
        fixed = parse_price(price, price_list.currency, field="price")
    else:
        markup_percent = present(markup_percent, "a price or a markup")
        markup = Decimal(markup_percent)
        if not Decimal(0) <= markup <= MAX_MARKUP:
            raise BadRequest(
                f"markup_percent must be 0-{MAX_MARKUP}",
                field="markup_percent",
                code="out_of_range",
            )
        if billing_cycle not in product.costs:
            raise BadRequest(
                "a markup needs the product's cost for this cycle", field="markup_percent"
            )
    return Price(
        tenant_id=price_list.tenant_id,
        price_list_id=price_list.id,
        product_id=product.id,
        billing_cycle=billing_cycle,
        updated_at=updated_at,
        price=fixed,
        markup_percent=markup,
        version=previous.version if previous else None,
    )


def effective_price(entry: Price, product: Product, currency: str) -> Decimal:
    """The sell price: fixed, or cost × (1 + markup/100) rounded half-up (R4, R23)."""
    if entry.price is not None:
        return entry.price
    markup = present(entry.markup_percent, "the entry's price or markup")
    cost = product.costs[entry.billing_cycle]
    return round_money(cost * (1 + markup / 100), currency)


def price_view(entries: list[Price], product: Product, currency: str) -> dict[str, str]:
    return {
        e.billing_cycle: format_money(effective_price(e, product, currency), currency)
        for e in entries
        if e.billing_cycle in product.billing_cycles
        and (e.price is not None or e.billing_cycle in product.costs)
    }


# --- R4: what a tenant may do with a copied product -------------------------------------------


def check_addon_bases(bases: list[Product]) -> None:
    """R4: a tenant creates no new products on an inherited product: its own add-ons attach to
    its own products only (an inherited product's add-ons come from the provider)."""
    for base in bases:
        if base.inherited:
            raise Conflict(
                f"{base.sku} is copied from the provider: no new products on it (R4)",
                code="inherited_product",
                field="addon_for",
            )


def retire_product(product: Product) -> Product:
    """``DELETE /products/{id}``: the product stops being sold and leaves the storefront;
    existing subscriptions go on. A copy its provider still offers cannot be deleted (R4)."""
    if product.inherited and product.sellable:
        raise Conflict(
            f"{product.sku} is still offered by the provider (R4)",
            code="offered_by_provider",
            field="id",
        )
    return replace(product, status=DISCONTINUED, visible=False)


# --- R5-R7: a provider's change reaching a tenant reseller's catalogue ---------------------------

FULL, PARTIAL = "full", "partial"
PROPAGATION_MODES = (FULL, PARTIAL)


@dataclass(frozen=True)
class Propagation:
    """How a provider's price-list changes reach one tenant reseller (R5): ``full`` (every
    catalogue change) or ``partial`` (purchase prices only), and the opt-in overwrites."""

    mode: str = FULL
    overwrite_sell_prices: bool = False
    overwrite_names: bool = False


@dataclass(frozen=True)
class Offered:
    """What a provider offers through one price list for one product, as read now: the
    provider's product and the list's entries for it (by cycle), in the list's currency."""

    product: Product
    entries: dict[str, Price]
    currency: str

    @property
    def version(self) -> int:
        """Grows with every change of the product or of its entries in the list (versions only
        grow and entries are never deleted), so the state a message read is ordered against the
        one a copy holds: an older offer never overwrites a newer one (R6: out of order)."""
        return (self.product.version or 0) + sum(e.version or 0 for e in self.entries.values())

    def costs(self) -> dict[str, Decimal]:
        """The child's purchase prices (R2): the list's effective prices, by cycle."""
        return {
            cycle: effective_price(entry, self.product, self.currency)
            for cycle, entry in self.entries.items()
            if cycle in self.product.billing_cycles
            and (entry.price is not None or cycle in self.product.costs)
        }


#: what a child derives from its provider's product: a change elsewhere flows no further
OFFER_FIELDS = (
    "name",
    "description",
    "categories",
    "status",
    "billing_cycles",
    "costs",
    "commitments",
)


def offer_changed(before: Product | None, after: Product) -> bool:
    """Whether a product's change can change what its children are offered (R6)."""
    if before is None:
        return True
    return any(getattr(before, name) != getattr(after, name) for name in OFFER_FIELDS)


def rederive_copy(
    offered: Offered,
    copy: Product | None,
    *,
    child_tenant_id: str,
    copy_id: str,
    addon_for: list[str],
    propagation: Propagation,
    now: str,
) -> Product | None:
    """R5: the child's copy after its provider's change; None when nothing is to be written
    (the copy already holds this offer or a newer one; or it is new and not to be copied).

    - ``full``: a product new to the list is copied; costs, cycles, description and categories
      follow; a discontinued product (or one left without a price) stops being sold; the name
      follows only with ``overwrite_names``.
    - ``partial``: only the costs of the cycles the copy already has.
    Markup sell prices follow the cost by themselves (they are computed from it)."""
    costs = offered.costs()
    source = offered.product
    if copy is None:
        if propagation.mode != FULL or not source.sellable or not costs:
            return None
        fresh = copy_for_child(source, child_tenant_id, copy_id, costs, addon_for, created_at=now)
        return replace(fresh, source_version=offered.version, costs_changed_at=now)
    if copy.source_version is not None and copy.source_version >= offered.version:
        return None
    if propagation.mode == PARTIAL:
        new_costs = {c: costs.get(c, amount) for c, amount in copy.costs.items()}
        # R31: the policy follows in either mode: a child never grants a longer window
        updated = replace(copy, costs=new_costs, commitments=_commitments_for(source, new_costs))
    else:
        retired = not source.sellable or not costs
        updated = replace(
            copy,
            costs=costs if costs else copy.costs,
            billing_cycles=[c for c in BILLING_CYCLES if c in costs] or copy.billing_cycles,
            description=source.description,
            categories=list(source.categories),
            status=DISCONTINUED if retired else source.status,
            name=source.name if propagation.overwrite_names else copy.name,
        )
        updated = replace(updated, commitments=_commitments_for(source, updated.costs))
    # Written even when nothing shown changes: the copy must hold the newer version, or an
    # older offer read by a concurrent message could still be written over it.
    if updated.costs != copy.costs:
        updated = replace(updated, costs_changed_at=now)
    return replace(updated, source_version=offered.version)


def sells_at_retail(child: Tenant, provider: Tenant) -> bool:
    """R5 option ``overwrite_sell_prices`` (full mode only, like every option): the child's
    default list sells its copies at its provider's own default-list (retail) prices, when both
    have a default list in one currency."""
    return (
        child.propagation == FULL
        and child.overwrite_sell_prices
        and provider.default_price_list_id is not None
        and child.default_price_list_id is not None
        and provider.currency == child.currency
    )


def retail_prices(
    product: Product,
    retail: dict[str, Price],
    mine: dict[str, Price],
    currency: str,
    *,
    updated_at: str,
) -> dict[str, Price]:
    """R5 option ``overwrite_sell_prices``: the entries of the child's default list (``mine``,
    by cycle) whose fixed price becomes the provider's retail price of ``product`` (``retail``:
    its default-list entries); a markup is left to follow the cost."""
    prices = Offered(product, retail, currency).costs()
    return {
        cycle: replace(entry, price=prices[cycle], updated_at=updated_at)
        for cycle, entry in mine.items()
        if entry.price is not None and cycle in prices and prices[cycle] != entry.price
    }


def propagates_to(child: Tenant, provider_id: str) -> bool:
    """R5: a provider's change reaches an active child of its own only."""
    return child.status == "active" and child.parent_id == provider_id


def margin_alerts(product: Product, fixed_prices: list[Price]) -> list[MarginAlert]:
    """R5: the tenant's fixed sell prices of ``product`` below its cost (a markup never is)."""
    alerts = [
        MarginAlert(entry.price_list_id, entry.billing_cycle, entry.price, cost)
        for entry in fixed_prices
        if entry.price is not None
        and (cost := product.costs.get(entry.billing_cycle)) is not None
        and entry.price < cost
    ]
    return sorted(alerts, key=lambda a: (a.price_list_id, a.billing_cycle))


# --- R34: a proposed change of a price list, simulated down every tier, nothing written ---------


@dataclass(frozen=True)
class OfferChange:
    """R34: what one list offers of one product, now and with the proposed entries: the unit a
    price-list change reaches a tier with (as a ``PriceChange`` message does, R5)."""

    price_list_id: str
    before: Offered
    after: Offered


@dataclass(frozen=True)
class Resold:
    """A subscription a provider bills a tenant reseller for (R20): a mirror under the child's
    tenant reseller account in the provider's BSS, at the child's assigned list."""

    subscription_id: str
    account_id: str  # the end customer's mirror
    product_id: str  # the provider's product
    billing_cycle: str
    quantity: int
    price_list_id: str


@dataclass(frozen=True)
class ChildBook:
    """What a simulation reads of one child tenant reached by a change (R34): its settings, its
    copies of the changed products (None: no copy yet), its lists and their entries for those
    copies, and the subscriptions its provider bills it for (``Resold``)."""

    tenant: Tenant
    copies: dict[str, Product | None]  # by copy id
    lists: list[PriceList]
    entries: dict[tuple[str, str], dict[str, Price]]  # (list id, copy id) → by cycle
    resold: list[Resold]
    #: for ``overwrite_sell_prices`` (R5 option): the provider, and its default-list entries
    #: after publishing, by its product
    provider: Tenant | None = None
    retail: dict[str, dict[str, Price]] = field(default_factory=dict)


@dataclass(frozen=True)
class CostChange:
    """R34, R5: a copy's costs (purchase prices) per cycle, now and after; ``change`` is
    ``new`` (a product copied), ``discontinued`` or ``updated``."""

    product_id: str
    origin_product_id: str
    sku: str
    change: str
    costs_before: dict[str, Decimal]
    costs_after: dict[str, Decimal]


@dataclass(frozen=True)
class PriceMove:
    """R34, R4: a sell price of one of the tenant's lists that moves (a markup over a changed
    cost, or a proposed entry of the simulated list itself); None: no price."""

    price_list_id: str
    product_id: str
    billing_cycle: str
    currency: str
    before: Decimal | None
    after: Decimal | None


@dataclass(frozen=True)
class AlertChange:
    """R34, R5: a margin alert (a fixed price below cost) that would be raised or cleared."""

    product_id: str
    price_list_id: str
    billing_cycle: str
    price: Decimal
    cost: Decimal


@dataclass(frozen=True)
class InvoiceChange:
    """R34, R20: how one billed subscription's charge for one full period moves."""

    subscription_id: str
    account_id: str
    product_id: str
    billing_cycle: str
    quantity: int
    price_before: Decimal
    price_after: Decimal
    change: Decimal


@dataclass(frozen=True)
class Forecast:
    """R34: what the change would do to one tenant. ``invoice``: the next invoice its provider
    sends it, by subscription (``invoice_change`` in ``invoice_currency``); ``onward``: its own
    lists' offers that change, i.e. what reaches its own tenant resellers (R6)."""

    copies: list[CostChange] = field(default_factory=list)
    moved_prices: list[PriceMove] = field(default_factory=list)
    alerts_raised: list[AlertChange] = field(default_factory=list)
    alerts_cleared: list[AlertChange] = field(default_factory=list)
    invoice: list[InvoiceChange] = field(default_factory=list)
    invoice_change: Decimal = Decimal(0)
    invoice_currency: str | None = None
    onward: list[OfferChange] = field(default_factory=list)
    #: ``overwrite_sell_prices`` (R5 option): its default list's entries after publishing, by
    #: copy, where a fixed price would become its provider's retail price
    overwritten: dict[str, dict[str, Price]] = field(default_factory=dict)


MAX_SIMULATED_ENTRIES = 50


def proposed_entries(
    price_list: PriceList,
    products: dict[str, Product],
    proposals: list[dict[str, Any]],
    current: dict[tuple[str, str], Price | None],
    *,
    updated_at: str,
) -> list[Price]:
    """R34, R4: the proposed entries of ``price_list`` (each ``{product_id, billing_cycle,
    price, markup_percent}``), each checked exactly as ``POST /pricelists/{id}/prices`` checks
    one (``new_price``), a refusal naming ``entries.{i}.{field}``; a product and cycle given
    twice is refused. ``current``: the entries now, by (product, cycle)."""
    if not 1 <= len(proposals) <= MAX_SIMULATED_ENTRIES:
        raise BadRequest(
            f"give 1-{MAX_SIMULATED_ENTRIES} entries", field="entries", code="out_of_range"
        )
    seen: set[tuple[str, str]] = set()
    entries = []
    for i, body in enumerate(proposals):
        product = products.get(body["product_id"])
        if product is None:
            raise BadRequest(
                f"unknown product {body['product_id']}",
                field=f"entries.{i}.product_id",
                code="unknown_product",
            )
        key = (product.id, body["billing_cycle"])
        if key in seen:
            raise BadRequest(
                f"{product.id} {key[1]} is given twice",
                field=f"entries.{i}.billing_cycle",
                code="duplicate_entry",
            )
        seen.add(key)
        try:
            entry = new_price(
                price_list,
                product,
                billing_cycle=body["billing_cycle"],
                price=body.get("price"),
                markup_percent=body.get("markup_percent"),
                updated_at=updated_at,
                previous=current.get(key),
            )
        except BadRequest as error:
            error.details["field"] = f"entries.{i}.{error.field}"
            raise
        entries.append(entry)
    return entries


def _alert_changes(
    product_id: str, before: list[MarginAlert], after: list[MarginAlert]
) -> tuple[list[AlertChange], list[AlertChange]]:
    """The alerts in ``after`` that ``before`` lacks (raised), and the reverse (cleared), by
    list and cycle."""

    def keyed(alerts: list[MarginAlert]) -> dict[tuple[str, str], MarginAlert]:
        return {(a.price_list_id, a.billing_cycle): a for a in alerts}

    old, new = keyed(before), keyed(after)

    def change(a: MarginAlert) -> AlertChange:
        return AlertChange(product_id, a.price_list_id, a.billing_cycle, a.price, a.cost)

    raised = [change(a) for key, a in sorted(new.items()) if key not in old]
    cleared = [change(a) for key, a in sorted(old.items()) if key not in new]
    return raised, cleared


def simulate_list(
    owner: Tenant,
    price_list: PriceList,
    products: dict[str, Product],
    current: dict[tuple[str, str], Price | None],
    proposed: list[Price],
    fixed_prices: dict[str, list[Price]],
) -> tuple[Forecast, list[OfferChange]]:
    """R34 at the list owner's tier: the list's own prices that move, the owner's margin alerts
    ``set_price`` would raise or clear (its fixed prices below its own cost, R5), and the
    offers of each product, now and proposed, that reach the list's assignees.

    ``current``: the list's entries now by (product, cycle), every cycle of each proposed
    product; ``fixed_prices``: by product, its entries in every list of the owner's currency
    (``entries_in_lists``)."""
    forecast = Forecast()
    changes = []
    by_product: dict[str, list[Price]] = {}
    for entry in proposed:
        by_product.setdefault(entry.product_id, []).append(entry)
    for product_id, entries in by_product.items():
        product = products[product_id]
        now = {c: e for (p, c), e in current.items() if p == product_id and e is not None}
        before = Offered(product, now, price_list.currency)
        after = Offered(
            product, {**now, **{e.billing_cycle: e for e in entries}}, price_list.currency
        )
        old, new = before.costs(), after.costs()
        for cycle in BILLING_CYCLES:
            if old.get(cycle) != new.get(cycle):
                forecast.moved_prices.append(
                    PriceMove(
                        price_list.id,
                        product_id,
                        cycle,
                        price_list.currency,
                        old.get(cycle),
                        new.get(cycle),
                    )
                )
        if product.costs:  # as set_price recomputes them (R5)
            proposed_here = {(price_list.id, e.billing_cycle): e for e in entries}
            mine = [
                e
                for e in fixed_prices.get(product_id, [])
                if (e.price_list_id, e.billing_cycle) not in proposed_here
            ]
            if price_list.currency == owner.currency:
                mine += proposed_here.values()
            raised, cleared = _alert_changes(
                product_id, product.margin_alerts, margin_alerts(product, mine)
            )
            forecast.alerts_raised.extend(raised)
            forecast.alerts_cleared.extend(cleared)
        changes.append(OfferChange(price_list.id, before, after))
    return forecast, changes


def _invoice_changes(
    changes: list[OfferChange], resold: list[Resold]
) -> tuple[list[InvoiceChange], Decimal, str | None]:
    """R34, R20, R4: each billed subscription of a changed offer — same list, product and
    cycle — charged quantity × (price after − price before) for one full period. A cycle
    priced on one side only (added or gone) is not counted: such a subscription keeps the price
    it was sold at (``price_of`` in billing)."""
    lines: list[InvoiceChange] = []
    currency = None
    for change in changes:
        before, after = change.before.costs(), change.after.costs()
        currency = change.after.currency
        for sub in resold:
            if (
                sub.price_list_id != change.price_list_id
                or sub.product_id != change.after.product.id
                or sub.billing_cycle not in before
                or sub.billing_cycle not in after
                or before[sub.billing_cycle] == after[sub.billing_cycle]
            ):
                continue
            old, new = before[sub.billing_cycle], after[sub.billing_cycle]
            lines.append(
                InvoiceChange(
                    sub.subscription_id,
                    sub.account_id,
                    sub.product_id,
                    sub.billing_cycle,
                    sub.quantity,
                    old,
                    new,
                    round_money((new - old) * sub.quantity, currency),
                )
            )
    total = sum((line.change for line in lines), Decimal(0))
    return lines, total, currency


def simulate_child(
    changes: list[OfferChange], book: ChildBook, *, copy_ids: dict[str, str], now: str
) -> Forecast | None:
    """R34: what ``changes`` (its provider's offers, now and proposed, in the list assigned to
    it) would do to one child tenant, by the very rules of propagation (R5, R6): each copy
    re-derived (``rederive_copy``, mode and options), its margin alerts as propagation computes
    them, the markup prices of its lists that follow the cost (and, with the option
    ``overwrite_sell_prices``, its default list's fixed prices set to the provider's retail
    ones: ``book.retail``), the change of the next invoice
    its provider sends it, and its own lists' offers that change (what its own tenant resellers
    would be reached with). None when propagation skips the child (not active, or not its
    provider's). ``copy_ids``: the child's copy id of each provider product (and base)."""
    child = book.tenant
    if not changes:
        return Forecast()
    if not propagates_to(child, changes[0].after.product.tenant_id):
        return None
    propagation = Propagation(child.propagation, child.overwrite_sell_prices, child.overwrite_names)
    forecast = Forecast()
    for change in changes:
        source = change.after.product
        copy_id = copy_ids[source.id]
        copy = book.copies.get(copy_id)
        # the proposal is newer than anything the copy holds: publishing writes versions that
        # only grow (R5), so the copy's ``source_version`` does not stop the prediction
        updated = rederive_copy(
            change.after,
            replace(copy, source_version=None) if copy is not None else None,
            child_tenant_id=child.id,
            copy_id=copy_id,
            addon_for=[copy_ids[b] for b in source.addon_for if b in copy_ids],
            propagation=propagation,
            now=now,
        )
        if updated is None:
            continue
        in_currency = [pl for pl in book.lists if pl.currency == child.currency]
        if copy is None or updated.costs != copy.costs:  # as ``Propagator._apply`` does
            fixed = [
                e for pl in in_currency for e in book.entries.get((pl.id, copy_id), {}).values()
            ]
            updated = replace(updated, margin_alerts=margin_alerts(updated, fixed))
        old_costs = copy.costs if copy is not None else {}
        if copy is None:
            kind = "new"
        elif updated.status != copy.status and not updated.sellable:
            kind = "discontinued"
        else:
            kind = "updated"
        if copy is None or old_costs != updated.costs or updated.status != copy.status:
            forecast.copies.append(
                CostChange(
                    copy_id, source.id, updated.sku, kind, dict(old_costs), dict(updated.costs)
                )
            )
        raised, cleared = _alert_changes(
            copy_id, copy.margin_alerts if copy else [], updated.margin_alerts
        )
        forecast.alerts_raised.extend(raised)
        forecast.alerts_cleared.extend(cleared)
        default = child.default_price_list_id
        if book.provider is not None and sells_at_retail(child, book.provider) and default:
            # after the copy's write, as ``Propagator`` does: the alerts above are the ones
            # propagation computes, over the prices before this
            mine = book.entries.get((default, copy_id), {})
            changed = retail_prices(
                source, book.retail.get(source.id, {}), mine, child.currency, updated_at=now
            )
            if changed:
                forecast.overwritten[copy_id] = {**mine, **changed}
        for price_list in book.lists:
            entries = book.entries.get((price_list.id, copy_id), {})
            if not entries:
                continue
            entries_after = (
                forecast.overwritten.get(copy_id, entries) if price_list.id == default else entries
            )
            before = Offered(copy, entries, price_list.currency) if copy else None
            after = Offered(updated, entries_after, price_list.currency)
            old = before.costs() if before else {}
            new = after.costs()
            for cycle in sorted(entries):  # a markup following the cost, or a fixed overwritten
                if old.get(cycle) != new.get(cycle):
                    forecast.moved_prices.append(
                        PriceMove(
                            price_list.id,
                            copy_id,
                            cycle,
                            price_list.currency,
                            old.get(cycle),
                            new.get(cycle),
                        )
                    )
            if before is not None and (offer_changed(copy, updated) or entries_after != entries):
                forecast.onward.append(OfferChange(price_list.id, before, after))
    lines, total, currency = _invoice_changes(changes, book.resold)
    return replace(forecast, invoice=lines, invoice_change=total, invoice_currency=currency)
