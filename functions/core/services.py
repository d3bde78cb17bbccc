"""Use cases of the parties: tenants, tenant resellers (R3), accounts with their contacts and
notes; and idempotent requests."""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Callable, Iterator
from typing import Any

from functions.core import domain
from functions.core.auth import PLATFORM_ADMIN, RESELLER, TENANT_ADMIN, Principal, hidden
from functions.core.clock import now_utc, rfc3339
from functions.core.domain import Account, Contact, Note, Tenant, TenantProfile
from functions.core.errors import BadRequest, Conflict, Forbidden, present
from functions.core.ids import new_id
from functions.core.pagination import Page
from functions.core.ports import (
    AccountItems,
    Accounts,
    IdempotencyRecords,
    PriceListLookup,
    StorefrontOpener,
    Tenants,
)
from functions.core.units import UnitOfWork, Units

log = logging.getLogger("bss.core")


class IdempotencyService:
    """``Idempotency-Key`` (SPEC §9): a retry with the same key returns the first successful
    answer and does nothing twice; a different request under the same key is a 409. A failed
    request keeps nothing, so its retry runs again (a failure wrote nothing)."""

    def __init__(self, records: IdempotencyRecords) -> None:
        self.records = records

    def run(
        self,
        *,
        scope: str,
        key: str,
        fingerprint: str,
        action: Callable[[], tuple[int, Any]],
    ) -> tuple[int, Any]:
        record_key = f"{scope}#{key}"
        for take_over in (False, True):
            record = self.records.find(record_key)
            if record is not None:
                if record.fingerprint != fingerprint:
                    raise Conflict(
                        "this Idempotency-Key was used for a different request",
                        code="idempotency_key_reused",
                        field="Idempotency-Key",
                    )
                if record.status == "done":
                    body = json.loads(record.response_body) if record.response_body else None
                    return int(record.response_status or 200), body
            if self.records.claim(record_key, fingerprint, take_over=take_over):
                break
        else:
            raise Conflict(
                "a request with this Idempotency-Key is still in progress",
                code="idempotency_in_progress",
                field="Idempotency-Key",
            )
        try:
            status, payload = action()
        except BaseException:
            try:
                self.records.release(record_key)
            except Exception:  # the lock expires on its own; keep the original error
                log.exception("could not release idempotency key")
            raise
        self.records.complete(record_key, status, payload)
        return status, payload


