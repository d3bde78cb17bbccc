"""HTTP routes of the parties (tenants, accounts) and the public ones (health, OpenAPI)."""

from __future__ import annotations

from functions.core.api import ROUTES, Api, Call
from functions.core.auth import CUSTOMER, PLATFORM_ADMIN, RESELLER, TENANT_ADMIN
from functions.core.pagination import Page
from functions.core.schemas import (
    AccountListQuery,
    AccountOut,
    CreateAccount,
    CreateTenant,
    Health,
    ListQuery,
    TenantOut,
    UpdateAccount,
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
