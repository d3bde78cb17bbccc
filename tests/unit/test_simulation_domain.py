"""R34: a proposed price-list change simulated down three tiers, with no I/O, against figures
computed by hand. The rules are propagation's own (R5, R6: ``rederive_copy``, ``margin_alerts``,
``effective_price``); these tests pin what the simulation reports of them.

The world (SPEC §1's demo tiers):
- Cloud (EUR) sells E3 (its cost 15.00 monthly, 170.00 annual) through "Resell": monthly a
  fixed 20.00, annual a markup of 10 % (187.00).
- Cloud Resell has the copy (costs 20.00 / 187.00), a retail list (fixed 21.00 / 200.00) and
  "Resell-2" (markup 10 %: 22.00 / 205.70), which Sub Resell has.
- Sub Resell has its copy (costs 22.00 / 205.70) and a retail list (fixed 25.00 monthly).
- Cloud bills Cloud Resell for mirrors: 3 + 4 seats monthly, 2 seats annual; Cloud Resell
  bills Sub Resell for 4 seats monthly.
"""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import pytest

from functions.core.domain import Tenant
from functions.core.errors import BadRequest
from functions.pricelist import domain
from functions.pricelist.domain import (
    AlertChange,
    ChildBook,
    CostChange,
    InvoiceChange,
    MarginAlert,
    OfferChange,
    Price,
    PriceList,
    PriceMove,
    Product,
    Resold,
)

NOW = "2026-12-05T10:00:00Z"
D = Decimal


def tenant(tid: str, parent: str | None, **kw: object) -> Tenant:
    return Tenant(
        id=tid,
        name=tid,
        parent_id=parent,
        currency="EUR",
        country="DE",
        time_zone="Europe/Berlin",
        billing_day=1,
        created_at=NOW,
        **kw,  # type: ignore[arg-type]
    )


def product(pid: str, tid: str, costs: dict[str, str], **kw: object) -> Product:
    return Product(
        id=pid,
        tenant_id=tid,
        sku="E3",
        name="Office 365 E3",
        type="license",
        billing_cycles=list(costs),
        unit="seat",
        created_at=NOW,
        costs={c: D(a) for c, a in costs.items()},
        version=1,
        **kw,  # type: ignore[arg-type]
    )


def price(
    tid: str, list_id: str, pid: str, cycle: str, *, fixed: str | None = None, markup: str = ""
) -> Price:
    return Price(
        tenant_id=tid,
        price_list_id=list_id,
        product_id=pid,
        billing_cycle=cycle,
        updated_at=NOW,
        price=D(fixed) if fixed else None,
        markup_percent=D(markup) if markup else None,
        version=1,
    )


def plist(tid: str, list_id: str, currency: str = "EUR") -> PriceList:
    return PriceList(id=list_id, tenant_id=tid, name=list_id, currency=currency, created_at=NOW)


CLOUD = tenant("tnt_cloud", None)
RESELL = tenant("tnt_resell", "tnt_cloud")
SUB = tenant("tnt_sub", "tnt_resell")

E3 = product("prd_e3", CLOUD.id, {"monthly": "15.00", "annual": "170.00"})
RESELL_LIST = plist(CLOUD.id, "prl_resell")
CURRENT = {
    ("prd_e3", "monthly"): price(CLOUD.id, "prl_resell", "prd_e3", "monthly", fixed="20.00"),
    ("prd_e3", "annual"): price(CLOUD.id, "prl_resell", "prd_e3", "annual", markup="10"),
}

