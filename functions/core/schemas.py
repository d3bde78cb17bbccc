"""Request and response models: the kernel's building blocks and the parties' schemas.

Requests are strict (a number is not a string, a boolean not a number) and refuse unknown
fields; the same classes generate ``/openapi.json``. Models build lazily (``defer_build``) to keep
the cold start short.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from functions.core.pagination import DEFAULT_LIMIT, MAX_LIMIT


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, defer_build=True)


class Query(BaseModel):
    model_config = ConfigDict(extra="forbid", defer_build=True)


class Out(BaseModel):
    model_config = ConfigDict(defer_build=True)


Id = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
Name = Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=r"\S")]
Text = Annotated[str, StringConstraints(max_length=2000)]
Email = Annotated[str, StringConstraints(max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")]
CurrencyCode = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]
CountryCode = Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$")]
#: a money amount as a decimal string; the currency's minor unit is checked by the service
MoneyString = Annotated[str, StringConstraints(pattern=r"^\d{1,10}(\.\d{1,4})?$")]


class ListQuery(Query):
    limit: int = Field(default=DEFAULT_LIMIT, ge=1, le=MAX_LIMIT)
    cursor: Annotated[str, StringConstraints(min_length=1, max_length=2048)] | None = None


# --- tenants ----------------------------------------------------------------------------------


class CreateTenant(Body):
    """A root tenant (platform_admin) or a tenant reseller under the caller's tenant
    (tenant_admin, with ``price_list_id``: R3)."""

    name: Name
    country: CountryCode
    time_zone: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    billing_day: int = Field(default=1, ge=1, le=31)
    currency: CurrencyCode | None = None
    price_list_id: Id | None = None
    email: Email | None = None
    propagation: Literal["full", "partial"] = Field(
        default="full",
        description="a tenant reseller: how its provider's price-list changes reach it (R5)",
    )
    overwrite_sell_prices: bool = False
    overwrite_names: bool = False


class UpdateTenant(Body):
    """The provider's settings for one of its tenant resellers (R5)."""

    propagation: Literal["full", "partial"] | None = None
    overwrite_sell_prices: bool | None = None
    overwrite_names: bool | None = None


class TenantOut(Out):
    id: str
    name: str
    parent_id: str | None
    currency: str
    country: str
    time_zone: str
    billing_day: int
    backordering: bool
    backordering_activated_at: str | None
    reseller_account_id: str | None
    default_price_list_id: str | None
    status: str
    propagation: str
    overwrite_sell_prices: bool
    overwrite_names: bool
    upgrade_from: str | None = Field(
        default=None, description="made by upgrading this lite reseller account (R19)"
    )
    upgrade_step: int = Field(default=0, description="the upgrade's last step done, 1-4")
    upgrade_problems: list[dict[str, str]] = Field(
        default_factory=list, description="what the upgrade's failed step found"
    )
    created_at: str
    version: int


# --- accounts ---------------------------------------------------------------------------------


class Address(Body):
    line1: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    line2: Annotated[str, StringConstraints(max_length=200)] | None = None
    city: Annotated[str, StringConstraints(min_length=1, max_length=100)]
    postal_code: Annotated[str, StringConstraints(min_length=1, max_length=20)]
    country: CountryCode


class CreateAccount(Body):
    name: Name
    kind: Literal["customer", "lite_reseller"] = "customer"
    parent_account_id: Id | None = None
    currency: CurrencyCode | None = None
    email: Email | None = None
    accounting_number: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = None
    address: Address | None = None
    separate_invoices: bool = False
    price_list_id: Id | None = None


class UpdateAccount(Body):
    name: Name | None = None
    email: Email | None = None
    accounting_number: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = None
    address: Address | None = None
    separate_invoices: bool | None = None
    price_list_id: Id | None = None


class AccountListQuery(ListQuery):
    parent_account_id: Id | None = None


class AccountOut(Out):
    id: str
    tenant_id: str
    name: str
    kind: str
    parent_account_id: str | None
    enable_reselling: bool
    separate_invoices: bool
    bill_to_account_id: str
    currency: str
    email: str | None
    accounting_number: str | None
    address: dict[str, str | None] | None
    price_list_id: str | None
    child_tenant_id: str | None
    mirrored: bool
    source: dict[str, str] | None
    status: str
    created_at: str
    version: int


class Health(Out):
    status: str


# --- contacts and notes -----------------------------------------------------------------------

Phone = Annotated[
    str, StringConstraints(min_length=3, max_length=32, pattern=r"^\+?[0-9][0-9 ()./-]*$")
]


class CreateContact(Body):
    name: Name
    role: Literal["primary", "billing", "technical", "commercial", "other"] = "primary"
    email: Email | None = None
    phone: Phone | None = None


class ContactOut(Out):
    id: str
    account_id: str
    name: str
    role: str
    email: str | None
    phone: str | None
    created_at: str
    created_by: str


class CreateNote(Body):
    text: Annotated[str, StringConstraints(min_length=1, max_length=4000, pattern=r"\S")]


class NoteOut(Out):
    id: str
    account_id: str
    text: str
    author: str = Field(description="the ``sub`` of the user who wrote it")
    created_at: str
