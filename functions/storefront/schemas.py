"""Request and response models of the reseller plans (R27) and of a storefront's settings
(R30), and the tables' and function's names the infrastructure reads."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, StringConstraints

from functions.core.schemas import Body, Id, Out, Query
from functions.orders.schemas import OrderOut

Color = Annotated[str, StringConstraints(pattern=r"^#[0-9a-fA-F]{6}$")]
Host = Annotated[
    str,
    StringConstraints(max_length=253, pattern=r"^[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?$"),
]


class PlanQuery(Query):
    account_id: Id | None = Field(
        default=None, description="tenant_admin: the lite reseller's account (a reseller: its own)"
    )


class ChoosePlan(Body):
    """Take a plan, switch to another (upgrade or downgrade by price) or, with the Basic
    product, cancel the plan subscription (R27)."""

    product_id: Id
    account_id: Id | None = Field(
        default=None, description="tenant_admin: the lite reseller's account (a reseller: its own)"
    )


class PlanOut(Out):
    product_id: str
    name: str
    plan: str = Field(description="basic, free or standard")
    currency: str | None
    prices: dict[str, str] = Field(description="the reseller's price per billing cycle")


class StorefrontOut(Out):
    alias: str
    url: str
    status: str = Field(description="active, or inactive (a reseller back on Basic)")
    plan: str = Field(description="tenant (a tenant's own), basic, free or standard")
    name: str
    primary_color: str
    accent_color: str
    logo: bool
    domain: str | None
    version: int


class ResellerPlans(Out):
    account_id: str
    current_plan: str = Field(description="basic without a plan subscription")
    subscription_id: str | None
    storefront: StorefrontOut | None
    plans: list[PlanOut]


class ChosenPlan(ResellerPlans):
    order: OrderOut


class UpdateStorefront(Body):
    """Branding (Standard, or a tenant's own storefront): colours with white text readable on
    them (WCAG AA, 4.5:1) and a custom domain (``null`` removes it)."""

    primary_color: Color | None = Field(default=None, description="#rrggbb")
    accent_color: Color | None = Field(default=None, description="#rrggbb")
    domain: Host | None = Field(default=None, description="e.g. shop.example.com")
