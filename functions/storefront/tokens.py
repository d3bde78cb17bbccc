"""Signed tokens of the storefront (R30): the emailed sign-in link, the session cookie and the
forms' CSRF tokens. Pure: stdlib ``hmac`` only.

Every token is ``<base64url JSON payload>.<base64url HMAC-SHA256>`` under a key derived from
the platform's secret for one purpose, so a session cannot pass for a sign-in link or the
reverse. A sign-in link is single use through the nonce it carries (the services record its
use); a session expires after ``SESSION_SECONDS``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from typing import Any

LINK_SECONDS = 15 * 60
SESSION_SECONDS = 12 * 3600
LINK, SESSION, CSRF = "storefront-link", "storefront-session", "storefront-csrf"
MAX_TOKEN_CHARS = 2048


class InvalidToken(Exception):
    """``reason``: ``forged`` (not ours, or changed) or ``expired``."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def derive_key(secret: str, purpose: str) -> bytes:
    return hmac.new(secret.encode(), purpose.encode(), hashlib.sha256).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign(secret: str, purpose: str, payload: dict[str, Any]) -> str:
    body = _b64(json.dumps(payload, separators=(",", ":"), sort_keys=True).encode())
    mac = hmac.new(derive_key(secret, purpose), body.encode(), hashlib.sha256).digest()
    return f"{body}.{_b64(mac)}"


def verify(secret: str, purpose: str, token: str, now: float) -> dict[str, Any]:
    """The payload of a token we signed for ``purpose`` that has not expired."""
    if not token or len(token) > MAX_TOKEN_CHARS or token.count(".") != 1:
        raise InvalidToken("forged")
    body, mac = token.split(".")
    expected = hmac.new(derive_key(secret, purpose), body.encode(), hashlib.sha256).digest()
    try:
        given = _unb64(mac)
        payload = json.loads(_unb64(body))
    except (binascii.Error, ValueError):
        raise InvalidToken("forged") from None
    if not hmac.compare_digest(given, expected) or not isinstance(payload, dict):
        raise InvalidToken("forged")
    expires = payload.get("exp")
    if not isinstance(expires, int) or expires <= now:
        raise InvalidToken("expired")
    return payload


def nonce() -> str:
    return secrets.token_urlsafe(16)


@dataclass(frozen=True)
class LoginLink:
    """Who a sign-in link signs in, where, until when; ``nonce`` makes it single use."""

    tenant_id: str
    account_id: str
    role: str  # customer or reseller
    email: str
    alias: str
    nonce: str
    expires: int

    def payload(self) -> dict[str, Any]:
        return {
            "t": self.tenant_id,
            "a": self.account_id,
            "r": self.role,
            "e": self.email,
            "s": self.alias,
            "n": self.nonce,
            "exp": self.expires,
        }

    @classmethod
    def of(cls, payload: dict[str, Any]) -> LoginLink:
        try:
            return cls(
                tenant_id=str(payload["t"]),
                account_id=str(payload["a"]),
                role=str(payload["r"]),
                email=str(payload["e"]),
                alias=str(payload["s"]),
                nonce=str(payload["n"]),
                expires=int(payload["exp"]),
            )
        except (KeyError, TypeError, ValueError):
            raise InvalidToken("forged") from None


@dataclass(frozen=True)
class Session:
    """A signed-in visitor of one storefront; ``nonce`` seeds its CSRF token."""

    tenant_id: str
    account_id: str
    role: str
    email: str
    alias: str
    nonce: str
    expires: int

    def payload(self) -> dict[str, Any]:
        return LoginLink(
            self.tenant_id,
            self.account_id,
            self.role,
            self.email,
            self.alias,
            self.nonce,
            self.expires,
        ).payload()

    @classmethod
    def of(cls, payload: dict[str, Any]) -> Session:
        link = LoginLink.of(payload)
        return cls(
            link.tenant_id,
            link.account_id,
            link.role,
            link.email,
            link.alias,
            link.nonce,
            link.expires,
        )


def csrf_token(secret: str, seed: str) -> str:
    """The CSRF token of the forms of a visitor whose cookie carries ``seed`` (the session's
    nonce, or an anonymous visitor's)."""
    return _b64(hmac.new(derive_key(secret, CSRF), seed.encode(), hashlib.sha256).digest())


def csrf_ok(secret: str, seed: str | None, given: str | None) -> bool:
    if not seed or not given:
        return False
    return hmac.compare_digest(csrf_token(secret, seed), given)
