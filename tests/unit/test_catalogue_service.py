"""``CatalogueService`` on in-memory fakes (``tests/fakes.py``): products and their SKUs (R1),
price lists (R2), what a tenant may do with copied products (R4), margin alerts (R5), each
buyer's catalogue at its prices (R10), scope (R28); no moto, no AWS."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from typing import Any

import pytest

from functions.core.domain import Tenant
from functions.core.errors import BadRequest, ConcurrentUpdate, Conflict, Forbidden, NotFound
from functions.pricelist.domain import MarginAlert, Product
from functions.pricelist.schemas import CreatePriceList, CreateProduct, SetPrice, UpdateProduct
from tests.fakes import Fakes
from tests.unit.conftest_fakes import (
    ADMIN,
    CLOUD,
    CUSTOMER_X,
    CUSTOMER_Z,
    E3,
    E5,
    LITE_USER,
    RESELL_ADMIN,
    RESELL_E3,
    RETAIL,
    RIVAL,
    RIVAL_ADMIN,
    TEAMS,
    cloud,
    price,
    product,
)

BACKUP = {
    "sku": "BACKUP-1TB",
    "name": "Backup 1 TB",
    "type": "license",
    "billing_cycles": ["monthly"],
    "unit": "TB",
    "costs": {"monthly": "4.00"},
}


def nothing_written(world: Fakes) -> bool:
    return world.tables.writes == 0 and world.units.commits == 0


def shown(offers: list[Any]) -> dict[str, dict[str, str]]:
    return {offer.product.sku: offer.prices for offer in offers}


# --- products and SKUs (R1) ---------------------------------------------------------------------


def test_r1_a_new_product_holds_its_sku_and_another_with_that_sku_is_refused() -> None:
    world = cloud()
    offer = world.catalogue.create_product(ADMIN, CreateProduct.model_validate(BACKUP))
    created = offer.product
    assert (created.tenant_id, created.version, created.costs) == (CLOUD, 1, {"monthly": 4})
    assert offer.costs == {"monthly": "4.00"} and world.tables.writes == 1
    assert world.products.sku_holders(CLOUD, "BACKUP-1TB") == {created.id}
    for sku, holder in [("BACKUP-1TB", created.id), ("O365-E3", E3)]:
        body = CreateProduct.model_validate({**BACKUP, "sku": sku})
        with pytest.raises(BadRequest) as refused:
            world.catalogue.create_product(ADMIN, body)
        error = refused.value
        assert (error.code, error.field, error.details["product_id"]) == (
            "sku_taken",
            "sku",
            holder,
        )
    assert world.tables.writes == 1 and len(world.products.all(CLOUD)) == 4


def test_r1_r29_a_sku_taken_between_check_and_write_is_a_400_naming_sku(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Another request takes the SKU after the service found it free: the transaction fails
    and the client hears which product holds it (400 ``sku_taken``), not a bare 409."""
    world = cloud()
    write = world.products.create_own

    def raced(product: Product) -> None:
        world.tables.seed(replace(product, id="prd_other_request"))
        write(product)

    monkeypatch.setattr(world.products, "create_own", raced)
    with pytest.raises(BadRequest) as refused:
        world.catalogue.create_product(ADMIN, CreateProduct.model_validate(BACKUP))
    assert (refused.value.code, refused.value.details["product_id"]) == (
        "sku_taken",
        "prd_other_request",
    )
    backups = [p.id for p in world.products.all(CLOUD) if p.sku == "BACKUP-1TB"]
    assert backups == ["prd_other_request"] and world.tables.writes == 0


# --- copied products (R4) -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"sku": "E3-MINE"}, "sku"),
        ({"costs": {"monthly": "1.00"}}, "costs"),
        ({"unit": "user"}, "unit"),
    ],
)
def test_r4_a_copied_product_keeps_its_providers_fields(change: dict[str, Any], field: str) -> None:
    world = cloud()
    with pytest.raises(Conflict) as refused:
        world.catalogue.update_product(
            RESELL_ADMIN, RESELL_E3, UpdateProduct.model_validate(change)
        )
    assert (refused.value.code, refused.value.field) == ("inherited_product", field)
    assert nothing_written(world)