R_E3 = product(
    "prd_r_e3",
    RESELL.id,
    {"monthly": "20.00", "annual": "187.00"},
    origin_tenant_id=CLOUD.id,
    origin_product_id="prd_e3",
    source_version=3,
)
R_RETAIL, R_RESELL2 = plist(RESELL.id, "prl_r_retail"), plist(RESELL.id, "prl_r_resell2")
R_ENTRIES = {
    ("prl_r_retail", "prd_r_e3"): {
        "monthly": price(RESELL.id, "prl_r_retail", "prd_r_e3", "monthly", fixed="21.00"),
        "annual": price(RESELL.id, "prl_r_retail", "prd_r_e3", "annual", fixed="200.00"),
    },
    ("prl_r_resell2", "prd_r_e3"): {
        "monthly": price(RESELL.id, "prl_r_resell2", "prd_r_e3", "monthly", markup="10"),
        "annual": price(RESELL.id, "prl_r_resell2", "prd_r_e3", "annual", markup="10"),
    },
}
TO_RESELL = [
    Resold("sub_1", "acc_z", "prd_e3", "monthly", 3, "prl_resell"),
    Resold("sub_2", "acc_x", "prd_e3", "monthly", 4, "prl_resell"),
    Resold("sub_3", "acc_z", "prd_e3", "annual", 2, "prl_resell"),
    Resold("sub_other_list", "acc_z", "prd_e3", "monthly", 9, "prl_other"),
    Resold("sub_other_product", "acc_z", "prd_bp", "monthly", 9, "prl_resell"),
]
R_BOOK = ChildBook(
    tenant=RESELL,
    copies={"prd_r_e3": R_E3},
    lists=[R_RETAIL, R_RESELL2],
    entries=R_ENTRIES,
    resold=TO_RESELL,
)

S_E3 = product(
    "prd_s_e3",
    SUB.id,
    {"monthly": "22.00", "annual": "205.70"},
    origin_tenant_id=RESELL.id,
    origin_product_id="prd_r_e3",
    source_version=4,
)
S_RETAIL = plist(SUB.id, "prl_s_retail")
S_BOOK = ChildBook(
    tenant=SUB,
    copies={"prd_s_e3": S_E3},
    lists=[S_RETAIL],
    entries={
        ("prl_s_retail", "prd_s_e3"): {
            "monthly": price(SUB.id, "prl_s_retail", "prd_s_e3", "monthly", fixed="25.00")
        }
    },
    resold=[Resold("sub_4", "acc_c", "prd_r_e3", "monthly", 4, "prl_r_resell2")],
)


def propose(
    *bodies: dict[str, str | None], owner_fixed: list[Price] | None = None
) -> tuple[domain.Forecast, list[OfferChange]]:
    entries = domain.proposed_entries(
        RESELL_LIST, {"prd_e3": E3}, list(bodies), dict(CURRENT), updated_at=NOW
    )
    return domain.simulate_list(
        CLOUD,
        RESELL_LIST,
        {"prd_e3": E3},
        dict(CURRENT),
        entries,
        {"prd_e3": owner_fixed or [CURRENT[("prd_e3", "monthly")]]},
    )


RAISE = (
    {"product_id": "prd_e3", "billing_cycle": "monthly", "price": "25.00"},
    {"product_id": "prd_e3", "billing_cycle": "annual", "markup_percent": "20"},
)


def test_r34_the_lists_own_prices_move_as_proposed() -> None:
    """Tier 0: monthly 20.00 → 25.00 (fixed); annual 170.00 × 1.10 = 187.00 → × 1.20 = 204.00."""
    owner, changes = propose(*RAISE)
    assert owner.moved_prices == [
        PriceMove("prl_resell", "prd_e3", "monthly", "EUR", D("20.00"), D("25.00")),
        PriceMove("prl_resell", "prd_e3", "annual", "EUR", D("187.00"), D("204.00")),
    ]
    assert owner.alerts_raised == [] and owner.alerts_cleared == []  # 25.00 ≥ cost 15.00
    [change] = changes
    assert change.before.costs() == {"monthly": D("20.00"), "annual": D("187.00")}
    assert change.after.costs() == {"monthly": D("25.00"), "annual": D("204.00")}


def test_r34_r5_a_fixed_price_proposed_below_the_owners_cost_raises_its_alert() -> None:
    owner, _ = propose({"product_id": "prd_e3", "billing_cycle": "monthly", "price": "14.00"})
    assert owner.alerts_raised == [
        AlertChange("prd_e3", "prl_resell", "monthly", D("14.00"), D("15.00"))
    ]
    flagged = replace(E3, margin_alerts=[MarginAlert("prl_resell", "monthly", D("14"), D("15"))])
    entries = domain.proposed_entries(
        RESELL_LIST, {"prd_e3": flagged}, list(RAISE[:1]), dict(CURRENT), updated_at=NOW
    )
    owner, _ = domain.simulate_list(
        CLOUD, RESELL_LIST, {"prd_e3": flagged}, dict(CURRENT), entries, {"prd_e3": []}
    )
    assert owner.alerts_cleared == [
        AlertChange("prd_e3", "prl_resell", "monthly", D("14"), D("15"))
    ]


