"""Back ordering (SPEC §4, R11-R18): what one change in a reseller tenant's BSS becomes in its
provider's BSS. Pure: stdlib and the kernel only.

Everything the provider gets is keyed deterministically by its source, so a change delivered
twice, late or out of order has exactly one effect:

- the mirror of an account or subscription: ``derived_id(provider, child, source id)`` (R12, R13);
- the provider's order of one change: ``derived_id(provider, child, subscription, version)`` (R14);
- a mirror is written only over an older source version (R18).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import date
from decimal import Decimal
from typing import Any

from functions.core.domain import CUSTOMER_KIND, Account, Contact
from functions.core.errors import present
from functions.core.ids import derived_id
from functions.core.money import round_money
from functions.invoices.domain import UsageRecord
from functions.orders.domain import (
    ADDON_REMOVED,
    CANCEL,
    CANCELLED,
    COMPLETED,
    DOWNGRADE,
    SCHEDULED,
    Order,
    OrderLine,
    Subscription,
    penalty_on,
    recurring_amount,
    terms_of,
)
from functions.pricelist.domain import Product


@dataclass(frozen=True)
class Link:
    """A reseller tenant as its provider's BSS knows it."""

    child_tenant_id: str
    provider_tenant_id: str
    reseller_account_id: str  # the tenant reseller account in the provider's BSS
    price_list_id: str | None  # the list assigned to it: its costs, the mirrors' prices (R2, R13)
    currency: str
    active: bool  # back ordering on (R11)
    #: the child was a lite reseller (R19): its copies continue the provider's records
    #: (``upstream_id``), which are their mirrors
    upgraded: bool = False


@dataclass(frozen=True)
class Root:
    """A tenant without a provider: nothing of it is ever mirrored (R11 needs a parent), and it
    never gets one, so a warm container remembers the answer (the provider's own records, the
    mirrors, reach the same stream handler: one read each otherwise)."""

    tenant_id: str


#: the ``last_change`` of a subscription an upgrade carried over (R19): mirrored, not ordered
TRANSFER = "transfer"


def mirror_account_id(link: Link, account_id: str) -> str:
    return derived_id("acc", link.provider_tenant_id, link.child_tenant_id, account_id)


def account_mirror_id(link: Link, account: Account) -> str:
    """The mirror of a child's account: the provider's own record it continues (R19), else the
    one derived from its id."""
    return account.upstream_id or mirror_account_id(link, account.id)


def subscription_mirror_id(link: Link, sub: Subscription) -> str:
    return sub.upstream_id or mirror_subscription_id(link, sub.id)


def mirror_subscription_id(link: Link, subscription_id: str) -> str:
    return derived_id("sub", link.provider_tenant_id, link.child_tenant_id, subscription_id)


def provider_order_id(link: Link, subscription_id: str, version: int) -> str:
    return derived_id(
        "ord", link.provider_tenant_id, link.child_tenant_id, subscription_id, str(version)
    )


def is_mirrored(link: Link, sub: Subscription) -> bool:
    """R13: a subscription of the child for one of the provider's products, paid at some point
    (a trial is not mirrored until it is paid; from then on every change is), once back ordering
    is on (R11)."""
    return (
        link.active
        and sub.version is not None
        and sub.origin_tenant_id == link.provider_tenant_id
        and sub.origin_product_id is not None
        and sub.paid_once
    )


def mirror_account(
    link: Link, source: Account, *, parent_mirror_id: str | None, created_at: str
) -> Account:
    """R12: the account copied under the tenant reseller account (a customer of a lite reseller
    under the lite reseller's mirror), billed to the tenant reseller in the reseller's currency.
    Synced: name, accounting number, email, address."""
    return Account(
        id=account_mirror_id(link, source),
        tenant_id=link.provider_tenant_id,
        name=source.name,
        kind=source.kind,
        currency=link.currency,
        created_at=created_at,
        parent_account_id=parent_mirror_id or link.reseller_account_id,
        enable_reselling=source.enable_reselling,
        email=source.email,
        accounting_number=source.accounting_number,
        address=source.address,
        mirrored=True,
        source={"tenant_id": source.tenant_id, "account_id": source.id},
        bill_to=link.reseller_account_id,
        source_version=source.version,
    )


