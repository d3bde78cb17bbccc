"""The HTTP toolkit every context's ``routes.py`` uses (SPEC §9).

A route is declared once, with its pydantic models; from that one declaration come the Chalice
route, request validation, authentication and role checks (R28), ``Idempotency-Key`` handling,
the error object (R29) and the route's entry in ``/openapi.json``. Handlers stay thin: they get a
``Call`` (caller, validated body and query, path parameters, the container) and return a pydantic
model, a ``Page`` of them, or ``None``.

Heavy imports (PynamoDB through the services, PyJWT) are deferred to the first request: this
module imports Chalice and pydantic only.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from chalice import Blueprint, Response
from pydantic import BaseModel, ValidationError

from functions.core.auth import Principal, authenticate, hidden
from functions.core.errors import ApiError, BadRequest, Forbidden
from functions.core.pagination import DEFAULT_LIMIT, Page

if TYPE_CHECKING:
    from functions.composition import Container

log = logging.getLogger("bss.api")

IDEMPOTENCY_HEADER = "Idempotency-Key"
_IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")
#: every id the BSS issues (``functions.core.schemas.Id``). A path parameter that is no such id
#: names nothing: 404 (R28), never a key DynamoDB refuses (over 1,024 bytes: a 500 in AWS).
ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
_ID = re.compile(ID_PATTERN)


@dataclass
class Call:
    """What a handler gets."""

    principal: Principal
    container: Container
    params: dict[str, str]
    body: Any = None
    query: Any = None

    @property
    def limit(self) -> int:
        return int(getattr(self.query, "limit", None) or DEFAULT_LIMIT)

    @property
    def cursor(self) -> str | None:
        return getattr(self.query, "cursor", None)


@dataclass(frozen=True)
class Route:
    path: str
    method: str
    summary: str
    tag: str
    roles: tuple[str, ...] | None  # None: public, no token
    body: type[BaseModel] | None
    query: type[BaseModel] | None
    response: type[BaseModel] | None
    status: int
    paginated: bool
    idempotent: bool
    errors: tuple[int, ...]
    handler: Callable[[Call], Any] = field(compare=False)
    media: str | None = None  # a document route's content type (its handler answers a Document)

    @property
    def operation_id(self) -> str:
        return self.handler.__name__


#: every declared route, in declaration order: the source of ``/openapi.json``
ROUTES: list[Route] = []


class Api:
    """One context's routes: a Chalice blueprint plus their declarations."""

    def __init__(self, tag: str) -> None:
        self.tag = tag
        self.blueprint = Blueprint(f"bss.{tag}")

    def route(
        self,
        path: str,
        method: str,
        *,
        summary: str,
        roles: tuple[str, ...] | None,
        body: type[BaseModel] | None = None,
        query: type[BaseModel] | None = None,
        response: type[BaseModel] | None = None,
        status: int = 200,
        paginated: bool = False,
        errors: tuple[int, ...] = (400, 404),
        media: str | None = None,
    ) -> Callable[[Callable[[Call], Any]], Callable[[Call], Any]]:
        def register(handler: Callable[[Call], Any]) -> Callable[[Call], Any]:
            route = Route(
                path=path,
                method=method,
                summary=summary,
                tag=self.tag,
                roles=roles,
                body=body,
                query=query,
                response=response,
                status=status,
                paginated=paginated,
                idempotent=method == "POST",
                errors=errors,
                handler=handler,
                media=media,
            )
            ROUTES.append(route)
            blueprint = self.blueprint

            def view(**params: str) -> Response:
                return dispatch(route, blueprint.current_request, params)

            view.__name__ = handler.__name__
            blueprint.route(path, methods=[method])(view)
            return handler

        return register


# --- request handling -------------------------------------------------------------------------


