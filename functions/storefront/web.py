"""The page toolkit of the storefronts (R30): what ``functions.core.api`` is to the JSON API.

A page is declared once with ``Pages.page``; from it come the Chalice route, the storefront of
the path's alias (a 404 page if none; on a custom domain only its own), the visitor's session
from its signed cookie, the CSRF check of every POST, the security headers (a strict
Content-Security-Policy, no framing, no referrer, no caching of personal pages) and the
answer to a refusal: a page naming the problem with the status of the API's answer (400, 403,
404, 409), never a trace. Templates are Jinja2 with autoescaping, read on first use.
"""

from __future__ import annotations

import hashlib
import json
import logging
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from http.cookies import CookieError, SimpleCookie
from pathlib import Path
from typing import TYPE_CHECKING, Any

from chalice import Blueprint, Response

from functions.core.auth import Principal
from functions.core.errors import ApiError, Forbidden, NotFound, Unauthorized

if TYPE_CHECKING:
    from jinja2 import Environment

    from functions.composition import Container
    from functions.storefront.domain import Storefront
    from functions.storefront.tokens import Session

log = logging.getLogger("bss.storefront")

TEMPLATES = Path(__file__).parent / "templates"
COOKIE = "bss_store"
VISITOR = "v."  # an anonymous visitor's cookie value: ``v.<csrf seed>``
CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
HTML = "text/html; charset=utf-8"
FORM = "application/x-www-form-urlencoded"
MULTIPART = "multipart/form-data"
MAX_FIELDS = 40
MAX_FIELD_CHARS = 4096


class SignInRequired(Exception):
    """The page needs a signed-in visitor: it answers with the sign-in page (401)."""


@dataclass
class Visit:
    """What a page handler gets."""

    app: Container
    front: Storefront
    session: Session | None
    seed: str  # the CSRF seed of the visitor's cookie
    params: dict[str, str]
    query: dict[str, str]
    form: dict[str, str] = field(default_factory=dict)
    files: dict[str, bytes] = field(default_factory=dict)
    set_cookie: str | None = None  # a new cookie value to send

    @property
    def base(self) -> str:
        return f"/store/{self.front.alias}"

    @property
    def principal(self) -> Principal:
        if self.session is None:
            raise SignInRequired()
        return self.app.storefronts.principal(self.session)

    @property
    def csrf(self) -> str:
        return self.app.storefronts.csrf(self.seed)

    def once(self, act: Callable[[], str]) -> Redirect:
        """Run a form's change once: its ``form_key`` (a fresh key per rendered form) is the
        request's ``Idempotency-Key`` (SPEC §9), so a double click or a resent form places
        one order, and answers the first answer's page. ``act`` returns where to go."""
        key = self.form.get("form_key", "")
        if not key:
            return Redirect(act())
        fields = sorted((k, v) for k, v in self.form.items() if k not in ("csrf", "form_key"))
        fingerprint = hashlib.sha256(
            json.dumps([self.front.alias, self.params, fields]).encode()
        ).hexdigest()
        _, answer = self.app.idempotency.run(
            scope=self.principal.scope_key(),
            key=f"page#{key[:200]}",
            fingerprint=fingerprint,
            action=lambda: (303, {"location": act()}),
        )
        return Redirect(str(answer["location"]))


@dataclass(frozen=True)
class Page:
    template: str
    context: dict[str, Any]
    status: int = 200


@dataclass(frozen=True)
class Redirect:
    location: str
    cookie: str | None = None  # a cookie to set (a sign-in), or "" to clear it


@dataclass(frozen=True)
class Raw:
    body: bytes | str
    content_type: str
    cache: str = "no-store"


_env: list[Environment] = []


def environment() -> Environment:
    if not _env:
        from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

        _env.append(
            Environment(
                loader=FileSystemLoader(TEMPLATES),
                autoescape=select_autoescape(["html"]),
                undefined=StrictUndefined,
                trim_blocks=True,
                lstrip_blocks=True,
            )
        )
    return _env[0]


def render(name: str, context: Mapping[str, Any]) -> str:
    return environment().get_template(name).render(**context)


def security_headers(
    content_type: str = HTML, cache: str = "no-store"
) -> dict[str, str | list[str]]:
    return {
        "Content-Type": content_type,
        "Content-Security-Policy": CSP,
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": cache,
    }


def cookie_header(alias: str, value: str, max_age: int) -> str:
    return (
        f"{COOKIE}={value}; Path=/store/{alias}; Max-Age={max_age}; HttpOnly; Secure; SameSite=Lax"
    )


def _cookie(headers: Mapping[str, str]) -> str | None:
    raw = headers.get("cookie")
    if not raw:
        return None
    try:
        jar = SimpleCookie(raw)
    except CookieError:
        return None
    morsel = jar.get(COOKIE)
    return morsel.value if morsel else None


