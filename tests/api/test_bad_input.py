"""R29 / SPEC §9: bad input gets a 400 whose ``error.details.field`` names the field (and
``details.problems`` lists every problem), never a 500, and never a partial write:
``writes()`` (the app's writes, metered) is the same after every refused request.

Generic part: for every route with a body or query model (the test fails when a route with a
model has no target below), mutations derived from the model's own JSON schema: each required
field missing, an unknown field, each field mistyped (a number for a string, a string for an
int, a float for a money string …), out of range (quantity 0, billing_day 32, limit 0 / 1000,
too-long names …), badly formatted, plus invalid JSON and non-object bodies. Each mutation
breaks exactly one field of an otherwise valid request, so the field named must be that one.

Domain part: unknown product → 400 naming ``product_id``; a billing cycle the product lacks →
``billing_cycle``; currency mismatches → the field that carries the currency; and other refusals
of the services, each naming its field. Hypothesis generates mistyped values for every field.
"""

from __future__ import annotations

import copy
import json
import re
import string
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import app  # noqa: F401  (registers every route in ROUTES)
from functions.core.api import ROUTES, Route
from tests.api.world import World, world_env


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    with world_env() as built:
        yield built


ROUTE = {(route.method, route.path): route for route in ROUTES}
GHOST_PRODUCT = "prd_0000000000000000000000ghost"


def _fill(template: Any, world: World) -> Any:
    if isinstance(template, str):
        names = {"a": world.a, "b": world.b, "platform": world.platform}
        return string.Formatter().vformat(template, (), names)
    if isinstance(template, list):
        return [_fill(item, world) for item in template]
    if isinstance(template, dict):
        return {key: _fill(value, world) for key, value in template.items()}
    return template


@dataclass(frozen=True)
class Target:
    """A valid request of a route (templates over the world); it is never sent unchanged."""

    token: str
    path: str
    body: dict[str, Any] | None = None


ADDRESS = {"line1": "Main St 1", "city": "Berlin", "postal_code": "10115", "country": "DE"}

#: the current period of tenant A (billing day 1, Europe/Berlin)
PERIOD_START = datetime.now(ZoneInfo("Europe/Berlin")).date().replace(day=1).isoformat()

BODY_TARGETS: dict[tuple[str, str], Target] = {
    ("POST", "/billing-runs"): Target("{a.admin}", "/billing-runs", {"period_start": PERIOD_START}),
    ("POST", "/reconciliation-runs"): Target(
        "{a.admin}", "/reconciliation-runs", {"child_tenant_id": "{a.child}"}
    ),
    ("POST", "/reseller-plans"): Target(
        "{a.admin}", "/reseller-plans", {"account_id": "{a.lite}", "product_id": "{a.base}"}
    ),
    ("PATCH", "/storefront"): Target("{a.admin}", "/storefront", {"primary_color": "#1f4e8c"}),
    ("POST", "/tenants"): Target(
        "{a.admin}",
        "/tenants",
        {
            "name": "New Resell",
            "country": "DE",
            "time_zone": "Europe/Berlin",
            "billing_day": 5,
            "currency": "EUR",
            "price_list_id": "{a.price_list}",
            "email": "new@example.com",
            "propagation": "partial",
            "overwrite_sell_prices": False,
            "overwrite_names": True,
        },
    ),
    ("POST", "/tenants/{tenant_id}/upgrade"): Target(
        "{a.admin}",
        "/tenants/{a.id}/upgrade",
        {
            "account_id": "{a.lite}",
            "country": "DE",
            "time_zone": "Europe/Berlin",
            "billing_day": 5,
            "propagation": "partial",
        },
    ),
    ("POST", "/usage"): Target(
        "{a.admin}",
        "/usage",
        {
            "subscription_id": "{a.sub_z}",
            "quantity": "12.5",
            "unit": "seat",
            "at": "2026-11-22T10:00:00Z",
            "key": "meter-1",
        },
    ),
    ("PATCH", "/tenants/{tenant_id}"): Target(
        "{a.admin}",
        "/tenants/{a.child}",
        {"propagation": "partial", "overwrite_sell_prices": True, "overwrite_names": True},
    ),
    ("POST", "/accounts"): Target(
        "{a.admin}",
        "/accounts",
        {
            "name": "New Customer",
            "kind": "customer",
            "parent_account_id": "{a.lite}",
            "currency": "EUR",
            "email": "new@example.com",
            "accounting_number": "4711",
            "address": ADDRESS,
            "separate_invoices": False,
        },
    ),
    ("PATCH", "/accounts/{account_id}"): Target(
        "{a.admin}",
        "/accounts/{a.z}",
        {
            "name": "Z renamed",
            "email": "z2@example.com",
            "accounting_number": "4712",
            "address": ADDRESS,
            "separate_invoices": True,
            "price_list_id": "{a.price_list}",
        },
    ),
    ("POST", "/accounts/{account_id}/contacts"): Target(
        "{a.admin}",
        "/accounts/{a.z}/contacts",
        {"name": "Zoe Z", "role": "billing", "email": "zoe@example.com", "phone": "+49 30 1234"},
    ),
    ("POST", "/accounts/{account_id}/notes"): Target(
        "{a.admin}", "/accounts/{a.z}/notes", {"text": "Called about the renewal."}
    ),
    ("POST", "/products"): Target(
        "{a.admin}",
        "/products",
        {
            "sku": "NEW-1",
            "name": "New product",
            "type": "license",
            "billing_cycles": ["monthly"],
            "unit": "seat",
            "description": "new",
            "categories": ["office"],
            "visible": True,
            "costs": {"monthly": "1.00"},
            "addon_for": [],
        },
    ),
    ("PATCH", "/products/{product_id}"): Target(
        "{a.admin}",
        "/products/{a.base}",
        {
            "name": "Renamed",
            "description": "d",
            "categories": ["office"],
            "visible": True,
            "sku": "O365-E3",
            "type": "license",
            "billing_cycles": ["monthly", "annual"],
            "unit": "seat",
            "costs": {"monthly": "20.00", "annual": "220.00"},
            "status": "active",
        },
    ),
    ("POST", "/pricelists"): Target(
        "{a.admin}", "/pricelists", {"name": "New list", "currency": "EUR", "default": False}
    ),
    ("POST", "/pricelists/{price_list_id}/prices"): Target(
        "{a.admin}",
        "/pricelists/{a.price_list}/prices",
        {"product_id": "{a.base}", "billing_cycle": "monthly", "price": "26.00"},
    ),
    ("POST", "/pricelists/{price_list_id}/simulate"): Target(
        "{a.admin}",
        "/pricelists/{a.price_list}/simulate",
        {"entries": [{"product_id": "{a.base}", "billing_cycle": "monthly", "price": "26.00"}]},
    ),
    ("POST", "/subscriptions"): Target(
        "{a.admin}",
        "/subscriptions",
        {
            "account_id": "{a.z}",
            "product_id": "{a.base}",
            "quantity": 2,
            "billing_cycle": "monthly",
            "term": "monthly",
            "auto_renew": True,
            "characteristics": {"domain": "z.example"},
        },
    ),
    ("POST", "/subscriptions/{subscription_id}/actions"): Target(
        "{a.admin}",
        "/subscriptions/{a.sub_z}/actions",
        {"action": "change_quantity", "quantity": 4},
    ),
    ("POST", "/subscriptions/{subscription_id}/addons"): Target(
        "{a.admin}",
        "/subscriptions/{a.sub_z}/addons",
        {"product_id": "{a.addon}", "quantity": 1, "characteristics": {"k": "v"}},
    ),
}

