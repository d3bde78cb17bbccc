"""Request and response models of the catalogue and price lists."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel, StringConstraints

from functions.core.errors import BadRequest
from functions.core.schemas import (
    LINE,
    Body,
    CurrencyCode,
    Id,
    ListQuery,
    MoneyString,
    Name,
    Out,
    Text,
)

Cycle = Literal["monthly", "annual"]
Sku = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:/-]+$")]
Unit = Annotated[str, StringConstraints(min_length=1, max_length=32), LINE]
Category = Annotated[str, StringConstraints(min_length=1, max_length=64), LINE]
Percent = Annotated[str, StringConstraints(pattern=r"^\d{1,4}(\.\d{1,2})?$")]


class CycleMoney(Body):
    monthly: MoneyString | None = None
    annual: MoneyString | None = None


class CommitmentIn(Body):
    """R31: the commitment a product is sold under in one billing cycle (docs/commitments.md)."""

    term: Literal["P1M", "P1Y", "P3Y"] = Field(description="at least the billing cycle")
    cancellation_window_hours: int = Field(
        ge=0, le=8760, description="from the purchase instant and each renewal (NCE: 168)"
    )
    refund: Literal["prorated", "full"] = Field(
        default="prorated", description="what a cancellation inside the window refunds"
    )
    after_window: Literal["refused", "penalty"] = Field(
        default="refused",
        description="after the window: refused until the term's last day, or a penalty",
    )
    penalty_percent: Percent | None = Field(
        default=None,
        description="after_window penalty only: % of the remaining committed value (0 < p ≤ 100)",
    )
    seat_reduction: Literal["within_window", "any_time"] = Field(
        default="within_window",
        description="within_window: seats go only within the window of the order that added "
        "them (NCE); any_time: reductions are free",
    )


class CycleCommitments(Body):
    monthly: CommitmentIn | None = None
    annual: CommitmentIn | None = None


class CommitmentOut(Out):
    term: str
    cancellation_window_hours: int
    refund: str
    after_window: str
    penalty_percent: str | None
    seat_reduction: str


class CreateProduct(Body):
    sku: Sku
    name: Name
    type: Literal["license", "usage", "addon", "reseller_plan"]
    billing_cycles: list[Cycle] = Field(min_length=1, max_length=2)
    unit: Unit
    description: Text | None = None
    categories: list[Category] = Field(default_factory=list, max_length=20)
    visible: bool = True
    costs: CycleMoney | None = None
    addon_for: list[Id] = Field(default_factory=list, max_length=50)
    plan: Literal["basic", "free", "standard"] | None = Field(
        default=None, description="a reseller_plan product: the plan it grants (R27)"
    )
    commitments: CycleCommitments | None = Field(
        default=None, description="R31: per billing cycle; a cycle without one is flexible"
    )


class UpdateProduct(Body):
    """R4: on a product copied from the provider, only name, description, categories and
    visibility may change; the rest answers 409 ``inherited_product``."""

    name: Name | None = None
    description: Text | None = None
    categories: list[Category] | None = Field(default=None, max_length=20)
    visible: bool | None = None
    sku: Sku | None = None
    type: Literal["license", "usage", "addon", "reseller_plan"] | None = None
    billing_cycles: list[Cycle] | None = Field(default=None, min_length=1, max_length=2)
    unit: Unit | None = None
    costs: CycleMoney | None = None
    status: Literal["active", "discontinued"] | None = Field(
        default=None, description="an own product only: a copy's follows its provider (R5)"
    )
    commitments: CycleCommitments | None = Field(
        default=None,
        description="R31, an own product only (a copy's are its provider's, R4): replaces the "
        "whole map; null makes every cycle flexible. Existing subscriptions keep theirs",
    )


class ProductQuery(ListQuery):
    price_list_id: Id | None = None
    margin_alert: bool = Field(
        default=False,
        description="tenant_admin: only products with a fixed sell price below cost (R5)",
    )


class Origin(Out):
    tenant_id: str
    product_id: str


class ProductOut(Out):
    id: str
    sku: str
    name: str
    type: str
    billing_cycles: list[str]
    unit: str
    description: str | None
    categories: list[str]
    visible: bool
    status: str
    origin: Origin | None
    addon_for: list[str]
    plan: str | None = Field(default=None, description="a reseller_plan: the plan it grants")
    currency: str | None = Field(description="currency of `prices` (and `costs`)")
    prices: dict[str, str] = Field(description="the caller's price per billing cycle")
    costs: dict[str, str] | None = Field(
        default=None, description="purchase price per cycle (tenant_admin only)"
    )
    price_list_id: str | None = None
    margin_alerts: list[MarginAlertOut] = Field(
        default_factory=list,
        description="tenant_admin: fixed sell prices of its lists below the cost (R5)",
    )
    costs_changed_at: str | None = Field(
        default=None, description="a copy: when its costs last changed (R7)"
    )
    commitments: dict[str, CommitmentOut] = Field(
        default_factory=dict, description="R31: the commitment per billing cycle (flexible: none)"
    )
    version: int


class CreatePriceList(Body):
    name: Name
    currency: CurrencyCode
    default: bool = Field(default=False, description="make it the list direct customers buy at")


class PriceListOut(Out):
    id: str
    name: str
    currency: str
    default: bool
    created_at: str
    version: int


class SetPrice(Body):
    """A fixed ``price`` or a ``markup_percent`` over the product's cost (R4)."""

    product_id: Id
    billing_cycle: Cycle
    price: MoneyString | None = None
    markup_percent: Percent | None = None


