"""HTTP routes of the parties (tenants, accounts, their contacts and notes) and the public ones
(health, OpenAPI)."""

from __future__ import annotations

from functions.core.api import ROUTES, Api, Call
from functions.core.auth import CUSTOMER, PLATFORM_ADMIN, RESELLER, TENANT_ADMIN
from functions.core.pagination import Page
from functions.core.schemas import (
    AccountListQuery,
    AccountOut,
    ContactOut,
    CreateAccount,
    CreateContact,
    CreateNote,
    CreateTenant,
    Health,
    ListQuery,
    NoteOut,
    TenantOut,
    UpdateAccount,
    UpdateTenant,
)

api = Api("tenancy")
ANY_TENANT_USER = (TENANT_ADMIN, RESELLER, CUSTOMER)


def tenant_out(tenant: object) -> TenantOut:
    return TenantOut.model_validate(tenant, from_attributes=True)


def account_out(account: object) -> AccountOut:
    return AccountOut.model_validate(account, from_attributes=True)


@api.route("/health", "GET", summary="Liveness", roles=None, response=Health, errors=())
def health(call: Call) -> Health:
    return Health(status="ok")


@api.route("/openapi.json", "GET", summary="This API's OpenAPI document", roles=None, errors=())
def openapi(call: Call) -> dict[str, object]:
    from functions.core.openapi import build_openapi

    return build_openapi(ROUTES, title="Multi-tier cloud reseller BSS", version="0.1.0")


@api.route(
    "/tenants",
    "POST",
    summary="Create a root tenant (platform_admin) or a tenant reseller (R3)",
    roles=(PLATFORM_ADMIN, TENANT_ADMIN),
    body=CreateTenant,
    response=TenantOut,
    status=201,
)
def create_tenant(call: Call) -> TenantOut:
    return tenant_out(call.container.tenancy.create_tenant(call.principal, call.body))


@api.route(
    "/tenants",
    "GET",
    summary="Root tenants (platform_admin) or the caller's child tenants",
    roles=(PLATFORM_ADMIN, TENANT_ADMIN),
    query=ListQuery,
    response=TenantOut,
    paginated=True,
)
def list_tenants(call: Call) -> Page[TenantOut]:
    page = call.container.tenancy.list_tenants(call.principal, call.limit, call.cursor)
    return Page([tenant_out(t) for t in page.items], page.next_cursor)


@api.route(
    "/tenants/{tenant_id}",
    "GET",
    summary="A tenant: the caller's own, or one of its children",
    roles=(PLATFORM_ADMIN, TENANT_ADMIN),
    response=TenantOut,
)
def get_tenant(call: Call) -> TenantOut:
    return tenant_out(call.container.tenancy.get_tenant(call.principal, call.params["tenant_id"]))


@api.route(
    "/tenants/{tenant_id}",
    "PATCH",
    summary="The provider's settings for one of its tenant resellers: price-list propagation "
    "(R5), the reseller add-on (R27; the platform admin's for a root tenant)",
    roles=(TENANT_ADMIN, PLATFORM_ADMIN),
    body=UpdateTenant,
    response=TenantOut,
    errors=(400, 403, 404, 409),
)
def update_tenant(call: Call) -> TenantOut:
    tenant = call.container.tenancy.update_tenant(
        call.principal, call.params["tenant_id"], call.body
    )
    return tenant_out(tenant)


@api.route(
    "/accounts",
    "POST",
    summary="Create a customer or a lite reseller",
    roles=(TENANT_ADMIN, RESELLER),
    body=CreateAccount,
    response=AccountOut,
    status=201,
)
def create_account(call: Call) -> AccountOut:
    return account_out(call.container.tenancy.create_account(call.principal, call.body))