def _form(content_type: str, raw: bytes) -> tuple[dict[str, str], dict[str, bytes]]:
    """The fields of a form post (first value of each) and its files."""
    from functions.core.errors import BadRequest

    media = content_type.split(";")[0].strip().lower()
    if media == FORM:
        try:
            pairs = urllib.parse.parse_qsl(
                raw.decode("utf-8"),
                keep_blank_values=True,
                strict_parsing=False,
                max_num_fields=MAX_FIELDS,
            )
        except (UnicodeDecodeError, ValueError):
            raise BadRequest("the form could not be read", field="body") from None
        form: dict[str, str] = {}
        for name, value in pairs:
            form.setdefault(name, value[:MAX_FIELD_CHARS])
        return form, {}
    if media == MULTIPART:
        message = BytesParser(policy=HTTP).parsebytes(
            f"Content-Type: {content_type}\r\n\r\n".encode() + raw
        )
        fields: dict[str, str] = {}
        files: dict[str, bytes] = {}
        for part in list(message.iter_parts())[:MAX_FIELDS]:
            param = part.get_param("name", header="content-disposition")
            if not isinstance(param, str):
                continue
            payload = part.get_payload(decode=True) or b""
            if part.get_filename() is not None:
                files.setdefault(param, bytes(payload))
            else:
                fields.setdefault(
                    param, bytes(payload).decode("utf-8", "replace")[:MAX_FIELD_CHARS]
                )
        return fields, files
    return {}, {}


class Pages:
    """The storefront's pages: a Chalice blueprint of their routes."""

    def __init__(self) -> None:
        self.blueprint = Blueprint("bss.storefront.pages")
        #: every page's path (HTML: not in ``/openapi.json``; in API Gateway's paths)
        self.paths: list[str] = []

    def page(
        self, path: str, methods: tuple[str, ...] = ("GET",), *, serving: bool = True
    ) -> Callable[[Callable[[Visit], Any]], Callable[[Visit], Any]]:
        """``path`` under ``/store/{alias}``; ``serving=False``: answers on an inactive
        storefront too (its stylesheet, the not-active page's)."""

        def register(handler: Callable[[Visit], Any]) -> Callable[[Visit], Any]:
            blueprint = self.blueprint

            def view(**params: str) -> Response:
                return self.answer(handler, blueprint.current_request, params, serving)

            view.__name__ = f"page_{handler.__name__}"
            content_types = [FORM, MULTIPART] if "POST" in methods else None
            options: dict[str, Any] = {"methods": list(methods)}
            if content_types:
                options["content_types"] = content_types
            full = f"/store/{{alias}}{path}"
            blueprint.route(full, **options)(view)
            if full not in self.paths:
                self.paths.append(full)
            return handler

        return register

    def answer(
        self,
        handler: Callable[[Visit], Any],
        request: Any,
        params: dict[str, str],
        serving: bool,
    ) -> Response:
        from functions.composition import container  # deferred: no AWS at import

        app = container()
        headers = request.headers or {}
        alias = params.pop("alias", "")
        try:
            front = app.storefronts.resolve(alias, custom_host(headers, app.settings.public_url))
        except ApiError:
            return _message(404, "Storefront not found", "There is no storefront at this address.")
        visit: Visit | None = None
        try:
            if not front.serving and serving:
                provider = app.storefronts.provider_of(front)
                link = (f"/store/{provider.alias}/", f"Go to {provider.name}") if provider else None
                return _message(
                    404,
                    "This storefront is not active",
                    f"{front.name} no longer runs its own storefront. Its customers order "
                    "through its provider's storefront.",
                    link,
                    front,
                )
            cookie = _cookie(headers)
            session = app.storefronts.session(front, cookie)
            seed = session.nonce if session else None
            new_cookie = None
            if seed is None:
                if cookie and cookie.startswith(VISITOR) and 8 <= len(cookie) <= 64:
                    seed = cookie[len(VISITOR) :]
                else:
                    from functions.storefront.tokens import nonce

                    seed = nonce()
                    new_cookie = VISITOR + seed
            visit = Visit(
                app=app,
                front=front,
                session=session,
                seed=seed,
                params=dict(params),
                query=dict(request.query_params or {}),
                set_cookie=new_cookie,
            )
            if request.method == "POST":
                visit.form, visit.files = _form(
                    headers.get("content-type", ""), request.raw_body or b""
                )
                if not app.storefronts.csrf_ok(seed, visit.form.get("csrf")):
                    raise Forbidden(
                        "this form has expired or did not come from this storefront: reload "
                        "the page and try again",
                        field="csrf",
                        code="csrf",
                    )
            result = handler(visit)
        except SignInRequired:
            return self._respond(visit, Redirect(f"/store/{front.alias}/login?next=1"))
        except (NotFound, Unauthorized) as error:
            return _message(error.status, "Not found", error.message, _home(front), front)
        except ApiError as error:
            signed_in = visit is not None and visit.session is not None
            back = _back(front) if signed_in else _home(front)
            return _message(error.status, "That did not work", _describe(error), back, front)
        return self._respond(visit, result)

    def _respond(self, visit: Visit | None, result: Any) -> Response:
        headers = security_headers()
        cookie = visit.set_cookie if visit else None
        alias = visit.front.alias if visit else ""
        if isinstance(result, Redirect):
            headers["Location"] = result.location
            if result.cookie is not None:
                cookie = result.cookie
            response = Response(body="", status_code=303, headers=headers)
        elif isinstance(result, Raw):
            headers.update(security_headers(result.content_type, result.cache))
            response = Response(body=result.body, status_code=200, headers=headers)
            if result.cache.startswith("public"):
                cookie = None  # a shared cache must not hand one visitor's seed to others
        elif isinstance(result, Page):
            response = Response(
                body=render(result.template, result.context),
                status_code=result.status,
                headers=headers,
            )
        else:
            raise TypeError(f"a page answers a Page, Redirect or Raw, not {type(result)}")
        if cookie is not None:
            max_age = 0 if cookie == "" else 12 * 3600
            response.headers["Set-Cookie"] = cookie_header(alias, cookie, max_age)
        return response


