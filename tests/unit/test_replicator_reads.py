"""What the replicator reads per change in a warm container (R17, R18; docs/backorder.md): the
floor is two writes and at most one read. A fake repository counts its calls; no I/O."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from typing import Any

from functions.backorder.domain import Link, ProviderProduct, Root
from functions.backorder.services import APPLIED, SKIPPED, Replicator
from functions.core.domain import Account
from tests.unit.test_backorder_domain import E3, LINK, NOW, SUB

PROVIDER = LINK.provider_tenant_id
CHILD = LINK.child_tenant_id


class FakeRepository:
    """Back ordering's repository in memory: ``links`` answers ``link()``; every call counted."""

    def __init__(self, links: dict[str, Link | Root | None]) -> None:
        self.links = links
        self.calls: list[str] = []
        self.mirrors: dict[str, Any] = {}
        self.orders: dict[str, Any] = {}

    def link(self, tenant_id: str) -> Link | Root | None:
        self.calls.append("link")
        return self.links.get(tenant_id)

    def account(self, tenant_id: str, account_id: str) -> Account | None:
        self.calls.append("account")
        return Account(
            id=account_id,
            tenant_id=tenant_id,
            name="Cloud Customer X",
            kind="customer",
            currency="EUR",
            created_at=NOW,
        )

    def provider_product(self, tenant_id: str, product_id: str) -> ProviderProduct:
        self.calls.append("product")
        return E3

    def price(self, link: Link, product_id: str, cycle: str) -> Decimal:
        self.calls.append("price")
        return Decimal("18.00")

    def upsert_mirror(self, mirror: Any, *, over: int | None = None) -> bool:
        self.calls.append("upsert_mirror")
        self.mirrors[mirror.id] = mirror
        return True

    def put_order_once(self, order: Any) -> bool:
        self.calls.append("put_order_once")
        self.orders.setdefault(order.id, order)
        return True


def reads(repository: FakeRepository) -> list[str]:
    return [c for c in repository.calls if c not in ("upsert_mirror", "put_order_once")]


def test_r17_a_root_providers_own_records_cost_one_read_per_container() -> None:
    """The mirrors written in a root provider reach the same handler: after the first, the
    root is known and they cost nothing."""
    repository = FakeRepository({PROVIDER: Root(PROVIDER)})
    replicator = Replicator(repository)  # type: ignore[arg-type]
    echo = replace(SUB, tenant_id=PROVIDER, id="sub_mirror")
    assert [replicator.replicate(replace(echo, version=v)) for v in range(1, 51)] == [SKIPPED] * 50
    assert repository.calls == ["link"]


def test_r11_a_tenant_without_an_active_link_is_read_again_each_time() -> None:
    """Not cached: back ordering may be activated (R11) or the reseller account appear at any
    moment, and the next change must see it."""
    repository = FakeRepository({CHILD: replace(LINK, active=False)})
    replicator = Replicator(repository)  # type: ignore[arg-type]
    assert replicator.replicate(SUB) == SKIPPED
    assert replicator.replicate(SUB) == SKIPPED
    repository.links[CHILD] = None  # e.g. a tenant being created
    assert replicator.replicate(SUB) == SKIPPED
    repository.links[CHILD] = LINK  # activated
    assert replicator.replicate(replace(SUB, version=4)) == APPLIED
    assert repository.calls.count("link") == 4
    assert len(repository.orders) == 1


def test_r18_a_warm_container_mirrors_a_known_customers_change_with_writes_only() -> None:
    repository = FakeRepository({CHILD: LINK})
    replicator = Replicator(repository)  # type: ignore[arg-type]
    assert replicator.replicate(SUB) == APPLIED
    first = len(reads(repository))
    assert first > 0  # the link, the account, the product and the price, once
    for version in range(4, 54):
        assert replicator.replicate(replace(SUB, version=version, quantity=version)) == APPLIED
    assert len(reads(repository)) == first
    assert repository.calls.count("upsert_mirror") == repository.calls.count("put_order_once")
    assert len(repository.orders) == 51