def test_r4_a_copied_product_takes_its_tenants_own_name_in_one_write() -> None:
    world = cloud()
    body = UpdateProduct.model_validate({"name": "E3 by Cloud Resell", "visible": False})
    offer = world.catalogue.update_product(RESELL_ADMIN, RESELL_E3, body)
    assert (offer.product.name, offer.product.visible, offer.product.version) == (
        "E3 by Cloud Resell",
        False,
        2,
    )
    assert offer.product.sku == "O365-E3" and world.units.commits == 1


def test_r4_a_copy_its_provider_still_offers_cannot_be_deleted_an_own_product_can() -> None:
    world = cloud()
    with pytest.raises(Conflict) as refused:
        world.catalogue.retire_product(RESELL_ADMIN, RESELL_E3)
    assert refused.value.code == "offered_by_provider" and nothing_written(world)
    retired = world.catalogue.retire_product(ADMIN, E5).product
    assert (retired.status, retired.visible, world.units.commits) == ("discontinued", False, 1)
    assert "O365-E5" not in shown(world.catalogue.list_products(CUSTOMER_Z, None, 50, None).items)
    with pytest.raises(NotFound):
        world.catalogue.offer(CUSTOMER_Z, E5)


def test_r4_no_own_addon_is_made_on_an_inherited_product() -> None:
    world = cloud()
    body = CreateProduct.model_validate(
        {**BACKUP, "sku": "E3-EXTRA", "type": "addon", "addon_for": [RESELL_E3]}
    )
    with pytest.raises(Conflict) as refused:
        world.catalogue.create_product(RESELL_ADMIN, body)
    assert (refused.value.code, refused.value.field) == ("inherited_product", "addon_for")
    assert nothing_written(world)


# --- price lists (R2) ---------------------------------------------------------------------------


def test_r2_the_first_list_in_the_tenants_currency_becomes_its_default_in_one_transaction() -> None:
    world = cloud()
    usd = CreatePriceList.model_validate({"name": "Rival Retail", "currency": "USD"})
    first = world.catalogue.create_price_list(RIVAL_ADMIN, usd)
    assert [[type(e).__name__ for e in unit] for unit in world.units.committed] == [
        ["PriceList", "Tenant"]
    ]
    rival = world.tenants.get(RIVAL)
    assert rival is not None and (rival.default_price_list_id, rival.version) == (first.id, 2)
    eur = world.catalogue.create_price_list(
        RIVAL_ADMIN, CreatePriceList.model_validate({"name": "Euro", "currency": "EUR"})
    )
    assert not world.catalogue.is_default(RIVAL_ADMIN, eur)
    assert [type(e).__name__ for e in world.units.committed[-1]] == ["PriceList"]
    with pytest.raises(BadRequest) as refused:  # the default list is in the tenant's currency
        world.catalogue.create_price_list(
            RIVAL_ADMIN,
            CreatePriceList.model_validate({"name": "No", "currency": "EUR", "default": True}),
        )
    assert (refused.value.code, refused.value.field) == ("currency_mismatch", "currency")
    page, default = world.catalogue.list_price_lists(RIVAL_ADMIN, 50, None)
    assert {p.id for p in page.items} == {first.id, eur.id} and default == first.id