def dispatch(route: Route, request: Any, params: Mapping[str, str]) -> Response:
    try:
        from functions.composition import container  # deferred: see the module docstring

        app = container()
        headers = request.headers or {}
        if route.roles is None:
            principal = Principal(sub="anonymous", role="anonymous")
        else:
            principal = authenticate(headers.get("authorization"), app.settings.jwt_secret)
            if principal.role not in route.roles:
                raise Forbidden(f"role {principal.role} may not {route.method} {route.path}")
        call = Call(
            principal=principal,
            container=app,
            params=dict(params),
            query=_parse_query(route.query, request.query_params, public=route.roles is None),
            body=_parse_body(route.body, request.raw_body),
        )
        for name, value in call.params.items():
            if not _ID.fullmatch(value):
                raise hidden(name.removesuffix("_id").replace("_", " "))
        idempotency_key = headers.get(IDEMPOTENCY_HEADER.lower()) if route.idempotent else None
        if idempotency_key is None:
            status, payload = _invoke(route, call)
        else:
            if not _IDEMPOTENCY_KEY.match(idempotency_key):
                raise BadRequest(
                    "Idempotency-Key must be 1-255 printable ASCII characters",
                    field=IDEMPOTENCY_HEADER,
                )
            fingerprint = hashlib.sha256(
                json.dumps(
                    [route.method, route.path, dict(params), _canonical_body(request.raw_body)]
                ).encode()
            ).hexdigest()
            status, payload = app.idempotency.run(
                scope=principal.scope_key(),
                key=idempotency_key,
                fingerprint=fingerprint,
                action=lambda: _invoke(route, call),
            )
        if isinstance(payload, Document):
            return Response(
                body=payload.body,
                status_code=status,
                headers={
                    "Content-Type": payload.content_type,
                    "Content-Disposition": f'inline; filename="{payload.filename}"',
                },
            )
        return _json(status, payload)
    except ApiError as error:
        return _json(error.status, error.body())
    except Exception:  # a bug or an outage: log it, answer 500 with the error object
        log.exception("unhandled error in %s %s", route.method, route.path)
        return _json(500, {"error": {"code": "internal_error", "message": "internal error"}})


def _invoke(route: Route, call: Call) -> tuple[int, Any]:
    """Run the handler; turn its result into a JSON-ready payload. Raises ``ApiError``."""
    result = route.handler(call)
    return route.status, to_json(result)


@dataclass(frozen=True)
class Document:
    """A route's answer that is a file (an invoice's PDF), not JSON."""

    body: bytes
    content_type: str
    filename: str


def to_json(result: Any) -> Any:
    if result is None or isinstance(result, Document):
        return result
    if isinstance(result, Page):
        return {
            "items": [to_json(item) for item in result.items],
            "next_cursor": result.next_cursor,
        }
    if isinstance(result, BaseModel):
        return result.model_dump(mode="json")
    if isinstance(result, Decimal):
        return str(result)
    if isinstance(result, dict):
        return {key: to_json(value) for key, value in result.items()}
    if isinstance(result, (list, tuple)):
        return [to_json(value) for value in result]
    return result


def _json(status: int, payload: Any) -> Response:
    body = "" if payload is None else json.dumps(payload, separators=(",", ":"))
    return Response(body=body, status_code=status, headers={"Content-Type": "application/json"})


def _canonical_body(raw: bytes | None) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode("utf-8", "replace")


_CODES = {
    "json_invalid": "invalid_json",
    "missing": "missing_field",
    "extra_forbidden": "unknown_field",
    "literal_error": "invalid_value",
    "enum": "invalid_value",
    "string_pattern_mismatch": "invalid_format",
    "date_from_datetime_parsing": "invalid_format",
    "date_parsing": "invalid_format",
}
_RANGE_TYPES = ("greater_than", "less_than", "too_short", "too_long", "string_too")


def validation_error(error: ValidationError, *, where: str) -> BadRequest:
    problems = []
    for item in error.errors(include_url=False, include_input=False):
        loc = ".".join(str(part) for part in item["loc"]) or where
        kind = item["type"]
        code = _CODES.get(kind)
        if code is None:
            code = "out_of_range" if kind.startswith(_RANGE_TYPES) else "invalid_type"
        problems.append({"field": loc, "code": code, "message": f"{loc}: {item['msg']}"})
    first = problems[0]
    return BadRequest(
        first["message"], code=first["code"], field=first["field"], details={"problems": problems}
    )


def _parse_body(model: type[BaseModel] | None, raw: bytes | None) -> Any:
    if model is None:
        return None
    if not raw:
        raw = b"{}"
    try:
        document = json.loads(raw, parse_float=Decimal)
    except (ValueError, RecursionError):  # RecursionError: nested too deep, e.g. "[[[[…"
        raise BadRequest("the body is not valid JSON", field="body", code="invalid_json") from None
    if not isinstance(document, dict):
        raise BadRequest("the body must be a JSON object", field="body", code="invalid_type")
    try:
        return model.model_validate_json(raw, strict=True)
    except ValidationError as error:
        raise validation_error(error, where="body") from None


def _parse_query(
    model: type[BaseModel] | None, raw: Mapping[str, str] | None, *, public: bool
) -> Any:
    params = dict(raw or {})
    if model is None:
        if params and not public:  # a public route ignores e.g. a cache-busting parameter
            name = sorted(params)[0]
            raise BadRequest(f"unknown query parameter {name}", field=name, code="unknown_field")
        return None
    try:
        return model.model_validate(params)
    except ValidationError as error:
        raise validation_error(error, where="query") from None
