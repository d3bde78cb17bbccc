"""The one composition root: settings are read, tables bound and services built on first use
(the first request or event), never at import time."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from functions.core.settings import Settings

if TYPE_CHECKING:
    from functions.backorder.services import (
        BackorderService,
        FailureService,
        ReconciliationService,
        Replicator,
        UpgradeService,
    )
    from functions.core.persistence import BaseTable
    from functions.core.services import IdempotencyService, TenancyService
    from functions.invoices.services import (
        BillingService,
        InvoiceService,
        MarginReports,
        UsageService,
    )
    from functions.orders.services import OrderService
    from functions.pricelist.services import CatalogueService, Propagator, Simulator
    from functions.storefront.services import StorefrontService


T = TypeVar("T")


@dataclass(frozen=True)
class Container:
    settings: Settings
    idempotency: IdempotencyService
    tenancy: TenancyService
    catalogue: CatalogueService
    orders: OrderService
    backorder: Replicator
    backordering: BackorderService
    reconciliation: ReconciliationService
    failures: FailureService
    propagator: Propagator
    simulator: Simulator
    upgrades: UpgradeService
    usage: UsageService
    billing: BillingService
    invoices: InvoiceService
    margin: MarginReports
    storefronts: StorefrontService


_lock = threading.Lock()
_container: Container | None = None


def models() -> tuple[type[BaseTable], ...]:
    """Every table of the BSS: the one list tests, the local platform and ``infra/`` use."""
    from functions.backorder import adapters as backorder
    from functions.core import adapters as core
    from functions.invoices import adapters as invoices
    from functions.orders import adapters as orders
    from functions.pricelist import adapters as pricelist
    from functions.storefront import adapters as storefront

    return (
        core.MODELS
        + pricelist.MODELS
        + orders.MODELS
        + invoices.MODELS
        + backorder.MODELS
        + storefront.MODELS
    )


def build(settings: Settings) -> Container:
    from functions.backorder.adapters import (
        BackfillJobRepository,
        BackorderRepository,
        FailureQueues,
        ReconciliationRepository,
        StreamFailures,
    )
    from functions.backorder.schemas import BACKFILL_QUEUE, RECONCILIATION_QUEUE
    from functions.backorder.services import (
        BackorderService,
        FailureService,
        ReconciliationService,
        Replicator,
        UpgradeService,
    )
    from functions.core import adapters as core
    from functions.core.adapters import (
        AccountItemRepository,
        AccountRepository,
        IdempotencyRepository,
        JobRepository,
        TenantRepository,
    )
    from functions.core.persistence import DynamoUnits, bind
    from functions.core.queues import Queue
    from functions.core.services import IdempotencyService, TenancyService
    from functions.invoices.adapters import (
        BillingRepository,
        DocumentStore,
        Launcher,
        Mailer,
        MarginReportRepository,
        UsageRepository,
    )
    from functions.invoices.services import (
        BillingService,
        InvoiceService,
        MarginReports,
        Rater,
        UsageService,
    )
    from functions.orders import adapters as orders_tables
    from functions.orders.adapters import OrderRepository, SubscriptionRepository
    from functions.orders.services import OrderService, ResoldReader
    from functions.pricelist import adapters as pricelist_tables
    from functions.pricelist.adapters import PriceListRepository, ProductRepository
    from functions.pricelist.schemas import PRICE_CHANGES_QUEUE
    from functions.pricelist.services import CatalogueService, PriceLists, Propagator, Simulator
    from functions.storefront import adapters as storefront_tables
    from functions.storefront.adapters import LogoStore, StorefrontRepository
    from functions.storefront.services import StorefrontService, TenantStorefronts

    bind(models(), settings)
    units = DynamoUnits(
        settings,
        core.WRITERS | pricelist_tables.WRITERS | orders_tables.WRITERS | storefront_tables.WRITERS,
    )
    tenants, accounts = TenantRepository(), AccountRepository()
    products, price_lists = ProductRepository(settings), PriceListRepository()
    # The parties use the price lists (a currency, the R3 copy) and the catalogue uses the
    # parties (the caller's tenant and account): the lists alone first, then each once.
    lists = PriceLists(products, price_lists)
    storefronts = StorefrontRepository()
    tenancy = TenancyService(
        units, tenants, accounts, lists, AccountItemRepository(), TenantStorefronts(storefronts)
    )
    catalogue = CatalogueService(units, tenancy, tenants, accounts, products, price_lists)
    subscriptions = SubscriptionRepository()
    orders = OrderService(units, tenancy, catalogue, subscriptions, OrderRepository())
    replicator = Replicator(BackorderRepository(tenants, accounts, products, price_lists))
    backordering = BackorderService(
        tenancy,
        replicator,
        subscriptions,
        BackfillJobRepository(settings, tenants, JobRepository()),
        Queue(settings, BACKFILL_QUEUE),
    )
    invoices = BillingRepository(settings)  # the run's and the invoices' tables
    rater = Rater(orders, UsageRepository(), invoices)
    margin = MarginReports(tenancy, orders, invoices, MarginReportRepository())
    documents = _lazy(lambda: DocumentStore(_client(settings, "s3"), settings.documents_bucket))
    mailer = _lazy(lambda: Mailer(_client(settings, "ses"), settings.mail_from))
    return Container(
        settings=settings,
        idempotency=IdempotencyService(IdempotencyRepository()),
        tenancy=tenancy,
        catalogue=catalogue,
        orders=orders,
        backorder=replicator,
        backordering=backordering,
        reconciliation=ReconciliationService(
            tenancy,
            replicator,
            ReconciliationRepository(),
            Queue(settings, RECONCILIATION_QUEUE),
            StreamFailures(
                settings,
                _lazy(lambda: _client(settings, "sqs")),
                _lazy(lambda: _client(settings, "dynamodbstreams")),
            ),
        ),
        failures=FailureService(
            FailureQueues(
                settings,
                _lazy(lambda: _client(settings, "sqs")),
                _lazy(lambda: _client(settings, "dynamodbstreams")),
            )
        ),
        propagator=Propagator(
            tenants, accounts, products, price_lists, Queue(settings, PRICE_CHANGES_QUEUE), units
        ),
        # R34: the catalogue's simulation reads the subscriptions through a port of its own,
        # met by the orders context (pricelist may not import orders)
        simulator=Simulator(catalogue, ResoldReader(subscriptions)),
        upgrades=UpgradeService(
            tenancy, catalogue, subscriptions, AccountItemRepository(), backordering, units
        ),
        usage=UsageService(orders, UsageRepository(), BillingRepository(settings)),
        billing=BillingService(
            settings,
            tenancy,
            invoices,
            rater,
            margin,
            launcher=_lazy(
                lambda: Launcher(_client(settings, "stepfunctions"), settings.billing_state_machine)
            ),
            documents=documents,
            mailer=mailer,
        ),
        invoices=InvoiceService(tenancy, orders, invoices, rater, documents=documents),
        margin=margin,
        storefronts=StorefrontService(
            secret=settings.jwt_secret,
            public_url=settings.public_url,
            units=units,
            storefronts=storefronts,
            tenancy=tenancy,
            catalogue=catalogue,
            orders=orders,
            logos=_lazy(lambda: LogoStore(_client(settings, "s3"), settings.documents_bucket)),
            mailer=mailer,
        ),
    )


def _client(settings: Settings, service: str) -> Any:
    """A botocore client of the settings' region and endpoint, made when first needed."""
    import botocore.session

    return botocore.session.get_session().create_client(
        service, region_name=settings.region, endpoint_url=settings.aws_endpoint
    )


def _lazy(factory: Callable[[], T]) -> Callable[[], T]:
    """``factory()`` on the first call, the same object after (thread-safe)."""
    made: list[T] = []
    lock = threading.Lock()

    def get() -> T:
        with lock:
            if not made:
                made.append(factory())
            return made[0]

    return get


def container() -> Container:
    global _container
    if _container is None:
        with _lock:
            if _container is None:
                _container = build(Settings.from_env())
    return _container


def reset() -> None:
    """Forget the container (tests that change the environment)."""
    global _container
    with _lock:
        _container = None
