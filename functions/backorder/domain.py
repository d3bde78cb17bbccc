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
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

from functions.core.domain import CUSTOMER_KIND, Account, Contact
from functions.core.errors import present
from functions.core.ids import derived_id
from functions.core.money import round_money
from functions.invoices.domain import UsageRecord
from functions.orders.domain import (
    COMPLETED,
    DOWNGRADE,
    SCHEDULED,
    Order,
    OrderLine,
    Subscription,
    recurring_amount,
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
    )


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
) -> Order:
    """R14: the provider's own order of one mirrored change (own id and number): buyer = the
    tenant reseller, for the end customer, dated at the change's effective date, at the
    reseller's prices. R31: a downgrade the child scheduled for the renewal (``scheduled``: the
    provider's product it moves to and the reseller's price of it) is a ``scheduled`` order of
    that product, as the child's is."""
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
        created_by="back-ordering",
        price_list_id=mirror.price_list_id,
        reseller_account_id=link.reseller_account_id,
        end_customer_account_id=mirror.account_id,
        source={"tenant_id": sub.tenant_id, "subscription_id": sub.id, "version": version},
        status=status,
    )


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
    sub: Subscription, *, currency: str, copy: Product | None, base_transferred: bool
) -> list[dict[str, str]]:
    """Step 3's pre-checks of one subscription (R19): the new tenant's currency, and its
    product (``copy``: the new tenant's copy of it, R3), add-ons and billing cycle in the new
    tenant's catalogue. Every problem listed."""
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
) -> Subscription:
    """Step 3: the new tenant's copy of a subscription of the lite reseller's customer: the
    same quantity, cycle, term, dates and status, at the new tenant's price; it continues the
    provider's subscription (``upstream_id``), which becomes its mirror."""
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
        version=None,
    )


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
