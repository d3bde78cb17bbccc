"""R28 / SPEC §9: every request is authenticated with a bearer JWT (HS256, ``BSS_JWT_SECRET``).

Every non-public operation of ``GET /openapi.json`` answers 401 with the error object to a missing,
forged, expired, unsigned (``alg: none``) or otherwise unusable token, before it looks at the
body or the path; the public ones answer without a token; a role an operation does not name gets
403.
"""

from __future__ import annotations

import base64
import json
import re
import time
import warnings
from collections.abc import Iterator
from typing import Any

import jwt
import pytest

import app  # noqa: F401  (registers every route in ROUTES)
from functions.core.api import ROUTES
from functions.core.auth import ROLES
from tests.api.world import aws_env
from tests.conftest import SECRET, Api, token, writes

PUBLIC = {("GET", "/openapi.json"), ("GET", "/health")}
METHODS = ("get", "put", "post", "patch", "delete")


@pytest.fixture(scope="module")
def client() -> Iterator[Api]:
    with aws_env() as api:
        yield api


@pytest.fixture(scope="module")
def document(client: Api) -> dict[str, Any]:
    status, doc = client.call("GET", "/openapi.json")
    assert status == 200
    return doc


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, op)
        for path, item in document["paths"].items()
        for method, op in item.items()
        if method in METHODS
    ]


def concrete(path: str) -> str:
    """The path with every parameter filled with some id."""
    return re.sub(r"{\w+}", "any_id_123", path)


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


def _claims(**extra: Any) -> dict[str, Any]:
    return {
        "sub": "someone",
        "role": "tenant_admin",
        "tenant_id": "tnt_any",
        "exp": int(time.time()) + 3600,
        **extra,
    }


def _signed(claims: dict[str, Any], secret: str = SECRET, alg: str = "HS256") -> str:
    return jwt.encode(claims, secret, algorithm=alg)


def _unsigned(claims: dict[str, Any]) -> str:
    return f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(claims)}."


