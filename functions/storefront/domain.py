"""Storefronts and reseller plans (R27, R30). Pure: stdlib and the kernel only.

A storefront is the white-label shop of a tenant (its own, for its direct customers and its
Basic resellers) or of a lite reseller on the Free or Standard plan. Its alias is unique in the
platform; a Standard storefront shows its branding (logo, colours) and answers on its custom
domain too. A reseller's storefront follows its plan subscription: ``apply_plan`` decides what
a change of that subscription does, whatever order the changes arrive in (R18's rule of versions).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field, replace

from functions.core.errors import BadRequest, Conflict

ACTIVE, INACTIVE = "active", "inactive"
#: the plans (``functions.pricelist.domain.PLAN_LEVELS``) and a tenant's own storefront
BASIC, FREE, STANDARD, TENANT = "basic", "free", "standard", "tenant"
SERVING_PLANS = (FREE, STANDARD)
BRANDED_PLANS = (STANDARD, TENANT)

#: outcomes of ``apply_plan``
ACTIVATED, SWITCHED, DEACTIVATED, UNCHANGED, STALE = (
    "activated",
    "switched",
    "deactivated",
    "unchanged",
    "stale",
)

_ALIAS = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?$")
RESERVED_ALIASES = frozenset({"admin", "api", "assets", "login", "static", "store", "www"})
MAX_ALIAS_TRIES = 20
_COLOR = re.compile(r"^#[0-9a-fA-F]{6}$")
_HOST = re.compile(r"^(?=.{4,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
DEFAULT_PRIMARY, DEFAULT_ACCENT = "#1f4e8c", "#9a3d12"
#: WCAG 2.1 AA: white text on the primary and accent colours (buttons, the header)
MIN_CONTRAST = 4.5
MAX_LOGO_BYTES = 200 * 1024
#: the logo types a storefront shows, by their first bytes (no SVG: it can carry script)
LOGO_TYPES = {b"\x89PNG\r\n\x1a\n": "image/png", b"\xff\xd8\xff": "image/jpeg"}


@dataclass(frozen=True)
class Branding:
    primary_color: str = DEFAULT_PRIMARY
    accent_color: str = DEFAULT_ACCENT
    #: the logo's object key in the documents bucket and its media type
    logo_key: str | None = None
    logo_type: str | None = None
    #: a custom domain the storefront also answers on (Standard)
    domain: str | None = None


@dataclass(frozen=True)
class Storefront:
    tenant_id: str
    account_id: str | None  # None: the tenant's own storefront
    alias: str
    name: str
    plan: str  # TENANT, or the reseller's plan: BASIC (no longer serving), FREE, STANDARD
    status: str
    created_at: str
    updated_at: str
    branding: Branding = field(default_factory=Branding)
    #: a reseller's: the plan subscription it follows and the version of it last applied
    plan_subscription_id: str | None = None
    plan_version: int | None = None
    version: int | None = None

    @property
    def serving(self) -> bool:
        return self.status == ACTIVE

    @property
    def branded(self) -> bool:
        """Standard (and a tenant's own) shows its logo, colours and custom domain."""
        return self.plan in BRANDED_PLANS

    @property
    def shown_branding(self) -> Branding:
        return self.branding if self.branded else Branding()

    @property
    def is_tenant(self) -> bool:
        return self.account_id is None


@dataclass(frozen=True)
class AliasEntry:
    """The platform-wide claim of an alias: a copy of its storefront, so a page finds the
    storefront by its alias in one read. Written with the storefront, in one transaction."""

    storefront: Storefront

    @property
    def version(self) -> int | None:
        return self.storefront.version


@dataclass(frozen=True)
class DomainEntry:
    """The claim of a custom domain: which alias it serves."""

    domain: str
    alias: str
    tenant_id: str
    version: int | None = None


@dataclass(frozen=True)
class PlanChange:
    """A plan subscription as the stream shows it."""

    subscription_id: str
    version: int
    plan: str  # the product's plan level
    live: bool  # not cancelled, not expired, not suspended


def slug(name: str) -> str:
    """``"Cloud Lite GmbH"`` → ``cloud-lite-gmbh``: ASCII, lower case, dashes, ≤ 40 chars."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    text = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")[:40].strip("-")
    return text if len(text) >= 2 and text not in RESERVED_ALIASES else f"shop-{text}".strip("-")


def alias_candidates(name: str) -> list[str]:
    """The aliases tried for a new storefront, in order: its name's slug, then -2, -3 …"""
    base = slug(name)[:36].strip("-")
    return [base] + [f"{base}-{n}" for n in range(2, MAX_ALIAS_TRIES + 1)]


def valid_alias(alias: str) -> bool:
    return bool(_ALIAS.match(alias)) and alias not in RESERVED_ALIASES


def apply_plan(current: Storefront | None, change: PlanChange) -> tuple[Storefront | None, str]:
    """R27: the reseller's storefront after a change of a plan subscription. ``current`` None:
    the reseller has none yet (the caller names the new one's alias by replacing it). A
    change older than the one applied is STALE; an old plan's cancellation does not stop the
    storefront another, newer plan serves."""
    serving = change.live and change.plan in SERVING_PLANS
    if current is None:
        return None, (ACTIVATED if serving else UNCHANGED)
    if current.plan_subscription_id == change.subscription_id:
        if current.plan_version is not None and change.version <= current.plan_version:
            return current, STALE
    elif not serving:
        return current, (STALE if current.serving else UNCHANGED)
    updated = replace(
        current,
        plan=change.plan if serving else BASIC,
        status=ACTIVE if serving else INACTIVE,
        plan_subscription_id=change.subscription_id,
        plan_version=change.version,
    )
    if serving and not current.serving:
        return updated, ACTIVATED
    if current.serving and not serving:
        return updated, DEACTIVATED
    return updated, (SWITCHED if updated.plan != current.plan else UNCHANGED)


# --- branding ------------------------------------------------------------------------------


def _luminance(color: str) -> float:
    def channel(hex_pair: str) -> float:
        c = int(hex_pair, 16) / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(color[i : i + 2]) for i in (1, 3, 5))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast_with_white(color: str) -> float:
    """The WCAG contrast ratio of white text on ``color``."""
    return 1.05 / (_luminance(color) + 0.05)