def test_r34_r5_tier_1_new_costs_moved_markups_alerts_and_next_invoice() -> None:
    """Cloud Resell: costs 20.00 → 25.00 and 187.00 → 204.00; its Resell-2 markups follow
    (22.00 → 27.50, 205.70 → 224.40); its fixed retail 21.00 and 200.00 fall below the new
    costs (two alerts); Cloud's next invoice to it: 3 × 5.00 + 4 × 5.00 + 2 × 17.00 = 69.00
    (the subscriptions of another list or product do not move)."""
    _, changes = propose(*RAISE)
    forecast = domain.simulate_child(changes, R_BOOK, copy_ids={"prd_e3": "prd_r_e3"}, now=NOW)
    assert forecast is not None
    assert forecast.copies == [
        CostChange(
            "prd_r_e3",
            "prd_e3",
            "E3",
            "updated",
            {"monthly": D("20.00"), "annual": D("187.00")},
            {"monthly": D("25.00"), "annual": D("204.00")},
        )
    ]
    assert forecast.moved_prices == [
        PriceMove("prl_r_resell2", "prd_r_e3", "annual", "EUR", D("205.70"), D("224.40")),
        PriceMove("prl_r_resell2", "prd_r_e3", "monthly", "EUR", D("22.00"), D("27.50")),
    ]
    assert forecast.alerts_raised == [
        AlertChange("prd_r_e3", "prl_r_retail", "annual", D("200.00"), D("204.00")),
        AlertChange("prd_r_e3", "prl_r_retail", "monthly", D("21.00"), D("25.00")),
    ]
    assert forecast.alerts_cleared == []
    assert forecast.invoice == [
        InvoiceChange("sub_1", "acc_z", "prd_e3", "monthly", 3, D("20.00"), D("25.00"), D("15.00")),
        InvoiceChange("sub_2", "acc_x", "prd_e3", "monthly", 4, D("20.00"), D("25.00"), D("20.00")),
        InvoiceChange(
            "sub_3", "acc_z", "prd_e3", "annual", 2, D("187.00"), D("204.00"), D("34.00")
        ),
    ]
    assert (forecast.invoice_change, forecast.invoice_currency) == (D("69.00"), "EUR")
    # R6: both of its lists holding the copy now offer it otherwise
    assert [c.price_list_id for c in forecast.onward] == ["prl_r_retail", "prl_r_resell2"]
    resell2 = forecast.onward[1]
    assert resell2.before.costs() == {"monthly": D("22.00"), "annual": D("205.70")}
    assert resell2.after.costs() == {"monthly": D("27.50"), "annual": D("224.40")}


def test_r34_r6_tier_2_follows_its_providers_moved_markup() -> None:
    """Sub Resell: cost 22.00 → 27.50 (and 205.70 → 224.40); its fixed 25.00 falls below
    27.50; Cloud Resell's next invoice to it: 4 × 5.50 = 22.00."""
    _, changes = propose(*RAISE)
    tier1 = domain.simulate_child(changes, R_BOOK, copy_ids={"prd_e3": "prd_r_e3"}, now=NOW)
    assert tier1 is not None
    onward = [c for c in tier1.onward if c.price_list_id == "prl_r_resell2"]
    forecast = domain.simulate_child(onward, S_BOOK, copy_ids={"prd_r_e3": "prd_s_e3"}, now=NOW)
    assert forecast is not None
    assert [(c.costs_before, c.costs_after) for c in forecast.copies] == [
        (
            {"monthly": D("22.00"), "annual": D("205.70")},
            {"monthly": D("27.50"), "annual": D("224.40")},
        )
    ]
    assert forecast.moved_prices == []  # fixed prices never move (R5)
    assert forecast.alerts_raised == [
        AlertChange("prd_s_e3", "prl_s_retail", "monthly", D("25.00"), D("27.50"))
    ]
    assert [(i.subscription_id, i.change) for i in forecast.invoice] == [("sub_4", D("22.00"))]
    assert forecast.invoice_change == D("22.00")
    assert [c.price_list_id for c in forecast.onward] == ["prl_s_retail"]  # R6: on down


