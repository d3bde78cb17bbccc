"""R8/R9 rules of the orders domain, with no I/O."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from functions.core.errors import BadRequest, Conflict
from functions.orders import domain
from functions.orders.domain import ProductRef, Subscription

E3 = ProductRef("prd_e3", "O365-E3", "Office 365 E3", "license", ["monthly", "annual"], [])
E5 = ProductRef("prd_e5", "O365-E5", "Office 365 E5", "license", ["monthly"], [])
TEAMS = ProductRef("prd_tp", "TEAMS-PHONE", "Teams Phone", "addon", ["monthly"], ["prd_e3"])
TODAY = date(2026, 11, 22)
NOW = "2026-11-22T10:00:00Z"


def subscribe(
    product: ProductRef = E3,
    *,
    start: date = TODAY,
    cycle: str = "monthly",
    term: str | None = None,
    price: str = "20.00",
    auto_renew: bool = True,
    parent: Subscription | None = None,
    quantity: int = 3,
) -> Subscription:
    return domain.new_subscription(
        "sub_1",
        tenant_id="tnt_1",
        account_id="acc_1",
        reseller_account_id=None,
        product=product,
        quantity=quantity,
        billing_cycle=cycle,
        term=term,
        start=start,
        today=TODAY,
        auto_renew=auto_renew,
        characteristics={"domain": "example.com"},
        currency="EUR",
        unit_price=Decimal(price),
        price_list_id="prl_1",
        parent=parent,
        now=NOW,
    )


@pytest.mark.parametrize(
    ("start", "term", "end"),
    [
        (date(2026, 1, 15), "monthly", date(2026, 2, 14)),
        (date(2026, 1, 31), "monthly", date(2026, 2, 27)),  # Feb 28 is the next term's start
        (date(2028, 1, 31), "monthly", date(2028, 2, 28)),  # leap year: next start Feb 29
        (date(2026, 12, 1), "monthly", date(2026, 12, 31)),
        (date(2026, 3, 1), "annual", date(2027, 2, 28)),
        (date(2028, 2, 29), "annual", date(2029, 2, 27)),
    ],
)
def test_r8_end_date_is_start_plus_one_term_minus_a_day(start: date, term: str, end: date) -> None:
    assert domain.term_end(start, term, 1) == end


@given(st.dates(date(2000, 1, 1), date(2090, 12, 31)), st.integers(1, 40))
def test_r8_terms_tile_without_gap_or_overlap(start: date, terms: int) -> None:
    """Each term starts the day after the previous one ends, and the anchor day never drifts."""
    for n in range(1, terms):
        next_start = domain.term_end(start, "monthly", n) + timedelta(days=1)
        assert next_start == domain.add_months(start, n)
        assert next_start.day == min(start.day, next_start.day)
        assert domain.term_end(start, "monthly", n + 1) > domain.term_end(start, "monthly", n)


def test_r8_future_start_is_inactive_then_active_on_the_day() -> None:
    sub = subscribe(start=TODAY + timedelta(days=10))
    assert sub.status == domain.INACTIVE
    assert sub.activation_date is None
    assert sub.status_on(TODAY + timedelta(days=9)) == domain.INACTIVE
    assert sub.status_on(TODAY + timedelta(days=10)) == domain.ACTIVE
    assert sub.activation_on(TODAY + timedelta(days=10)) == sub.start_date


def test_r8_immediate_start_is_active_with_activation_date() -> None:
    sub = subscribe()
    assert (sub.status, sub.activation_date, sub.end_date) == ("active", "2026-11-22", "2026-12-21")


def test_r8_without_auto_renew_it_expires_after_its_term() -> None:
    sub = subscribe(auto_renew=False)
    assert sub.status_on(date(2026, 12, 21)) == domain.ACTIVE
    assert sub.status_on(date(2026, 12, 22)) == domain.EXPIRED
    assert subscribe(auto_renew=True).status_on(date(2027, 6, 1)) == domain.ACTIVE


def test_r8_paid_means_price_above_zero() -> None:
    assert subscribe(price="0.01").paid
    assert not subscribe(price="0.00").paid


def test_r8_annual_term_may_be_billed_monthly_but_not_the_reverse() -> None:
    sub = subscribe(cycle="monthly", term="annual")
    assert (sub.term, sub.end_date) == ("annual", "2027-11-21")
    with pytest.raises(BadRequest) as error:
        subscribe(cycle="annual", term="monthly")
    assert error.value.field == "term"


def test_r1_cycle_the_product_lacks_is_refused() -> None:
    with pytest.raises(BadRequest) as error:
        subscribe(E5, cycle="annual")
    assert error.value.field == "billing_cycle"


def test_r8_addons_attach_to_compatible_base_subscriptions_only() -> None:
    base = subscribe()
    addon = subscribe(TEAMS, parent=base)
    assert addon.parent_subscription_id == base.id
    with pytest.raises(BadRequest):
        subscribe(TEAMS)  # an add-on alone
    with pytest.raises(BadRequest) as error:
        subscribe(TEAMS, parent=subscribe(E5))
    assert error.value.code == "addon_not_compatible"
    with pytest.raises(BadRequest) as error:
        subscribe(E5, parent=base)
    assert error.value.code == "not_an_addon"


def test_r9_quantity_change_order_records_old_and_new_quantity() -> None:
    sub = subscribe()
    changed = domain.change_quantity(sub, 7, TODAY, NOW)
    order = domain.order_for(
        "ord_1",
        domain.QUANTITY_CHANGE,
        changed,
        E3,
        effective=TODAY,
        now=NOW,
        created_by="u",
        previous=sub,
    )
    line = order.lines[0]
    assert (line.quantity, line.previous_quantity, line.amount) == (7, 3, Decimal("140.00"))
    assert order.total == Decimal("140.00") and order.date == "2026-11-22"
    with pytest.raises(BadRequest):
        domain.change_quantity(changed, 7, TODAY, NOW)


def test_r9_upgrade_downgrade_and_trial_to_paid() -> None:
    sub = subscribe(price="20.00")
    up, kind = domain.change_product(sub, E5, Decimal("35.00"), domain.UPGRADE, TODAY, NOW)
    assert (up.product_id, kind) == ("prd_e5", "upgrade")
    with pytest.raises(BadRequest) as error:
        domain.change_product(sub, E5, Decimal("10.00"), domain.UPGRADE, TODAY, NOW)
    assert error.value.code == "not_an_upgrade"
    down, kind = domain.change_product(up, E3, Decimal("20.00"), domain.DOWNGRADE, TODAY, NOW)
    assert (down.product_id, kind) == ("prd_e3", "downgrade")
    trial = subscribe(price="0.00")
    paid, kind = domain.change_product(trial, E5, Decimal("35.00"), domain.UPGRADE, TODAY, NOW)
    assert kind == domain.TRIAL_TO_PAID and paid.paid


def test_r8_state_machine() -> None:
    sub = subscribe()
    suspended = domain.suspend(sub, TODAY, NOW)
    assert suspended.status == "suspended"
    with pytest.raises(Conflict):
        domain.suspend(suspended, TODAY, NOW)
    with pytest.raises(Conflict):
        domain.change_quantity(suspended, 9, TODAY, NOW)
    resumed = domain.resume(suspended, TODAY, NOW)
    assert resumed.status == "active"
    cancelled = domain.cancel(resumed, TODAY, NOW)
    assert (cancelled.status, cancelled.cancellation_date) == ("cancelled", "2026-11-22")
    for action in (domain.suspend, domain.resume, domain.renew, domain.cancel):
        with pytest.raises(Conflict):
            action(cancelled, TODAY, NOW)


def test_r8_r9_cancelling_a_base_cancels_its_live_addons_not_the_ended_ones() -> None:
    base = subscribe(start=TODAY - timedelta(days=30))
    live = replace(subscribe(TEAMS, parent=base, start=TODAY - timedelta(days=30)), id="sub_a")
    later = replace(subscribe(TEAMS, parent=base, start=TODAY + timedelta(days=5)), id="sub_b")
    suspended = domain.suspend(live, TODAY - timedelta(days=2), NOW)
    paused = replace(suspended, id="sub_c", history=[domain.history_entry(suspended, "2026-11-20")])
    gone = replace(domain.cancel(live, TODAY - timedelta(days=3), NOW), id="sub_d")
    cancelled, addons = domain.cancel_with_addons(
        base, [live, later, paused, gone], TODAY - timedelta(days=4), TODAY, NOW
    )
    assert (cancelled.status, cancelled.cancellation_date) == ("cancelled", "2026-11-18")
    assert [(a.id, a.status) for a in addons] == [
        ("sub_a", "cancelled"),
        ("sub_b", "cancelled"),
        ("sub_c", "cancelled"),
    ]
    # each from the base's day, or its own last change when that is later (never before it)
    assert [a.cancellation_date for a in addons] == ["2026-11-18", "2026-11-27", "2026-11-20"]


def test_r9_an_addon_cancelled_alone_takes_nothing_with_it() -> None:
    base = subscribe()
    addon = subscribe(TEAMS, parent=base)
    cancelled, others = domain.cancel_with_addons(addon, [base], TODAY, TODAY, NOW)
    assert cancelled.status == "cancelled"
    assert others == []


def test_r8_renew_adds_one_term_from_the_anchor_day() -> None:
    sub = subscribe(start=date(2026, 1, 31), auto_renew=False)
    renewed = domain.renew(sub, date(2026, 2, 10), NOW)
    assert (renewed.terms, renewed.end_date) == (2, "2026-03-30")


def test_r15_mirrors_refuse_every_action() -> None:
    from dataclasses import replace

    mirror = replace(subscribe(), mirrored=True)
    for action in (domain.suspend, domain.renew, domain.cancel):
        with pytest.raises(Conflict) as error:
            action(mirror, TODAY, NOW)
        assert error.value.code == "locked_by_reseller"
    with pytest.raises(Conflict):
        domain.change_quantity(mirror, 9, TODAY, NOW)


def test_r9_cancel_and_suspend_orders_carry_no_recurring_amount() -> None:
    sub = subscribe()
    order = domain.order_for(
        "ord_1",
        domain.CANCEL,
        domain.cancel(sub, TODAY, NOW),
        E3,
        effective=TODAY,
        now=NOW,
        created_by="u",
        previous=sub,
    )
    assert order.total == Decimal("0") and order.lines[0].quantity == 3


def test_r22_history_keeps_what_billing_can_need_and_the_state_before_it() -> None:
    """A change appends to the subscription's history; entries older than ``HISTORY_DAYS``
    go, but for the last of them (the state the window starts from)."""
    entries = [
        {
            "on": on,
            "quantity": q,
            "product_id": "prd_e3",
            "origin_product_id": None,
            "status": "active",
        }
        for on, q in (("2024-01-01", 1), ("2024-06-01", 2), ("2025-09-01", 3))
    ]
    sub = replace(subscribe(), history=entries, quantity=4)
    order = domain.order_for(
        "ord_1",
        domain.QUANTITY_CHANGE,
        sub,
        E3,
        effective=date(2026, 3, 1),
        now=NOW,
        created_by="u",
    )
    kept = domain.recorded(sub, order).history
    assert [(e["on"], e["quantity"]) for e in kept] == [
        ("2024-06-01", 2),
        ("2025-09-01", 3),
        ("2026-03-01", 4),
    ]


def test_r22_changes_on_one_day_keep_one_history_entry_the_days_last_state() -> None:
    """Billing prorates by day and bills a day's last state, so ten changes in a day are one
    entry (issue 12: the item a mirror update writes stays small); the next day adds one."""
    sub = subscribe()
    for quantity, day in ((4, date(2026, 3, 1)), (6, date(2026, 3, 1)), (2, date(2026, 3, 2))):
        changed = replace(sub, quantity=quantity)
        order = domain.order_for(
            f"ord_{quantity}",
            domain.QUANTITY_CHANGE,
            changed,
            E3,
            effective=day,
            now=NOW,
            created_by="u",
        )
        sub = domain.recorded(changed, order)
    assert [(e["on"], e["quantity"]) for e in sub.history][-2:] == [
        ("2026-03-01", 6),
        ("2026-03-02", 2),
    ]
    assert [e["on"] for e in sub.history].count("2026-03-01") == 1