#: R12: what a mirror account keeps in step with its source after the copy
SYNCED_ACCOUNT_FIELDS = ("name", "email", "accounting_number", "address")


def synced_fields(source: Account) -> dict[str, object]:
    """R12: the fields of an account its mirror follows (None = removed)."""
    return {name: getattr(source, name) for name in SYNCED_ACCOUNT_FIELDS}


@dataclass(frozen=True)
class ProviderProduct:
    """The provider's own product a child's product was copied from."""

    id: str
    sku: str
    name: str
    origin_tenant_id: str | None
    origin_product_id: str | None


def mirror_subscription(
    link: Link,
    sub: Subscription,
    product: ProviderProduct,
    *,
    unit_price: Decimal,
    now: str,
    account_mirror: str | None = None,
    parent_mirror: str | None = None,
    products: Mapping[str, ProviderProduct] | None = None,
) -> Subscription:
    """R13: the 1:1 copy, with the provider's product, priced from the reseller's list (pricing
    is not copied). Its own origin lets the change flow further up (R17). The mirrors of its
    account and base are derived from their ids unless given (an upgraded child's, R19).

    R31: it carries the source's commitment, purchase and renewal instants and seat windows as
    they are (a scheduled downgrade with the provider's product).

    Its history is the source's, each entry with the provider's product it came from
    (``products``, by the source's origin product id; the current product otherwise), so each
    tier prorates the same days (R22)."""
    version = present(sub.version, "the source's version")
    price_list_id = present(link.price_list_id, "the reseller's price list")
    known = products or {}
    history = [
        {
            **entry,
            "product_id": mapped.id,
            "origin_product_id": mapped.origin_product_id,
        }
        for entry in sub.history
        for mapped in [known.get(str(entry.get("origin_product_id")), product)]
    ]
    return Subscription(
        id=subscription_mirror_id(link, sub),
        tenant_id=link.provider_tenant_id,
        account_id=account_mirror or mirror_account_id(link, sub.account_id),
        product_id=product.id,
        quantity=sub.quantity,
        billing_cycle=sub.billing_cycle,
        term=sub.term,
        terms=sub.terms,
        status=sub.status,
        start_date=sub.start_date,
        end_date=sub.end_date,
        auto_renew=sub.auto_renew,
        currency=link.currency,
        unit_price=unit_price,
        price_list_id=price_list_id,
        created_at=now,
        updated_at=now,
        activation_date=sub.activation_date,
        cancellation_date=sub.cancellation_date,
        characteristics=dict(sub.characteristics),
        parent_subscription_id=(
            parent_mirror or mirror_subscription_id(link, sub.parent_subscription_id)
            if sub.parent_subscription_id
            else None
        ),
        reseller_account_id=link.reseller_account_id,
        origin_tenant_id=product.origin_tenant_id,
        origin_product_id=product.origin_product_id,
        paid_once=sub.paid_once,
        last_change=sub.last_change,
        last_change_date=sub.last_change_date,
        mirrored=True,
        source={"tenant_id": sub.tenant_id, "subscription_id": sub.id},
        source_version=version,
        history=history,
        # R31: the policy and its instants 1:1, so every tier shows and holds the same dates
        commitment=sub.commitment,
        purchased_at=sub.purchased_at,
        renewals=[dict(r) for r in sub.renewals],
        seat_additions=[dict(b) for b in sub.seat_additions],
        scheduled_change=_scheduled_mirror(sub.scheduled_change, known),
        cancellation_terms=_terms_mirror(sub, unit_price, link.currency),
        coterm_end=sub.coterm_end,  # R31: the same terms (and annual periods, R21) at every tier
    )


