"""Price-list propagation rules (R4-R7) of the catalogue domain, with no I/O: what one child's
copy becomes after its provider's change, in ``full`` and ``partial`` mode, out of order."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from functions.core.errors import Conflict
from functions.pricelist import domain
from functions.pricelist.domain import FULL, PARTIAL, Offered, Price, Product, Propagation

NOW = "2026-11-22T10:00:00Z"
LATER = "2026-11-23T10:00:00Z"

SOURCE = Product(
    id="prd_e3",
    tenant_id="tnt_cloud",
    sku="E3",
    name="Office 365 E3",
    type="license",
    billing_cycles=["monthly", "annual"],
    unit="seat",
    created_at=NOW,
    description="Office apps",
    categories=["productivity"],
    costs={"monthly": Decimal("15.00"), "annual": Decimal("170.00")},
    version=3,
)


def entry(cycle: str, *, price: str | None = None, markup: str | None = None, v: int = 1) -> Price:
    return Price(
        tenant_id="tnt_cloud",
        price_list_id="prl_resell",
        product_id="prd_e3",
        billing_cycle=cycle,
        updated_at=NOW,
        price=Decimal(price) if price else None,
        markup_percent=Decimal(markup) if markup else None,
        version=v,
    )


def offered(product: Product = SOURCE, **entries: Price) -> Offered:
    return Offered(product, entries or {"monthly": entry("monthly", price="20.00")}, "EUR")


def derive(
    offer: Offered, copy: Product | None, propagation: Propagation = Propagation()
) -> Product | None:
    return domain.rederive_copy(
        offer,
        copy,
        child_tenant_id="tnt_resell",
        copy_id="prd_copy",
        addon_for=[],
        propagation=propagation,
        now=LATER,
    )


def first_copy() -> Product:
    copy = derive(offered(), None)
    assert copy is not None
    return replace(copy, version=1)


def test_r5_a_product_new_to_the_list_is_copied_with_the_lists_prices_as_costs() -> None:
    copy = first_copy()
    assert (copy.tenant_id, copy.origin_tenant_id, copy.origin_product_id) == (
        "tnt_resell",
        "tnt_cloud",
        "prd_e3",
    )
    assert copy.costs == {"monthly": Decimal("20.00")}
    assert copy.billing_cycles == ["monthly"]  # only the cycles the list prices
    assert copy.source_version == 3 + 1


def test_r5_partial_mode_copies_no_new_product() -> None:
    assert derive(offered(), None, Propagation(mode=PARTIAL)) is None


def test_r5_r7_a_markup_entry_follows_the_providers_cost_and_a_cost_change_is_dated() -> None:
    copy = replace(first_copy(), costs_changed_at=NOW)
    marked_up = offered(
        replace(SOURCE, costs={"monthly": Decimal("16.00")}, version=4),
        monthly=entry("monthly", markup="25", v=2),
    )
    updated = derive(marked_up, copy)
    assert updated is not None and updated.costs == {"monthly": Decimal("20.00")}
    assert updated.costs_changed_at == NOW  # the same cost (16 + 25%): its date stays
    cheaper = offered(
        replace(SOURCE, costs={"monthly": Decimal("12.00")}, version=5),
        monthly=entry("monthly", markup="25", v=2),
    )
    again = derive(cheaper, updated)
    assert again is not None and again.costs == {"monthly": Decimal("15.00")}
    assert again.costs_changed_at == LATER  # R7: the change is dated


def test_r5_full_mode_follows_cycles_description_and_categories_not_the_name() -> None:
    renamed = replace(copy := first_copy(), name="Our E3", visible=False)
    provider = replace(SOURCE, name="Microsoft 365 E3", description="New", categories=[], version=9)
    both = offered(
        provider, monthly=entry("monthly", price="21.00"), annual=entry("annual", price="230.00")
    )
    updated = derive(both, renamed)
    assert updated is not None
    assert updated.billing_cycles == ["monthly", "annual"]  # a cycle added (R5)
    assert updated.costs == {"monthly": Decimal("21.00"), "annual": Decimal("230.00")}
    assert (updated.description, updated.categories) == ("New", [])
    assert (updated.name, updated.visible) == ("Our E3", False)  # the tenant's own (R4)
    named = derive(both, renamed, Propagation(overwrite_names=True))
    assert named is not None and named.name == "Microsoft 365 E3"
    assert copy.id == updated.id


def test_r5_partial_mode_changes_only_the_costs_of_the_cycles_it_has() -> None:
    copy = first_copy()
    provider = replace(SOURCE, name="Renamed", description="New", version=9)
    both = offered(
        provider, monthly=entry("monthly", price="22.00"), annual=entry("annual", price="230.00")
    )
    updated = derive(both, copy, Propagation(mode=PARTIAL, overwrite_names=True))
    assert updated is not None
    assert updated.costs == {"monthly": Decimal("22.00")}
    assert (updated.billing_cycles, updated.name, updated.description) == (
        ["monthly"],
        copy.name,
        copy.description,
    )


def test_r5_a_discontinued_product_stops_being_sold_existing_subscriptions_go_on() -> None:
    copy = first_copy()
    gone = offered(replace(SOURCE, status=domain.DISCONTINUED, version=4))
    updated = derive(gone, copy)
    assert updated is not None and updated.status == domain.DISCONTINUED
    assert not updated.sellable
    assert updated.costs == copy.costs  # what running subscriptions cost is kept
    assert derive(gone, None) is None  # never copied once discontinued


def test_r6_an_older_or_the_same_offer_never_overwrites_a_newer_one() -> None:
    copy = first_copy()
    newer = derive(offered(replace(SOURCE, version=7)), copy)
    assert newer is not None
    assert derive(offered(replace(SOURCE, version=7)), newer) is None  # duplicate
    assert derive(offered(replace(SOURCE, version=5)), newer) is None  # late


@given(
    st.lists(st.tuples(st.integers(0, 3), st.integers(0, 3)), min_size=1, max_size=12),
    st.randoms(use_true_random=False),
)
def test_r6_any_delivery_order_ends_at_the_latest_offer(
    steps: list[tuple[int, int]], random: object
) -> None:
    """States of the provider (product version and the monthly entry's version only grow); the
    copy, fed those states in any order, each possibly twice, ends at the last one's costs."""
    states = []
    product_v, entry_v = 1, 1
    for index, (dp, de) in enumerate(steps):
        product_v, entry_v = product_v + dp, entry_v + de + (1 if dp == de == 0 else 0)
        price = f"{20 + index}.00"
        states.append(
            offered(
                replace(SOURCE, version=product_v), monthly=entry("monthly", price=price, v=entry_v)
            )
        )
    deliveries = states + states[: len(states) // 2]
    random.shuffle(deliveries)  # type: ignore[attr-defined]
    copy: Product | None = None
    for state in deliveries:
        updated = derive(state, copy)
        if updated is not None:
            copy = replace(updated, version=(copy.version or 0) + 1 if copy else 1)
    assert copy is not None
    assert copy.costs == states[-1].costs()
    assert copy.source_version == states[-1].version


def test_r5_margin_alert_only_for_fixed_prices_below_cost() -> None:
    copy = replace(first_copy(), costs={"monthly": Decimal("25.00"), "annual": Decimal("250.00")})
    mine = [
        replace(entry("monthly", price="21.00"), tenant_id="tnt_resell", price_list_id="prl_a"),
        replace(entry("monthly", price="30.00"), tenant_id="tnt_resell", price_list_id="prl_b"),
        replace(entry("annual", markup="0"), tenant_id="tnt_resell", price_list_id="prl_a"),
    ]
    [alert] = domain.margin_alerts(copy, mine)
    assert (alert.price_list_id, alert.billing_cycle, alert.price, alert.cost) == (
        "prl_a",
        "monthly",
        Decimal("21.00"),
        Decimal("25.00"),
    )


def test_r6_only_offer_fields_flow_on() -> None:
    copy = first_copy()
    assert domain.offer_changed(None, copy)
    assert not domain.offer_changed(copy, replace(copy, visible=False, version=2))
    assert domain.offer_changed(copy, replace(copy, costs={"monthly": Decimal("1.00")}))
    assert domain.offer_changed(copy, replace(copy, status=domain.DISCONTINUED))


def test_r4_a_copy_its_provider_offers_cannot_be_deleted_its_own_can() -> None:
    copy = first_copy()
    with pytest.raises(Conflict) as refused:
        domain.retire_product(copy)
    assert refused.value.code == "offered_by_provider"
    assert domain.retire_product(replace(copy, status=domain.DISCONTINUED)).visible is False
    own = replace(SOURCE, tenant_id="tnt_resell")
    assert domain.retire_product(own).status == domain.DISCONTINUED


def test_r4_no_new_products_on_an_inherited_one() -> None:
    with pytest.raises(Conflict) as refused:
        domain.check_addon_bases([first_copy()])
    assert (refused.value.code, refused.value.field) == ("inherited_product", "addon_for")
    domain.check_addon_bases([SOURCE])  # its own product: fine


def test_r4_a_copys_status_follows_its_provider() -> None:
    with pytest.raises(Conflict) as refused:
        domain.update_product(first_copy(), {"status": "discontinued"})
    assert refused.value.field == "status"
    assert Propagation().mode == FULL
