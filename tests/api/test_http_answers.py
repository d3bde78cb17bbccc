"""Every answer in the error object of SPEC §9 (R29), bounded inputs, and the access decisions of
issue 11, finding 5 (R26, R28), on the three ways the app is served:

* ``chalice.test.Client`` (what the API tests use): Chalice's own answers — 405 for a method a
  path lacks, 415 for a body that is not JSON — come through ``functions.core.api.error_object``;
* the local HTTP server of ``make run`` (``local/gateway.py``): every method reaches the app (no
  501 HTML page for TRACE or QUERY), a path the API lacks is 404, a body too large is refused
  before it is read;
* AWS: the app as Lambda runs it (a proxy event), and the API Gateway part of the merge template
  (``infra/template.py``): ANY on every path, gateway responses in the error object.
"""

from __future__ import annotations

import http.client
import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from chalice.config import Config
from chalice.local import CustomLocalChalice, LocalChalice, LocalDevServer

from app import app as chalice_app
from functions.core.api import MAX_BODY_BYTES, MAX_JSON_DEPTH, MAX_PROBLEMS, ROUTES, negotiate
from functions.core.errors import NotAcceptable, path_not_found
from local.gateway import GatewayHandler
from tests.api.world import World, world_env

PDF = "application/pdf"
BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,*/*;q=0.8"


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    with world_env() as built:
        yield built


class _QuietHandler(GatewayHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@dataclass
class Served:
    host: str
    port: int

    def connect(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection(self.host, self.port, timeout=30)

    def request(
        self, method: str, path: str, headers: dict[str, str] | None = None, body: bytes = b""
    ) -> tuple[int, dict[str, str], bytes]:
        connection = self.connect()
        try:
            connection.request(method, path, body=body or None, headers=headers or {})
            response = connection.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            connection.close()


@pytest.fixture(scope="module")
def served(world: World) -> Iterator[Served]:
    """The app behind the local platform's gateway (``local/gateway.py``), in-process."""
    original = chalice_app.__class__
    if not isinstance(chalice_app, LocalChalice):  # as local.platform does: a thread-local request
        CustomLocalChalice.__bases__ = (LocalChalice, original)
        chalice_app.__class__ = CustomLocalChalice
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    server = LocalDevServer(
        chalice_app, Config.create(app_name="bss"), "127.0.0.1", port, handler_cls=_QuietHandler
    )
    thread = threading.Thread(target=server.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Served("127.0.0.1", port)
    finally:
        server.shutdown()
        server.server.server_close()
        thread.join(timeout=10)
        chalice_app.__class__ = original


def error_of(status: int, body: Any) -> dict[str, Any]:
    """The SPEC §9 error object of an answer (fails if the body is anything else)."""
    if isinstance(body, bytes):
        body = json.loads(body)
    assert set(body) == {"error"}, (status, body)
    error = body["error"]
    assert isinstance(error["code"], str) and isinstance(error["message"], str), body
    return dict(error)


def raw(world: World, method: str, path: str, token: str, body: bytes, **headers: str) -> Any:
    """A request through ``chalice.test.Client`` with exactly these headers."""
    return world.api.client.http.request(
        method, path, headers={"Authorization": f"Bearer {token}", **headers}, body=body
    )


# --- Chalice's own answers, in the error object (chalice.test.Client) -------------------------


def test_r29_issue11_chalice_own_405_and_415_are_error_objects(world: World) -> None:
    """Issue 11 finding 5: Chalice answered ``{"Code": …, "Message": …}`` for a method a path
    lacks (405) and for a body that is not JSON (415)."""
    a = world.a
    response = raw(world, "POST", "/accounts", a.admin, b"name=x", **{"Content-Type": "text/plain"})
    error = error_of(response.status_code, json.loads(response.body))
    assert (response.status_code, error["code"]) == (415, "unsupported_media_type")
    assert error["details"]["field"] == "Content-Type"

    for method, path, allowed in [
        ("DELETE", "/accounts", ["GET", "POST"]),
        ("TRACE", f"/accounts/{a.z}", ["GET", "PATCH"]),
        ("PUT", "/health", ["GET"]),
    ]:
        response = raw(world, method, path, a.admin, b"")
        error = error_of(response.status_code, json.loads(response.body))
        assert (response.status_code, error["code"]) == (405, "method_not_allowed"), path
        assert error["details"]["allowed"] == allowed
        assert sorted(m.strip() for m in response.headers["Allow"].split(",")) == allowed


def test_r29_issue11_lambda_answers_a_method_a_path_lacks_with_405(world: World) -> None:
    """In AWS every path has ANY (``infra/template.py``): API Gateway hands the app a method the
    path lacks, in a proxy event, and the app answers 405 with ``Allow``, in the error object."""
    event = {
        "resource": "/accounts",
        "path": "/accounts",
        "httpMethod": "OPTIONS",
        "headers": {"accept": "application/json"},
        "multiValueHeaders": {},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": None,
        "stageVariables": None,
        "body": None,
        "isBase64Encoded": False,
        "requestContext": {
            "resourcePath": "/accounts",
            "httpMethod": "OPTIONS",
            "path": "/api/accounts",
            "stage": "api",
            "requestId": "r-1",
            "identity": {"sourceIp": "1.2.3.4"},
        },
    }
    answer = chalice_app(event, None)
    error = error_of(answer["statusCode"], json.loads(answer["body"]))
    assert (answer["statusCode"], error["code"]) == (405, "method_not_allowed")
    assert answer["headers"]["Allow"] and answer["headers"]["Content-Type"] == "application/json"


# --- the local server of make run (local/gateway.py) ------------------------------------------


def test_r29_issue11_local_server_answers_every_method_in_the_error_object(
    served: Served, world: World
) -> None:
    """Issue 11 finding 5: ``http.server`` answered TRACE (schemathesis' coverage phase sends it
    to every path) and every method it has no ``do_X`` for with 501 and an HTML page."""
    auth = {"Authorization": f"Bearer {world.a.admin}"}
    for method in ("TRACE", "QUERY", "PUT", "OPTIONS", "CONNECT", "PROPFIND"):
        status, headers, body = served.request(method, "/accounts", auth)
        error = error_of(status, body)
        assert (status, error["code"]) == (405, "method_not_allowed"), method
        assert headers["Content-Type"] == "application/json"
        assert sorted(m.strip() for m in headers["Allow"].split(",")) == ["GET", "POST"]


def test_r29_r28_issue11_a_path_the_api_lacks_is_404_not_found(
    served: Served, world: World
) -> None:
    """Issue 11 finding 5: an unknown path answered 403 "Missing Authentication Token" (or, with
    a bearer token, a 403 echoing the token back): it is 404 ``not_found``, whatever the
    method, as anything absent is (R28)."""
    token = world.a.admin
    for method, path in [
        ("GET", "/nope"),
        ("GET", "/"),
        ("POST", "/accounts/x/y/z"),
        ("TRACE", "/invoices/x/document/more"),
    ]:
        for headers in ({}, {"Authorization": f"Bearer {token}"}):
            status, _, body = served.request(method, path, headers)
            error = error_of(status, body)
            assert (status, error) == (404, path_not_found().body()["error"]), (method, path)
            assert token.encode() not in body


def test_r29_issue11_local_server_head_answers_headers_only(served: Served) -> None:
    """A HEAD answer carries no body: the connection stays usable for the next request."""
    connection = served.connect()
    try:
        connection.request("HEAD", "/health")
        response = connection.getresponse()
        assert response.status == 405
        assert response.read() == b""
        connection.request("GET", "/health")
        response = connection.getresponse()
        assert (response.status, json.loads(response.read())) == (200, {"status": "ok"})
    finally:
        connection.close()


# --- bounded bodies and answers (R29) -----------------------------------------------------------


def test_r29_issue11_a_body_over_the_cap_is_413_before_it_is_parsed(
    served: Served, world: World
) -> None:
    """Issue 11 finding 4: a body with 200,000 unknown keys was parsed and answered with an
    18.8 MB list. A body over 256 KiB is a 413 naming ``body``, before any parsing, and
    nothing is written."""
    a = world.a
    before = world.counts()
    keys = ",".join(f'"k{n}":1' for n in range(MAX_BODY_BYTES // 6))
    big = ('{"name":"Big",' + keys + "}").encode()
    assert len(big) > MAX_BODY_BYTES
    for method, path in [("POST", "/accounts"), ("PATCH", f"/accounts/{a.z}"), ("GET", "/health")]:
        response = raw(world, method, path, a.admin, big, **{"Content-Type": "application/json"})
        error = error_of(response.status_code, json.loads(response.body))
        assert (response.status_code, error["code"]) == (413, "payload_too_large"), path
        assert error["details"] == {"field": "body", "limit": MAX_BODY_BYTES}
    assert world.counts() == before

    # the local server refuses it from its Content-Length, without reading it
    with socket.create_connection((served.host, served.port), timeout=30) as sock:
        sock.sendall(
            b"POST /accounts HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 1000000000\r\n\r\n{"
        )
        answer = b""
        while chunk := sock.recv(65536):  # the server closes the connection after answering
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413 ")
    assert error_of(413, body)["code"] == "payload_too_large"


def test_r29_issue11_problems_listed_are_capped_and_counted(world: World) -> None:
    """Issue 11 finding 4: every problem of a body was listed. At most ``MAX_PROBLEMS`` are,
    with ``problem_count`` counting them all; the first one still names the field."""
    a = world.a
    before = world.counts()
    keys = 20_000
    body = {"name": "Many", **{f"k{n}": 1 for n in range(keys)}}
    response = raw(
        world,
        "POST",
        "/accounts",
        a.admin,
        json.dumps(body, separators=(",", ":")).encode(),
        **{"Content-Type": "application/json"},
    )
    error = error_of(response.status_code, json.loads(response.body))
    assert (response.status_code, error["code"]) == (400, "unknown_field")
    assert error["details"]["field"] == "k0"
    assert len(error["details"]["problems"]) == MAX_PROBLEMS
    assert error["details"]["problem_count"] == keys
    assert len(response.body) < 20_000
    assert world.counts() == before


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 10_000])
def test_r29_issue11_json_nesting_is_bounded(world: World, depth: int) -> None:
    """A body nesting deeper than ``MAX_JSON_DEPTH`` is a 400 naming ``body``, never a 500."""
    nested = "[" * depth + "]" * depth
    status, body = world.api.call("POST", "/accounts", world.a.admin, raw=f'{{"name":{nested}}}')
    error = error_of(status, body)
    assert status == 400 and error["details"]["field"] == "body"
    assert error["code"] in ("too_deep", "invalid_json")


# --- GET /invoices/{id}/document: the PDF or the JSON invoice (R26) -----------------------------


def test_r26_issue11_document_answers_pdf_when_asked_else_the_json_invoice(world: World) -> None:
    """Issue 11 finding 5: without ``Accept: application/pdf`` the document route answered
    Chalice's 400. ``*/*`` (a browser's) or ``application/pdf`` gets the PDF; no Accept, or
    one preferring JSON, gets the invoice as ``GET /invoices/{id}`` answers it; any other
    Accept is 406 naming ``Accept``."""
    a = world.a
    path = f"/invoices/{a.invoice_z}"
    invoice = world.api.client.http.request(
        "GET", path, headers={"Authorization": f"Bearer {a.admin}"}
    )
    assert invoice.status_code == 200
    for accept in (None, "application/json", "application/*", "application/pdf;q=0.5, */*"):
        headers = {} if accept is None else {"Accept": accept}
        response = raw(world, "GET", f"{path}/document", a.admin, b"", **headers)
        assert response.status_code == 200, (accept, response.body)
        assert response.headers["Content-Type"] == "application/json"
        assert json.loads(response.body) == json.loads(invoice.body)
    for accept in (PDF, "*/*", "application/pdf, */*", BROWSER):
        response = raw(world, "GET", f"{path}/document", a.as_z, b"", Accept=accept)
        assert response.status_code == 200, (accept, response.body)
        assert response.headers["Content-Type"] == PDF
        assert response.body.startswith(b"%PDF-")
    for accept in ("text/html", "image/png, text/*", "application/pdf;q=0"):
        response = raw(world, "GET", f"{path}/document", a.admin, b"", Accept=accept)
        error = error_of(response.status_code, json.loads(response.body))
        assert (response.status_code, error["code"]) == (406, "not_acceptable"), accept
        assert error["details"]["field"] == "Accept"


@pytest.mark.parametrize(
    ("accept", "answer"),
    [
        (None, "application/json"),
        ("", "application/json"),
        ("application/pdf", PDF),
        ("APPLICATION/PDF", PDF),
        ("*/*", PDF),
        (BROWSER, PDF),
        ("application/json, application/pdf", PDF),  # equal weight: the document route's own
        ("application/json, application/pdf;q=0.9", "application/json"),
        ("application/pdf;q=0, */*", "application/json"),
        ("*/*;q=0.1, application/json", "application/json"),
        ("application/*", "application/json"),
        ("application/pdf;q=oops, application/json", "application/json"),
        ("text/html", None),
        ("application/pdf;q=0", None),
        ("*/*;q=0", None),
    ],
)
def test_r26_issue11_document_negotiation(accept: str | None, answer: str | None) -> None:
    if answer is None:
        with pytest.raises(NotAcceptable):
            negotiate(PDF, accept)
    else:
        assert negotiate(PDF, accept) == answer


# --- notes are staff only; a reseller's filters (R28) -------------------------------------------


def test_r28_issue11_notes_do_not_exist_for_resellers_and_customers(world: World) -> None:
    """Issue 11 finding 5: a lite reseller's user read (and wrote) its tenant's internal notes
    on its own account and its customers'. For ``reseller`` and ``customer`` every notes route
    is a 404, as if notes did not exist; contacts stay theirs."""
    a = world.a
    before = world.counts()
    for who, token, accounts in [
        ("reseller L", a.as_lite, (a.lite, a.x, a.y)),
        ("customer X", a.as_x, (a.x,)),
        ("customer Z", a.as_z, (a.z,)),
    ]:
        for account in accounts:
            path = f"/accounts/{account}/notes"
            for method, body in (("GET", None), ("POST", {"text": "Psst"})):
                status, answer = world.api.call(method, path, token, body)
                error = error_of(status, answer)
                assert (status, error["code"]) == (404, "not_found"), (who, method, path)
            status, _ = world.api.call("GET", f"/accounts/{account}/contacts", token)
            assert status == 200, (who, account)
    assert world.counts() == before
    status, notes = world.api.call("GET", f"/accounts/{a.x}/notes", a.admin)
    assert status == 200 and [n["text"] for n in notes["items"]] == ["Renewal call in March"]


def test_r28_issue11_parent_filter_answers_the_children_of_any_account_in_scope(
    world: World,
) -> None:
    """``GET /accounts?parent_account_id=`` names any account the caller sees (R28): a reseller
    its own account (its customers, as unfiltered) or one of its customers (none under it); a
    customer itself. An account out of scope is 404."""
    a = world.a

    def ids(token: str, query: str = "") -> set[str] | int:
        status, body = world.api.call("GET", f"/accounts{query}", token)
        return {item["id"] for item in body["items"]} if status == 200 else status

    assert ids(a.as_lite, f"?parent_account_id={a.lite}") == {a.x, a.y} == ids(a.as_lite)
    assert ids(a.as_lite, f"?parent_account_id={a.x}") == set()
    assert ids(a.as_x, f"?parent_account_id={a.x}") == set()
    assert ids(a.admin, f"?parent_account_id={a.lite}") == {a.x, a.y}
    for token, foreign in [(a.as_lite, a.z), (a.as_lite, a.lite2), (a.as_x, a.lite)]:
        assert ids(token, f"?parent_account_id={foreign}") == 404


def test_r28_r20_issue11_a_resellers_customer_is_billed_to_the_reseller(world: World) -> None:
    """``GET /invoices?account_id=`` names the billed account, any the caller sees (R28): a lite
    reseller's customer is never billed itself (R20: its subscriptions are billed to the lite
    reseller), so a reseller naming one gets an empty list, as the tenant admin does; its
    customer's charges are lines of its own invoices, each naming the end customer."""
    a = world.a

    def ids(token: str, query: str = "") -> set[str] | int:
        status, body = world.api.call("GET", f"/invoices{query}", token)
        return {item["id"] for item in body["items"]} if status == 200 else status

    assert ids(a.as_lite, f"?account_id={a.x}") == set() == ids(a.admin, f"?account_id={a.x}")
    own = ids(a.as_lite, f"?account_id={a.lite}")
    assert isinstance(own, set) and a.invoice_lite in own
    assert own == ids(a.as_lite)
    status, invoice = world.api.call("GET", f"/invoices/{a.invoice_lite}", a.as_lite)
    assert status == 200
    assert {a.x, a.y} >= {line["end_customer_id"] for line in invoice["lines"]} > set()
    for token, foreign in [(a.as_lite, a.z), (a.as_lite, a.v), (a.as_x, a.lite), (a.as_x, a.y)]:
        assert ids(token, f"?account_id={foreign}") == 404