def _terms_mirror(sub: Subscription, unit_price: Decimal, currency: str) -> dict[str, Any] | None:
    """R31, R14: what the source's cancellation brought, as the provider bills the reseller: the
    same refund (the policy is the provider's, R4) and a penalty reckoned again on the same day
    at the reseller's price."""
    kept = sub.cancellation_terms
    if kept is None:
        return None
    if kept.get("penalty") is None:
        return dict(kept)
    on = date.fromisoformat(str(kept["on"]))
    return {**kept, "penalty": str(penalty_on(sub, on, unit_price, currency))}


def _scheduled_mirror(
    change: dict[str, Any] | None,
    known: Mapping[str, ProviderProduct],
) -> dict[str, Any] | None:
    """R31: a scheduled downgrade as the provider sees it: its own product (the one the child's
    product is a copy of); no price (a mirror is priced from the reseller's list, R13)."""
    if change is None:
        return None
    mapped = known.get(str(change.get("origin_product_id")))
    return {
        "type": change["type"],
        "on": change["on"],
        "product_id": mapped.id if mapped else change.get("origin_product_id"),
        "origin_tenant_id": mapped.origin_tenant_id if mapped else None,
        "origin_product_id": mapped.origin_product_id if mapped else None,
        "unit_price": None,
    }


def provider_order(
    link: Link,
    sub: Subscription,
    mirror: Subscription,
    product: ProviderProduct,
    *,
    now: str,
    scheduled: tuple[ProviderProduct, Decimal] | None = None,
    repair: str | None = None,
) -> Order:
    """R14: the provider's own order of one mirrored change (own id and number): buyer = the
    tenant reseller, for the end customer, dated at the change's effective date, at the
    reseller's prices. R31: a downgrade the child scheduled for the renewal (``scheduled``: the
    provider's product it moves to and the reseller's price of it) is a ``scheduled`` order of
    that product, as the child's is. ``repair``: the reconciliation run re-driving a change
    whose stream record was lost (R33): the order is the same (same deterministic id, so it is
    made once whoever comes first), marked ``created_by = "reconciliation"`` and
    ``source.repair_run_id``."""
    version = present(sub.version, "the source's version")
    order_id = provider_order_id(link, sub.id, version)
    change = sub.last_change or "new"
    amount = recurring_amount(change, mirror)
    line = OrderLine(
        product_id=product.id,
        sku=product.sku,
        name=product.name,
        billing_cycle=mirror.billing_cycle,
        quantity=mirror.quantity,
        unit_price=mirror.unit_price,
        amount=amount,
    )
    status = COMPLETED
    if scheduled is not None and is_scheduled(sub):
        target, price = scheduled
        status = SCHEDULED
        line = replace(
            line,
            product_id=target.id,
            sku=target.sku,
            name=target.name,
            unit_price=price,
            amount=round_money(price * mirror.quantity, mirror.currency),
            previous_product_id=product.id,
        )
    date = sub.last_change_date or sub.start_date
    return Order(
        id=order_id,
        number=f"BO-{date.replace('-', '')}-{order_id[-8:].upper()}",
        tenant_id=link.provider_tenant_id,
        account_id=link.reseller_account_id,
        subscription_id=mirror.id,
        type=change,
        date=date,
        currency=mirror.currency,
        lines=[line],
        total=line.amount,
        created_at=now,
        created_by="reconciliation" if repair else "back-ordering",
        price_list_id=mirror.price_list_id,
        reseller_account_id=link.reseller_account_id,
        end_customer_account_id=mirror.account_id,
        source={
            "tenant_id": sub.tenant_id,
            "subscription_id": sub.id,
            "version": version,
            **({"repair_run_id": repair} if repair else {}),
        },
        status=status,
        # R31: a refunded cancellation is a refund order at the reseller's price; a penalty is
        # the mirror's (reckoned at that price)
        **_cancel_terms(change, mirror),
    )