#: the most entries one request sets or simulates (a transaction holds 100 items)
MAX_ENTRIES = 50


class SetPrices(Body):
    """``POST /pricelists/{id}/prices``: one entry (the fields of ``SetPrice``, as ever) or
    several at once (``entries``, 1-50), all checked before any is written, all written or none
    (R29); not both."""

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        defer_build=True,
        json_schema_extra={
            "oneOf": [{"required": ["product_id", "billing_cycle"]}, {"required": ["entries"]}]
        },
    )

    # not null when given: absent (the batch form) is the only other way (as in ``SetPrice``)
    product_id: Id = Field(default=None)  # type: ignore[assignment]
    billing_cycle: Cycle = Field(default=None)  # type: ignore[arg-type]
    price: MoneyString | None = None
    markup_percent: Percent | None = None
    entries: list[SetPrice] | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_ENTRIES,
        description="several entries at once (each a SetPrice), instead of one entry's fields",
    )

    @property
    def batch(self) -> bool:
        return self.entries is not None

    def items(self) -> list[SetPrice]:
        """The entries to set: ``entries``, or the one entry of the fields; a 400 naming the
        field when the body is neither (R29)."""
        single = {
            name: getattr(self, name)
            for name in ("product_id", "billing_cycle", "price", "markup_percent")
            if getattr(self, name) is not None
        }
        if self.entries is not None:
            if single:
                raise BadRequest(
                    f"give one entry's fields or entries, not both ({', '.join(single)})",
                    field="entries",
                )
            return list(self.entries)
        missing = [name for name in ("product_id", "billing_cycle") if name not in single]
        if missing:
            problems = [
                {"field": name, "code": "missing_field", "message": f"{name}: Field required"}
                for name in missing
            ]
            raise BadRequest(
                problems[0]["message"],
                field=missing[0],
                code="missing_field",
                details={"problems": problems, "problem_count": len(problems)},
            )
        return [SetPrice.model_validate(single)]


class SimulatePrices(Body):
    """R34: proposed entries of a list, each the body of ``POST /pricelists/{id}/prices``."""

    entries: list[SetPrice] = Field(min_length=1, max_length=MAX_ENTRIES)


class PriceOut(Out):
    price_list_id: str
    product_id: str
    billing_cycle: str
    currency: str
    price: str | None = Field(description="the effective sell price")
    fixed_price: str | None
    markup_percent: str | None
    updated_at: str
    version: int


class CurrencyOut(Out):
    currency: str


