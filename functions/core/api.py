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
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from chalice import Blueprint, Response
from pydantic import BaseModel, ValidationError

from functions.core.auth import Principal, authenticate, hidden
from functions.core.errors import (
    ApiError,
    BadRequest,
    Forbidden,
    MethodNotAllowed,
    NotAcceptable,
    PayloadTooLarge,
    UnsupportedMediaType,
)
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
JSON = "application/json"
#: the largest request body the API reads: a bigger one is a 413 before anything is parsed (the
#: largest valid body is a few KiB; API Gateway's own limit is 10 MB, Lambda's 6 MB)
MAX_BODY_BYTES = 256 * 1024
#: how deep objects and arrays may nest in a body (no request model nests deeper than 3)
MAX_JSON_DEPTH = 16
#: the problems a 400 lists in ``details.problems``; ``details.problem_count`` counts them all,
#: so an answer stays small whatever the body (Lambda answers at most 6 MB)
MAX_PROBLEMS = 50


@dataclass
class Call:
    """What a handler gets."""

    principal: Principal
    container: Container
    params: dict[str, str]
    body: Any = None
    query: Any = None
    #: the media type to answer in, for a route with ``media`` (see ``negotiate``): the route's
    #: own (a document) or JSON
    media: str = JSON

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
    #: roles that get 404 where any other role outside ``roles`` gets 403: for them the
    #: resource does not exist (R28)
    hidden_from: tuple[str, ...] = ()

    @property
    def operation_id(self) -> str:
        return self.handler.__name__

    @property
    def resource(self) -> str:
        """What the route's path names last: ``notes`` for ``/accounts/{account_id}/notes``."""
        names = [part for part in self.path.split("/") if part and not part.startswith("{")]
        return names[-1] if names else "resource"


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
        hidden_from: tuple[str, ...] = (),
        idempotent: bool | None = None,
    ) -> Callable[[Callable[[Call], Any]], Callable[[Call], Any]]:
        """``idempotent``: whether ``Idempotency-Key`` is honoured; by default for a ``POST``
        (SPEC §9: a POST that creates or changes something). A POST that changes nothing (a
        simulation, R34) says False: it answers anew each time and writes no key."""

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
                idempotent=method == "POST" if idempotent is None else idempotent,
                errors=errors,
                handler=handler,
                media=media,
                hidden_from=hidden_from,
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
        raw_body = request.raw_body
        if raw_body and len(raw_body) > MAX_BODY_BYTES:
            raise PayloadTooLarge(
                f"the body is larger than {MAX_BODY_BYTES} bytes",
                field="body",
                details={"limit": MAX_BODY_BYTES},
            )
        if route.roles is None:
            principal = Principal(sub="anonymous", role="anonymous")
        else:
            principal = authenticate(headers.get("authorization"), app.settings.jwt_secret)
            if principal.role in route.hidden_from:
                raise hidden(route.resource)
            if principal.role not in route.roles:
                raise Forbidden(f"role {principal.role} may not {route.method} {route.path}")
        call = Call(
            principal=principal,
            container=app,
            params=dict(params),
            query=_parse_query(route.query, request.query_params, public=route.roles is None),
            body=_parse_body(route.body, raw_body),
        )
        if route.media is not None:
            call.media = negotiate(route.media, headers.get("accept"))
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
                    [route.method, route.path, dict(params), _canonical_body(raw_body)]
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
                    "Vary": "Accept",
                    **payload.headers,
                },
            )
        response = _json(status, payload)
        if route.media is not None:
            response.headers["Vary"] = "Accept"
        return response
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
    """A route's answer that is a file (an invoice's PDF, a report's CSV), not JSON."""

    body: bytes | str
    content_type: str
    filename: str
    headers: dict[str, str] = field(default_factory=dict)


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
    """A 400 naming the first problem, listing at most ``MAX_PROBLEMS`` and counting them all."""
    problems = []
    for item in error.errors(include_url=False, include_input=False)[:MAX_PROBLEMS]:
        loc = ".".join(str(part) for part in item["loc"]) or where
        kind = item["type"]
        code = _CODES.get(kind)
        if code is None:
            code = "out_of_range" if kind.startswith(_RANGE_TYPES) else "invalid_type"
        problems.append({"field": loc, "code": code, "message": f"{loc}: {item['msg']}"})
    first = problems[0]
    return BadRequest(
        first["message"],
        code=first["code"],
        field=first["field"],
        details={"problems": problems, "problem_count": error.error_count()},
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
    if _depth(document) > MAX_JSON_DEPTH:
        raise BadRequest(
            f"the body nests deeper than {MAX_JSON_DEPTH} levels",
            field="body",
            code="too_deep",
            details={"limit": MAX_JSON_DEPTH},
        )
    try:
        return model.model_validate_json(raw, strict=True)
    except ValidationError as error:
        raise validation_error(error, where="body") from None


def _depth(document: Any) -> int:
    """How deep objects and arrays nest in a parsed JSON document (without recursion)."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(document, 1)]
    while stack:
        value, depth = stack.pop()
        children = value.values() if isinstance(value, dict) else value
        deepest = max(deepest, depth)
        if depth > MAX_JSON_DEPTH:
            break
        stack += [(child, depth + 1) for child in children if isinstance(child, (dict, list))]
    return deepest


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


# --- content negotiation of a document route ----------------------------------------------------


#: media served only when ``Accept`` names them: a report's CSV is a download asked for, so a
#: client's ``*/*`` (curl's default) gets JSON
ASKED_FOR_ONLY = frozenset({"text/csv"})


def negotiate(media: str, accept: str | None) -> str:
    """What a document route (``media``: the invoice's PDF) answers in, for ``Accept``: the
    document when ``Accept`` names it or ``*/*`` (a browser's) and prefers nothing else; JSON —
    the resource as its route without ``/document`` answers it — when ``Accept`` is absent (a
    document is binary: API Gateway and Chalice answer one only when asked for it) or prefers
    JSON (``application/json``, ``application/*``); else 406."""
    if accept is None or not accept.strip():
        return JSON
    weights: dict[str, float] = {}
    for part in accept.split(","):
        kind, *parameters = (piece.strip() for piece in part.split(";"))
        quality = 1.0
        for parameter in parameters:
            name, _, value = parameter.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = min(max(float(value), 0.0), 1.0)
                except ValueError:
                    quality = 0.0
        if kind:
            weights.setdefault(kind.lower(), quality)

    def weight(*ranges: str) -> float:
        return next((weights[r] for r in ranges if r in weights), 0.0)

    document = weight(media) if media in ASKED_FOR_ONLY else weight(media, "*/*")
    json_ = weight(JSON, "application/*", "*/*")
    if document > 0 and document >= json_:
        return media
    if json_ > 0:
        return JSON
    raise NotAcceptable(
        f"this resource is served as {media} or {JSON}; Accept names neither",
        field="Accept",
        details={"available": [media, JSON]},
    )


# --- Chalice's own answers ----------------------------------------------------------------------

#: Chalice's error names (``{"Code", "Message"}`` bodies) → the error of SPEC §9
_CHALICE_ERRORS: dict[str, type[ApiError]] = {
    "MethodNotAllowedError": MethodNotAllowed,
    "UnsupportedMediaType": UnsupportedMediaType,
    "BadRequest": NotAcceptable,  # a binary answer without an Accept naming it (see negotiate)
}


def observed(event: Any, get_response: Callable[[Any], Response]) -> Response:
    """Chalice's outermost HTTP middleware (``app.py``, issue 16): the request is handled under
    its correlation id (the caller's ``X-Correlation-Id``, else API Gateway's request id, else a
    new one), answered in the same header, logged as one line (method, route, status, duration)
    and counted: ``Requests``, ``Errors4xx``, ``Errors5xx`` and ``Latency`` (ms) by route."""
    from functions.core import observability

    observability.configure_logging()
    context = getattr(event, "context", None) or {}
    given = observability.accepted((getattr(event, "headers", None) or {}).get("x-correlation-id"))
    started = time.perf_counter()
    with observability.bound(given or observability.accepted(context.get("requestId"))) as cid:
        response = get_response(event)
        elapsed = round((time.perf_counter() - started) * 1000, 1)
        method = getattr(event, "method", "")
        route = f"{method} {context.get('resourcePath') or getattr(event, 'path', '')}"
        status = response.status_code
        log.info(
            "%s %s", route, status, extra={"route": route, "status": status, "duration_ms": elapsed}
        )
        observability.emit(
            {
                "Requests": 1,
                "Errors4xx": int(400 <= status < 500),
                "Errors5xx": int(status >= 500),
                "Latency": elapsed,
            },
            dimensions={"route": route},
            units={"Latency": "Milliseconds"},
        )
    response.headers = {**response.headers, observability.HEADER: cid}
    return response


def error_object(event: Any, get_response: Callable[[Any], Response]) -> Response:
    """Chalice's HTTP middleware (``app.py``): what Chalice answers itself — 405 for a method
    the path lacks (its ``Allow`` header kept), 415 for a body that is not JSON, an unhandled
    error — in the error object of SPEC §9 like every other answer (R29)."""
    response = get_response(event)
    body = response.body
    if not (isinstance(body, dict) and set(body) == {"Code", "Message"}):
        return response
    kind = _CHALICE_ERRORS.get(str(body["Code"]))
    method = getattr(event, "method", "")
    path = getattr(event, "path", "")
    error: ApiError
    if kind is MethodNotAllowed:
        allow = response.headers.get("Allow", "")
        listed = allow if isinstance(allow, list) else allow.split(",")
        allowed = sorted(m.strip() for m in listed if m.strip())
        error = MethodNotAllowed(
            f"{path} answers {', '.join(allowed)}, not {method}", details={"allowed": allowed}
        )
    elif kind is UnsupportedMediaType:
        received = getattr(event, "headers", {}).get("content-type", "")
        error = UnsupportedMediaType(
            f"the body must be {JSON}, not {received}"[:300], field="Content-Type"
        )
    elif kind is NotAcceptable:
        error = NotAcceptable(str(body["Message"]), field="Accept")
    elif response.status_code >= 500:
        error = ApiError("internal error", code="internal_error")
    else:
        error = ApiError(str(body["Message"]), code=_snake(str(body["Code"])))
    answer = _json(response.status_code if kind is None else error.status, error.body())
    answer.headers = {**response.headers, **answer.headers}
    return answer


def _snake(name: str) -> str:
    name = name.removesuffix("Error") or name
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()
