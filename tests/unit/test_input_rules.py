"""Issue 11, finding 4 (R29): the pure rules behind the input bounds, over many cases —
the free-text rule (and that the pattern ``/openapi.json`` shows is the rule the server runs),
the usage time and quantity bounds (R21, R25), the periods a billing run may take (R24), a
SKU's holders (R1) and the token's claim types (R28)."""

from __future__ import annotations

import re
import time
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Annotated, Any

import jwt
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from functions.core.auth import authenticate
from functions.core.errors import BadRequest, Unauthorized
from functions.core.schemas import LINE, LINES, OPTIONAL_LINE, OPTIONAL_LINES, FreeText
from functions.invoices import domain as billing
from functions.pricelist.domain import check_sku_free

SECRET = "unit-secret-0123456789abcdef-0123456789"
LINE_BREAKS = "\t\n\r\u2028\u2029"


def _forbidden(ch: str, *, lines: bool) -> bool:
    code = ord(ch)
    if lines and ch in LINE_BREAKS:
        return False
    return (
        code < 0x20
        or 0x7F <= code <= 0x9F
        or ch in "\u061c\u200e\u200f\u2028\u2029"
        or 0x202A <= code <= 0x202E
        or 0x2066 <= code <= 0x2069
    )


def _model(rule: FreeText) -> type[BaseModel]:
    class M(BaseModel):
        value: Annotated[str, rule]

    return M


TEXT = st.text(
    alphabet=st.one_of(
        st.characters(codec="utf-8", exclude_categories=("Cs",)),
        st.sampled_from(["\x00", "\u202e", "\u2066", "\u200f", "\x85", "\n", "\t", " ", "\u3000"]),
    ),
    max_size=12,
)


@pytest.mark.parametrize("rule", [LINE, OPTIONAL_LINE, LINES, OPTIONAL_LINES])
@given(text=TEXT)
def test_r29_issue_11_the_free_text_rule_over_any_text(rule: FreeText, text: str) -> None:
    """A text is accepted iff it holds no forbidden character (tab, line breaks allowed in
    multi-line text) and, where required, is not blank; and the JSON-Schema pattern shown in
    ``/openapi.json`` says the same (ECMA ``$``: the end, so ``\\Z`` here)."""
    expected = not any(_forbidden(ch, lines=rule.lines) for ch in text) and (
        not rule.visible or (bool(text) and not text.isspace())
    )
    try:
        _model(rule).model_validate({"value": text})
        accepted = True
    except ValidationError as error:
        accepted = False
        assert error.errors()[0]["type"] == "string_pattern_mismatch"
    assert accepted == expected, repr(text)
    pattern = rule.pattern.removesuffix("$") + r"\Z"
    assert (re.search(pattern, text) is not None) == expected, repr(text)


# --- usage (R21, R25) ---------------------------------------------------------------------------

NOW = datetime(2026, 3, 10, 12, tzinfo=UTC)
START = datetime(2026, 2, 9, 23, tzinfo=UTC)  # 10 Feb, Berlin


@pytest.mark.parametrize(
    ("at", "code"),
    [
        (NOW + timedelta(minutes=5, seconds=1), "out_of_range"),
        (datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC), "out_of_range"),
        (datetime(1970, 1, 1, tzinfo=UTC), "out_of_range"),
        (START - timedelta(seconds=1), "out_of_range"),
        (datetime(2026, 2, 27, tzinfo=UTC), "period_billed"),
        (datetime(2026, 2, 28, 22, 59, 59, tzinfo=UTC), "period_billed"),
    ],
)
def test_r25_a_use_out_of_its_bounds_is_refused_naming_at(at: datetime, code: str) -> None:
    open_from = datetime(2026, 2, 28, 23, tzinfo=UTC)  # 1 March, Berlin: February is billed
    with pytest.raises(BadRequest) as refused:
        billing.check_usage_time(at, starts=START, open_from=open_from, now=NOW)
    assert (refused.value.field, refused.value.code) == ("at", code)


@pytest.mark.parametrize(
    "at", [NOW + timedelta(minutes=5), NOW, datetime(2026, 2, 28, 23, tzinfo=UTC)]
)
def test_r25_a_use_within_its_bounds_is_fine(at: datetime) -> None:
    open_from = datetime(2026, 2, 28, 23, tzinfo=UTC)
    billing.check_usage_time(at, starts=START, open_from=open_from, now=NOW)


@pytest.mark.parametrize(
    ("started", "open_from"),
    [
        (set(), date(2026, 2, 1)),  # March's run not started: February still open
        ({date(2026, 3, 1)}, date(2026, 3, 1)),
        ({date(2026, 3, 1), date(2026, 4, 1)}, date(2026, 4, 1)),  # April run ahead
    ],
)
def test_r21_the_usage_of_a_period_is_open_until_the_run_billing_it_starts(
    started: set[date], open_from: date
) -> None:
    run = billing.run_for(1, date(2026, 3, 1))
    assert billing.usage_open_from(run, started.__contains__) == open_from


