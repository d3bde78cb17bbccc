"""Many tenant resellers at once, for the scale test and the propagation benchmark: written in
batches straight to the tables as ``POST /tenants`` leaves them (the tenant, its account in the
provider's BSS with the list assigned, its copy of one product at the list's price), because
making thousands through the API would only be slow. Not a request path: no conditions."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

from functions.core.domain import Tenant
from functions.pricelist.domain import Product


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
    assert provider is not None and source is not None
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