QUERY_TARGETS: dict[tuple[str, str], Target] = {
    ("GET", "/billing-runs"): Target("{a.admin}", "/billing-runs"),
    ("GET", "/reports/margin"): Target("{a.admin}", "/reports/margin?period=2026-01"),
    ("GET", "/reconciliation-runs"): Target("{a.admin}", "/reconciliation-runs"),
    ("GET", "/reconciliation-runs/{run_id}"): Target(
        "{a.admin}", "/reconciliation-runs/{a.reconciliation}?kind=missing"
    ),
    ("GET", "/reseller-plans"): Target("{a.admin}", "/reseller-plans?account_id={a.lite}"),
    ("GET", "/invoices"): Target("{a.admin}", "/invoices?account_id={a.z}"),
    ("GET", "/invoices/preview"): Target("{a.admin}", "/invoices/preview?account_id={a.z}"),
    ("GET", "/tenants"): Target("{a.admin}", "/tenants"),
    ("GET", "/usage"): Target("{a.admin}", "/usage?subscription_id={a.sub_z}"),
    ("GET", "/accounts"): Target("{a.admin}", "/accounts"),
    ("GET", "/products"): Target("{a.admin}", "/products"),
    ("GET", "/pricelists"): Target("{a.admin}", "/pricelists"),
    ("GET", "/pricelists/{price_list_id}/prices"): Target(
        "{a.admin}", "/pricelists/{a.price_list}/prices"
    ),
    ("GET", "/subscriptions"): Target("{a.admin}", "/subscriptions"),
    ("GET", "/orders"): Target("{a.admin}", "/orders"),
    ("GET", "/accounts/{account_id}/contacts"): Target("{a.admin}", "/accounts/{a.z}/contacts"),
    ("GET", "/accounts/{account_id}/notes"): Target("{a.admin}", "/accounts/{a.z}/notes"),
}

#: public routes ignore query parameters (a load balancer's cache-buster must not break them)
PUBLIC_PATHS = ("/health", "/openapi.json")
#: routes of the platform admin only (issue 16): probed with its token
PLATFORM_ONLY = {("GET", "/failures")}

#: a valid request of every non-public route without a query model (for ``?unknown=1``)
NO_QUERY_PATHS: dict[tuple[str, str], str] = {
    ("GET", "/failures"): "/failures",
    ("POST", "/billing-runs"): "/billing-runs",
    ("POST", "/reseller-plans"): "/reseller-plans",
    ("POST", "/reconciliation-runs"): "/reconciliation-runs",
    ("GET", "/storefront"): "/storefront",
    ("PATCH", "/storefront"): "/storefront",
    ("GET", "/billing-runs/{run_id}"): "/billing-runs/{a.run}",
    ("POST", "/reconciliation-runs/{run_id}/repair"): (
        "/reconciliation-runs/{a.reconciliation}/repair"
    ),
    ("GET", "/invoices/{invoice_id}"): "/invoices/{a.invoice_z}",
    ("GET", "/invoices/{invoice_id}/document"): "/invoices/{a.invoice_z}/document",
    ("POST", "/invoices/{invoice_id}/void"): "/invoices/{a.invoice_z}/void",
    ("POST", "/tenants/{tenant_id}/backordering"): "/tenants/{a.child}/backordering",
    ("GET", "/tenants/{tenant_id}/backordering"): "/tenants/{a.child}/backordering",
    ("POST", "/accounts/{account_id}/contacts"): "/accounts/{a.z}/contacts",
    ("POST", "/accounts/{account_id}/notes"): "/accounts/{a.z}/notes",
    ("DELETE", "/accounts/{account_id}/contacts/{contact_id}"): (
        "/accounts/{a.z}/contacts/{a.contact_z}"
    ),
    ("GET", "/accounts/{account_id}/hierarchy"): "/accounts/{a.z}/hierarchy",
    ("POST", "/tenants"): "/tenants",
    ("GET", "/tenants/{tenant_id}"): "/tenants/{a.id}",
    ("PATCH", "/tenants/{tenant_id}"): "/tenants/{a.child}",
    ("POST", "/usage"): "/usage",
    ("POST", "/tenants/{tenant_id}/upgrade"): "/tenants/{a.id}/upgrade",
    ("DELETE", "/products/{product_id}"): "/products/{a.base}",
    ("POST", "/accounts"): "/accounts",
    ("GET", "/accounts/{account_id}"): "/accounts/{a.z}",
    ("PATCH", "/accounts/{account_id}"): "/accounts/{a.z}",
    ("POST", "/products"): "/products",
    ("GET", "/products/{product_id}"): "/products/{a.base}",
    ("PATCH", "/products/{product_id}"): "/products/{a.base}",
    ("POST", "/pricelists"): "/pricelists",
    ("GET", "/pricelists/{price_list_id}"): "/pricelists/{a.price_list}",
    ("POST", "/pricelists/{price_list_id}/prices"): "/pricelists/{a.price_list}/prices",
    ("POST", "/pricelists/{price_list_id}/simulate"): "/pricelists/{a.price_list}/simulate",
    ("POST", "/subscriptions"): "/subscriptions",
    ("GET", "/subscriptions/{subscription_id}"): "/subscriptions/{a.sub_z}",
    ("POST", "/subscriptions/{subscription_id}/actions"): "/subscriptions/{a.sub_z}/actions",
    ("POST", "/subscriptions/{subscription_id}/addons"): "/subscriptions/{a.sub_z}/addons",
    ("GET", "/subscriptions/{subscription_id}/addons"): "/subscriptions/{a.sub_z}/addons",
    ("GET", "/orders/{order_id}"): "/orders/{a.order_z}",
}


