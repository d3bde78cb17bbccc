"""The local stand-in for API Gateway: ``chalice local``'s HTTP request handler, answering as this
stack's API Gateway does in AWS (``infra/template.py``), in the error object of SPEC §9 (R29).

``make run`` (``local/server.py``) and the fuzz test (``tests/api/test_schemathesis.py``) serve
the app through it. What it changes in ``chalice local``:

* every method reaches the gateway: ``http.server`` answers a method it has no ``do_X`` for
  (TRACE, QUERY …) with its own 501 HTML page; here the app answers 405, as it does in AWS (every
  path of the API Gateway has an ANY method: the app answers the methods a path lacks);
* a path the API does not have is 404 ``not_found`` (``chalice local`` answers API Gateway's
  403 "Missing Authentication Token"; the template maps it to the same 404);
* OPTIONS reaches the app as well (the API has no CORS: nothing answers a preflight);
* a body over ``MAX_BODY_BYTES`` is refused (413) before it is read, the connection closed;
* a HEAD answer has headers only.
"""

from __future__ import annotations

import json
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

from chalice.app import Chalice
from chalice.config import Config
from chalice.local import ChaliceRequestHandler, LocalGateway

from functions.core.api import MAX_BODY_BYTES
from functions.core.errors import ApiError, BadRequest, PayloadTooLarge, path_not_found
from functions.storefront.web import framework_page, is_page


def page_answer(status: int, headers: dict[str, str] | None = None) -> dict[str, Any]:
    """A storefront page's answer (R30) where the API answers its error object."""
    body, page_headers = framework_page(status)
    return {
        "statusCode": status,
        "headers": {**page_headers, **(headers or {})},
        "multiValueHeaders": {},
        "body": body,
        "isBase64Encoded": False,
    }


def answer(error: ApiError, headers: dict[str, str] | None = None) -> dict[str, Any]:
    """A gateway's answer (a Lambda proxy response) carrying ``error``."""
    return {
        "statusCode": error.status,
        "headers": {"Content-Type": "application/json", **(headers or {})},
        "multiValueHeaders": {},
        "body": json.dumps(error.body(), separators=(",", ":")),
        "isBase64Encoded": False,
    }


class Gateway(LocalGateway):
    """Routes a request to the app as API Gateway does, or answers a path it lacks with 404."""

    def handle_request(
        self, method: str, path: str, headers: dict[str, str], body: bytes | None
    ) -> dict[str, Any]:
        context = self._generate_lambda_context()
        try:
            event = self._generate_lambda_event(method, path, headers, body)
        except ValueError:  # no route has this path
            if is_page(path.split("?")[0]):
                return page_answer(404)
            return answer(path_not_found())
        return self._app_object(event, context)


class GatewayHandler(ChaliceRequestHandler):
    """``chalice local``'s request handler behind the ``Gateway`` (see the module docstring)."""

    disable_nagle_algorithm = True  # headers and body go out in two writes: no 40 ms stalls

    def __init__(
        self,
        request: Any,
        client_address: tuple[str, int],
        server: HTTPServer,
        app_object: Chalice,
        config: Config,
    ) -> None:
        self.local_gateway = Gateway(app_object, config)
        BaseHTTPRequestHandler.__init__(self, request, client_address, server)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("do_"):  # every method, as API Gateway passes them
            return self._generic_handle
        raise AttributeError(name)

    def _generic_handle(self) -> None:
        refused = self._refused_body()
        if refused is None:
            super()._generic_handle()
            return
        self.close_connection = True  # the body is left unread
        if is_page(self.path.split("?")[0]):
            response = page_answer(refused.status, {"Connection": "close"})
        else:
            response = answer(refused, {"Connection": "close"})
        self._send_http_response(response["statusCode"], response["headers"], response["body"])

    # chalice's handler binds these to its own ``_generic_handle``
    do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = do_PATCH = do_OPTIONS = _generic_handle

    def _refused_body(self) -> ApiError | None:
        length = self.headers.get("content-length")
        if length is None:
            return None
        try:
            size = int(length)
        except ValueError:
            return BadRequest("Content-Length is not a number", field="Content-Length")
        if size < 0:
            return BadRequest("Content-Length is negative", field="Content-Length")
        if size > MAX_BODY_BYTES:
            return PayloadTooLarge(
                f"the body is larger than {MAX_BODY_BYTES} bytes",
                field="body",
                details={"limit": MAX_BODY_BYTES},
            )
        return None

    def _send_http_response_with_body(
        self, code: int, headers: dict[str, Any], body: str | bytes
    ) -> None:
        if self.command != "HEAD":
            super()._send_http_response_with_body(code, headers, body)
            return
        data = body if isinstance(body, bytes) else body.encode("utf-8")
        self.send_response(code)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Content-Type", headers.pop("Content-Type", "application/json"))
        self._send_headers(headers)  # and no body: HEAD