def _cancel_terms(change: str, mirror: Subscription) -> dict[str, Any]:
    if change not in (CANCEL, ADDON_REMOVED) or mirror.cancellation_terms is None:
        return {}
    terms = terms_of(mirror)
    return {"refund": terms.refund, "penalty": terms.penalty}


def is_scheduled(sub: Subscription) -> bool:
    """R31: the subscription's latest change is a downgrade scheduled for its renewal."""
    change = sub.scheduled_change
    return (
        sub.last_change == DOWNGRADE
        and change is not None
        and change.get("on") == sub.last_change_date
    )


# --- R19: upgrading a lite reseller to a tenant reseller ---------------------------------------

UPGRADE_STEPS = (
    "create_tenant",
    "transfer_accounts",
    "transfer_subscriptions",
    "activate_backordering",
)


def upgrade_progress(step: int, failed: bool) -> tuple[str, list[tuple[int, str, str]]]:
    """Where an upgrade stands (R19), from the last step done (0-4) and whether the next one
    failed: its overall status (``not_started``, ``in_progress``, ``failed``, ``done``) and each
    step's ``(number, name, status)`` (``done``, ``failed`` — the one after the last done —,
    ``pending``)."""
    steps = []
    for number, name in enumerate(UPGRADE_STEPS, start=1):
        status = "done" if number <= step else "pending"
        if failed and number == step + 1:
            status = "failed"
        steps.append((number, name, status))
    if step == len(UPGRADE_STEPS):
        overall = "done"
    elif failed:
        overall = "failed"
    else:
        overall = "in_progress" if step else "not_started"
    return overall, steps


def upgraded_tenant_id(provider_tenant_id: str, lite_account_id: str) -> str:
    """The tenant made for a lite reseller: one per lite reseller, so a retried step finds it."""
    return derived_id("tnt", provider_tenant_id, "upgrade", lite_account_id)


def transferred_account(tenant_id: str, source: Account, *, created_at: str) -> Account:
    """Step 2: a customer of the lite reseller becomes the new tenant's direct customer, which
    continues the provider's account (``upstream_id``: its mirror from step 4 on)."""
    return Account(
        id=derived_id("acc", tenant_id, source.id),
        tenant_id=tenant_id,
        name=source.name,
        kind=CUSTOMER_KIND,
        currency=source.currency,
        created_at=created_at,
        separate_invoices=source.separate_invoices,
        email=source.email,
        accounting_number=source.accounting_number,
        address=source.address,
        upstream_id=source.id,
    )


def transferred_contact(account: Account, contact: Contact) -> Contact:
    return replace(
        contact,
        tenant_id=account.tenant_id,
        account_id=account.id,
        id=derived_id("con", account.id, contact.id),
    )


def transfer_problems(
    sub: Subscription,
    *,
    currency: str,
    copy: Product | None,
    base_transferred: bool,
    scheduled_copy: Product | None = None,
) -> list[dict[str, str]]:
    """Step 3's pre-checks of one subscription (R19): the new tenant's currency, and its
    product (``copy``: the new tenant's copy of it, R3), add-ons and billing cycle in the new
    tenant's catalogue; R31: a scheduled downgrade's product too (``scheduled_copy``). Every
    problem listed."""
    problems = []

    def problem(field: str, code: str, message: str) -> None:
        problems.append(
            {
                "subscription_id": sub.id,
                "field": field,
                "code": code,
                "message": f"subscription {sub.id}: {message}",
            }
        )

    if sub.currency != currency:
        problem(
            "currency",
            "currency_mismatch",
            f"in {sub.currency}, the new tenant's price list in {currency}",
        )
    if copy is None or not copy.sellable:
        problem(
            "product_id",
            "not_in_catalogue",
            f"product {sub.product_id} is not in the new tenant's catalogue",
        )
    elif sub.billing_cycle not in copy.billing_cycles:
        problem(
            "billing_cycle",
            "unsupported_billing_cycle",
            f"{sub.billing_cycle} is not a cycle of the new tenant's copy of {sub.product_id}",
        )
    if sub.scheduled_change and (scheduled_copy is None or not scheduled_copy.sellable):
        problem(
            "scheduled_change.product_id",
            "not_in_catalogue",
            f"its scheduled downgrade's product {sub.scheduled_change['product_id']} is not in "
            "the new tenant's catalogue",
        )
    if sub.parent_subscription_id and not base_transferred:
        problem(
            "parent_subscription_id",
            "base_not_transferred",
            f"its base {sub.parent_subscription_id} cannot be transferred",
        )
    return problems


