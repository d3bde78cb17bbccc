"""Back ordering (SPEC §4, R11-R18): what one change in a reseller tenant's BSS becomes in its
provider's BSS. Pure: stdlib and the kernel only.

Everything the provider gets is keyed deterministically by its source, so a change delivered
twice, late or out of order has exactly one effect:

- the mirror of an account or subscription: ``derived_id(provider, child, source id)`` (R12, R13);
- the provider's order of one change: ``derived_id(provider, child, subscription, version)`` (R14);
- a mirror is written only over an older source version (R18).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from functions.core.domain import Account
from functions.core.ids import derived_id
from functions.orders.domain import Order, OrderLine, Subscription, recurring_amount


@dataclass(frozen=True)
class Link:
    """A reseller tenant as its provider's BSS knows it."""

    child_tenant_id: str
    provider_tenant_id: str
    reseller_account_id: str  # the tenant reseller account in the provider's BSS
    price_list_id: str | None  # the list assigned to it: its costs, the mirrors' prices (R2, R13)
    currency: str
    active: bool  # back ordering on (R11)


@dataclass(frozen=True)
class Root:
    """A tenant without a provider: nothing of it is ever mirrored (R11 needs a parent), and it
    never gets one, so a warm container remembers the answer (the provider's own records, the
    mirrors, reach the same stream handler: one read each otherwise)."""

    tenant_id: str


def mirror_account_id(link: Link, account_id: str) -> str:
    return derived_id("acc", link.provider_tenant_id, link.child_tenant_id, account_id)


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
        id=mirror_account_id(link, source.id),
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
) -> Subscription:
    """R13: the 1:1 copy, with the provider's product, priced from the reseller's list (pricing
    is not copied). Its own origin lets the change flow further up (R17)."""
    assert sub.version is not None and link.price_list_id is not None
    return Subscription(
        id=mirror_subscription_id(link, sub.id),
        tenant_id=link.provider_tenant_id,
        account_id=mirror_account_id(link, sub.account_id),
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
        price_list_id=link.price_list_id,
        created_at=now,
        updated_at=now,
        activation_date=sub.activation_date,
        cancellation_date=sub.cancellation_date,
        characteristics=dict(sub.characteristics),
        parent_subscription_id=(
            mirror_subscription_id(link, sub.parent_subscription_id)
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
        source_version=sub.version,
    )


def provider_order(
    link: Link, sub: Subscription, mirror: Subscription, product: ProviderProduct, *, now: str
) -> Order:
    """R14: the provider's own order of one mirrored change (own id and number): buyer = the
    tenant reseller, for the end customer, dated at the change's effective date, at the
    reseller's prices."""
    assert sub.version is not None
    order_id = provider_order_id(link, sub.id, sub.version)
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
        source={"tenant_id": sub.tenant_id, "subscription_id": sub.id, "version": sub.version},
    )