# --- the document of the API, and API Gateway in AWS ---------------------------------------------


def test_r29_issue11_openapi_documents_these_answers(world: World) -> None:
    status, document = world.api.call("GET", "/openapi.json")
    assert status == 200
    paths = document["paths"]
    document_route = paths["/invoices/{invoice_id}/document"]["get"]
    assert set(document_route["responses"]["200"]["content"]) == {PDF, "application/json"}
    assert "406" in document_route["responses"]
    assert {"413", "415"} <= set(paths["/accounts"]["post"]["responses"])
    # a body of optional fields only may be left out (an outside schemathesis run found it)
    assert paths["/accounts"]["post"]["requestBody"]["required"] is True
    assert paths["/billing-runs"]["post"]["requestBody"]["required"] is False
    assert paths["/accounts/{account_id}"]["patch"]["requestBody"]["required"] is False
    assert "409" in paths["/invoices/preview"]["get"]["responses"]  # a mirror: never billed
    notes = paths["/accounts/{account_id}/notes"]
    for operation in notes.values():
        assert operation["description"].startswith("Roles: tenant_admin (")
        assert "404" in operation["responses"]


def test_r29_issue11_api_gateway_answers_in_the_error_object() -> None:
    """The merge template: every path of the API has ANY (to the API's function, as Chalice
    wires its methods), so a method a path lacks reaches the app (405 with ``Allow``); API
    Gateway's own answers are error objects: a path the API lacks is the app's 404."""
    from chalice.deploy.swagger import CFNSwaggerGenerator

    from infra import template

    patch = template.build()["Resources"][template.REST_API]
    assert set(patch) == {"Properties"}  # a patch of Chalice's RestAPI, nothing else
    body = patch["Properties"]["DefinitionBody"]
    swagger = CFNSwaggerGenerator().generate_swagger(chalice_app)
    from functions.storefront.routes import pages

    html = {*pages.paths, "/"}  # the storefront pages (R30) and a custom domain's root
    assert set(body["paths"]) == set(swagger["paths"]) == {route.path for route in ROUTES} | html
    for path, item in body["paths"].items():
        any_method = item["x-amazon-apigateway-any-method"]
        some = next(iter(swagger["paths"][path].values()))
        integration = any_method["x-amazon-apigateway-integration"]
        assert integration == some["x-amazon-apigateway-integration"]
        assert integration["type"] == "aws_proxy"
        assert "${APIHandler.Arn}" in integration["uri"]["Fn::Sub"]

    responses = body["x-amazon-apigateway-gateway-responses"]
    for kind in ("MISSING_AUTHENTICATION_TOKEN", "INCOMPLETE_SIGNATURE"):
        assert responses[kind]["statusCode"] == "404"
        answer = json.loads(responses[kind]["responseTemplates"]["application/json"])
        assert answer == path_not_found().body()  # what local/gateway.py answers
    message = json.dumps('Missing "Authentication" Token')  # $context.error.messageString
    for kind, code in [
        ("REQUEST_TOO_LARGE", "payload_too_large"),
        ("DEFAULT_4XX", "gateway_error"),
        ("DEFAULT_5XX", "internal_error"),
    ]:
        filled = responses[kind]["responseTemplates"]["application/json"].replace(
            "$context.error.messageString", message
        )
        assert json.loads(filled) == {
            "error": {"code": code, "message": 'Missing "Authentication" Token'}
        }