def transferred_subscription(
    tenant_id: str,
    sub: Subscription,
    *,
    account_id: str,
    product_id: str,
    price_list_id: str,
    unit_price: Decimal,
    today: str,
    now: str,
    scheduled_unit_price: Decimal | None = None,
) -> Subscription:
    """Step 3: the new tenant's copy of a subscription of the lite reseller's customer: the
    same quantity, cycle, term, dates and status, at the new tenant's price; it continues the
    provider's subscription (``upstream_id``), which becomes its mirror. R31: a scheduled
    downgrade goes to the new tenant's copy of its product (as the subscription's own product
    does), at ``scheduled_unit_price`` (the new tenant's price of it), if given."""
    return replace(
        sub,
        id=derived_id("sub", tenant_id, sub.id),
        tenant_id=tenant_id,
        account_id=account_id,
        product_id=product_id,
        unit_price=unit_price,
        price_list_id=price_list_id,
        created_at=now,
        updated_at=now,
        parent_subscription_id=(
            derived_id("sub", tenant_id, sub.parent_subscription_id)
            if sub.parent_subscription_id
            else None
        ),
        reseller_account_id=None,  # a direct customer of the new tenant
        origin_tenant_id=sub.tenant_id,
        origin_product_id=sub.product_id,
        history=[
            {**entry, "product_id": product_id, "origin_product_id": sub.product_id}
            for entry in sub.history
        ],
        last_change=TRANSFER,
        last_change_date=today,
        mirrored=False,
        source=None,
        source_version=None,
        upstream_id=sub.id,
        scheduled_change=_scheduled_copy(tenant_id, sub, scheduled_unit_price),
        version=None,
    )


def transferred_product_id(tenant_id: str, product_id: str) -> str:
    """R19 (R3): the new tenant's copy of the provider's product ``product_id``."""
    return derived_id("prd", tenant_id, product_id)


def _scheduled_copy(
    tenant_id: str, sub: Subscription, unit_price: Decimal | None
) -> dict[str, Any] | None:
    """R19, R31: a scheduled downgrade of a transferred subscription, for the new tenant's copy
    of its product (a copy of the provider's, like the subscription's own product)."""
    change = sub.scheduled_change
    if change is None:
        return None
    return {
        **change,
        "product_id": transferred_product_id(tenant_id, str(change["product_id"])),
        "origin_tenant_id": sub.tenant_id,
        "origin_product_id": change["product_id"],
        "unit_price": str(unit_price) if unit_price is not None else change.get("unit_price"),
    }


def linked_account(provider_account: Account, copy: Account, reseller_account_id: str) -> Account:
    """Step 4: the provider's account becomes the mirror of the new tenant's (R12, R15)."""
    return replace(
        provider_account,
        mirrored=True,
        source={"tenant_id": copy.tenant_id, "account_id": copy.id},
        bill_to=reseller_account_id,
        source_version=copy.version,
    )