class TenancyService:
    def __init__(
        self,
        units: Units,
        tenants: Tenants,
        accounts: Accounts,
        price_lists: PriceListLookup,
        items: AccountItems,
        opener: StorefrontOpener | None = None,
    ) -> None:
        """``opener``: what is written with each new tenant (its storefront); None in the
        tests of the parties alone."""
        self.units = units
        self.opener = opener
        self.tenants = tenants
        self.accounts = accounts
        self.price_lists = price_lists
        self.items = items

    # --- tenants ---

    def tenant_of(self, principal: Principal) -> Tenant:
        tenant = self.tenants.get(principal.tenant())
        if tenant is None:
            raise hidden("tenant")
        return tenant

    def all_tenants(self) -> Iterator[Tenant]:
        """Every tenant, down the tree from the roots, by the parent index (the billing
        schedule's job path; never a Scan)."""
        parents: list[str | None] = [None]
        while parents:
            parent = parents.pop()
            cursor: str | None = None
            while True:
                page = self.tenants.children(parent, 100, cursor)
                for tenant in page.items:
                    yield tenant
                    parents.append(tenant.id)
                cursor = page.next_cursor
                if cursor is None:
                    break

    def create_tenant(self, principal: Principal, body: Any) -> Tenant:
        profile = TenantProfile(
            name=body.name,
            country=body.country,
            time_zone=body.time_zone,
            billing_day=body.billing_day,
            currency=body.currency,
        )
        created_at = rfc3339(now_utc())
        if principal.role == PLATFORM_ADMIN:
            if body.price_list_id is not None:
                raise BadRequest("a root tenant has no provider price list", field="price_list_id")
            tenant = domain.new_root_tenant(new_id("tnt"), profile, created_at=created_at)
            with self.units() as uow:
                uow.save(tenant)
                self._open(uow, tenant)
            return self._reload(tenant.id)
        principal.require(TENANT_ADMIN)
        provider = self.tenant_of(principal)
        if body.price_list_id is None:
            raise BadRequest(
                "a tenant reseller needs its assigned price list (R3)",
                field="price_list_id",
                code="missing_field",
            )
        currency = self.price_lists.currency_of(provider.id, body.price_list_id)
        tenant, account = domain.new_tenant_reseller(
            provider,
            new_id("tnt"),
            new_id("acc"),
            profile,
            price_list_currency=currency,
            email=body.email,
            created_at=created_at,
        )
        account = dataclasses.replace(account, price_list_id=body.price_list_id)
        tenant = dataclasses.replace(
            tenant,
            propagation=body.propagation,
            overwrite_sell_prices=body.overwrite_sell_prices,
            overwrite_names=body.overwrite_names,
        )
        # The catalogue first (deterministic ids: a retry rewrites the same items), then the
        # tenant and its account together: the tenant appears with its whole catalogue.
        self.price_lists.copy_catalogue(provider.id, body.price_list_id, tenant.id)
        with self.units() as uow:
            uow.save(tenant)
            uow.save(account)
            self._open(uow, tenant)
        return self._reload(tenant.id)

    def _open(self, uow: UnitOfWork, tenant: Tenant) -> None:
        """The tenant's own storefront, written with it (a taken alias races: a 409)."""
        for entity in self.opener(tenant) if self.opener else []:
            uow.save(entity)

    def _reload(self, tenant_id: str) -> Tenant:
        return present(self.tenants.get(tenant_id), f"tenant {tenant_id}")

    def list_tenants(self, principal: Principal, limit: int, cursor: str | None) -> Page[Tenant]:
        if principal.role == PLATFORM_ADMIN:
            return self.tenants.children(None, limit, cursor)
        principal.require(TENANT_ADMIN)
        return self.tenants.children(principal.tenant(), limit, cursor)

    def update_tenant(self, principal: Principal, tenant_id: str, body: Any) -> Tenant:
        """The provider's settings for a direct child (R5); the child sees them, read-only."""
        tenant = self.get_tenant(principal, tenant_id)
        if tenant.parent_id != principal.tenant_id:
            owner = "the platform admin's" if tenant.is_root else "its provider's"
            raise Forbidden(f"a tenant's settings are {owner}", field="tenant_id")
        changes = body.model_dump(exclude_unset=True)
        for field, value in changes.items():
            if value is None:
                raise BadRequest(f"{field} cannot be null", field=field)
        if tenant.is_root:  # no provider: only the platform's add-on applies (R27)
            for field in sorted(set(changes) - {"reseller_plans"}):
                raise BadRequest(f"a root tenant has no provider to follow: {field}", field=field)
        updated = dataclasses.replace(tenant, **changes)
        if updated != tenant:
            self.units.save(updated)  # conditional on the version read: a race is a 409
        return self._reload(tenant_id)

    def get_tenant(self, principal: Principal, tenant_id: str) -> Tenant:
        tenant = self.tenants.get(tenant_id)
        if tenant is None or not domain.can_see_tenant(principal, tenant):
            raise hidden("tenant")
        return tenant

    # --- accounts ---

    def account(self, principal: Principal, account_id: str) -> Account:
        """An account the caller may see, else 404 (R28)."""
        return domain.visible_account(principal, self.accounts.get(principal.tenant(), account_id))

    def create_account(self, principal: Principal, body: Any) -> Account:
        tenant = self.tenant_of(principal)
        parent_id = body.parent_account_id
        if principal.role == RESELLER:
            me = self.account(principal, principal.account_id or "")
            if me.kind != domain.LITE_RESELLER:
                raise Forbidden("only a lite reseller's users create customers")
            if parent_id not in (None, me.id):
                raise hidden("account")
            if body.kind != domain.CUSTOMER_KIND:
                raise BadRequest(
                    "a reseller creates customers only", field="kind", code="invalid_value"
                )
            if body.price_list_id is not None or body.separate_invoices:
                field = "price_list_id" if body.price_list_id is not None else "separate_invoices"
                raise Forbidden(f"only a tenant admin sets {field}", field=field)
            parent_id = me.id
        parent = self.account(principal, parent_id) if parent_id else None
        price_list_currency = (
            self.price_lists.currency_of(tenant.id, body.price_list_id)
            if body.price_list_id
            else None
        )
        account = domain.new_account(
            tenant,
            new_id("acc"),
            name=body.name,
            kind=body.kind,
            parent=parent,
            currency=body.currency,
            price_list_currency=price_list_currency,
            created_at=rfc3339(now_utc()),
            email=body.email,
            accounting_number=body.accounting_number,
            address=body.address.model_dump() if body.address else None,
            separate_invoices=body.separate_invoices,
            price_list_id=body.price_list_id,
        )
        self.units.save(account)
        return self.account(principal, account.id)

    def list_accounts(
        self, principal: Principal, parent_account_id: str | None, limit: int, cursor: str | None
    ) -> Page[Account]:
        """Unfiltered: a tenant admin's every account, a reseller's customers, a customer's own.
        ``parent_account_id`` names an account the caller sees (else 404, R28; a reseller's
        own included): its children, for every role alike (a customer has none)."""
        tenant_id = principal.tenant()
        if parent_account_id is not None:
            parent = self.account(principal, parent_account_id)
            return self.accounts.children(tenant_id, parent.id, limit, cursor)
        if principal.role == TENANT_ADMIN:
            return self.accounts.page(tenant_id, limit, cursor)
        if principal.role == RESELLER:
            return self.accounts.children(tenant_id, principal.account_id or "", limit, cursor)
        return Page([self.account(principal, principal.account_id or "")])

    def update_account(self, principal: Principal, account_id: str, body: Any) -> Account:
        account = self.account(principal, account_id)
        changes = body.model_dump(exclude_unset=True)
        if principal.role != TENANT_ADMIN:
            for field in ("price_list_id", "separate_invoices", "enable_reselling"):
                if field in changes:
                    raise Forbidden(f"only a tenant admin sets {field}", field=field)
            if principal.role == RESELLER and account.id == principal.account_id:
                raise Forbidden("a reseller's own account is kept by its tenant")
        if changes.get("price_list_id") is not None:
            domain.check_price_list_currency(
                account.currency,
                self.price_lists.currency_of(account.tenant_id, changes["price_list_id"]),
            )
        for field in ("name", "separate_invoices", "enable_reselling"):
            if field in changes and changes[field] is None:
                raise BadRequest(f"{field} cannot be null", field=field)
        updated = domain.update_account(account, changes)
        if updated != account:  # an empty or no-op PATCH writes nothing
            self.units.save(updated)  # conditional on the version read: a race is a 409
        return self.account(principal, account_id)

    # --- contacts and notes (allowed on mirrored accounts: R15) ---

    def add_contact(self, principal: Principal, account_id: str, body: Any) -> Contact:
        account = self.account(principal, account_id)
        contact = domain.new_contact(
            account,
            new_id("con"),
            name=body.name,
            role=body.role,
            email=body.email,
            phone=body.phone,
            existing=self.items.count_contacts(account.tenant_id, account.id),
            created_by=principal.sub,
            created_at=rfc3339(now_utc()),
        )
        self.items.add_contact(contact)
        return contact

    def contacts(
        self, principal: Principal, account_id: str, limit: int, cursor: str | None
    ) -> Page[Contact]:
        account = self.account(principal, account_id)
        return self.items.contacts(account.tenant_id, account.id, limit, cursor)

    def remove_contact(self, principal: Principal, account_id: str, contact_id: str) -> Contact:
        account = self.account(principal, account_id)
        removed = self.items.remove_contact(account.tenant_id, account.id, contact_id)
        if removed is None:
            raise hidden("contact")
        return removed

    def add_note(self, principal: Principal, account_id: str, body: Any) -> Note:
        principal.require(TENANT_ADMIN)  # staff only (the route hides notes from the others)
        account = self.account(principal, account_id)
        note = domain.new_note(
            account,
            new_id("note"),
            text=body.text,
            author=principal.sub,
            created_at=rfc3339(now_utc()),
        )
        self.items.add_note(note)
        return note

    def notes(
        self, principal: Principal, account_id: str, limit: int, cursor: str | None
    ) -> Page[Note]:
        principal.require(TENANT_ADMIN)  # staff only (the route hides notes from the others)
        account = self.account(principal, account_id)
        return self.items.notes(account.tenant_id, account.id, limit, cursor)