def test_r34_r5_an_alert_that_would_clear() -> None:
    """Cloud Resell's retail 21.00 is flagged under a cost of 25.00; back to 20.00 clears it."""
    flagged = replace(
        R_E3,
        costs={"monthly": D("25.00"), "annual": D("187.00")},
        margin_alerts=[MarginAlert("prl_r_retail", "monthly", D("21.00"), D("25.00"))],
    )
    current = dict(CURRENT)
    current[("prd_e3", "monthly")] = replace(current[("prd_e3", "monthly")], price=D("25.00"))
    entries = domain.proposed_entries(
        RESELL_LIST, {"prd_e3": E3}, [{**RAISE[0], "price": "20.00"}], current, updated_at=NOW
    )
    _, changes = domain.simulate_list(CLOUD, RESELL_LIST, {"prd_e3": E3}, current, entries, {})
    book = replace(R_BOOK, copies={"prd_r_e3": flagged})
    forecast = domain.simulate_child(changes, book, copy_ids={"prd_e3": "prd_r_e3"}, now=NOW)
    assert forecast is not None
    assert forecast.alerts_raised == []
    assert forecast.alerts_cleared == [
        AlertChange("prd_r_e3", "prl_r_retail", "monthly", D("21.00"), D("25.00"))
    ]
    assert forecast.invoice_change == D("-35.00")  # 7 seats × −5.00


def test_r34_r5_partial_mode_takes_the_costs_of_the_cycles_it_has() -> None:
    monthly_only = replace(R_E3, costs={"monthly": D("20.00")}, billing_cycles=["monthly"])
    book = replace(
        R_BOOK, tenant=replace(RESELL, propagation="partial"), copies={"prd_r_e3": monthly_only}
    )
    _, changes = propose(*RAISE)
    forecast = domain.simulate_child(changes, book, copy_ids={"prd_e3": "prd_r_e3"}, now=NOW)
    assert forecast is not None
    assert [(c.costs_before, c.costs_after) for c in forecast.copies] == [
        ({"monthly": D("20.00")}, {"monthly": D("25.00")})
    ]


def test_r34_r5_a_new_product_is_copied_in_full_mode_only() -> None:
    bp = product("prd_bp", CLOUD.id, {"monthly": "30.00"})
    entries = domain.proposed_entries(
        RESELL_LIST,
        {"prd_bp": bp},
        [{"product_id": "prd_bp", "billing_cycle": "monthly", "price": "35.00"}],
        {},
        updated_at=NOW,
    )
    _, changes = domain.simulate_list(CLOUD, RESELL_LIST, {"prd_bp": bp}, {}, entries, {})
    book = replace(R_BOOK, copies={})
    forecast = domain.simulate_child(changes, book, copy_ids={"prd_bp": "prd_r_bp"}, now=NOW)
    assert forecast is not None
    assert forecast.copies == [
        CostChange("prd_r_bp", "prd_bp", "E3", "new", {}, {"monthly": D("35.00")})
    ]
    assert forecast.onward == [] and forecast.invoice == []
    partial = replace(book, tenant=replace(RESELL, propagation="partial"))
    forecast = domain.simulate_child(changes, partial, copy_ids={"prd_bp": "prd_r_bp"}, now=NOW)
    assert forecast is not None and forecast.copies == []


@pytest.mark.parametrize(
    "child", [replace(RESELL, status="suspended"), replace(RESELL, parent_id="tnt_else")]
)
def test_r34_r5_propagation_skips_an_inactive_or_foreign_child(child: Tenant) -> None:
    _, changes = propose(*RAISE)
    book = replace(R_BOOK, tenant=child)
    assert domain.simulate_child(changes, book, copy_ids={"prd_e3": "prd_r_e3"}, now=NOW) is None


def test_r34_nothing_changes_when_the_proposal_is_the_current_price() -> None:
    _, changes = propose({"product_id": "prd_e3", "billing_cycle": "monthly", "price": "20.00"})
    forecast = domain.simulate_child(changes, R_BOOK, copy_ids={"prd_e3": "prd_r_e3"}, now=NOW)
    assert forecast is not None
    assert (forecast.copies, forecast.moved_prices, forecast.invoice) == ([], [], [])
    assert forecast.alerts_raised == [] and forecast.onward == []


