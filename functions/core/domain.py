"""Parties: tenants (a tree of any depth) and the accounts inside one tenant's BSS (SPEC §1, R28).

Pure: stdlib and the kernel's errors only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Any

from functions.core.auth import CUSTOMER, RESELLER, TENANT_ADMIN, Principal, hidden
from functions.core.clock import is_time_zone
from functions.core.errors import BadRequest, Conflict
from functions.core.money import minor_unit

CUSTOMER_KIND = "customer"
LITE_RESELLER = "lite_reseller"
TENANT_RESELLER = "tenant_reseller"
ACCOUNT_KINDS = (CUSTOMER_KIND, LITE_RESELLER, TENANT_RESELLER)

_COUNTRY = re.compile(r"^[A-Z]{2}$")


@dataclass(frozen=True)
class Tenant:
    id: str
    name: str
    parent_id: str | None  # the provider; None for a root tenant (a distributor)
    currency: str
    country: str
    time_zone: str
    billing_day: int
    created_at: str
    backordering: bool = False
    backordering_activated_at: str | None = None
    #: the account standing for this tenant in its provider's BSS (R3)
    reseller_account_id: str | None = None
    #: the price list direct customers buy at (R2)
    default_price_list_id: str | None = None
    status: str = "active"
    #: how its provider's price-list changes reach its catalogue (R5): ``full`` or ``partial``
    propagation: str = "full"
    overwrite_sell_prices: bool = False  # R5 option: the default list's fixed prices follow
    overwrite_names: bool = False  # R5 option: product names follow the provider's
    #: R27: the reseller add-on: this tenant's lite resellers may take a reseller plan (Free,
    #: Standard) and run a storefront of their own; set by its provider (the platform admin for
    #: a root tenant)
    reseller_plans: bool = False
    #: a tenant made by upgrading a lite reseller (R19): that account, the last step done
    #: (1-4) and the problems of a failed step
    upgrade_from: str | None = None
    upgrade_step: int = 0
    upgrade_problems: list[dict[str, str]] = field(default_factory=list)
    version: int | None = None

    @property
    def is_root(self) -> bool:
        return self.parent_id is None


@dataclass(frozen=True)
class Account:
    id: str
    tenant_id: str
    name: str
    kind: str
    currency: str
    created_at: str
    parent_account_id: str | None = None  # the lite reseller a customer sits under
    enable_reselling: bool = False
    separate_invoices: bool = False
    email: str | None = None
    accounting_number: str | None = None
    address: dict[str, Any] | None = None
    price_list_id: str | None = None
    child_tenant_id: str | None = None  # for a tenant reseller account
    mirrored: bool = False  # a copy of a reseller tenant's account (R12)
    source: dict[str, Any] | None = None  # {tenant_id, account_id} of a mirror's original
    bill_to: str | None = None  # set on mirrors: the tenant reseller account (R12)
    source_version: int | None = None  # a mirror: the source's version it holds (R18)
    #: a copy made by a lite → tenant upgrade (R19): the provider's account it continues, which
    #: becomes its mirror (linked, not duplicated)
    upstream_id: str | None = None
    status: str = "active"
    version: int | None = None

    @property
    def bill_to_account_id(self) -> str:
        """Who the tenant invoices for this account's subscriptions (R20): a mirror's tenant
        reseller (R12); a lite reseller's customers are billed to the lite reseller; everyone
        else to itself."""
        return self.bill_to or self.parent_account_id or self.id

    @property
    def reseller_scope(self) -> str | None:
        """The lite reseller whose scope holds this account (itself, for a lite reseller)."""
        if self.kind == LITE_RESELLER:
            return self.id
        return self.parent_account_id


@dataclass(frozen=True)
class TenantProfile:
    """What a client gives to create a tenant."""

    name: str
    country: str
    time_zone: str
    billing_day: int
    currency: str | None = None


def validate_profile(profile: TenantProfile) -> None:
    if not _COUNTRY.match(profile.country):
        raise BadRequest('country must be an ISO 3166 alpha-2 code such as "DE"', field="country")
    if not is_time_zone(profile.time_zone):
        raise BadRequest(f"unknown time zone {profile.time_zone!r}", field="time_zone")
    if not 1 <= profile.billing_day <= 31:
        raise BadRequest("billing_day must be 1-31", field="billing_day", code="out_of_range")
    if profile.currency is not None:
        minor_unit(profile.currency)


def new_root_tenant(tenant_id: str, profile: TenantProfile, *, created_at: str) -> Tenant:
    validate_profile(profile)
    if profile.currency is None:
        raise BadRequest(
            "currency is required for a root tenant", field="currency", code="missing_field"
        )
    return Tenant(
        id=tenant_id,
        name=profile.name,
        parent_id=None,
        currency=profile.currency,
        country=profile.country,
        time_zone=profile.time_zone,
        billing_day=profile.billing_day,
        created_at=created_at,
    )


def new_tenant_reseller(
    provider: Tenant,
    tenant_id: str,
    account_id: str,
    profile: TenantProfile,
    *,
    price_list_currency: str,
    email: str | None,
    created_at: str,
) -> tuple[Tenant, Account]:
    """R3: the child tenant, back ordering off (R11), and its account in the provider's BSS,
    billed in the currency of its assigned price list (R2)."""
    validate_profile(profile)
    if profile.currency is not None and profile.currency != price_list_currency:
        raise BadRequest(
            f"currency {profile.currency} differs from the price list's {price_list_currency}",
            field="currency",
            code="currency_mismatch",
        )
    tenant = Tenant(
        id=tenant_id,
        name=profile.name,
        parent_id=provider.id,
        currency=price_list_currency,
        country=profile.country,
        time_zone=profile.time_zone,
        billing_day=profile.billing_day,
        created_at=created_at,
        reseller_account_id=account_id,
        backordering=False,
    )
    account = Account(
        id=account_id,
        tenant_id=provider.id,
        name=profile.name,
        kind=TENANT_RESELLER,
        currency=price_list_currency,
        created_at=created_at,
        enable_reselling=True,
        email=email,
        child_tenant_id=tenant_id,
    )
    return tenant, account


def new_account(
    tenant: Tenant,
    account_id: str,
    *,
    name: str,
    kind: str,
    parent: Account | None,
    currency: str | None,
    price_list_currency: str | None,
    created_at: str,
    **details: Any,
) -> Account:
    """A customer (optionally under a lite reseller) or a lite reseller. Tenant reseller
    accounts are made only with their tenant (R3)."""
    if kind not in (CUSTOMER_KIND, LITE_RESELLER):
        raise BadRequest(
            "kind must be customer or lite_reseller", field="kind", code="invalid_value"
        )
    if parent is not None:
        check_open_hierarchy(parent)
        if kind != CUSTOMER_KIND:
            raise BadRequest(
                "only a customer can sit under a lite reseller", field="parent_account_id"
            )
        if parent.kind != LITE_RESELLER:
            raise BadRequest(
                "parent_account_id must name a lite reseller", field="parent_account_id"
            )
    currency = currency or (parent.currency if parent else tenant.currency)
    minor_unit(currency)
    if parent is not None and currency != parent.currency:
        raise BadRequest(
            "a customer is billed in its lite reseller's currency",
            field="currency",
            code="currency_mismatch",
        )
    check_price_list_currency(currency, price_list_currency)
    return Account(
        id=account_id,
        tenant_id=tenant.id,
        name=name,
        kind=kind,
        currency=currency,
        created_at=created_at,
        parent_account_id=parent.id if parent else None,
        enable_reselling=kind == LITE_RESELLER,
        **details,
    )


def check_price_list_currency(account_currency: str, price_list_currency: str | None) -> None:
    if price_list_currency is not None and price_list_currency != account_currency:
        raise BadRequest(
            f"the price list is in {price_list_currency}, the account in {account_currency}",
            field="price_list_id",
            code="currency_mismatch",
        )


SYNCED_FIELDS = ("name", "email", "accounting_number", "address")
#: what decides how a mirror is billed: nothing of the provider's. A mirror is billed through its
#: tenant reseller's account at the reseller's price list (R20), so these belong to that account.
MIRROR_BILLING_FIELDS = ("price_list_id", "separate_invoices")


def check_open_hierarchy(parent: Account) -> None:
    """R15, R16: a mirrored account's hierarchy is its reseller's. The provider (or a token
    naming the mirror) cannot open an account under it: its subscriptions would be the
    provider's own sales to a reseller's customer, invoiced to a mirror (R20). Only the
    replicator adds mirrors under mirrors."""
    if parent.mirrored:
        raise Conflict(
            "this account is a mirror of a reseller's account; its customers are the reseller's",
            code="locked_by_reseller",
            field="parent_account_id",
        )


def update_account(account: Account, changes: dict[str, Any]) -> Account:
    """Apply a client's changes; a mirror's synced fields belong to its reseller (R15)."""
    if "enable_reselling" in changes and account.kind != LITE_RESELLER:
        raise BadRequest(
            "only a lite reseller's reselling is switched (R27)",
            field="enable_reselling",
            code="invalid_value",
        )
    if account.mirrored:
        locked = sorted(set(changes) & set(SYNCED_FIELDS))
        if locked:
            raise Conflict(
                f"{locked[0]} of a mirrored account is kept by the reseller",
                code="locked_by_reseller",
                field=locked[0],
            )
        billing = sorted(set(changes) & set(MIRROR_BILLING_FIELDS))
        if billing:
            raise Conflict(
                f"{billing[0]} does not apply to a mirrored account: it is billed through its "
                "tenant reseller's account, at the reseller's price list (R20); set it there",
                code="locked_by_reseller",
                field=billing[0],
            )
    if (
        account.kind == TENANT_RESELLER
        and "price_list_id" in changes
        and changes["price_list_id"] != account.price_list_id
    ):
        # R3, R5: the child's catalogue was copied from this list and follows its changes;
        # moving it to another list would need its catalogue rebuilt (not supported).
        raise Conflict(
            "a tenant reseller's price list is fixed at its creation; change the list instead",
            code="tenant_price_list",
            field="price_list_id",
        )
    return replace(account, **changes)


# --- scope (R28) ------------------------------------------------------------------------------


def in_scope(principal: Principal, account_id: str, reseller_id: str | None) -> bool:
    """R28 inside one tenant: a tenant admin sees every account; a reseller its own account and
    those in its scope (``reseller_id``: the lite reseller holding them); a customer itself.
    Accounts, subscriptions and orders are all checked by this one rule."""
    if principal.role == TENANT_ADMIN:
        return True
    if principal.role == RESELLER:
        return principal.account_id in (account_id, reseller_id)
    return principal.role == CUSTOMER and principal.account_id == account_id


def can_see_account(principal: Principal, account: Account) -> bool:
    return account.tenant_id == principal.tenant_id and in_scope(
        principal, account.id, account.reseller_scope
    )


def visible_account(principal: Principal, account: Account | None) -> Account:
    if account is None or not can_see_account(principal, account):
        raise hidden("account")
    return account


def can_see_tenant(principal: Principal, tenant: Tenant) -> bool:
    if principal.role == "platform_admin":
        return tenant.is_root
    if principal.role == TENANT_ADMIN:
        return principal.tenant_id in (tenant.id, tenant.parent_id)
    return principal.tenant_id == tenant.id


# --- contacts and notes -------------------------------------------------------------------------

CONTACT_ROLES = ("primary", "billing", "technical", "commercial", "other")
MAX_CONTACTS = 50


@dataclass(frozen=True)
class Contact:
    """A person at an account. Allowed on mirrored accounts too: the provider keeps its own
    contacts there (R15); they are not synced from the reseller."""

    tenant_id: str
    account_id: str
    id: str
    name: str
    role: str
    created_at: str
    created_by: str
    email: str | None = None
    phone: str | None = None


@dataclass(frozen=True)
class Note:
    """An internal note on an account, by staff of the tenant (tenant admins, resellers in their
    scope), never shown to customers; append-only. Allowed on mirrors (R15)."""

    tenant_id: str
    account_id: str
    id: str
    text: str
    author: str
    created_at: str


def new_contact(
    account: Account,
    contact_id: str,
    *,
    name: str,
    role: str,
    email: str | None,
    phone: str | None,
    existing: int,
    created_by: str,
    created_at: str,
) -> Contact:
    if role not in CONTACT_ROLES:
        raise BadRequest(f"role must be one of {', '.join(CONTACT_ROLES)}", field="role")
    if existing >= MAX_CONTACTS:
        raise Conflict(f"an account has at most {MAX_CONTACTS} contacts", code="too_many_contacts")
    return Contact(
        tenant_id=account.tenant_id,
        account_id=account.id,
        id=contact_id,
        name=name.strip(),
        role=role,
        email=email,
        phone=phone,
        created_by=created_by,
        created_at=created_at,
    )


def new_note(account: Account, note_id: str, *, text: str, author: str, created_at: str) -> Note:
    if not text.strip():
        raise BadRequest("a note needs text", field="text")
    return Note(
        tenant_id=account.tenant_id,
        account_id=account.id,
        id=note_id,
        text=text,
        author=author,
        created_at=created_at,
    )


# --- jobs ----------------------------------------------------------------------------------------

JOB_QUEUED, JOB_RUNNING, JOB_DONE = "queued", "running", "done"


@dataclass(frozen=True)
class Job:
    """Long work done page by page off the request path (an R11 backfill today), one queue
    message per page. The job remembers the cursor of the next page, so a duplicated message is
    a no-op, and whether the message for that page was sent, so a crash between the two is
    repaired by the retried message (``resume_from``)."""

    tenant_id: str  # the owner, e.g. the provider
    id: str
    kind: str
    subject: str  # what it works on, e.g. the child tenant
    as_of: str  # the business date it works as of (ISO date)
    status: str
    created_at: str
    updated_at: str
    cursor: str | None = None  # the next page; None = the first page, or done
    previous_cursor: str | None = None  # the page done last
    next_sent: bool = False  # the message of ``cursor`` was sent
    pages: int = 0
    processed: int = 0
    applied: int = 0
    finished_at: str | None = None
    version: int | None = None

    def expects(self, cursor: str | None) -> bool:
        """A message for this page is the one to run now."""
        return self.status != JOB_DONE and self.cursor == cursor

    def resends_after(self, cursor: str | None) -> bool:
        """A message for the page just done, while the next page's message was not sent: it
        crashed in between, so this retry sends it."""
        return (
            self.status != JOB_DONE
            and self.pages > 0
            and self.previous_cursor == cursor
            and not self.next_sent
        )

    def advanced(self, next_cursor: str | None, processed: int, applied: int, now: str) -> Job:
        done = next_cursor is None
        return replace(
            self,
            status=JOB_DONE if done else JOB_RUNNING,
            previous_cursor=self.cursor,
            cursor=next_cursor,
            next_sent=False,
            pages=self.pages + 1,
            processed=self.processed + processed,
            applied=self.applied + applied,
            updated_at=now,
            finished_at=now if done else None,
        )