@api.route(
    "/accounts",
    "GET",
    summary="Accounts in the caller's scope",
    roles=ANY_TENANT_USER,
    query=AccountListQuery,
    response=AccountOut,
    paginated=True,
)
def list_accounts(call: Call) -> Page[AccountOut]:
    page = call.container.tenancy.list_accounts(
        call.principal, call.query.parent_account_id, call.limit, call.cursor
    )
    return Page([account_out(a) for a in page.items], page.next_cursor)


@api.route(
    "/accounts/{account_id}",
    "GET",
    summary="An account in the caller's scope",
    roles=ANY_TENANT_USER,
    response=AccountOut,
)
def get_account(call: Call) -> AccountOut:
    return account_out(call.container.tenancy.account(call.principal, call.params["account_id"]))


@api.route(
    "/accounts/{account_id}",
    "PATCH",
    summary="Change an account's details or price list",
    roles=ANY_TENANT_USER,
    body=UpdateAccount,
    response=AccountOut,
    errors=(400, 404, 409),
)
def update_account(call: Call) -> AccountOut:
    account = call.container.tenancy.update_account(
        call.principal, call.params["account_id"], call.body
    )
    return account_out(account)


# --- contacts and notes (allowed on mirrored accounts: R15) ------------------------------------


def contact_out(contact: object) -> ContactOut:
    return ContactOut.model_validate(contact, from_attributes=True)


def note_out(note: object) -> NoteOut:
    return NoteOut.model_validate(note, from_attributes=True)


@api.route(
    "/accounts/{account_id}/contacts",
    "POST",
    summary="Add a contact to an account (mirrors included, R15)",
    roles=ANY_TENANT_USER,
    body=CreateContact,
    response=ContactOut,
    status=201,
    errors=(400, 404, 409),
)
def add_contact(call: Call) -> ContactOut:
    contact = call.container.tenancy.add_contact(
        call.principal, call.params["account_id"], call.body
    )
    return contact_out(contact)


@api.route(
    "/accounts/{account_id}/contacts",
    "GET",
    summary="An account's contacts, oldest first",
    roles=ANY_TENANT_USER,
    query=ListQuery,
    response=ContactOut,
    paginated=True,
)
def list_contacts(call: Call) -> Page[ContactOut]:
    page = call.container.tenancy.contacts(
        call.principal, call.params["account_id"], call.limit, call.cursor
    )
    return Page([contact_out(c) for c in page.items], page.next_cursor)


@api.route(
    "/accounts/{account_id}/contacts/{contact_id}",
    "DELETE",
    summary="Remove a contact; answers the removed contact",
    roles=ANY_TENANT_USER,
    response=ContactOut,
)
def remove_contact(call: Call) -> ContactOut:
    contact = call.container.tenancy.remove_contact(
        call.principal, call.params["account_id"], call.params["contact_id"]
    )
    return contact_out(contact)


#: notes are the tenant's staff's: for a reseller's or a customer's user they do not exist (R28)
NOT_STAFF = (RESELLER, CUSTOMER)


@api.route(
    "/accounts/{account_id}/notes",
    "POST",
    summary="Add an internal note to an account (staff only; mirrors included, R15)",
    roles=(TENANT_ADMIN,),
    hidden_from=NOT_STAFF,
    body=CreateNote,
    response=NoteOut,
    status=201,
    errors=(400, 404),
)
def add_note(call: Call) -> NoteOut:
    note = call.container.tenancy.add_note(call.principal, call.params["account_id"], call.body)
    return note_out(note)


@api.route(
    "/accounts/{account_id}/notes",
    "GET",
    summary="An account's internal notes, newest first (staff only)",
    roles=(TENANT_ADMIN,),
    hidden_from=NOT_STAFF,
    query=ListQuery,
    response=NoteOut,
    paginated=True,
)
def list_notes(call: Call) -> Page[NoteOut]:
    page = call.container.tenancy.notes(
        call.principal, call.params["account_id"], call.limit, call.cursor
    )
    return Page([note_out(n) for n in page.items], page.next_cursor)