def test_r29_every_route_with_a_model_has_a_target() -> None:
    """A route added with a body or query model but no target here fails."""
    assert {k for k, r in ROUTE.items() if r.body is not None} == set(BODY_TARGETS)
    assert {k for k, r in ROUTE.items() if r.query is not None} == set(QUERY_TARGETS)
    assert {k for k, r in ROUTE.items() if r.query is None and r.roles is not None} == set(
        NO_QUERY_PATHS
    )
    assert {k[1] for k, r in ROUTE.items() if r.roles is None} == set(PUBLIC_PATHS)


# --- sending and judging ----------------------------------------------------------------------


def send(
    world: World,
    method: str,
    path: str,
    token: str,
    body: Any = None,
    *,
    raw: str | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, Any]:
    if method == "POST":  # a refused request must not keep its Idempotency-Key either
        headers = {"Idempotency-Key": f"bad-{uuid.uuid4()}", **(headers or {})}
    return world.api.call(method, path, token, body, headers=headers, raw=raw)


def assert_refused(
    world: World,
    method: str,
    path: str,
    token: str,
    body: Any = None,
    *,
    field: str,
    codes: set[str] | None = None,
    status: int = 400,
    raw: str | None = None,
    headers: dict[str, str] | None = None,
    only_field: bool = True,
) -> dict[str, Any]:
    """The request answers ``status`` with the error object naming ``field`` (or a sub-field of
    it), every listed problem is about that field (``only_field``), and nothing is written."""
    before = world.counts()
    got, answer = send(world, method, path, token, body, raw=raw, headers=headers)
    context = f"{method} {path} {json.dumps(body) if raw is None else raw[:80]!s:.300} → {answer}"
    assert got == status, context
    error = answer["error"]
    assert isinstance(error["code"], str) and error["code"], context
    assert isinstance(error["message"], str) and error["message"], context
    named = error["details"]["field"]
    assert named == field or named.startswith(field + "."), context
    for problem in error["details"].get("problems", []):
        assert problem["code"] and problem["message"] and problem["field"], context
        if only_field:
            assert problem["field"] == field or problem["field"].startswith(field + "."), context
    if codes is not None:
        assert error["code"] in codes, context
    assert world.counts() == before, f"partial write: {context}"
    return error


# --- mutations from the JSON schema -----------------------------------------------------------


@dataclass(frozen=True)
class Mutation:
    name: str
    body: dict[str, Any]
    field: str
    codes: frozenset[str]


TYPE = frozenset({"invalid_type", "invalid_value"})
RANGE = frozenset({"out_of_range"})
FORMAT = frozenset({"invalid_format", "out_of_range", "invalid_value"})
MISSING = frozenset({"missing_field"})
UNKNOWN = frozenset({"unknown_field"})