def linked_subscription(
    provider_sub: Subscription, copy: Subscription, *, today: str
) -> Subscription:
    """Step 4: the provider's subscription becomes the mirror of the new tenant's (R13): its
    dates and prices stay, so the provider bills on without a gap or a double (R19). The change
    is a transfer: a tier above that mirrors it orders nothing for it (R14)."""
    return replace(
        provider_sub,
        mirrored=True,
        source={"tenant_id": copy.tenant_id, "subscription_id": copy.id},
        source_version=copy.version,
        last_change=TRANSFER,
        last_change_date=today,
    )


def mirror_usage(link: Link, record: UsageRecord, mirror_subscription_id: str) -> UsageRecord:
    """R25: a use of a mirrored subscription, copied onto its mirror so the provider bills its
    reseller for it at its own price; keyed by its source, so it is copied once (R18)."""
    return replace(
        record,
        tenant_id=link.provider_tenant_id,
        subscription_id=mirror_subscription_id,
        key=derived_id("use", link.child_tenant_id, record.subscription_id, record.key),
        source={
            "tenant_id": record.tenant_id,
            "subscription_id": record.subscription_id,
            "key": record.key,
        },
    )


# --- R33: reconciliation between tiers ---------------------------------------------------------

MISSING, STALE, ORPHAN, MISMATCH = "missing", "stale", "orphan", "mismatch"
#: what a run can find of one record, in the order the API lists the counts
DRIFT_KINDS = (MISSING, STALE, ORPHAN, MISMATCH)
#: a record of the child that a stream record set aside on the failure queue names (listed
#: beside the drift, not a drift itself: what it changed shows up as ``stale`` or ``missing``)
SET_ASIDE = "set_aside"
SUBSCRIPTION, ACCOUNT = "subscription", "account"

#: the ``last_change`` of a mirror a repair closed because its source is gone (R33): cancelled,
#: never deleted (its billing history stays); a tier above mirrors the cancellation and orders
#: nothing for it (it is no sale), and a later run does not count it again
ORPHANED = "source_gone"

#: R13: what a mirror subscription follows of its source, compared by a run. The product is the
#: provider's own (the source's origin product); pricing is the mirror's own, never compared.
SYNCED_SUBSCRIPTION_FIELDS = (
    "status",
    "start_date",
    "end_date",
    "activation_date",
    "cancellation_date",
    "auto_renew",
    "product_id",
    "billing_cycle",
    "quantity",
    "term",
    "terms",
    "characteristics",
)


@dataclass(frozen=True)
class Drift:
    """What a run found of one record: its ``kind`` and the synced fields that differ (named;
    a stale mirror's too, for the reader; ``source_version`` when the mirror is ahead of its
    source, e.g. after the child was restored from a backup)."""

    kind: str
    fields: tuple[str, ...] = ()


def _expected_subscription_fields(sub: Subscription) -> dict[str, object]:
    values: dict[str, object] = {
        name: getattr(sub, name) for name in SYNCED_SUBSCRIPTION_FIELDS if name != "product_id"
    }
    values["product_id"] = sub.origin_product_id
    values["characteristics"] = dict(sub.characteristics)
    return values


def subscription_drift(
    link: Link, source: Subscription | None, mirror: Subscription | None
) -> Drift | None:
    """R33: a child's subscription (None: gone) against its mirror in the provider's BSS (None:
    none). None when they agree: not mirrorable and not mirrored, or mirrored at the source's
    version with every synced field equal. A mirror that a repair closed as an orphan agrees
    with a source that is gone."""
    expected = source is not None and is_mirrored(link, source)
    if mirror is None:
        return Drift(MISSING) if expected else None
    if source is None or not expected:
        return None if mirror.last_change == ORPHANED else Drift(ORPHAN)
    wanted = _expected_subscription_fields(source)
    fields = tuple(
        name
        for name in SYNCED_SUBSCRIPTION_FIELDS
        if (dict(mirror.characteristics) if name == "characteristics" else getattr(mirror, name))
        != wanted[name]
    )
    version = present(source.version, "the source's version")
    mirrored_at = mirror.source_version or 0
    if mirrored_at < version:
        return Drift(STALE, fields)
    if mirrored_at > version:
        return Drift(MISMATCH, ("source_version", *fields))
    return Drift(MISMATCH, fields) if fields else None