@given(
    quantity=st.decimals(
        min_value=Decimal("-10"), max_value=Decimal("2e9"), allow_nan=False, places=7
    )
)
def test_r25_a_quantity_is_above_0_below_a_billion_with_6_decimals(quantity: Decimal) -> None:
    fine = Decimal(0) < quantity < Decimal(10**9) and quantity == quantity.quantize(
        Decimal("0.000001")
    )
    try:
        billing.usage_record(
            "t",
            "s",
            key="k",
            quantity=quantity,
            unit="u",
            product_unit="u",
            at="x",
            recorded_at="x",
        )
        accepted = True
    except BadRequest as error:
        assert error.field == "quantity"
        accepted = False
    assert accepted == fine


# --- billing runs (R24) ------------------------------------------------------------------------


@given(
    billing_day=st.integers(1, 31),
    today=st.dates(date(2001, 1, 1), date(2098, 12, 31)),
    age=st.integers(0, 400),
    offset=st.integers(-3, 3),
)
def test_r24_a_run_takes_the_previous_current_or_next_period_never_before_the_tenant(
    billing_day: int, today: date, age: int, offset: int
) -> None:
    """Over any billing day, day and tenant age: the period ``offset`` periods from the current
    one may be run iff it is the next, the current, or the previous one and the tenant existed
    in it."""
    created_on = today - timedelta(days=age)
    current = billing.monthly_period(billing_day, today)
    period = current
    for _ in range(abs(offset)):
        period = (
            billing.monthly_period(billing_day, period.end)
            if offset > 0
            else billing.monthly_period(billing_day, period.start - timedelta(days=1))
        )
    first = billing.monthly_period(billing_day, created_on)
    fine = -1 <= offset <= 1 and period.start >= first.start
    try:
        billing.check_run_period(
            period.start, billing_day=billing_day, today=today, created_on=created_on
        )
        accepted = True
    except BadRequest as error:
        assert error.field == "period_start"
        assert error.code == ("future_period" if offset > 1 else "out_of_range")
        accepted = False
    assert accepted == fine


@pytest.mark.parametrize("start", [date(1, 1, 1), date(1900, 1, 1), date(9999, 12, 31)])
def test_r24_r29_a_period_at_the_ends_of_the_calendar_is_a_400(start: date) -> None:
    with pytest.raises(BadRequest) as refused:
        billing.check_run_period(
            start, billing_day=31, today=date(2026, 3, 10), created_on=date(2020, 1, 1)
        )
    assert refused.value.field == "period_start"


# --- SKUs (R1) ----------------------------------------------------------------------------------


def test_r1_a_sku_held_by_another_product_is_taken() -> None:
    check_sku_free("E3", set(), "prd_me")
    check_sku_free("E3", {"prd_me"}, "prd_me")
    with pytest.raises(BadRequest) as refused:
        check_sku_free("E3", {"prd_me", "prd_copy"}, "prd_me")
    assert (refused.value.field, refused.value.code) == ("sku", "sku_taken")
    assert refused.value.details["product_id"] == "prd_copy"


# --- token claims (R28) ------------------------------------------------------------------------

JSON_VALUES: st.SearchStrategy[Any] = st.one_of(
    st.text(max_size=12),
    st.booleans(),
    st.none(),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    st.floats(allow_nan=False, allow_infinity=False),
    st.integers(-(10**20), 10**20),
)


@given(claim=st.sampled_from(["exp", "iat", "nbf", "sub", "role", "tenant_id"]), value=JSON_VALUES)
def test_r28_any_claim_value_is_a_principal_or_a_401_never_an_error(claim: str, value: Any) -> None:
    """Whatever JSON value a signed token carries in a claim, the answer is the caller or a 401
    (naming the claim when its type is wrong) — never another exception (a 500)."""
    now = int(time.time())
    claims: dict[str, Any] = {"sub": "u", "role": "tenant_admin", "tenant_id": "t", "exp": now + 60}
    claims[claim] = value
    bearer = "Bearer " + jwt.encode(claims, SECRET, algorithm="HS256")
    try:
        authenticate(bearer, SECRET)
    except Unauthorized as error:
        wrong_type = (
            claim in ("exp", "iat", "nbf")
            and (isinstance(value, bool) or not isinstance(value, (int, float)))
        ) or (
            claim in ("sub", "role", "tenant_id")
            and value is not None
            and not isinstance(value, str)
        )
        if wrong_type:
            assert error.field == claim
