"""Request and response models of billing: usage records (R25)."""

from __future__ import annotations

from typing import Annotated

from pydantic import AwareDatetime, Field, StringConstraints

from functions.core.schemas import Body, Id, ListQuery, Out

UsageKey = Annotated[
    str, StringConstraints(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:/@-]+$")
]
UsageQuantity = Annotated[str, StringConstraints(pattern=r"^\d{1,10}(\.\d{1,6})?$")]


class RecordUsage(Body):
    """One metered use of a subscription (R25). ``key`` deduplicates: the same key twice is
    counted once; the same key with another quantity, unit or time is a 409."""

    subscription_id: Id
    quantity: UsageQuantity = Field(description="a decimal string, up to 6 decimals")
    unit: Annotated[str, StringConstraints(min_length=1, max_length=32, pattern=r"\S")]
    at: AwareDatetime = Field(description="when it was used (RFC 3339 with an offset)")
    key: UsageKey = Field(description="the deduplication key, unique per subscription")


class UsageQuery(ListQuery):
    subscription_id: Id


class UsageOut(Out):
    subscription_id: str
    key: str
    quantity: str
    unit: str
    at: str
    recorded_at: str
    source: dict[str, str] | None = Field(
        default=None, description="a copy made by back ordering: the reseller's record"
    )
