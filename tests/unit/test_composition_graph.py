"""The composition root builds every service once, in dependency order, and patches nothing
after construction (issue 12 item 3): the parties use the price lists alone (a currency, the
R3 copy), the catalogue uses the parties."""

from __future__ import annotations

from functions import composition
from functions.pricelist.services import CatalogueService, PriceLists


def test_the_parties_and_the_catalogue_do_not_build_each_other(aws: None) -> None:
    built = composition.container()
    assert built.catalogue.tenancy is built.tenancy
    lists = built.tenancy.price_lists
    assert isinstance(lists, PriceLists) and not isinstance(lists, CatalogueService)
    assert lists.price_lists is built.catalogue.price_lists
