"""The storefronts' table, the logos in S3 (R27, R30). See ``docs/storefront.md``.

One table, four kinds of item:

=================================  ============  ===============================================
``key``                            ``item``      what
=================================  ============  ===============================================
``{tenant_id}#{account_id|-}``     ``front``     a storefront (a tenant's own: ``-``)
``platform#alias#{alias}``         ``front``     its alias claim: a copy, written with it
``platform#domain#{host}``         ``domain``    a custom domain's claim: the alias it serves
``{tenant_id}#{account_id}``       ``login#{n}`` a sign-in link's nonce (expires: TTL)
=================================  ============  ===============================================

The alias and domain claims are platform-wide (an alias is unique in the platform), as the
tenants table is; everything else leads with the tenant id.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pynamodb.attributes import NumberAttribute, TTLAttribute, UnicodeAttribute, VersionAttribute
from pynamodb.exceptions import DeleteError, UpdateError

from functions.core.persistence import BaseTable, conditional_failed, put_if
from functions.orders.adapters import SubscriptionModel
from functions.orders.domain import Subscription
from functions.storefront.domain import AliasEntry, Branding, DomainEntry, Storefront

FRONT, DOMAIN = "front", "domain"
#: a sign-in link's record is kept (TTL) this long after the link expired
LINK_KEPT_S = 3600
NONE = "-"


def owner_key(tenant_id: str, account_id: str | None) -> str:
    return f"{tenant_id}#{account_id or NONE}"


def alias_key(alias: str) -> str:
    return f"platform#alias#{alias}"


def domain_key(host: str) -> str:
    return f"platform#domain#{host}"


class StorefrontModel(BaseTable):
    base_name = "storefronts"
    ttl_attribute = "expires_at"

    key = UnicodeAttribute(hash_key=True)
    item = UnicodeAttribute(range_key=True)
    tenant_id = UnicodeAttribute(null=True)
    account_id = UnicodeAttribute(null=True)
    alias = UnicodeAttribute(null=True)
    name = UnicodeAttribute(null=True)
    plan = UnicodeAttribute(null=True)
    status = UnicodeAttribute(null=True)
    created_at = UnicodeAttribute(null=True)
    updated_at = UnicodeAttribute(null=True)
    primary_color = UnicodeAttribute(null=True)
    accent_color = UnicodeAttribute(null=True)
    logo_key = UnicodeAttribute(null=True)
    logo_type = UnicodeAttribute(null=True)
    domain = UnicodeAttribute(null=True)
    plan_subscription_id = UnicodeAttribute(null=True)
    plan_version = NumberAttribute(null=True)
    used_at = UnicodeAttribute(null=True)  # a sign-in link's, once used
    expires_at = TTLAttribute(null=True)
    version = VersionAttribute()

    @classmethod
    def of_storefront(cls, front: Storefront, key: str | None = None) -> StorefrontModel:
        b = front.branding
        return cls._set(
            key=key or owner_key(front.tenant_id, front.account_id),
            item=FRONT,
            tenant_id=front.tenant_id,
            account_id=front.account_id,
            alias=front.alias,
            name=front.name,
            plan=front.plan,
            status=front.status,
            created_at=front.created_at,
            updated_at=front.updated_at,
            primary_color=b.primary_color,
            accent_color=b.accent_color,
            logo_key=b.logo_key,
            logo_type=b.logo_type,
            domain=b.domain,
            plan_subscription_id=front.plan_subscription_id,
            plan_version=front.plan_version,
            version=front.version,
        )

    @classmethod
    def of_alias(cls, entry: AliasEntry) -> StorefrontModel:
        return cls.of_storefront(entry.storefront, alias_key(entry.storefront.alias))

    @classmethod
    def of_domain(cls, entry: DomainEntry) -> StorefrontModel:
        return cls._set(
            key=domain_key(entry.domain),
            item=DOMAIN,
            alias=entry.alias,
            tenant_id=entry.tenant_id,
            version=entry.version,
        )

    @classmethod
    def _set(cls, **values: Any) -> StorefrontModel:
        """An item of the values set (a put replaces the item: unset ones are removed)."""
        return cls(**{name: value for name, value in values.items() if value is not None})

    def storefront(self) -> Storefront:
        def required(value: Any) -> Any:
            if value is None:
                raise ValueError(f"storefront item {self.key} lacks an attribute")
            return value

        return Storefront(
            tenant_id=required(self.tenant_id),
            account_id=self.account_id,
            alias=required(self.alias),
            name=required(self.name),
            plan=required(self.plan),
            status=required(self.status),
            created_at=required(self.created_at),
            updated_at=required(self.updated_at),
            branding=Branding(
                primary_color=required(self.primary_color),
                accent_color=required(self.accent_color),
                logo_key=self.logo_key,
                logo_type=self.logo_type,
                domain=self.domain,
            ),
            plan_subscription_id=self.plan_subscription_id,
            plan_version=int(self.plan_version) if self.plan_version is not None else None,
            version=self.version,
        )


class StorefrontRepository:
    def get(self, tenant_id: str, account_id: str | None) -> Storefront | None:
        try:
            return StorefrontModel.get(owner_key(tenant_id, account_id), FRONT).storefront()
        except StorefrontModel.DoesNotExist:
            return None

    def by_alias(self, alias: str) -> Storefront | None:
        try:
            return StorefrontModel.get(alias_key(alias), FRONT).storefront()
        except StorefrontModel.DoesNotExist:
            return None

    def by_domain(self, host: str) -> str | None:
        """The alias a custom domain serves, if it is claimed."""
        try:
            return StorefrontModel.get(domain_key(host), DOMAIN).alias
        except StorefrontModel.DoesNotExist:
            return None

    def taken(self, aliases: list[str]) -> set[str]:
        """Which of ``aliases`` are claimed (one BatchGet)."""
        keys = [(alias_key(alias), FRONT) for alias in aliases]
        return {item.alias for item in StorefrontModel.batch_get(keys) if item.alias}

    def release_domain(self, host: str, alias: str) -> None:
        """Drop a domain's claim if it is still this alias's."""
        try:
            StorefrontModel(key=domain_key(host), item=DOMAIN).delete(
                condition=StorefrontModel.alias == alias, add_version_condition=False
            )
        except DeleteError as error:
            if not conditional_failed(error):  # type: ignore[arg-type]
                raise

    def record_link(self, tenant_id: str, account_id: str, nonce: str, expires: int) -> None:
        put_if(
            StorefrontModel(
                key=owner_key(tenant_id, account_id),
                item=f"login#{nonce}",
                tenant_id=tenant_id,
                account_id=account_id,
                # TTL: gone an hour after it expired
                expires_at=datetime.fromtimestamp(expires + LINK_KEPT_S, tz=UTC),
            ),
            StorefrontModel.key.does_not_exist(),
        )

    def live_links(self, tenant_id: str, account_id: str, now: int, limit: int = 20) -> int:
        """How many of the account's sign-in links are neither used nor expired (one Query of
        its partition's ``login#`` items, at most ``limit``)."""
        items = StorefrontModel.query(
            owner_key(tenant_id, account_id),
            StorefrontModel.item.startswith("login#"),
            limit=limit,
        )
        cutoff = datetime.fromtimestamp(now + LINK_KEPT_S, tz=UTC)
        return sum(
            1
            for item in items
            if item.used_at is None and item.expires_at is not None and item.expires_at > cutoff
        )

    def use_link(self, tenant_id: str, account_id: str, nonce: str, now: str) -> bool:
        """Mark a sign-in link used; False if it was used already (or never issued)."""
        item = StorefrontModel(key=owner_key(tenant_id, account_id), item=f"login#{nonce}")
        try:
            item.update(
                actions=[StorefrontModel.used_at.set(now)],
                condition=StorefrontModel.key.exists() & StorefrontModel.used_at.does_not_exist(),
                add_version_condition=False,  # the nonce's own condition decides
            )
        except UpdateError as error:
            if conditional_failed(error):
                return False
            raise
        return True


class LogoStore:
    """Storefront logos in the documents bucket, under ``storefront/``."""

    def __init__(self, client: Any, bucket: str) -> None:
        self.client = client
        self.bucket = bucket

    def put(self, key: str, body: bytes, media_type: str) -> None:
        self.client.put_object(
            Bucket=self.bucket,
            Key=key,
            Body=body,
            ContentType=media_type,
            CacheControl="public, max-age=86400",
        )

    def get(self, key: str) -> bytes:
        return bytes(self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read())


WRITERS: dict[type, Any] = {
    Storefront: StorefrontModel.of_storefront,
    AliasEntry: StorefrontModel.of_alias,
    DomainEntry: StorefrontModel.of_domain,
}

MODELS: tuple[type[BaseTable], ...] = (StorefrontModel,)


def subscription_of_image(image: dict[str, Any]) -> Subscription:
    """The subscription a subscriptions-stream record carries."""
    return SubscriptionModel.from_raw_data(image).entity()