def _resolve(schema: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    """The non-null branch of ``X | None``, with ``$ref`` resolved."""
    if "anyOf" in schema:
        (schema,) = [s for s in schema["anyOf"] if s.get("type") != "null"]
    if "$ref" in schema:
        schema = defs[schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def _violating(pattern: str, low: int, high: int) -> str | None:
    """A string within the length bounds that the (JSON Schema, i.e. search) pattern refuses."""
    for candidate in [
        "!!",
        " ",
        "a b",
        "€€€",
        "zz",
        "12.345.6",
        "-1",
        "ab",
        "abcd",
        "x" * max(low, 1),
    ]:
        if low <= len(candidate) <= high and re.search(pattern, candidate) is None:
            return candidate
    return None


def _wrong_values(
    schema: dict[str, Any], defs: dict[str, Any]
) -> list[tuple[str, Any, frozenset[str]]]:
    """(name, value, acceptable error codes) of values the schema refuses."""
    nullable = any(s.get("type") == "null" for s in schema.get("anyOf", []))
    schema = _resolve(schema, defs)
    kind = schema.get("type")
    out: list[tuple[str, Any, frozenset[str]]] = []
    if kind == "string":
        out += [("number for string", 12, TYPE), ("float for string", 12.5, TYPE)]
        out += [("bool for string", True, TYPE), ("list for string", ["x"], TYPE)]
        out += [("object for string", {"x": 1}, TYPE)]
        if "enum" in schema:
            out.append(("not in enum", "bogus", frozenset({"invalid_value"})))
        low, high = schema.get("minLength", 0), schema.get("maxLength", 10_000)
        if "maxLength" in schema:
            out.append(("too long", "a" * (high + 1), RANGE | {"invalid_format"}))
        if low >= 1:
            out.append(("empty", "", RANGE | {"invalid_format"}))
        if "pattern" in schema:
            bad = _violating(schema["pattern"], low, high)
            if bad is not None:
                out.append((f"pattern {bad!r}", bad, FORMAT))
        if schema.get("format") == "date":
            out += [("not a date", "2024-13-45", FORMAT), ("a datetime", "someday", FORMAT)]
    elif kind == "integer":
        out += [("string for int", "1", TYPE), ("float for int", 1.5, TYPE)]
        out.append(("bool for int", True, TYPE))
        if not nullable:
            out.append(("null for int", None, TYPE))
        if "minimum" in schema:
            out.append(("below minimum", schema["minimum"] - 1, RANGE))
        if "maximum" in schema:
            out.append(("above maximum", schema["maximum"] + 1, RANGE))
    elif kind == "boolean":
        out += [("string for bool", "true", TYPE), ("int for bool", 1, TYPE)]
    elif kind == "array":
        out += [("string for list", "monthly", TYPE), ("object for list", {}, TYPE)]
        items = _resolve(schema.get("items", {}), defs)
        if "minItems" in schema:
            out.append(("too few items", [], RANGE))
        if "maxItems" in schema:
            sample = "monthly" if "enum" in items else "x"
            out.append(("too many items", [sample] * (schema["maxItems"] + 1), RANGE | TYPE))
        out.append(("item of the wrong type", [7], TYPE))
    elif kind == "object":
        out += [("string for object", "x", TYPE), ("list for object", [], TYPE)]
        if "patternProperties" in schema:
            out.append(("bad key", {"bad key!": "v"}, FORMAT | TYPE))
            out.append(("value too long", {"k": "v" * 1000}, RANGE))
            out.append(("value not a string", {"k": 1}, TYPE))
            limit = schema.get("maxProperties")
            if limit:
                out.append(("too many keys", {f"k{i}": "v" for i in range(limit + 1)}, RANGE))
    return out


def mutations(route: Route, base: dict[str, Any]) -> list[Mutation]:
    assert route.body is not None
    schema = route.body.model_json_schema(mode="validation")
    defs = schema.get("$defs", {})
    found = [
        Mutation("unknown field", {**base, "bogus": 1}, "bogus", UNKNOWN),
        Mutation("unknown field (nested name)", {**base, "Name": "x"}, "Name", UNKNOWN),
    ]
    for name in schema.get("required", []):
        body = {k: v for k, v in base.items() if k != name}
        found.append(Mutation(f"{name} missing", body, name, MISSING))
    for name, prop in schema["properties"].items():
        if name not in schema.get("required", []) and "null" not in json.dumps(prop):
            found.append(Mutation(f"{name} null", {**base, name: None}, name, TYPE))
        for what, value, codes in _wrong_values(prop, defs):
            found.append(Mutation(f"{name}: {what}", {**base, name: value}, name, codes))
        inner = _resolve(prop, defs)
        if inner.get("type") == "object" and "properties" in inner:  # a nested model
            nested_base = base.get(name) or {}
            found.append(
                Mutation(
                    f"{name}.bogus",
                    {**base, name: {**nested_base, "bogus": 1}},
                    f"{name}.bogus",
                    UNKNOWN,
                )
            )
            for sub in inner.get("required", []):
                body = copy.deepcopy(base)
                body[name] = {k: v for k, v in nested_base.items() if k != sub}
                found.append(Mutation(f"{name}.{sub} missing", body, f"{name}.{sub}", MISSING))
            for sub, sub_prop in inner["properties"].items():
                for what, value, codes in _wrong_values(sub_prop, defs):
                    body = copy.deepcopy(base)
                    body[name] = {**nested_base, sub: value}
                    found.append(Mutation(f"{name}.{sub}: {what}", body, f"{name}.{sub}", codes))
    return found


BODY_CASES = [
    pytest.param(key, mutation, id=f"{key[0]} {key[1]} | {mutation.name}")
    for key, target in BODY_TARGETS.items()
    for mutation in mutations(ROUTE[key], target.body or {})
]


@pytest.mark.parametrize("key,mutation", BODY_CASES)
def test_r29_a_bad_field_is_named(world: World, key: tuple[str, str], mutation: Mutation) -> None:
    target = BODY_TARGETS[key]
    assert_refused(
        world,
        key[0],
        _fill(target.path, world),
        _fill(target.token, world),
        _fill(mutation.body, world),
        field=mutation.field,
        codes=set(mutation.codes),
    )


def test_r29_there_are_many_mutations() -> None:
    """Guard: the schema walk found something for every field of every body model."""
    for key, target in BODY_TARGETS.items():
        route = ROUTE[key]
        assert route.body is not None
        named = {m.field.split(".")[0] for m in mutations(route, target.body or {})}
        assert set(route.body.model_fields) <= named, key


RAW_BODIES = {
    "invalid JSON": ("{", {"invalid_json"}),
    "truncated JSON": ('{"name": "x"', {"invalid_json"}),
    "trailing garbage": ('{"name": "x"} x', {"invalid_json"}),
    "single quotes": ("{'name': 'x'}", {"invalid_json"}),
    "a list": ("[]", {"invalid_type"}),
    "a list of objects": ('[{"name": "x"}]', {"invalid_type"}),
    "a string": ('"x"', {"invalid_type"}),
    "a number": ("1", {"invalid_type"}),
    "null": ("null", {"invalid_type"}),
    "true": ("true", {"invalid_type"}),
    "nested too deep (list)": ("[" * 100_000, {"invalid_json"}),
    "nested too deep (object)": ('{"a":' * 50_000, {"invalid_json"}),
    "lone surrogate": ('{"name": "\\ud800"}', {"invalid_json"}),
}


@pytest.mark.parametrize("what", sorted(RAW_BODIES))
@pytest.mark.parametrize("key", sorted(BODY_TARGETS))
def test_r29_a_body_that_is_not_a_json_object_is_400(
    world: World, key: tuple[str, str], what: str
) -> None:
    raw, codes = RAW_BODIES[what]
    target = BODY_TARGETS[key]
    assert_refused(
        world,
        key[0],
        _fill(target.path, world),
        _fill(target.token, world),
        raw=raw,
        field="body",
        codes=codes,
    )


def test_r29_nan_and_infinity_are_not_numbers(world: World) -> None:
    """Python's JSON reader accepts ``NaN`` / ``Infinity``; the models still refuse them."""
    base = '"account_id": "{a}", "product_id": "{p}", "billing_cycle": "monthly"'
    base = base.format(a=world.a.z, p=world.a.base)
    for literal in ("NaN", "Infinity", "-Infinity", "1e999"):
        assert_refused(
            world,
            "POST",
            "/subscriptions",
            world.a.admin,
            raw=f'{{{base}, "quantity": {literal}}}',
            field="quantity",
        )


def test_r29_a_body_that_is_not_utf8_is_400(world: World) -> None:
    before = world.counts()
    response = world.api.client.http.request(
        "POST",
        "/accounts",
        headers={"Authorization": f"Bearer {world.a.admin}", "Content-Type": "application/json"},
        body=b'{"name": "\xff\xfe"}',
    )
    assert response.status_code == 400
    error = json.loads(response.body)["error"]
    assert error["details"]["field"] == "body"
    assert world.counts() == before


def _body_schema(key: tuple[str, str]) -> dict[str, Any]:
    model = ROUTE[key].body
    assert model is not None
    return model.model_json_schema(mode="validation")


#: every route whose body has required fields (a PATCH has none: an empty body is a no-op)
WITH_REQUIRED = sorted(k for k in BODY_TARGETS if _body_schema(k).get("required"))


@pytest.mark.parametrize("key", WITH_REQUIRED)
def test_r29_an_empty_body_names_the_first_required_field(
    world: World, key: tuple[str, str]
) -> None:
    required = _body_schema(key)["required"]
    target = BODY_TARGETS[key]
    for raw in ("", "{}"):
        error = assert_refused(
            world,
            key[0],
            _fill(target.path, world),
            _fill(target.token, world),
            raw=raw,
            field=required[0],
            codes={"missing_field"},
            only_field=False,
        )
        listed = [(p["field"], p["code"]) for p in error["details"]["problems"]]
        assert listed == [(name, "missing_field") for name in required]


# --- query parameters -------------------------------------------------------------------------


def _query_mutations(route: Route) -> list[tuple[str, str, str, frozenset[str]]]:
    """(what, query string, field, codes)."""
    assert route.query is not None
    found = [("unknown parameter", "bogus=1", "bogus", UNKNOWN)]
    # a single answer (the invoice preview): no page parameters; one that holds a page of its
    # own (a reconciliation run's items, R33; the margin report, R32) takes them like a list
    if not route.paginated and "limit" not in route.query.model_fields:
        found.append(("a page parameter", "limit=10", "limit", UNKNOWN))
        return found + _id_mutations(route)
    for value, codes in [
        ("abc", TYPE),
        ("1.5", TYPE),
        ("", TYPE),
        ("0", RANGE),
        ("-1", RANGE),
        ("101", RANGE),
        ("1000", RANGE),
        ("99999999999999999999999", RANGE | TYPE),
    ]:
        found.append((f"limit={value!r}", f"limit={quote(value)}", "limit", codes))
    for value, codes in [
        ("", RANGE),
        ("c" * 2049, RANGE),
        ("!!!not-base64!!!", frozenset({"invalid_cursor"})),
        ("e30", frozenset({"invalid_cursor"})),  # {} base64url
        ("W10", frozenset({"invalid_cursor"})),  # []
        ("bnVsbA", frozenset({"invalid_cursor"})),  # null
    ]:
        found.append((f"cursor={value[:20]!r}", f"cursor={quote(value)}", "cursor", codes))
    return found + _id_mutations(route)


def _id_mutations(route: Route) -> list[tuple[str, str, str, frozenset[str]]]:
    assert route.query is not None
    found = []
    for name in route.query.model_fields:
        if name.endswith("_id"):
            for value, codes in [("bad id!", FORMAT), ("a" * 65, RANGE), ("", RANGE)]:
                found.append((f"{name}={value[:10]!r}", f"{name}={quote(value)}", name, codes))
    return found


QUERY_CASES = [
    pytest.param(key, query, field, codes, id=f"{key[0]} {key[1]} | {what}")
    for key in QUERY_TARGETS
    for what, query, field, codes in _query_mutations(ROUTE[key])
]


@pytest.mark.parametrize("key,query,field,codes", QUERY_CASES)
def test_r29_a_bad_query_parameter_is_named(
    world: World, key: tuple[str, str], query: str, field: str, codes: frozenset[str]
) -> None:
    target = QUERY_TARGETS[key]
    filled = _fill(target.path, world)
    path = f"{filled}{'&' if '?' in filled else '?'}{query}"
    assert_refused(world, key[0], path, _fill(target.token, world), field=field, codes=set(codes))


@pytest.mark.parametrize("key", sorted(NO_QUERY_PATHS))
def test_r29_a_route_without_query_parameters_refuses_one(
    world: World, key: tuple[str, str]
) -> None:
    method, _ = key
    body: dict[str, Any] | None = {} if method in ("POST", "PATCH") else None
    assert_refused(
        world,
        method,
        _fill(NO_QUERY_PATHS[key], world) + "?unexpected=1",
        world.platform if key in PLATFORM_ONLY else world.a.admin,
        body,
        field="unexpected",
        codes={"unknown_field"},
    )


@pytest.mark.parametrize("path", PUBLIC_PATHS)
def test_public_routes_ignore_query_parameters(world: World, path: str) -> None:
    status, _ = world.api.call("GET", path + "?cache=123")
    assert status == 200


# --- the domain's refusals --------------------------------------------------------------------

MONTHLY = {"billing_cycle": "monthly"}
TENANT = {"name": "New Resell", "country": "DE", "time_zone": "Europe/Berlin"}

#: (why, method, path, token, body, field, codes)
DOMAIN: list[tuple[str, str, str, str, dict[str, Any], str, set[str] | None]] = [
    # unknown product → product_id (R29)
    (
        "order an unknown product",
        "POST",
        "/subscriptions",
        "{a.admin}",
        {"account_id": "{a.z}", "product_id": GHOST_PRODUCT, **MONTHLY},
        "product_id",
        {"unknown_product"},
    ),
    (
        "customer orders an unknown product",
        "POST",
        "/subscriptions",
        "{a.as_z}",
        {"account_id": "{a.z}", "product_id": GHOST_PRODUCT, **MONTHLY},
        "product_id",
        {"unknown_product"},
    ),
    (
        "price an unknown product",
        "POST",
        "/pricelists/{a.price_list}/prices",
        "{a.admin}",
        {"product_id": GHOST_PRODUCT, "price": "1.00", **MONTHLY},
        "product_id",
        {"unknown_product"},
    ),
    (
        "add an unknown add-on",
        "POST",
        "/subscriptions/{a.sub_z}/addons",
        "{a.as_z}",
        {"product_id": GHOST_PRODUCT},
        "product_id",
        {"unknown_product"},
    ),
    (
        "upgrade to an unknown product",
        "POST",
        "/subscriptions/{a.sub_z}/actions",
        "{a.as_z}",
        {"action": "upgrade", "product_id": GHOST_PRODUCT},
        "product_id",
        {"unknown_product"},
    ),
    (
        "an add-on for an unknown product",
        "POST",
        "/products",
        "{a.admin}",
        {
            "sku": "AO",
            "name": "Add-on",
            "type": "addon",
            "billing_cycles": ["monthly"],
            "unit": "seat",
            "addon_for": [GHOST_PRODUCT],
        },
        "addon_for",
        {"unknown_product"},
    ),
    # a billing cycle the product lacks → billing_cycle
    (
        "order a monthly-only product annually",
        "POST",
        "/subscriptions",
        "{a.admin}",
        {"account_id": "{a.z}", "product_id": "{a.monthly_only}", "billing_cycle": "annual"},
        "billing_cycle",
        {"unsupported_billing_cycle"},
    ),
    (
        "price a monthly-only product annually",
        "POST",
        "/pricelists/{a.price_list}/prices",
        "{a.admin}",
        {"product_id": "{a.monthly_only}", "billing_cycle": "annual", "price": "100.00"},
        "billing_cycle",
        {"unsupported_billing_cycle"},
    ),
    # currency mismatches → the field that carries the currency
    (
        "assign a USD price list to an EUR account",
        "PATCH",
        "/accounts/{a.z}",
        "{a.admin}",
        {"price_list_id": "{a.usd_list}"},
        "price_list_id",
        {"currency_mismatch"},
    ),
    (
        "create an EUR account on a USD price list",
        "POST",
        "/accounts",
        "{a.admin}",
        {"name": "Yankee", "price_list_id": "{a.usd_list}"},
        "price_list_id",
        {"currency_mismatch"},
    ),
    (
        "create a USD account on an EUR price list",
        "POST",
        "/accounts",
        "{a.admin}",
        {"name": "Yankee", "currency": "USD", "price_list_id": "{a.price_list}"},
        "price_list_id",
        {"currency_mismatch"},
    ),
    (
        "a tenant reseller in USD on an EUR price list",
        "POST",
        "/tenants",
        "{a.admin}",
        {**TENANT, "currency": "USD", "price_list_id": "{a.price_list}"},
        "currency",
        {"currency_mismatch"},
    ),
    (
        "a customer in another currency than its lite reseller",
        "POST",
        "/accounts",
        "{a.as_lite}",
        {"name": "Yankee", "currency": "USD"},
        "currency",
        {"currency_mismatch"},
    ),
    (
        "a default price list in another currency than the tenant's",
        "POST",
        "/pricelists",
        "{a.admin}",
        {"name": "Dollar default", "currency": "USD", "default": True},
        "currency",
        {"currency_mismatch"},
    ),
    (
        "an unsupported currency",
        "POST",
        "/pricelists",
        "{a.admin}",
        {"name": "Bogus", "currency": "XXX"},
        "currency",
        None,
    ),
    (
        "a root tenant in an unsupported currency",
        "POST",
        "/tenants",
        "{platform}",
        {**TENANT, "currency": "ABC"},
        "currency",
        None,
    ),
    (
        "a root tenant without currency",
        "POST",
        "/tenants",
        "{platform}",
        TENANT,
        "currency",
        {"missing_field"},
    ),
    # prices (R4)
    (
        "price and markup together",
        "POST",
        "/pricelists/{a.price_list}/prices",
        "{a.admin}",
        {"product_id": "{a.base}", "price": "1.00", "markup_percent": "10", **MONTHLY},
        "price",
        None,
    ),
    (
        "neither price nor markup",
        "POST",
        "/pricelists/{a.price_list}/prices",
        "{a.admin}",
        {"product_id": "{a.base}", **MONTHLY},
        "price",
        None,
    ),
    (
        "more decimals than the currency has",
        "POST",
        "/pricelists/{a.price_list}/prices",
        "{a.admin}",
        {"product_id": "{a.base}", "price": "1.005", **MONTHLY},
        "price",
        None,
    ),
    (
        "a price as a JSON number (money is never a float)",
        "POST",
        "/pricelists/{a.price_list}/prices",
        "{a.admin}",
        {"product_id": "{a.base}", "price": 12.5, **MONTHLY},
        "price",
        {"invalid_type"},
    ),
    (
        "a cost as a JSON number",
        "POST",
        "/products",
        "{a.admin}",
        {
            "sku": "L",
            "name": "L",
            "type": "license",
            "billing_cycles": ["monthly"],
            "unit": "u",
            "costs": {"monthly": 9.99},
        },
        "costs.monthly",
        {"invalid_type"},
    ),
    (
        "a negative price",
        "POST",
        "/pricelists/{a.price_list}/prices",
        "{a.admin}",
        {"product_id": "{a.base}", "price": "-1.00", **MONTHLY},
        "price",
        {"invalid_format"},
    ),
    (
        "a markup above 1000 %",
        "POST",
        "/pricelists/{a.price_list}/prices",
        "{a.admin}",
        {"product_id": "{a.base}", "markup_percent": "1000.01", **MONTHLY},
        "markup_percent",
        {"out_of_range"},
    ),
    (
        "a markup on a product without cost",
        "POST",
        "/pricelists/{a.price_list}/prices",
        "{a.admin}",
        {"product_id": "{a.monthly_only}", "markup_percent": "10", **MONTHLY},
        "markup_percent",
        None,
    ),
    # one entry's fields are needed without entries; entries are not mixed with them
    (
        "an entry without its product",
        "POST",
        "/pricelists/{a.price_list}/prices",
        "{a.admin}",
        {"price": "1.00", **MONTHLY},
        "product_id",
        {"missing_field"},
    ),
    (
        "an entry without its cycle",
        "POST",
        "/pricelists/{a.price_list}/prices",
        "{a.admin}",
        {"product_id": "{a.base}", "price": "1.00"},
        "billing_cycle",
        {"missing_field"},
    ),
    (
        "entries beside one entry's fields",
        "POST",
        "/pricelists/{a.price_list}/prices",
        "{a.admin}",
        {"product_id": "{a.base}", "entries": [{"product_id": "{a.base}", **MONTHLY}]},
        "entries",
        None,
    ),
    # several entries: each checked as one is, before any is written (R29: all or none)
    (
        "a batch whose second entry names an unknown product",
        "POST",
        "/pricelists/{a.price_list}/prices",
        "{a.admin}",
        {
            "entries": [
                {"product_id": "{a.base}", "price": "26.00", **MONTHLY},
                {"product_id": GHOST_PRODUCT, "price": "1.00", **MONTHLY},
            ]
        },
        "entries.1.product_id",
        {"unknown_product"},
    ),
    (
        "a batch setting one entry twice",
        "POST",
        "/pricelists/{a.price_list}/prices",
        "{a.admin}",
        {
            "entries": [
                {"product_id": "{a.base}", "price": "26.00", **MONTHLY},
                {"product_id": "{a.base}", "price": "27.00", **MONTHLY},
            ]
        },
        "entries.1.billing_cycle",
        {"duplicate_entry"},
    ),
    (
        "a batch entry with a cycle the product lacks",
        "POST",
        "/pricelists/{a.price_list}/prices",
        "{a.admin}",
        {
            "entries": [
                {"product_id": "{a.base}", "price": "26.00", **MONTHLY},
                {"product_id": "{a.monthly_only}", "billing_cycle": "annual", "price": "1.00"},
            ]
        },
        "entries.1.billing_cycle",
        {"unsupported_billing_cycle"},
    ),
    # R34: a simulation checks its entries exactly as POST /prices does
    (
        "a simulated entry with price and markup",
        "POST",
        "/pricelists/{a.price_list}/simulate",
        "{a.admin}",
        {
            "entries": [
                {"product_id": "{a.base}", "price": "1.00", "markup_percent": "5", **MONTHLY}
            ]
        },
        "entries.0.price",
        None,
    ),
    (
        "a simulated markup on a product without cost",
        "POST",
        "/pricelists/{a.price_list}/simulate",
        "{a.admin}",
        {"entries": [{"product_id": "{a.monthly_only}", "markup_percent": "10", **MONTHLY}]},
        "entries.0.markup_percent",
        None,
    ),
    (
        "a simulated entry of an unknown product",
        "POST",
        "/pricelists/{a.price_list}/simulate",
        "{a.admin}",
        {"entries": [{"product_id": GHOST_PRODUCT, "price": "1.00", **MONTHLY}]},
        "entries.0.product_id",
        {"unknown_product"},
    ),
    (
        "a simulated price with more decimals than the currency has",
        "POST",
        "/pricelists/{a.price_list}/simulate",
        "{a.admin}",
        {"entries": [{"product_id": "{a.base}", "price": "1.005", **MONTHLY}]},
        "entries.0.price",
        None,
    ),
    # products (R1)
    (
        "an add-on for nothing",
        "POST",
        "/products",
        "{a.admin}",
        {"sku": "AO", "name": "A", "type": "addon", "billing_cycles": ["monthly"], "unit": "u"},
        "addon_for",
        {"missing_field"},
    ),
    (
        "a license that attaches to a product",
        "POST",
        "/products",
        "{a.admin}",
        {
            "sku": "L",
            "name": "L",
            "type": "license",
            "billing_cycles": ["monthly"],
            "unit": "u",
            "addon_for": ["{a.base}"],
        },
        "addon_for",
        None,
    ),
    (
        "repeated billing cycles",
        "POST",
        "/products",
        "{a.admin}",
        {
            "sku": "L",
            "name": "L",
            "type": "license",
            "billing_cycles": ["monthly", "monthly"],
            "unit": "u",
        },
        "billing_cycles",
        None,
    ),
    (
        "a cost for a cycle the product lacks",
        "POST",
        "/products",
        "{a.admin}",
        {
            "sku": "L",
            "name": "L",
            "type": "license",
            "billing_cycles": ["monthly"],
            "unit": "u",
            "costs": {"annual": "10.00"},
        },
        "costs.annual",
        None,
    ),
    (
        "a cost with too many decimals",
        "PATCH",
        "/products/{a.base}",
        "{a.admin}",
        {"costs": {"monthly": "1.001"}},
        "costs.monthly",
        None,
    ),
    ("a null name", "PATCH", "/products/{a.base}", "{a.admin}", {"name": None}, "name", None),
    (
        "repeated billing cycles on a change",
        "PATCH",
        "/products/{a.base}",
        "{a.admin}",
        {"billing_cycles": ["annual", "annual"]},
        "billing_cycles",
        None,
    ),
    # accounts and tenants
    ("a null account name", "PATCH", "/accounts/{a.z}", "{a.admin}", {"name": None}, "name", None),
    (
        "a lite reseller under a lite reseller",
        "POST",
        "/accounts",
        "{a.admin}",
        {"name": "Sub", "kind": "lite_reseller", "parent_account_id": "{a.lite}"},
        "parent_account_id",
        None,
    ),
    (
        "a customer under a customer",
        "POST",
        "/accounts",
        "{a.admin}",
        {"name": "Sub", "parent_account_id": "{a.z}"},
        "parent_account_id",
        None,
    ),
    (
        "a reseller creates a lite reseller",
        "POST",
        "/accounts",
        "{a.as_lite}",
        {"name": "Sub", "kind": "lite_reseller"},
        "kind",
        {"invalid_value"},
    ),
    (
        "an unknown price list",
        "POST",
        "/accounts",
        "{a.admin}",
        {"name": "X", "price_list_id": "prl_0000000000000000000000ghost"},
        "price_list_id",
        {"unknown_price_list"},
    ),
    (
        "a tenant reseller without a price list (R3)",
        "POST",
        "/tenants",
        "{a.admin}",
        TENANT,
        "price_list_id",
        {"missing_field"},
    ),
    (
        "a root tenant with a price list",
        "POST",
        "/tenants",
        "{platform}",
        {**TENANT, "currency": "EUR", "price_list_id": "{a.price_list}"},
        "price_list_id",
        None,
    ),
    (
        "an unknown time zone",
        "POST",
        "/tenants",
        "{platform}",
        {**TENANT, "currency": "EUR", "time_zone": "Mars/Olympus_Mons"},
        "time_zone",
        None,
    ),
    (
        "a time zone that is a path",
        "POST",
        "/tenants",
        "{platform}",
        {**TENANT, "currency": "EUR", "time_zone": "../../etc/passwd"},
        "time_zone",
        None,
    ),
    (
        "billing day 32",
        "POST",
        "/tenants",
        "{platform}",
        {**TENANT, "currency": "EUR", "billing_day": 32},
        "billing_day",
        {"out_of_range"},
    ),
    (
        "billing day 0",
        "POST",
        "/tenants",
        "{platform}",
        {**TENANT, "currency": "EUR", "billing_day": 0},
        "billing_day",
        {"out_of_range"},
    ),
    (
        "a 201-character name",
        "POST",
        "/pricelists",
        "{a.admin}",
        {"name": "n" * 201, "currency": "EUR"},
        "name",
        {"out_of_range"},
    ),
    (
        "a blank name",
        "POST",
        "/pricelists",
        "{a.admin}",
        {"name": "   ", "currency": "EUR"},
        "name",
        {"invalid_format"},
    ),
    # subscriptions and actions (R8, R9)
    (
        "quantity 0",
        "POST",
        "/subscriptions",
        "{a.admin}",
        {"account_id": "{a.z}", "product_id": "{a.base}", "quantity": 0, **MONTHLY},
        "quantity",
        {"out_of_range"},
    ),
    (
        "quantity as a string",
        "POST",
        "/subscriptions",
        "{a.admin}",
        {"account_id": "{a.z}", "product_id": "{a.base}", "quantity": "3", **MONTHLY},
        "quantity",
        {"invalid_type"},
    ),
    (
        "a term shorter than the billing cycle",
        "POST",
        "/subscriptions",
        "{a.admin}",
        {
            "account_id": "{a.z}",
            "product_id": "{a.base}",
            "billing_cycle": "annual",
            "term": "monthly",
        },
        "term",
        None,
    ),
    (
        "a start two years ahead",
        "POST",
        "/subscriptions",
        "{a.admin}",
        {"account_id": "{a.z}", "product_id": "{a.base}", "start_date": "2099-01-01", **MONTHLY},
        "start_date",
        {"out_of_range"},
    ),
    (
        "an add-on ordered as a subscription",
        "POST",
        "/subscriptions",
        "{a.admin}",
        {"account_id": "{a.z}", "product_id": "{a.addon}", **MONTHLY},
        "product_id",
        {"addon_needs_base"},
    ),
    (
        "a license added as an add-on",
        "POST",
        "/subscriptions/{a.sub_z}/addons",
        "{a.admin}",
        {"product_id": "{a.monthly_only}"},
        "product_id",
        {"not_an_addon"},
    ),
    (
        "a product the buyer's list lacks",
        "POST",
        "/subscriptions",
        "{a.as_x}",
        {"account_id": "{a.x}", "product_id": "{a.monthly_only}", **MONTHLY},
        "product_id",
        {"not_in_price_list"},
    ),
    (
        "change_quantity without quantity",
        "POST",
        "/subscriptions/{a.sub_z}/actions",
        "{a.admin}",
        {"action": "change_quantity"},
        "quantity",
        {"missing_field"},
    ),
    (
        "suspend with a quantity",
        "POST",
        "/subscriptions/{a.sub_z}/actions",
        "{a.admin}",
        {"action": "suspend", "quantity": 2},
        "quantity",
        {"unknown_field"},
    ),
    (
        "cancel with a product",
        "POST",
        "/subscriptions/{a.sub_z}/actions",
        "{a.admin}",
        {"action": "cancel", "product_id": "{a.base}"},
        "product_id",
        {"unknown_field"},
    ),
    (
        "the quantity it already has",
        "POST",
        "/subscriptions/{a.sub_z}/actions",
        "{a.admin}",
        {"action": "change_quantity", "quantity": 3},
        "quantity",
        {"unchanged"},
    ),
    (
        "an unknown action",
        "POST",
        "/subscriptions/{a.sub_z}/actions",
        "{a.admin}",
        {"action": "delete"},
        "action",
        {"invalid_value"},
    ),
    (
        "upgrade to the same product",
        "POST",
        "/subscriptions/{a.sub_z}/actions",
        "{a.admin}",
        {"action": "upgrade", "product_id": "{a.base}"},
        "product_id",
        {"unchanged"},
    ),
    (
        "a characteristic key with a space",
        "POST",
        "/subscriptions/{a.sub_z}/addons",
        "{a.admin}",
        {"product_id": "{a.addon}", "characteristics": {"bad key": "v"}},
        "characteristics",
        None,
    ),
]


@pytest.mark.parametrize(
    "method,path,token,body,field,codes",
    [pytest.param(*case[1:], id=case[0]) for case in DOMAIN],
)
def test_r29_the_domain_refuses_with_the_field_named(
    world: World,
    method: str,
    path: str,
    token: str,
    body: dict[str, Any],
    field: str,
    codes: set[str] | None,
) -> None:
    assert_refused(
        world,
        method,
        _fill(path, world),
        _fill(token, world),
        _fill(body, world),
        field=field,
        codes=codes,
    )


def test_r29_a_malformed_idempotency_key_is_named(world: World) -> None:
    target = BODY_TARGETS[("POST", "/pricelists")]
    for key in ("has space", "k" * 256, "é"):
        assert_refused(
            world,
            "POST",
            "/pricelists",
            world.a.admin,
            target.body,
            headers={"Idempotency-Key": key},
            field="Idempotency-Key",
        )


@pytest.mark.parametrize(
    "path",
    ["/accounts/" + "a" * 65, "/accounts/" + "a" * 3000, "/subscriptions/bad%20id", "/orders/é"],
)
def test_r28_a_malformed_path_id_is_a_404(world: World, path: str) -> None:
    """A path id that no id can look like names nothing (R28) and never reaches DynamoDB with
    a key it refuses (a sort key over 1,024 bytes is a ValidationException: a 500 in AWS)."""
    before = world.counts()
    status, body = world.api.call("GET", path, world.a.admin)
    assert status == 404, body
    assert body["error"]["code"] == "not_found"
    assert world.counts() == before


def test_r29_a_cursor_with_an_oversized_or_broken_key_is_named(world: World) -> None:
    """A cursor is DynamoDB's key: one DynamoDB would refuse (over 1,024 bytes of UTF-8, or a
    lone surrogate) is a 400 naming ``cursor``, not a 500."""
    import base64

    a = world.a
    for key in ["é" * 600, "\ud800", "x" * 1025]:
        cursor_key = {"tenant_id": {"S": a.id}, "id": {"S": key}}
        raw = json.dumps(cursor_key).encode()
        cursor = base64.urlsafe_b64encode(raw).decode().rstrip("=")
        if len(cursor) > 2048:  # the query model's own limit answers first
            continue
        assert_refused(
            world,
            "GET",
            f"/accounts?cursor={cursor}",
            a.admin,
            field="cursor",
            codes={"invalid_cursor"},
        )


# --- generated bad values ---------------------------------------------------------------------

_JSON_OF_TYPE = {
    "string": st.text(max_size=5),
    "integer": st.integers(min_value=-5, max_value=5),
    "number": st.floats(allow_nan=False, allow_infinity=False).filter(lambda f: f != int(f)),
    "boolean": st.booleans(),
    "array": st.lists(st.integers(), max_size=2),
    "object": st.dictionaries(st.sampled_from(["q", "r"]), st.integers(), max_size=2),
    "null": st.none(),
}


def _wrong_type(schema: dict[str, Any], defs: dict[str, Any]) -> st.SearchStrategy[Any]:
    """JSON values of every type but the field's own (and but null when it is nullable)."""
    nullable = "null" in json.dumps(schema.get("anyOf", []))
    kind = _resolve(schema, defs).get("type")
    excluded = {kind, "null" if nullable else ""}
    if kind == "integer":
        excluded.add("integer")
    return st.one_of([s for name, s in _JSON_OF_TYPE.items() if name not in excluded])


FIELDS = [
    (key, name, prop)
    for key in sorted(BODY_TARGETS)
    for name, prop in _body_schema(key)["properties"].items()
]


@settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_r29_generated_mistyped_values_are_named(world: World, data: st.DataObject) -> None:
    key, name, prop = data.draw(st.sampled_from(FIELDS), label="field")
    route = ROUTE[key]
    assert route.body is not None
    defs = route.body.model_json_schema(mode="validation").get("$defs", {})
    value = data.draw(_wrong_type(prop, defs), label="value")
    target = BODY_TARGETS[key]
    body = {**_fill(target.body, world), name: value}
    assert_refused(
        world,
        key[0],
        _fill(target.path, world),
        _fill(target.token, world),
        body,
        field=name,
        codes={"invalid_type", "invalid_value"},
    )


@settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    key=st.sampled_from(sorted(QUERY_TARGETS)),
    name=st.sampled_from(["limit", "cursor"]),
    value=st.text(min_size=0, max_size=12),
)
def test_r29_generated_query_values_never_fail_the_server(
    world: World, key: tuple[str, str], name: str, value: str
) -> None:
    """Any text in ``limit`` / ``cursor``: a page (200) or a 400 naming that parameter."""
    target = QUERY_TARGETS[key]
    before = world.counts()
    filled = _fill(target.path, world)
    joint = "&" if "?" in filled else "?"
    path = f"{filled}{joint}{name}={quote(value.encode('utf-8', 'replace'))}"
    status, body = send(world, "GET", path, _fill(target.token, world))
    assert status in (200, 400), body
    if status == 400:
        assert body["error"]["details"]["field"] == name, body
    assert world.counts() == before
