"""R6 at scale on moto: one price change fanned out to 1,000 tenant resellers, a page of at most
``Propagator.PAGE`` tenants per queue message (per Lambda invocation), every tenant checked.

The tenants are written straight to the tables, in batches, as ``POST /tenants`` would leave
them (``local/bulk.py``): making 1,000 through the API would only slow the test down."""

from __future__ import annotations

from collections import Counter
from decimal import Decimal

import pytest

from functions import composition
from functions.core.auth import Principal
from functions.core.ids import derived_id
from functions.pricelist.schemas import SetPrice
from functions.pricelist.services import Propagator
from local.bulk import provider, tenant_resellers
from local.runner import Runner

TENANTS = 1_000


@pytest.fixture
def cloud(aws: None) -> tuple[Principal, str, str]:
    """Cloud (a root) with E3 in its Resell list at 20.00 a month."""
    return provider(Decimal("20.00"))


def test_r6_one_change_reaches_1000_tenants_a_page_of_at_most_100_per_invocation(
    cloud: tuple[Principal, str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    admin, e3_id, price_list_id = cloud
    assert admin.tenant_id is not None
    made = tenant_resellers(admin.tenant_id, e3_id, price_list_id, TENANTS, Decimal("20.00"))
    children = [tenant.id for tenant, _ in made]
    runner = Runner()
    runner.drain()

    pages: Counter[int] = Counter()
    real = Propagator.propagate_page

    def counted(self: Propagator, change: object) -> int:
        written = real(self, change)  # type: ignore[arg-type]
        pages[written] += 1
        return written

    monkeypatch.setattr(Propagator, "propagate_page", counted)
    composition.container().catalogue.set_price(
        admin, price_list_id, SetPrice(product_id=e3_id, billing_cycle="monthly", price="23.00")
    )
    runner.drain()

    assert sum(written * n for written, n in pages.items()) == TENANTS  # each copy written once
    assert max(pages) <= Propagator.PAGE  # no invocation handled more than a page
    # ten full pages (and, when the last page ends exactly at a page's size, an empty one)
    assert sum(n for written, n in pages.items() if written) == TENANTS // Propagator.PAGE
    products = composition.container().catalogue.products
    stale = [
        child
        for child in children
        if (copy := products.get(child, derived_id("prd", child, e3_id))) is None
        or copy.costs != {"monthly": Decimal("23.00")}
    ]
    assert stale == []
