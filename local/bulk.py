"""A provider and many tenant resellers at once, for the scale test and the propagation
benchmark. The tenant resellers are written in
batches straight to the tables as ``POST /tenants`` leaves them (the tenant, its account in the
provider's BSS with the list assigned, its copy of one product at the list's price), because
making thousands through the API would only be slow. Not a request path: no conditions."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from typing import Any

from functions.core.domain import Tenant
from functions.pricelist.domain import Product


def provider(price: Decimal) -> tuple[Any, str, str]:
    """A root tenant, Cloud, with one product, E3 (monthly), in its list Resell at ``price``,
    through the services: (its tenant admin's principal, E3's id, Resell's id)."""
    from functions import composition
    from functions.core.auth import Principal
    from functions.core.schemas import CreateTenant
    from functions.pricelist.schemas import CreatePriceList, CreateProduct, SetPrice

    services = composition.container()
    platform = Principal(sub="platform", role="platform_admin", tenant_id=None)
    root = services.tenancy.create_tenant(
        platform,
        CreateTenant(name="Cloud", country="DE", time_zone="Europe/Berlin", currency="EUR"),
    )
    admin = Principal(sub="admin", role="tenant_admin", tenant_id=root.id)
    e3 = services.catalogue.create_product(
        admin,
        CreateProduct(
            sku="E3", name="Office 365 E3", type="license", billing_cycles=["monthly"], unit="seat"
        ),
    ).product
    resell = services.catalogue.create_price_list(
        admin, CreatePriceList(name="Resell", currency="EUR")
    )
    services.catalogue.set_price(
        admin, resell.id, SetPrice(product_id=e3.id, billing_cycle="monthly", price=str(price))
    )
    return admin, e3.id, resell.id


def tenant_resellers(
    provider_id: str, product_id: str, price_list_id: str, count: int, cost: Decimal
) -> list[tuple[Tenant, Product]]:
    """``count`` tenant resellers of the provider on the list, each with its copy of the
    product (monthly, at ``cost``); (tenant, copy) pairs."""
    from functions import composition
    from functions.core import domain as core
    from functions.core.adapters import AccountModel, TenantModel
    from functions.core.clock import now_utc, rfc3339
    from functions.core.ids import derived_id, new_id
    from functions.pricelist import domain
    from functions.pricelist.adapters import ProductModel

    services = composition.container()
    provider = services.tenancy.tenants.get(provider_id)
    source = services.catalogue.products.get(provider_id, product_id)
    if provider is None or source is None:
        raise SystemExit(f"no tenant {provider_id} or no product {product_id} in it")
    now = rfc3339(now_utc())
    made = []
    with (
        TenantModel.batch_write() as tenants,
        AccountModel.batch_write() as accounts,
        ProductModel.batch_write() as products,
    ):
        for n in range(count):
            profile = core.TenantProfile(
                name=f"Reseller {n}", country="DE", time_zone="Europe/Berlin", billing_day=1
            )
            tenant, account = core.new_tenant_reseller(
                provider,
                new_id("tnt"),
                new_id("acc"),
                profile,
                price_list_currency="EUR",
                email=None,
                created_at=now,
            )
            tenant = replace(tenant, version=1)
            tenants.save(TenantModel.of(tenant))
            accounts.save(AccountModel.of(replace(account, price_list_id=price_list_id, version=1)))
            copy = domain.copy_for_child(
                source,
                tenant.id,
                derived_id("prd", tenant.id, source.id),
                {"monthly": cost},
                [],
                created_at=now,
            )
            copy = replace(copy, version=1)
            products.save(ProductModel.of(copy))
            made.append((tenant, copy))
    return made
