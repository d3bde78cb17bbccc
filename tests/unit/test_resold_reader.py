"""R34: ``orders.services.ResoldReader``, the orders context's answer to the pricelist port
``ResoldSubscriptions``: the subscriptions a provider bills a tenant reseller for that a
price-list simulation counts — active on the day and paid (R8), of the products asked — read
page by page up to a bound; no I/O (a fake listing)."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta

from functions.core.pagination import Page
from functions.orders.domain import Subscription
from functions.orders.services import ResoldReader
from functions.pricelist.domain import Resold
from tests.unit.test_orders_domain import TODAY, subscribe


class Listing:
    """``for_reseller`` over a list, ``limit`` at a time (the cursor: an index)."""

    def __init__(self, subs: list[Subscription]) -> None:
        self.subs = subs
        self.calls: list[tuple[str, str, int]] = []

    def for_reseller(
        self, tenant_id: str, reseller_id: str, limit: int, cursor: str | None
    ) -> Page[Subscription]:
        self.calls.append((tenant_id, reseller_id, limit))
        start = int(cursor or 0)
        end = start + limit
        return Page(self.subs[start:end], str(end) if end < len(self.subs) else None)


def mirror(n: int, **changes: object) -> Subscription:
    return replace(subscribe(), id=f"sub_{n}", account_id=f"acc_{n}", **changes)  # type: ignore[arg-type]


def test_r34_r8_only_active_paid_subscriptions_of_the_products_asked() -> None:
    subs = [
        mirror(1),
        mirror(2, status="suspended"),
        mirror(3, unit_price=0),  # a trial: not paid
        mirror(4, product_id="prd_other"),
        mirror(5, status="inactive", start_date=(TODAY + timedelta(days=3)).isoformat()),
        mirror(6, quantity=7, billing_cycle="annual"),
    ]
    reader = ResoldReader(Listing(subs))  # type: ignore[arg-type]
    found, read, more = reader.resold("tnt_p", "acc_t", {"prd_e3"}, TODAY, 100)
    assert found == [
        Resold("sub_1", "acc_1", "prd_e3", "monthly", 3, "prl_1"),
        Resold("sub_6", "acc_6", "prd_e3", "annual", 7, "prl_1"),
    ]
    assert (read, more) == (6, False)


def test_r34_the_bound_stops_the_reading_and_says_so() -> None:
    listing = Listing([mirror(n) for n in range(250)])
    reader = ResoldReader(listing)  # type: ignore[arg-type]
    found, read, more = reader.resold("tnt_p", "acc_t", {"prd_e3"}, TODAY, 150)
    assert (len(found), read, more) == (150, 150, True)
    assert [limit for *_, limit in listing.calls] == [100, 50]
    found, read, more = reader.resold("tnt_p", "acc_t", {"prd_e3"}, date(2026, 11, 22), 1000)
    assert (len(found), read, more) == (250, 250, False)