def account_drift(
    source: Account | None, mirror: Account | None, *, expected: bool
) -> Drift | None:
    """R33: a child's account (None: gone) against its mirror (None: none); ``expected``: the
    account should have one (it holds, or is the lite reseller of one that holds, a mirrored
    subscription: R12 copies an account on its first paid subscription)."""
    if mirror is None:
        return Drift(MISSING) if expected and source is not None else None
    if source is None:
        return Drift(ORPHAN)
    wanted = synced_fields(source)
    fields = tuple(name for name in SYNCED_ACCOUNT_FIELDS if getattr(mirror, name) != wanted[name])
    version = source.version or 0
    mirrored_at = mirror.source_version or 0
    if mirrored_at < version:
        return Drift(STALE, fields)
    if mirrored_at > version:
        return Drift(MISMATCH, ("source_version", *fields))
    return Drift(MISMATCH, fields) if fields else None


def orphan_closed(mirror: Subscription, *, today: str, now: str) -> Subscription:
    """R33: a mirror whose source is gone, as a repair leaves it: cancelled on ``today`` (the
    provider stops billing it), marked ``source_gone``, its history and orders kept."""
    return replace(
        mirror,
        status=CANCELLED,
        cancellation_date=mirror.cancellation_date or today,
        last_change=ORPHANED,
        last_change_date=today,
        updated_at=now,
    )


#: a run's phases, in order: the child's subscriptions against their mirrors (missing, stale,
#: mismatch; an account of a mirrored subscription without its mirror), the provider's mirrors
#: under the tenant reseller account (orphans), the child's accounts against their mirrors
#: (stale, mismatch); then ``done``; a repair pages through the run's items (``repair``) and
#: ends ``repaired``
PHASES = ("subscriptions", "mirrors", "accounts")
DONE, REPAIR, REPAIRED = "done", "repair", "repaired"
RUN_QUEUED, RUN_RUNNING = "queued", "running"


def next_phase(phase: str) -> str:
    if phase == REPAIR:
        return REPAIRED
    index = PHASES.index(phase) + 1
    return PHASES[index] if index < len(PHASES) else DONE


