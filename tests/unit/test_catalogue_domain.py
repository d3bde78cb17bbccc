"""R1-R4 rules of the catalogue domain, with no I/O."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from functions.core.errors import BadRequest, Conflict
from functions.pricelist import domain
from functions.pricelist.domain import Price, PriceList, Product

NOW = "2026-11-22T10:00:00Z"
EUR_LIST = PriceList("prl_1", "tnt_1", "Retail", "EUR", NOW)


def product(**overrides: object) -> Product:
    values: dict[str, object] = dict(
        id="prd_1",
        tenant_id="tnt_1",
        sku="O365-E3",
        name="Office 365 E3",
        type="license",
        billing_cycles=["monthly", "annual"],
        unit="seat",
        created_at=NOW,
        costs={"monthly": Decimal("18.00")},
    )
    values.update(overrides)
    return Product(**values)  # type: ignore[arg-type]


def price(**kw: object) -> Price:
    return domain.new_price(EUR_LIST, product(), updated_at=NOW, previous=None, **kw)  # type: ignore[arg-type]


def test_r1_new_product_orders_cycles_and_parses_costs() -> None:
    p = domain.new_product(
        "prd_1",
        "tnt_1",
        sku="X",
        name="X",
        type="license",
        billing_cycles=["annual", "monthly"],
        unit="seat",
        created_at=NOW,
        currency="EUR",
        costs={"annual": "100.50"},
        addon_for=[],
    )
    assert p.billing_cycles == ["monthly", "annual"]
    assert p.costs == {"annual": Decimal("100.50")}
    assert not p.inherited


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"billing_cycles": []}, "billing_cycles"),
        ({"billing_cycles": ["monthly", "monthly"]}, "billing_cycles"),
        ({"type": "addon"}, "addon_for"),
        ({"costs": {"annual": "1.00"}, "billing_cycles": ["monthly"]}, "costs.annual"),
        ({"costs": {"monthly": "1.001"}}, "costs.monthly"),
    ],
)
def test_r1_invalid_products_name_the_field(kwargs: dict[str, object], field: str) -> None:
    args: dict[str, object] = dict(
        sku="X",
        name="X",
        type="license",
        billing_cycles=["monthly"],
        unit="seat",
        created_at=NOW,
        currency="EUR",
        costs=None,
        addon_for=[],
    )
    args.update(kwargs)
    with pytest.raises(BadRequest) as error:
        domain.new_product("prd_1", "tnt_1", **args)  # type: ignore[arg-type]
    assert error.value.field == field


def test_r2_fixed_price_or_markup_not_both_nor_neither() -> None:
    assert price(billing_cycle="monthly", price="20.00", markup_percent=None).price == Decimal("20")
    for both in ({"price": "1.00", "markup_percent": "5"}, {"price": None, "markup_percent": None}):
        with pytest.raises(BadRequest):
            price(billing_cycle="monthly", **both)


def test_r4_markup_follows_cost_and_rounds_half_up() -> None:
    entry = price(billing_cycle="monthly", price=None, markup_percent="12.5")
    assert domain.effective_price(entry, product(), "EUR") == Decimal("20.25")
    cheaper = product(costs={"monthly": Decimal("10.01")})
    assert domain.effective_price(entry, cheaper, "EUR") == Decimal("11.26")  # 11.26125


def test_r4_markup_needs_a_cost_for_that_cycle() -> None:
    with pytest.raises(BadRequest) as error:
        price(billing_cycle="annual", price=None, markup_percent="10")
    assert error.value.field == "markup_percent"


def test_r2_price_for_a_cycle_the_product_lacks_is_refused() -> None:
    with pytest.raises(BadRequest) as error:
        domain.new_price(
            EUR_LIST,
            product(billing_cycles=["monthly"]),
            billing_cycle="annual",
            price="1.00",
            markup_percent=None,
            updated_at=NOW,
            previous=None,
        )
    assert error.value.field == "billing_cycle"


@given(
    cost=st.decimals(min_value=0, max_value=10_000, places=2),
    markup=st.decimals(min_value=0, max_value=1000, places=2),
)
def test_r4_markup_price_is_never_below_cost_and_has_two_decimals(
    cost: Decimal, markup: Decimal
) -> None:
    entry = Price("tnt_1", "prl_1", "prd_1", "monthly", NOW, None, markup)
    sell = domain.effective_price(entry, product(costs={"monthly": cost}), "EUR")
    assert sell >= cost
    assert sell.as_tuple().exponent == -2


def test_r4_inherited_product_keeps_provider_fields() -> None:
    copy = product(origin_tenant_id="tnt_p", origin_product_id="prd_p")
    renamed = domain.update_product(
        copy, {"name": "E3 for SMB", "visible": False, "categories": ["office"]}
    )
    assert (renamed.name, renamed.visible, renamed.categories) == ("E3 for SMB", False, ["office"])
    for name, value in [
        ("sku", "X"),
        ("type", "usage"),
        ("billing_cycles", ["monthly"]),
        ("unit", "user"),
        ("costs", {}),
    ]:
        with pytest.raises(Conflict) as error:
            domain.update_product(copy, {name: value})
        assert (error.value.code, error.value.field) == ("inherited_product", name)


def test_r3_copy_for_child_keeps_configuration_and_takes_list_prices_as_costs() -> None:
    source = product(description="Seats", categories=["office"])
    copy = domain.copy_for_child(
        source, "tnt_c", "prd_c", {"monthly": Decimal("19.80")}, [], created_at=NOW
    )
    assert (copy.tenant_id, copy.sku, copy.type, copy.unit) == (
        "tnt_c",
        "O365-E3",
        "license",
        "seat",
    )
    assert (copy.origin_tenant_id, copy.origin_product_id) == ("tnt_1", "prd_1")
    assert copy.costs == {"monthly": Decimal("19.80")}
    assert copy.billing_cycles == ["monthly"]  # only the cycles the list prices