def test_r2_r29_a_default_list_is_not_written_when_its_tenant_changed_meanwhile(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The list and the tenant's pointer to it are one commit: the tenant's stale version
    fails both, and no list is left without its tenant knowing (all or nothing)."""
    world = cloud()
    read = world.tenants.get

    def raced(tenant_id: str) -> Tenant | None:
        found = read(tenant_id)
        if found is not None and world.units.commits == 0:
            world.units.save(replace(found, name="Rival Inc"))
        return found

    monkeypatch.setattr(world.tenants, "get", raced)
    body = CreatePriceList.model_validate({"name": "Rival Retail", "currency": "USD"})
    with pytest.raises(ConcurrentUpdate):
        world.catalogue.create_price_list(RIVAL_ADMIN, body)
    assert world.price_lists.all_lists(RIVAL) == []
    rival = read(RIVAL)
    assert rival is not None and (rival.name, rival.default_price_list_id) == ("Rival Inc", None)


# --- each buyer's catalogue (R10) and scope (R28) -------------------------------------------------


def test_r10_each_buyer_browses_the_catalogue_at_its_own_prices() -> None:
    """A lite reseller and its customers see its list (cost + 5 %); a direct customer the
    default list; costs are the tenant admin's alone."""
    world = cloud()
    for caller in (CUSTOMER_X, LITE_USER):
        offers = world.catalogue.list_products(caller, None, 50, None).items
        assert shown(offers) == {"O365-E3": {"monthly": "18.90"}}
        assert all(offer.costs is None for offer in offers)
    direct = world.catalogue.list_products(CUSTOMER_Z, None, 50, None).items
    assert shown(direct) == {
        "O365-E3": {"monthly": "20.00", "annual": "228.00"},
        "O365-E5": {"monthly": "35.00"},
        "TEAMS-PHONE": {"monthly": "8.00"},
    }
    assert all(offer.costs is None for offer in direct)
    staff = {
        o.product.sku: o.costs for o in world.catalogue.list_products(ADMIN, None, 50, None).items
    }
    assert staff == {
        "O365-E3": {"monthly": "18.00"},
        "O365-E5": {"monthly": "30.00"},
        "TEAMS-PHONE": {"monthly": "6.00"},
    }


def test_r10_r28_a_hidden_or_unlisted_product_is_a_404_to_buyers() -> None:
    world = cloud()
    world.tables.seed(
        product("prd_hidden", "HIDDEN", ["monthly"], {"monthly": "1.00"}, visible=False),
        price(RETAIL, "prd_hidden", "monthly", fixed="2.00"),
    )
    assert world.catalogue.offer(ADMIN, "prd_hidden").prices == {"monthly": "2.00"}
    for caller, product_id in [(CUSTOMER_Z, "prd_hidden"), (CUSTOMER_X, E5), (CUSTOMER_X, TEAMS)]:
        with pytest.raises(NotFound):
            world.catalogue.offer(caller, product_id)
    assert "HIDDEN" not in shown(world.catalogue.list_products(CUSTOMER_Z, None, 50, None).items)
    with pytest.raises(NotFound):  # another tenant's product and list, as if absent
        world.catalogue.product(RIVAL_ADMIN, E3)
    with pytest.raises(NotFound):
        world.catalogue.get_price_list(RIVAL_ADMIN, RETAIL)


def test_r10_only_a_tenant_admin_picks_a_list_or_sees_margin_alerts() -> None:
    world = cloud()
    with pytest.raises(BadRequest) as refused:
        world.catalogue.list_products(CUSTOMER_Z, RETAIL, 50, None)
    assert refused.value.field == "price_list_id"
    with pytest.raises(Forbidden) as forbidden:
        world.catalogue.list_products(CUSTOMER_Z, None, 50, None, margin_alert=True)
    assert forbidden.value.field == "margin_alert"


def test_r28_a_cursor_of_another_tenants_list_is_refused() -> None:
    world = cloud()
    first = world.catalogue.list_products(ADMIN, None, 1, None)
    assert len(first.items) == 1 and first.next_cursor is not None
    with pytest.raises(BadRequest) as refused:
        world.catalogue.list_products(RIVAL_ADMIN, None, 1, first.next_cursor)
    assert (refused.value.code, refused.value.field) == ("invalid_cursor", "cursor")
    rest = world.catalogue.list_products(ADMIN, None, 50, first.next_cursor).items
    assert {o.product.id for o in [*first.items, *rest]} == {E3, E5, TEAMS}


# --- prices (R4, R5) ----------------------------------------------------------------------------


def test_r4_r5_a_fixed_price_below_cost_is_flagged_and_a_markup_follows_cost() -> None:
    world = cloud()
    below = SetPrice.model_validate(
        {"product_id": E3, "billing_cycle": "monthly", "price": "17.00"}
    )
    entry, amount = world.catalogue.set_price(ADMIN, RETAIL, below)
    assert (entry.price, entry.version, amount) == (Decimal("17.00"), 2, Decimal("17.00"))
    alert = MarginAlert(RETAIL, "monthly", Decimal("17.00"), Decimal("18.00"))
    assert world.catalogue.offer(ADMIN, E3).margin_alerts == [alert]
    flagged = world.catalogue.list_products(ADMIN, None, 50, None, margin_alert=True).items
    assert [o.product.id for o in flagged] == [E3]
    assert world.catalogue.offer(CUSTOMER_Z, E3).margin_alerts == []  # the admin's to see
    markup = SetPrice.model_validate(
        {"product_id": E3, "billing_cycle": "monthly", "markup_percent": "10"}
    )
    entry, amount = world.catalogue.set_price(ADMIN, RETAIL, markup)
    assert (entry.price, entry.markup_percent, amount) == (None, Decimal("10"), Decimal("19.80"))
    assert world.catalogue.offer(ADMIN, E3).margin_alerts == []
    assert world.catalogue.list_products(ADMIN, None, 50, None, margin_alert=True).items == []
    assert world.catalogue.offer(CUSTOMER_Z, E3).prices["monthly"] == "19.80"


def test_r5_r29_alerts_follow_the_prices_when_the_product_moved_on_meanwhile() -> None:
    """Another writer renames the product between the price's write and its alerts' write: the
    alerts are computed again over the stored product, the rename is kept, nothing is lost."""
    world = cloud()
    entries_in_lists = world.catalogue.price_lists.entries_in_lists
    renamed: list[bool] = []

    def concurrent_rename(*args: Any) -> Any:
        if not renamed:
            renamed.append(True)
            stored = world.catalogue.products.get(CLOUD, E3)
            assert stored is not None
            world.units.save(replace(stored, name="Office 365 E3 (renamed)"))
        return entries_in_lists(*args)

    world.catalogue.price_lists.entries_in_lists = concurrent_rename  # type: ignore[method-assign,assignment]
    below = SetPrice.model_validate(
        {"product_id": E3, "billing_cycle": "monthly", "price": "17.00"}
    )
    world.catalogue.set_price(ADMIN, RETAIL, below)
    offer = world.catalogue.offer(ADMIN, E3)
    assert offer.product.name == "Office 365 E3 (renamed)"
    alert = MarginAlert(RETAIL, "monthly", Decimal("17.00"), Decimal("18.00"))
    assert offer.margin_alerts == [alert]


# --- several prices at once (R29, R34: publishing what was simulated) ----------------------------


def _entries(*bodies: dict[str, str]) -> list[SetPrice]:
    return [SetPrice.model_validate({"billing_cycle": "monthly", **b}) for b in bodies]


def test_r29_several_prices_are_set_in_one_unit_of_work() -> None:
    world = cloud()
    done = world.catalogue.set_prices(
        ADMIN,
        RETAIL,
        _entries({"product_id": E3, "price": "21.00"}, {"product_id": E5, "markup_percent": "20"}),
    )
    assert [(e.product_id, str(amount)) for e, amount in done] == [(E3, "21.00"), (E5, "36.00")]
    assert world.units.commits == 1  # one transaction for both


def test_r29_a_batch_refused_or_raced_writes_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    world = cloud()
    with pytest.raises(BadRequest) as refused:
        world.catalogue.set_prices(
            ADMIN,
            RETAIL,
            _entries({"product_id": E3, "price": "21.00"}, {"product_id": E5, "price": "1.001"}),
        )
    assert refused.value.field == "entries.1.price" and nothing_written(world)

    real = world.catalogue.current_entries

    def raced(price_list: Any, bodies: list[Any]) -> Any:
        found = real(price_list, bodies)  # another admin changes E5 after it was read
        world.catalogue.set_price(ADMIN, RETAIL, _entries({"product_id": E5, "price": "40.00"})[0])
        return found

    monkeypatch.setattr(world.catalogue, "current_entries", raced)
    commits = world.units.commits
    with pytest.raises(ConcurrentUpdate):
        world.catalogue.set_prices(
            ADMIN,
            RETAIL,
            _entries({"product_id": E3, "price": "21.00"}, {"product_id": E5, "price": "41.00"}),
        )
    assert world.units.commits == commits + 1  # the other admin's alone
    kept = world.price_lists.price(CLOUD, RETAIL, E3, "monthly")
    assert kept is not None and kept.price == Decimal("20.00")  # E3 not written either
