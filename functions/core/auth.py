"""Bearer tokens and the caller's scope (SPEC §9, R28).

The signature is HS256 with ``BSS_JWT_SECRET``. PyJWT is imported on the first check, not at
import time, so a cold start pays for it only when a request needs it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from functions.core.errors import Forbidden, NotFound, Unauthorized

PLATFORM_ADMIN = "platform_admin"
TENANT_ADMIN = "tenant_admin"
RESELLER = "reseller"
CUSTOMER = "customer"
ROLES = (PLATFORM_ADMIN, TENANT_ADMIN, RESELLER, CUSTOMER)


@dataclass(frozen=True)
class Principal:
    sub: str
    role: str
    tenant_id: str | None = None
    account_id: str | None = None

    def tenant(self) -> str:
        """The caller's tenant; a platform admin has none, so tenant data is not its to see."""
        if self.tenant_id is None:
            raise Forbidden("this operation needs a tenant user")
        return self.tenant_id

    def require(self, *roles: str) -> None:
        if self.role not in roles:
            raise Forbidden(f"role {self.role} may not do this")

    def scope_key(self) -> str:
        """Who the caller is, for idempotency keys: the same key from two callers never clashes."""
        return f"{self.tenant_id or 'platform'}#{self.role}#{self.account_id or '-'}#{self.sub}"


def _claims_to_principal(claims: dict[str, Any]) -> Principal:
    role = claims.get("role")
    sub = claims.get("sub")
    tenant_id = claims.get("tenant_id")
    account_id = claims.get("account_id")
    if role not in ROLES or not isinstance(sub, str) or not sub:
        raise Unauthorized("the token names no known role or subject")
    for name, value in (("tenant_id", tenant_id), ("account_id", account_id)):
        if value is not None and (not isinstance(value, str) or not value):
            raise Unauthorized(f"the token's {name} claim is malformed")
    if role == PLATFORM_ADMIN and (tenant_id or account_id):
        raise Unauthorized("a platform_admin token carries no tenant_id or account_id")
    if role != PLATFORM_ADMIN and not tenant_id:
        raise Unauthorized(f"a {role} token must carry tenant_id")
    if role in (RESELLER, CUSTOMER) and not account_id:
        raise Unauthorized(f"a {role} token must carry account_id")
    if role == TENANT_ADMIN and account_id:
        raise Unauthorized("a tenant_admin token carries no account_id")
    return Principal(sub=sub, role=role, tenant_id=tenant_id, account_id=account_id)


def authenticate(authorization: str | None, secret: str) -> Principal:
    """``Authorization: Bearer <jwt>`` → the caller; anything missing, forged, expired or
    unsigned (``alg: none``) is a 401."""
    import jwt  # deferred: see the module docstring

    if not authorization or not authorization.startswith("Bearer "):
        raise Unauthorized("missing bearer token")
    token = authorization[len("Bearer ") :].strip()
    required = ["exp", "sub", "role"]
    try:
        # the signature first, then the claims' types (PyJWT reads ``"exp": "9999999999"`` as a
        # number), then the times
        claims = jwt.decode(
            token,
            secret,
            algorithms=["HS256"],
            options={
                "require": required,
                "verify_exp": False,
                "verify_nbf": False,
                "verify_iat": False,
                "verify_sub": False,
            },
        )
        _check_claim_types(claims)
        jwt.decode(token, secret, algorithms=["HS256"], options={"require": required})
    except jwt.MissingRequiredClaimError as error:
        raise Unauthorized(f"the token has no {error.claim} claim", field=error.claim) from None
    except jwt.ExpiredSignatureError:
        raise Unauthorized("the token has expired", field="exp") from None
    except jwt.ImmatureSignatureError as error:
        field = "nbf" if "nbf" in str(error) else "iat"
        raise Unauthorized("the token is not valid yet", field=field) from None
    except jwt.PyJWTError:
        raise Unauthorized("the token is not valid") from None
    return _claims_to_principal(claims)


#: the latest time a NumericDate claim may name (the year 9999: later ones are not dates)
_LATEST = 253402300799


def _check_claim_types(claims: dict[str, Any]) -> None:
    """RFC 7519 §4.1: ``exp``, ``nbf`` and ``iat`` are NumericDates (a JSON number of seconds,
    not a string, not a boolean); ``sub``, ``role``, ``tenant_id`` and ``account_id`` are
    strings. Anything else is a 401 (``unauthorized``, as every token problem) naming the claim
    in ``details.field``, never a 500 (R29)."""
    for name in ("exp", "nbf", "iat"):
        if name not in claims:
            continue
        value = claims[name]
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not 0 <= value <= _LATEST  # NaN fails this too
        ):
            raise Unauthorized(
                f"the token's {name} claim must be a number of seconds since the epoch",
                field=name,
            )
    for name in ("sub", "role", "tenant_id", "account_id"):
        value = claims.get(name)
        if value is not None and not isinstance(value, str):  # null: as if absent
            raise Unauthorized(f"the token's {name} claim must be a string", field=name)


def issue_token(
    secret: str,
    *,
    sub: str,
    role: str,
    tenant_id: str | None = None,
    account_id: str | None = None,
    ttl_seconds: int = 12 * 3600,
) -> str:
    """A signed token, for the local platform, the demo and tests (in AWS an IdP issues them)."""
    import time

    import jwt

    claims: dict[str, Any] = {"sub": sub, "role": role, "exp": int(time.time()) + ttl_seconds}
    if tenant_id:
        claims["tenant_id"] = tenant_id
    if account_id:
        claims["account_id"] = account_id
    return jwt.encode(claims, secret, algorithm="HS256")


def hidden(what: str = "resource") -> NotFound:
    """The one answer for "absent" and "not yours" (R28)."""
    return NotFound(f"{what} not found")