@pytest.mark.parametrize(
    "bodies,field,code",
    [
        (
            [RAISE[0], {"product_id": "prd_nope", "billing_cycle": "monthly", "price": "1.00"}],
            "entries.1.product_id",
            "unknown_product",
        ),
        ([RAISE[0], RAISE[0]], "entries.1.billing_cycle", "duplicate_entry"),
        ([{"product_id": "prd_e3", "billing_cycle": "monthly"}], "entries.0.price", None),
        ([{**RAISE[1], "markup_percent": "1000.01"}], "entries.0.markup_percent", "out_of_range"),
        ([{**RAISE[0], "price": "1.005"}], "entries.0.price", None),
        ([], "entries", "out_of_range"),
    ],
)
def test_r34_r29_each_entry_is_checked_as_post_prices_checks_it(
    bodies: list[dict[str, str]], field: str, code: str | None
) -> None:
    with pytest.raises(BadRequest) as refused:
        domain.proposed_entries(RESELL_LIST, {"prd_e3": E3}, bodies, dict(CURRENT), updated_at=NOW)
    assert refused.value.field == field
    if code is not None:
        assert refused.value.code == code


def test_r34_r5_with_the_overwrite_option_default_list_fixed_prices_follow_retail() -> None:
    """Cloud's "Resell" is also its default (retail) list; Cloud Resell has
    ``overwrite_sell_prices``: its default list's fixed 21.00 and 200.00 become Cloud's retail
    prices after the change, 25.00 and 204.00 (the alerts are the ones propagation computes,
    before that). Its retail list's new prices reach its own assignees (R6)."""
    _, changes = propose(*RAISE)
    child = replace(RESELL, overwrite_sell_prices=True, default_price_list_id="prl_r_retail")
    provider = replace(CLOUD, default_price_list_id="prl_resell")
    book = replace(
        R_BOOK,
        tenant=child,
        provider=provider,
        retail={"prd_e3": dict(changes[0].after.entries)},
    )
    forecast = domain.simulate_child(changes, book, copy_ids={"prd_e3": "prd_r_e3"}, now=NOW)
    assert forecast is not None
    assert forecast.moved_prices == [
        PriceMove("prl_r_retail", "prd_r_e3", "annual", "EUR", D("200.00"), D("204.00")),
        PriceMove("prl_r_retail", "prd_r_e3", "monthly", "EUR", D("21.00"), D("25.00")),
        PriceMove("prl_r_resell2", "prd_r_e3", "annual", "EUR", D("205.70"), D("224.40")),
        PriceMove("prl_r_resell2", "prd_r_e3", "monthly", "EUR", D("22.00"), D("27.50")),
    ]
    assert [(a.price_list_id, a.billing_cycle) for a in forecast.alerts_raised] == [
        ("prl_r_retail", "annual"),
        ("prl_r_retail", "monthly"),
    ]
    assert {c: e.price for c, e in forecast.overwritten["prd_r_e3"].items()} == {
        "monthly": D("25.00"),
        "annual": D("204.00"),
    }
    retail = next(c for c in forecast.onward if c.price_list_id == "prl_r_retail")
    assert retail.after.costs() == {"monthly": D("25.00"), "annual": D("204.00")}

    for without in (
        replace(book, tenant=replace(child, propagation="partial")),  # options: full mode only
        replace(book, provider=replace(provider, currency="USD")),
        replace(book, provider=replace(provider, default_price_list_id=None)),
    ):
        plain = domain.simulate_child(changes, without, copy_ids={"prd_e3": "prd_r_e3"}, now=NOW)
        assert plain is not None and plain.overwritten == {}
        assert all(m.price_list_id != "prl_r_retail" for m in plain.moved_prices)


def test_r5_retail_prices_set_fixed_prices_only() -> None:
    mine = {
        "monthly": price(RESELL.id, "prl_r_retail", "prd_r_e3", "monthly", fixed="21.00"),
        "annual": price(RESELL.id, "prl_r_retail", "prd_r_e3", "annual", markup="5"),
    }
    retail = {
        "monthly": price(CLOUD.id, "prl_resell", "prd_e3", "monthly", fixed="24.00"),
        "annual": price(CLOUD.id, "prl_resell", "prd_e3", "annual", markup="10"),
    }
    changed = domain.retail_prices(E3, retail, mine, "EUR", updated_at=NOW)
    assert {c: e.price for c, e in changed.items()} == {"monthly": D("24.00")}
    assert domain.retail_prices(E3, retail, changed, "EUR", updated_at=NOW) == {}