def _hs512_same_secret() -> str:
    """The right secret, the wrong algorithm: only HS256 is accepted."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # PyJWT: the key is short for SHA-512
        return _signed(_claims(), alg="HS512")


def _without(name: str) -> dict[str, Any]:
    claims = _claims()
    del claims[name]
    return claims


#: name → the ``Authorization`` header value (None: no header at all)
BAD_CREDENTIALS: dict[str, str | None] = {
    "missing": None,
    "empty": "",
    "not_bearer": "Basic dXNlcjpwYXNz",
    "bearer_without_token": "Bearer ",
    "garbage": "Bearer not-a-jwt",
    "forged": "Bearer " + _signed(_claims(), "another-secret-0123456789abcdef-0123"),
    "expired": "Bearer " + _signed(_claims(exp=int(time.time()) - 60)),
    "alg_none": "Bearer " + _unsigned(_claims()),
    "alg_none_no_dot": "Bearer " + _unsigned(_claims())[:-1],
    "hs512_same_secret": "Bearer " + _hs512_same_secret(),
    "unknown_role": "Bearer " + _signed(_claims(role="superuser")),
    "tenant_admin_without_tenant": "Bearer " + _signed(_without("tenant_id")),
    "no_exp": "Bearer " + _signed(_without("exp")),
    "no_sub": "Bearer " + _signed(_without("sub")),
    "customer_without_account": "Bearer " + _signed(_claims(role="customer")),
    "reseller_without_account": "Bearer " + _signed(_claims(role="reseller")),
    "platform_admin_with_tenant": "Bearer " + _signed(_claims(role="platform_admin")),
    "tenant_admin_with_account": "Bearer " + _signed(_claims(account_id="acc_1")),
    "tenant_id_not_a_string": "Bearer " + _signed(_claims(tenant_id=42)),
    "empty_tenant_id": "Bearer " + _signed(_claims(tenant_id="")),
}


def test_r28_openapi_lists_exactly_the_declared_routes(document: dict[str, Any]) -> None:
    """SPEC §9: the document matches the routes exactly, so iterating it covers every route."""
    listed = {(method, path) for method, path, _ in operations(document)}
    declared = {(route.method, route.path) for route in ROUTES}
    assert listed == declared
    public = {(m, p) for m, p, op in operations(document) if op.get("security") == []}
    assert public == PUBLIC


@pytest.mark.parametrize("credential", sorted(BAD_CREDENTIALS))
def test_r28_every_operation_refuses_a_bad_token_with_401(
    client: Api, document: dict[str, Any], credential: str
) -> None:
    """R28: missing / forged / expired / ``alg: none`` / malformed-claims tokens → 401 + error
    object, on every non-public operation, before the body or the path is looked at."""
    header = BAD_CREDENTIALS[credential]
    headers = {} if header is None else {"Authorization": header}
    before = writes()
    failures = []
    checked = 0
    for method, path, op in operations(document):
        if (method, path) in PUBLIC:
            continue
        assert op.get("security") != [], f"{method} {path} must not be public"
        assert "401" in op["responses"], f"{method} {path} does not document 401"
        body: dict[str, Any] | None = {} if "requestBody" in op else None
        status, answer = client.call(method, concrete(path), None, body, headers=headers)
        checked += 1
        error = (answer or {}).get("error") or {}
        if status != 401 or error.get("code") != "unauthorized" or not error.get("message"):
            failures.append(f"{method} {path}: {status} {answer}")
    assert not failures, "\n".join(failures)
    assert checked == len(ROUTES) - len(PUBLIC)
    assert writes() == before


@pytest.mark.parametrize("method,path", sorted(PUBLIC))
def test_r28_public_operations_answer_without_a_token(client: Api, method: str, path: str) -> None:
    status, body = client.call(method, path)
    assert status == 200
    assert body
    # a bad token does not matter on a public operation
    status, _ = client.call(method, path, headers={"Authorization": "Bearer junk"})
    assert status == 200


def _token_for(role: str) -> str:
    if role == "platform_admin":
        return token(role)
    if role == "tenant_admin":
        return token(role, "tnt_any")
    return token(role, "tnt_any", "acc_any")


FORBIDDEN = sorted(
    (route.method, route.path, role)
    for route in ROUTES
    if route.roles is not None
    for role in ROLES
    if role not in route.roles and role not in route.hidden_from  # those get 404 (issue 11)
)


@pytest.mark.parametrize("method,path,role", FORBIDDEN)
def test_r28_a_role_the_operation_does_not_name_gets_403(
    client: Api, method: str, path: str, role: str
) -> None:
    """R28: a valid token whose role may not use the operation → 403 + error object, whatever
    the body (the role is checked before validation) and nothing written."""
    before = writes()
    body: dict[str, Any] | None = {} if method in ("POST", "PATCH") else None
    status, answer = client.call(method, concrete(path), _token_for(role), body)
    assert status == 403, answer
    assert answer["error"]["code"] == "forbidden"
    assert answer["error"]["message"]
    assert writes() == before


def test_r28_customer_may_not_create_a_price_list(client: Api) -> None:
    status, answer = client.call(
        "POST",
        "/pricelists",
        token("customer", "tnt_any", "acc_any"),
        {"name": "Mine", "currency": "EUR"},
    )
    assert status == 403
    assert answer["error"]["code"] == "forbidden"


def test_r28_every_role_but_tenant_admin_is_refused_somewhere() -> None:
    """Guard for the matrix above (a tenant admin may call every tenant operation; the platform
    admin's own operations, issue 16's ``GET /failures``, are refused to every other role)."""
    platform_only = {(r.method, r.path) for r in ROUTES if r.roles == ("platform_admin",)}
    assert platform_only == {("GET", "/failures")}
    tenant_operations = [f for f in FORBIDDEN if (f[0], f[1]) not in platform_only]
    assert {role for _, _, role in tenant_operations} == set(ROLES) - {"tenant_admin"}
