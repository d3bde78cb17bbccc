"""In memory: the storefronts' repository, logo store and mailer (``functions.storefront.ports``)
beside ``tests/fakes.py``, and ``StorefrontService`` built over them and the other fakes, as
``functions/composition.py`` builds it."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from functions.core.services import TenancyService
from functions.storefront.domain import AliasEntry, DomainEntry, Storefront
from functions.storefront.services import StorefrontService, TenantStorefronts
from tests.fakes import Fakes, Table, Tables

SECRET = "fake-secret-0123456789abcdef-0123456789"
PUBLIC_URL = "https://bss.example"


class AliasTable(Table[AliasEntry]):
    """The alias claims: a copy of the storefront, versioned with it."""

    def __init__(self) -> None:
        super().__init__(lambda e: (f"platform#alias#{e.storefront.alias}", ""))

    def bumped(self, row: AliasEntry) -> AliasEntry:
        version = (row.storefront.version or 0) + 1
        return AliasEntry(dataclasses.replace(row.storefront, version=version))


class FakeStorefronts:
    """``functions.storefront.adapters.StorefrontRepository``."""

    def __init__(self, tables: Tables) -> None:
        self.tables = tables
        self.fronts: Table[Storefront] = Table(
            lambda f: (f"{f.tenant_id}#{f.account_id or '-'}", "")
        )
        self.aliases = AliasTable()
        self.domains: Table[DomainEntry] = Table(lambda d: (f"platform#domain#{d.domain}", ""))
        #: (tenant, account, nonce) → used at (None: not used)
        self.links: dict[tuple[str, str, str], str | None] = {}
        #: (tenant, account, nonce) → the link's expiry
        self.expiries: dict[tuple[str, str, str], int] = {}
        tables.writers.update(
            {Storefront: self.fronts, AliasEntry: self.aliases, DomainEntry: self.domains}
        )

    def get(self, tenant_id: str, account_id: str | None) -> Storefront | None:
        return self.fronts.get(f"{tenant_id}#{account_id or '-'}")

    def by_alias(self, alias: str) -> Storefront | None:
        entry = self.aliases.get(f"platform#alias#{alias}")
        return entry.storefront if entry else None

    def by_domain(self, host: str) -> str | None:
        entry = self.domains.get(f"platform#domain#{host}")
        return entry.alias if entry else None

    def taken(self, aliases: list[str]) -> set[str]:
        return {a for a in aliases if self.by_alias(a) is not None}

    def release_domain(self, host: str, alias: str) -> None:
        entry = self.domains.get(f"platform#domain#{host}")
        if entry is not None and entry.alias == alias:
            self.domains.delete(entry)

    def record_link(self, tenant_id: str, account_id: str, nonce: str, expires: int) -> None:
        self.links.setdefault((tenant_id, account_id, nonce), None)
        self.expiries[(tenant_id, account_id, nonce)] = expires

    def live_links(self, tenant_id: str, account_id: str, now: int, limit: int = 20) -> int:
        return sum(
            1
            for (tenant, account, nonce), expires in self.expiries.items()
            if (tenant, account) == (tenant_id, account_id)
            and expires > now
            and self.links[(tenant, account, nonce)] is None
        )

    def use_link(self, tenant_id: str, account_id: str, nonce: str, now: str) -> bool:
        key = (tenant_id, account_id, nonce)
        if key not in self.links or self.links[key] is not None:
            return False
        self.links[key] = now
        return True


@dataclass
class FakeMailer:
    sent: list[dict[str, str]] = field(default_factory=list)

    def send(self, to: str, subject: str, text: str, html: str) -> None:
        self.sent.append({"to": to, "subject": subject, "text": text, "html": html})


@dataclass
class FakeLogos:
    objects: dict[str, bytes] = field(default_factory=dict)

    def put(self, key: str, body: bytes, media_type: str) -> None:
        self.objects[key] = body

    def get(self, key: str) -> bytes:
        return self.objects[key]


@dataclass
class Shop:
    """The fakes with the storefronts' service and its doubles."""

    fakes: Fakes
    storefronts: FakeStorefronts
    mailer: FakeMailer
    logos: FakeLogos
    service: StorefrontService
    clock: list[float]


def build_shop(tables: Tables | None = None, now: float = 1_800_000_000.0) -> Shop:
    tables = tables or Tables()
    storefronts = FakeStorefronts(tables)
    fakes = Fakes.build(tables)
    # the tenancy service opens a tenant's storefront with the tenant, as composition wires it
    fakes.tenancy = TenancyService(
        fakes.units,
        fakes.tenants,
        fakes.accounts,
        fakes.tenancy.price_lists,
        fakes.items,
        TenantStorefronts(storefronts),
    )
    mailer, logos, clock = FakeMailer(), FakeLogos(), [now]
    service = StorefrontService(
        secret=SECRET,
        public_url=PUBLIC_URL,
        units=fakes.units,
        storefronts=storefronts,
        tenancy=fakes.tenancy,
        catalogue=fakes.catalogue,
        orders=fakes.ordering,
        logos=lambda: logos,
        mailer=lambda: mailer,
        clock=lambda: clock[0],
    )
    return Shop(fakes, storefronts, mailer, logos, service, clock)
