"""What the storefront's services need of its repositories, the logo store and the mailer
(``typing.Protocol``s; the adapters meet them structurally). Pure."""

from __future__ import annotations

from typing import Protocol

from functions.storefront.domain import Storefront


class Storefronts(Protocol):
    """``adapters.StorefrontRepository``."""

    def get(self, tenant_id: str, account_id: str | None) -> Storefront | None: ...

    def by_alias(self, alias: str) -> Storefront | None: ...

    def by_domain(self, host: str) -> str | None: ...

    def taken(self, aliases: list[str]) -> set[str]: ...

    def release_domain(self, host: str, alias: str) -> None: ...

    def record_link(self, tenant_id: str, account_id: str, nonce: str, expires: int) -> None: ...

    def live_links(self, tenant_id: str, account_id: str, now: int, limit: int = 20) -> int:
        """The account's sign-in links neither used nor expired."""
        ...

    def use_link(self, tenant_id: str, account_id: str, nonce: str, now: str) -> bool: ...


class Logos(Protocol):
    """``adapters.LogoStore``."""

    def put(self, key: str, body: bytes, media_type: str) -> None: ...

    def get(self, key: str) -> bytes: ...


class Mailer(Protocol):
    """``functions.invoices.adapters.Mailer`` (SES)."""

    def send(self, to: str, subject: str, text: str, html: str) -> None: ...
