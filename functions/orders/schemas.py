"""Request and response models of subscriptions and orders."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import Field, StringConstraints, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

from functions.core.schemas import OPTIONAL_LINE, Body, Id, ListQuery, Out

Cycle = Literal["monthly", "annual"]
CharacteristicKey = Annotated[
    str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
]
CharacteristicValue = Annotated[str, StringConstraints(max_length=256), OPTIONAL_LINE]
Quantity = Annotated[int, Field(ge=1, le=100_000)]


class CotermIn(Body):
    """R31 co-terming: exactly one of the two."""

    subscription_id: Id | None = Field(
        default=None,
        description="end the first term with this subscription's current term (a live "
        "subscription of the same account)",
    )
    month_end: bool | None = Field(
        default=None,
        description="true: end the first term on the last day of the start's month",
    )


class CreateSubscription(Body):
    account_id: Id
    product_id: Id
    quantity: Quantity = 1
    billing_cycle: Cycle
    term: Cycle | None = Field(default=None, description="defaults to the billing cycle")
    start_date: dt.date | None = Field(default=None, description="defaults to today (tenant time)")
    auto_renew: bool = True
    characteristics: dict[CharacteristicKey, CharacteristicValue] = Field(
        default_factory=dict, max_length=20
    )
    coterm: CotermIn | None = Field(
        default=None,
        description="R31 co-terming: align the first term's end (prorated, R22) with another "
        "subscription's term or the month's end; the subscription renews the day after",
    )


class CreateAddon(Body):
    product_id: Id
    quantity: Quantity = 1
    characteristics: dict[CharacteristicKey, CharacteristicValue] = Field(
        default_factory=dict, max_length=20
    )


#: The fields each action takes besides ``action`` and ``effective_date``.
ACTION_FIELDS: dict[str, frozenset[str]] = {
    "change_quantity": frozenset({"quantity"}),
    "upgrade": frozenset({"product_id"}),
    "downgrade": frozenset({"product_id"}),
    "set_auto_renew": frozenset({"auto_renew"}),
}
#: the actions that take no ``effective_date`` (they act now)
UNDATED = frozenset({"renew", "set_auto_renew"})


class SubscriptionAction(Body):
    """``quantity`` goes with ``change_quantity``; ``product_id`` with ``upgrade`` and
    ``downgrade``; ``auto_renew`` with ``set_auto_renew`` (R31: always allowed); the other
    actions take nothing else; ``renew`` and ``set_auto_renew`` take no ``effective_date``."""

    action: Literal[
        "change_quantity",
        "upgrade",
        "downgrade",
        "suspend",
        "resume",
        "renew",
        "cancel",
        "set_auto_renew",
    ]
    quantity: Quantity | None = Field(default=None, validate_default=True)
    product_id: Id | None = Field(default=None, validate_default=True)
    auto_renew: bool | None = Field(default=None, validate_default=True)
    effective_date: dt.date | None = Field(
        default=None,
        description="a tenant admin may backdate a change (not renew) to a day from the start "
        "of the previous billing period, not before the subscription's last change; billing "
        "prorates from that day (R22). Default: today",
    )

    @field_validator("quantity", "product_id", "auto_renew", "effective_date")
    @classmethod
    def _taken_by_action(cls, value: object, info: ValidationInfo) -> object:
        """A field the action needs is required, one it does not take is refused, each named
        (400 ``missing_field`` / ``unknown_field``)."""
        action = info.data.get("action")
        if action is None:  # the action itself was refused: that is the problem to name
            return value
        name = str(info.field_name)
        if name == "effective_date":
            wanted, needed = action not in UNDATED, False
        else:
            wanted = needed = name in ACTION_FIELDS.get(action, frozenset())
        if needed and value is None:
            raise PydanticCustomError(
                "missing", "{action} needs {name}", {"action": action, "name": name}
            )
        if not wanted and value is not None:
            raise PydanticCustomError(
                "extra_forbidden", "{action} takes no {name}", {"action": action, "name": name}
            )
        return value


class SubscriptionQuery(ListQuery):
    account_id: Id | None = None


class CommitmentOut(Out):
    """R31: the commitment a subscription was bought under (its product's then)."""

    term: str
    cancellation_window_hours: int
    refund: str
    after_window: str
    penalty_percent: str | None
    seat_reduction: str


class RefundableOut(Out):
    quantity: int
    until: str = Field(description="RFC 3339: when these seats' window closes")


class ScheduledChangeOut(Out):
    type: str
    on: str = Field(description="the renewal day it takes effect")
    product_id: str


class SubscriptionOut(Out):
    id: str
    account_id: str
    product_id: str
    quantity: int
    billing_cycle: str
    term: str
    status: str
    start_date: str
    end_date: str
    activation_date: str | None
    cancellation_date: str | None
    auto_renew: bool
    characteristics: dict[str, str]
    parent_subscription_id: str | None
    currency: str
    unit_price: str
    paid: bool
    price_list_id: str
    mirrored: bool
    source: dict[str, str] | None
    created_at: str
    updated_at: str
    commitment: CommitmentOut | None = Field(
        default=None, description="R31: the commitment it was bought under; null: flexible"
    )
    purchased_at: str | None = Field(default=None, description="R31: the purchase instant")
    term_end: str | None = Field(default=None, description="R31: the current term's last day")
    cancellable_until: str | None = Field(
        default=None,
        description="R31: when the current term's cancellation window (refund) closes",
    )
    cancellable_from: str | None = Field(
        default=None,
        description="R31: the window has closed and the policy refuses: the day a cancellation "
        "becomes possible (the term's last day)",
    )
    refundable_quantity: list[RefundableOut] = Field(
        default_factory=list,
        description="R31: seats a reduction may still take, per addition, with its deadline",
    )
    scheduled_change: ScheduledChangeOut | None = Field(
        default=None, description="R31: a downgrade waiting for the renewal"
    )
    coterm_end: str | None = Field(
        default=None,
        description="R31 co-terming: the first term's aligned last day (a shorter first term); "
        "null: a full first term",
    )
    version: int


class OrderLineOut(Out):
    product_id: str
    sku: str
    name: str
    billing_cycle: str
    quantity: int
    previous_quantity: int | None
    previous_product_id: str | None
    unit_price: str
    amount: str


class OrderOut(Out):
    id: str
    number: str
    account_id: str
    subscription_id: str
    type: str
    date: str
    status: str
    currency: str
    lines: list[OrderLineOut]
    total: str
    price_list_id: str
    created_at: str
    created_by: str
    end_customer_account_id: str | None = None
    refund: str | None = Field(
        default=None, description="R31: a cancellation inside its window: prorated or full"
    )
    penalty: str | None = Field(
        default=None, description="R31: a cancellation after the window: the penalty owed"
    )


class SubscriptionWithOrder(Out):
    subscription: SubscriptionOut
    order: OrderOut