# --- propagation (R5, R6) ----------------------------------------------------------------------

#: the queue of propagation pages (``infra/events.py`` wires its consumer)
PRICE_CHANGES_QUEUE = "price-changes"


class PriceChange(BaseModel):
    """One page of a price-list change's fan-out: the provider's product in one of its lists
    changed; the page is the list's assignees after ``cursor`` (None = the first page). The
    consumer reads the offer as it is then, so a message carries no state to go stale."""

    model_config = ConfigDict(extra="forbid", strict=True)

    provider_tenant_id: str
    price_list_id: str
    product_id: str
    cursor: str | None = None


class MarginAlertOut(Out):
    price_list_id: str
    billing_cycle: str
    price: str = Field(description="the fixed sell price, below the cost")
    cost: str


class PricesOut(Out):
    """The entries a batch ``POST /pricelists/{id}/prices`` set, in the order given."""

    items: list[PriceOut]


class SetPriceOut(RootModel[PriceOut | PricesOut]):
    """``POST /pricelists/{id}/prices``: the entry set (a ``PriceOut``), or for a body with
    ``entries`` every entry set (``{"items": [PriceOut, ...]}``)."""


# --- simulation (R34) ----------------------------------------------------------------------------


class CostChangeOut(Out):
    product_id: str = Field(description="the tenant's copy")
    origin_product_id: str = Field(description="its provider's product")
    sku: str
    change: Literal["new", "updated", "discontinued"]
    currency: str
    costs_before: dict[str, str] = Field(description="purchase price per cycle, now")
    costs_after: dict[str, str] = Field(description="purchase price per cycle, after")


class PriceMoveOut(Out):
    price_list_id: str
    product_id: str
    billing_cycle: str
    currency: str
    before: str | None = Field(description="the sell price now (null: none)")
    after: str | None = Field(description="the sell price after (null: none)")


class AlertChangeOut(Out):
    product_id: str
    price_list_id: str
    billing_cycle: str
    currency: str
    price: str = Field(description="the fixed sell price")
    cost: str = Field(description="the cost it is (or was) below")


class InvoiceLineChangeOut(Out):
    subscription_id: str = Field(description="in the provider's BSS (a mirror, R13)")
    account_id: str = Field(description="the end customer's account (mirror)")
    product_id: str
    billing_cycle: str
    quantity: int
    price_before: str
    price_after: str
    change: str = Field(description="quantity × (price after − price before), one full period")


class NextInvoiceOut(Out):
    currency: str
    change: str = Field(description="the change of the next invoice the provider sends")
    subscriptions: list[InvoiceLineChangeOut]
    truncated: bool = Field(description="true: not every subscription was read (the bound)")


class TenantForecastOut(Out):
    tenant_id: str
    name: str
    tier: int = Field(description="0: the list's owner; 1: a tenant the list is assigned to …")
    provider_tenant_id: str | None
    price_list_id: str = Field(description="the list the change reaches it through")
    currency: str
    copies: list[CostChangeOut]
    moved_prices: list[PriceMoveOut]
    margin_alerts_raised: list[AlertChangeOut]
    margin_alerts_cleared: list[AlertChangeOut]
    next_invoice: NextInvoiceOut | None = Field(
        description="the change of its provider's next invoice to it (null for tier 0)"
    )


class MoneyOut(Out):
    currency: str
    amount: str


class SimulationTotalsOut(Out):
    tenants: int = Field(description="tenants reached below the owner")
    tenants_skipped: int = Field(description="reached but not active (propagation skips them)")
    copies_changed: int
    moved_prices: int
    margin_alerts_raised: int
    margin_alerts_cleared: int
    next_invoices: list[MoneyOut] = Field(description="the next invoices' change, by currency")


class SimulationOut(Out):
    price_list_id: str
    currency: str
    tenants: list[TenantForecastOut]
    totals: SimulationTotalsOut
    truncated: bool = Field(description="true: a bound was reached; the figures are partial")
    limits: dict[str, int] = Field(description="the bounds: tenants and subscriptions read")