@dataclass(frozen=True)
class ReconciliationRun:
    """R33: one comparison of a child tenant's records with their mirrors, done page by page
    off the request path (one queue message per page), and its repair. Like a backfill job it
    remembers the next page (``phase`` + ``cursor``), so a duplicated message is a no-op, and
    whether that page's message was sent (``sent``), so a crash in between is repaired by the
    retried message. Counts grow only with the save that moves the run past a page."""

    tenant_id: str  # the owner: the tenant whose admin started it (the provider, or the child)
    id: str
    child_tenant_id: str
    provider_tenant_id: str
    started_by: str  # "api" or "schedule"
    status: str  # queued, running, done, repair, repaired
    created_at: str
    updated_at: str
    phase: str = PHASES[0]  # the next page's phase
    cursor: str | None = None  # the next page's cursor; None = the phase's first page
    previous: str | None = None  # the position (``position``) of the page done last
    sent: bool = False  # the message of the next page was sent
    pages: int = 0
    compared: dict[str, int] = field(default_factory=dict)  # records looked at, per phase
    counts: dict[str, int] = field(default_factory=dict)  # drift kinds and ``set_aside``
    repaired: int = 0  # items the repair re-drove
    repair_orders: int = 0  # provider orders the repair created (lost changes)
    finished_at: str | None = None
    repair_started_at: str | None = None
    repaired_at: str | None = None
    version: int | None = None

    @property
    def finished(self) -> bool:
        return self.phase in (DONE, REPAIRED)

    def expects(self, phase: str, cursor: str | None) -> bool:
        return not self.finished and (self.phase, self.cursor) == (phase, cursor)

    def resends_after(self, phase: str, cursor: str | None) -> bool:
        """A message for the page just done while the next one's was not sent (a crash in
        between): this retry sends it."""
        return not self.finished and self.previous == position(phase, cursor) and not self.sent

    def advanced(
        self,
        next_cursor: str | None,
        *,
        compared: int,
        found: Mapping[str, int],
        now: str,
        repaired: int = 0,
        repair_orders: int = 0,
    ) -> ReconciliationRun:
        phase = self.phase if next_cursor is not None else next_phase(self.phase)
        counts = dict(self.counts)
        for kind, n in found.items():
            counts[kind] = counts.get(kind, 0) + n
        return replace(
            self,
            status=phase if phase in (DONE, REPAIRED) else self.status_while(phase),
            phase=phase,
            cursor=next_cursor,
            previous=position(self.phase, self.cursor),
            sent=False,
            pages=self.pages + 1,
            compared={**self.compared, self.phase: self.compared.get(self.phase, 0) + compared},
            counts=counts,
            repaired=self.repaired + repaired,
            repair_orders=self.repair_orders + repair_orders,
            updated_at=now,
            finished_at=now if phase == DONE else self.finished_at,
            repaired_at=now if phase == REPAIRED else self.repaired_at,
        )

    @staticmethod
    def status_while(phase: str) -> str:
        return REPAIR if phase == REPAIR else RUN_RUNNING

    def repairing(self, now: str) -> ReconciliationRun:
        """The repair queued: it pages through the run's items from the first."""
        return replace(
            self,
            status=REPAIR,
            phase=REPAIR,
            cursor=None,
            previous=None,
            sent=False,
            repair_started_at=now,
            updated_at=now,
        )


def position(phase: str, cursor: str | None) -> str:
    return f"{phase}#{cursor or ''}"


@dataclass(frozen=True)
class DriftItem:
    """One record a run found drifted (or named by a stream record set aside): kept by run, keyed
    ``{kind}#{record}#{source id}`` (the child's record; an orphan's from its mirror), and what
    its repair did (``repair``: ``repaired``, ``converged`` — in step when the repair looked —,
    or ``failed: …``)."""

    kind: str
    record: str  # subscription or account
    source_id: str
    mirror_id: str
    found_on: str  # the position of the page that found it
    fields: tuple[str, ...] = ()
    source_version: int | None = None
    mirror_source_version: int | None = None
    detail: str | None = None  # a set-aside record: where it is on the stream
    repair: str | None = None
    repair_order_id: str | None = None
    repaired_on: str | None = None  # the position of the repair page that re-drove it

    @property
    def key(self) -> str:
        return item_key(self.kind, self.record, self.source_id)


def item_key(kind: str, record: str, source_id: str) -> str:
    return f"{kind}#{record}#{source_id}"


def reconciliation_run_id(owner: str, child_tenant_id: str, day: str) -> str:
    """The daily schedule's run of a child: one per owner, child and day, so a schedule fired
    twice starts it once."""
    return derived_id("rec", owner, child_tenant_id, day)


@dataclass(frozen=True)
class MirrorRef:
    """What the orphan check reads of a subscription under a tenant reseller account in the
    provider's BSS: whether it is a mirror, of which source, and whether a repair closed it."""

    id: str
    mirrored: bool
    source_tenant_id: str | None
    source_id: str | None
    last_change: str | None


# --- what the on-failure and dead-letter queues hold (issue 16: `GET /failures`) ----------------

#: how many failed deliveries ``GET /failures`` lists at most
FAILURES_LIMIT = 100


@dataclass(frozen=True)
class FailedDelivery:
    """One message of an on-failure or dead-letter queue, read without consuming it; a stream
    batch's description gives one per record it names (``key``: the record's table and keys)."""

    queue: str
    message_id: str
    sent_at: str | None
    receive_count: int
    key: dict[str, str] | None
    error: str