def check_color(color: str, field_name: str) -> str:
    if not _COLOR.match(color):
        raise BadRequest(
            "a colour is #rrggbb, e.g. #1f4e8c", field=field_name, code="invalid_value"
        )
    ratio = contrast_with_white(color)
    if ratio < MIN_CONTRAST:
        raise BadRequest(
            f"white text on {color} has a contrast of {ratio:.1f}:1; pages need at least "
            f"{MIN_CONTRAST}:1 (WCAG AA): choose a darker colour",
            field=field_name,
            code="low_contrast",
        )
    return color.lower()


def check_domain(domain: str) -> str:
    host = domain.strip().lower().rstrip(".")
    if not _HOST.match(host):
        raise BadRequest(
            "a custom domain is a host name such as shop.example.com",
            field="domain",
            code="invalid_value",
        )
    return host


def logo_type(data: bytes) -> str:
    """The logo's media type from its first bytes; a 400 naming ``logo`` otherwise."""
    if not data:
        raise BadRequest("choose a logo file", field="logo", code="missing_field")
    if len(data) > MAX_LOGO_BYTES:
        raise BadRequest(
            f"a logo is at most {MAX_LOGO_BYTES // 1024} KB", field="logo", code="too_large"
        )
    for magic, media in LOGO_TYPES.items():
        if data.startswith(magic):
            return media
    raise BadRequest("a logo is a PNG or JPEG image", field="logo", code="unsupported_type")


def can_brand(storefront: Storefront) -> None:
    if not storefront.branded:
        raise Conflict(
            "branding comes with the Standard plan: upgrade to set a logo, colours and a domain",
            field="plan",
            code="plan_required",
        )
