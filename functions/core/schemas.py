"""Request and response models: the kernel's building blocks and the parties' schemas.

Requests are strict (a number is not a string, a boolean not a number) and refuse unknown
fields; the same classes generate ``/openapi.json``. Models build lazily (``defer_build``) to keep
the cold start short.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    StringConstraints,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, PydanticCustomError, core_schema

from functions.core.pagination import DEFAULT_LIMIT, MAX_LIMIT


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, defer_build=True)


class Query(BaseModel):
    model_config = ConfigDict(extra="forbid", defer_build=True)


class Out(BaseModel):
    model_config = ConfigDict(defer_build=True)


# --- free text (R29, issue 11) --------------------------------------------------------------------

#: What no free text may hold: C0 and C1 control characters (NUL included) and DEL, the
#: bidirectional formatting characters (marks, embeddings, overrides, isolates: "Trojan Source"
#: text that reads one way and sorts or prints another), and in one-line text the Unicode line
#: and paragraph separators. Lone surrogates never get this far: they are not valid JSON.
_CONTROLS = r"\u0000-\u001f\u007f-\u009f"
_BIDI = r"\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"
_SEPARATORS = r"\u2028\u2029"
#: ``\t``, ``\n`` and ``\r`` are allowed in multi-line text only (notes, descriptions)
_FORBIDDEN_IN_LINE = _CONTROLS + _BIDI + _SEPARATORS
_FORBIDDEN_IN_LINES = r"\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f" + _BIDI


@dataclass(frozen=True)
class FreeText:
    """The one rule of every free-text field of every context's requests (names, descriptions,
    notes, contact and address fields, characteristics, units, categories …), used as
    ``Annotated[str, StringConstraints(<lengths>), FreeText(...)]``: no control or bidi
    formatting character (``_FORBIDDEN_IN_LINE``), and, if ``visible``, at least one character
    that is not white space. ``lines``: a multi-line text, where tab, LF and CR are allowed.

    A refusal is a 400 ``invalid_format`` naming the field; ``/openapi.json`` shows the rule as
    the field's ``pattern`` (the same regular expression the check runs)."""

    visible: bool = True
    lines: bool = False

    @property
    def pattern(self) -> str:
        bad = _FORBIDDEN_IN_LINES if self.lines else _FORBIDDEN_IN_LINE
        if self.visible:
            return f"^[^{bad}]*[^\\s{bad}][^{bad}]*$"
        return f"^[^{bad}]*$"

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> CoreSchema:
        return core_schema.no_info_after_validator_function(self.check, handler(source))

    def __get_pydantic_json_schema__(
        self, schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        found = handler(schema)
        found["pattern"] = self.pattern
        return found

    def check(self, value: str) -> str:
        if _FORBIDDEN[self.lines].search(value):
            raise PydanticCustomError(
                "string_pattern_mismatch",  # rendered as 400 invalid_format (core/api.py)
                "must not hold control characters (U+0000-U+001F, U+007F-U+009F{extra}) or "
                "bidirectional formatting characters (U+061C, U+200E, U+200F, U+202A-U+202E, "
                "U+2066-U+2069)",
                {"extra": "" if self.lines else ", U+2028, U+2029"},
            )
        if self.visible and (not value or value.isspace()):
            raise PydanticCustomError("string_pattern_mismatch", "must not be blank")
        return value


_FORBIDDEN = {
    False: re.compile(f"[{_FORBIDDEN_IN_LINE}]"),
    True: re.compile(f"[{_FORBIDDEN_IN_LINES}]"),
}
LINE = FreeText()  # one line, not blank
OPTIONAL_LINE = FreeText(visible=False)  # one line, may be empty or blank
LINES = FreeText(lines=True)  # several lines, not blank
OPTIONAL_LINES = FreeText(visible=False, lines=True)


def _line(max_length: int) -> Any:
    return StringConstraints(min_length=1, max_length=max_length)


Id = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
Name = Annotated[str, _line(200), LINE]
Text = Annotated[str, StringConstraints(max_length=2000), OPTIONAL_LINES]
#: a time zone name (checked against the tz database by the domain)
TimeZone = Annotated[str, _line(64), LINE]
Email = Annotated[
    str,
    StringConstraints(
        max_length=254,
        pattern=(
            rf"^[^@\s{_FORBIDDEN_IN_LINE}]+@[^@\s{_FORBIDDEN_IN_LINE}]+"
            rf"\.[^@\s{_FORBIDDEN_IN_LINE}]+$"
        ),
    ),
]
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
    time_zone: TimeZone
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
    reseller_plans: bool | None = Field(
        default=None,
        description="R27: the reseller add-on: its lite resellers may take a reseller plan",
    )


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
    reseller_plans: bool
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


AccountingNumber = Annotated[str, _line(64), LINE]


class Address(Body):
    line1: Annotated[str, _line(200), LINE]
    line2: Annotated[str, StringConstraints(max_length=200), OPTIONAL_LINE] | None = None
    city: Annotated[str, _line(100), LINE]
    postal_code: Annotated[str, _line(20), LINE]
    country: CountryCode


class CreateAccount(Body):
    name: Name
    kind: Literal["customer", "lite_reseller"] = "customer"
    parent_account_id: Id | None = None
    currency: CurrencyCode | None = None
    email: Email | None = None
    accounting_number: AccountingNumber | None = None
    address: Address | None = None
    separate_invoices: bool = False
    price_list_id: Id | None = None


class UpdateAccount(Body):
    name: Name | None = None
    email: Email | None = None
    accounting_number: AccountingNumber | None = None
    address: Address | None = None
    separate_invoices: bool | None = None
    price_list_id: Id | None = None
    enable_reselling: bool | None = Field(
        default=None,
        description="a lite reseller (tenant_admin only): may take a reseller plan (R27)",
    )


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
    text: Annotated[str, _line(4000), LINES]


class NoteOut(Out):
    id: str
    account_id: str
    text: str
    author: str = Field(description="the ``sub`` of the user who wrote it")
    created_at: str