#: what a page says for an answer of the framework or the gateway (no page handler ran)
_FRAMEWORK = {
    404: ("Page not found", "This storefront has no such page."),
    405: ("Not here", "This page does not take that kind of request."),
    413: ("Too large", "What was sent is too large: a logo is at most 200 KB."),
    415: ("Form not readable", "Send the form from the storefront's page."),
}


def is_page(path: str) -> bool:
    return path == "/store" or path.startswith("/store/")


def framework_page(status: int) -> tuple[str, dict[str, str | list[str]]]:
    """The HTML body and headers of a page for ``status`` answered by the framework or the
    gateway (unknown page, wrong method, unreadable or too large body)."""
    heading, message = _FRAMEWORK.get(status, ("That did not work", "The request was refused."))
    return _message_body(heading, message), security_headers()


def page_errors(event: Any, get_response: Callable[[Any], Response]) -> Response:
    """Chalice's HTTP middleware (``app.py``, outside ``core.api.error_object``): under
    ``/store/`` what Chalice answers itself (405, 415 …) is a page, not the API's error
    object."""
    response = get_response(event)
    path = getattr(event, "path", "") or ""
    content_type = str(response.headers.get("Content-Type", ""))
    if not is_page(path) or response.status_code < 400 or "json" not in content_type:
        return response
    body, headers = framework_page(response.status_code)
    allow = response.headers.get("Allow")
    if allow:
        headers["Allow"] = allow
    return Response(body=body, status_code=response.status_code, headers=headers)


def custom_host(headers: Mapping[str, str], public_url: str) -> str | None:
    """The request's host when it is not the platform's own (a custom domain's)."""
    host = (headers.get("host") or "").split(":")[0].lower().rstrip(".")
    own = (urllib.parse.urlsplit(public_url).hostname or "").lower()
    if not host or host in (own, "localhost", "127.0.0.1") or host.endswith(".amazonaws.com"):
        return None
    return host


def _describe(error: ApiError) -> str:
    body = error.body()["error"]
    field_name = (body.get("details") or {}).get("field")
    message = str(body.get("message", "the request was refused"))
    return f"{field_name}: {message}" if field_name and field_name not in message else message


def _home(front: Storefront) -> tuple[str, str]:
    return (f"/store/{front.alias}/", f"Back to {front.name}")


def _back(front: Storefront) -> tuple[str, str]:
    return (f"/store/{front.alias}/subscriptions", "Back to your subscriptions")


def _message(
    status: int,
    heading: str,
    message: str,
    link: tuple[str, str] | None = None,
    front: Storefront | None = None,
) -> Response:
    """A page of its own for a refusal (no session needed: it offers no form)."""
    body = _message_body(heading, message, link, front)
    return Response(body=body, status_code=status, headers=security_headers())


def _message_body(
    heading: str,
    message: str,
    link: tuple[str, str] | None = None,
    front: Storefront | None = None,
) -> str:
    """``message.html`` signed out, in ``front``'s branding (none: the platform's)."""
    return render(
        "message.html",
        {
            "store": _store(front) if front else _Store("Storefront", "", False, False),
            "base": f"/store/{front.alias}" if front else "",
            "user": None,
            "csrf": "",
            "can_brand": False,
            "title": heading,
            "flash": None,
            "error": None,
            "heading": heading,
            "message": message,
            "link": link,
        },
    )


@dataclass(frozen=True)
class _Store:
    name: str
    alias: str
    branded: bool
    logo: bool
    #: the stylesheet's and logo's URLs carry it: a branding change is seen at once, while
    #: both are cached (``public, max-age``)
    version: int = 0


def _store(front: Storefront) -> _Store:
    shown = front.shown_branding
    return _Store(
        front.name, front.alias, front.branded, shown.logo_key is not None, front.version or 0
    )
