"""Issue 11, finding 4 (R29): inputs that were accepted but must not be. Each is now a 400 (a
401 for a token) whose error object names the field, and writes nothing:

- usage (R25): ``at`` before the subscription's start, in 1970 or 9999, ahead of the clock, or
  in a period whose usage a billing run has billed already; a quantity of 0, below 0, too large
  or with more than 6 decimals;
- ``POST /billing-runs`` (R24): a ``period_start`` in 1900, or too far back or ahead;
- free text (every context's names, descriptions, notes, contact and address fields,
  characteristics, units, categories …): NUL and the other control characters, and the bidi
  formatting characters;
- an own product reusing a SKU of the tenant's catalogue, its own or copied from its provider
  (R1, R3, R5);
- a JWT whose ``exp`` (``iat``, ``nbf``) is not a number, or whose ``role``, ``sub`` or
  ``tenant_id`` is not a string (R28): 401 naming the claim, never a 500 or a 200.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from datetime import time as dt_time
from typing import Any
from zoneinfo import ZoneInfo

import jwt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from local.runner import Runner
from tests.api.world import aws_env
from tests.conftest import SECRET, Api, token, writes

BERLIN_NOON = 11  # 12:00 in Berlin (CET) in winter, as UTC hours
PLACE = {"country": "DE", "time_zone": "Europe/Berlin", "currency": "EUR"}

#: what no free text may hold (core/schemas.py): controls, and the bidi formatting characters
CONTROLS = [chr(c) for c in [*range(0x00, 0x20), *range(0x7F, 0xA0)]]
BIDI = ["\u061c", "\u200e", "\u200f", *map(chr, range(0x202A, 0x202F)), *"\u2066\u2067\u2068\u2069"]
FORBIDDEN = CONTROLS + BIDI + ["\u2028", "\u2029"]
MULTILINE_OK = ["\t", "\n", "\r", "\u2028", "\u2029"]  # line breaks, in multi-line text


def created(result: tuple[int, Any]) -> Any:
    status, body = result
    assert status in (200, 201, 202), body
    return body


def refused(result: tuple[int, Any], field: str, *codes: str, status: int = 400) -> Any:
    got, body = result
    assert got == status, body
    error = body["error"]
    assert error["details"]["field"] == field, error
    if codes:
        assert error["code"] in codes, error
    return error


class Clock:
    """The tenant's "today" (what ``today_in`` reads) and the creation times of tenants."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        from functions.core import clock
        from functions.core import services as core_services

        self.now = datetime.now(UTC)
        monkeypatch.setattr(clock, "now_utc", lambda: self.now)
        monkeypatch.setattr(core_services, "now_utc", lambda: self.now)

    def set(self, moment: str) -> None:
        self.now = datetime.fromisoformat(moment)


def metered_world(api: Api) -> dict[str, str]:
    """Cloud (billing day 1, Berlin) with an Azure plan (usage, "EUR consumed") in its default
    list, sold to customer Z from today (tenant time)."""
    platform = token("platform_admin")
    cloud = created(api.call("POST", "/tenants", platform, {"name": "Cloud", **PLACE}))["id"]
    admin = token("tenant_admin", cloud)
    azure = created(
        api.call(
            "POST",
            "/products",
            admin,
            {
                "sku": "AZURE",
                "name": "Azure plan",
                "type": "usage",
                "billing_cycles": ["monthly"],
                "unit": "EUR consumed",
            },
        )
    )["id"]
    retail = created(
        api.call(
            "POST", "/pricelists", admin, {"name": "Retail", "currency": "EUR", "default": True}
        )
    )["id"]
    created(
        api.call(
            "POST",
            f"/pricelists/{retail}/prices",
            admin,
            {"product_id": azure, "billing_cycle": "monthly", "price": "0.85"},
        )
    )
    z = created(api.call("POST", "/accounts", admin, {"name": "Customer Z"}))["id"]
    sub = created(
        api.call(
            "POST",
            "/subscriptions",
            admin,
            {"account_id": z, "product_id": azure, "billing_cycle": "monthly"},
        )
    )["subscription"]
    return {"tenant": cloud, "admin": admin, "sub": sub["id"], "z": z, "start": sub["start_date"]}


def use(sub: str, at: str, key: str = "k1", quantity: str = "1") -> dict[str, str]:
    return {
        "subscription_id": sub,
        "quantity": quantity,
        "unit": "EUR consumed",
        "at": at,
        "key": key,
    }


def utc(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def usage_keys(api: Api, who: str, sub: str) -> list[str]:
    return [
        r["key"] for r in created(api.call("GET", f"/usage?subscription_id={sub}", who))["items"]
    ]


# --- usage: when (R25) --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "at",
    [
        "1970-01-01T00:00:00Z",
        "9999-12-31T23:59:59Z",
        "9999-12-31T23:59:59-01:00",  # past datetime's range once in UTC: still a 400
        "0001-01-01T00:00:00+01:00",
        "2000-02-29T12:00:00+14:00",
    ],
)
def test_r25_r29_issue_11_usage_dated_far_away_is_refused_naming_at(api: Api, at: str) -> None:
    """Issue 11: usage in 1970 or 9999 was accepted (201) and never billed."""
    w = metered_world(api)
    before = writes()
    refused(api.call("POST", "/usage", w["admin"], use(w["sub"], at)), "at", "out_of_range")
    assert writes() == before
    assert usage_keys(api, w["admin"], w["sub"]) == []


def test_r25_r29_issue_11_usage_before_the_subscriptions_start_is_refused(api: Api) -> None:
    """Issue 11: a use dated before its subscription started was accepted. The subscription
    starts at local midnight (Berlin) of its start date: one second before is refused, the
    start itself is accepted."""
    w = metered_world(api)
    start = datetime.combine(date.fromisoformat(w["start"]), dt_time(0), ZoneInfo("Europe/Berlin"))
    error = refused(
        api.call("POST", "/usage", w["admin"], use(w["sub"], utc(start - timedelta(seconds=1)))),
        "at",
        "out_of_range",
    )
    assert "before the subscription's start" in error["message"]
    created(api.call("POST", "/usage", w["admin"], use(w["sub"], utc(start), key="at-start")))


def test_r25_r29_issue_11_usage_ahead_of_the_clock_is_refused_beyond_5_minutes(api: Api) -> None:
    """A use is not dated in the future; the reporter's clock may run up to 5 minutes ahead."""
    w = metered_world(api)
    now = datetime.now(UTC)
    ahead = utc(now + timedelta(minutes=10))
    error = refused(
        api.call("POST", "/usage", w["admin"], use(w["sub"], ahead)), "at", "out_of_range"
    )
    assert "in the future" in error["message"]
    created(api.call("POST", "/usage", w["admin"], use(w["sub"], utc(now + timedelta(minutes=2)))))


@pytest.fixture
def clock(aws: None, monkeypatch: pytest.MonkeyPatch) -> Clock:
    return Clock(monkeypatch)


def test_r21_r25_issue_11_usage_of_a_billed_period_is_refused_and_what_is_accepted_is_billed(
    api: Api, clock: Clock
) -> None:
    """Usage is billed in arrears (R21): the run of a period bills the previous period's usage,
    once. Until that run starts, the previous period's usage is accepted (and billed by it);
    after, a use dated in it would never be billed: 400 ``period_billed`` naming ``at``. A
    retry of a use recorded in time still answers the record (R25). The current period stays
    open until the next period's run, which may be run ahead (then it too is closed)."""
    clock.set(f"2026-02-10T{BERLIN_NOON}:00:00+00:00")
    w = metered_world(api)
    assert w["start"] == "2026-02-10"
    admin, sub = w["admin"], w["sub"]
    created(api.call("POST", "/usage", admin, use(sub, "2026-02-10T11:00:00Z", "feb-10", "10")))

    clock.set(f"2026-03-01T{BERLIN_NOON}:00:00+00:00")  # March's run has not started yet
    late = use(sub, "2026-02-28T22:30:00Z", "feb-28", "5")  # 23:30 in Berlin, the 28th
    created(api.call("POST", "/usage", admin, late))
    created(api.call("POST", "/billing-runs", admin, {"period_start": "2026-03-01"}))

    error = refused(
        api.call("POST", "/usage", admin, use(sub, "2026-02-27T10:00:00Z", "feb-27", "7")),
        "at",
        "period_billed",
    )
    assert error["details"]["earliest"] == "2026-02-28T23:00:00Z"  # 1 March, Berlin
    assert created(api.call("POST", "/usage", admin, late))["quantity"] == "5"  # a retry
    created(api.call("POST", "/usage", admin, use(sub, "2026-03-01T10:00:00Z", "mar-1", "2")))
    assert usage_keys(api, admin, sub) == ["feb-10", "feb-28", "mar-1"]

    # everything accepted for February is on March's invoice
    (invoice,) = created(api.call("GET", f"/invoices?account_id={w['z']}", admin))["items"]
    lines = created(api.call("GET", f"/invoices/{invoice['id']}", admin))["lines"]
    assert [(ln["kind"], ln["quantity"]) for ln in lines] == [("usage", "15")]

    # April run ahead (in advance) bills March's usage: March is closed too
    created(api.call("POST", "/billing-runs", admin, {"period_start": "2026-04-01"}))
    refused(
        api.call("POST", "/usage", admin, use(sub, "2026-03-01T10:30:00Z", "mar-1b")),
        "at",
        "period_billed",
    )


# --- usage: how much (R25) ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "quantity",
    ["0", "0.0", "0.000000", "00", "-1", "-0.5", "1000000000", "9999999999", "1.1234567", "1e3"],
)
def test_r25_r29_issue_11_a_usage_quantity_of_0_or_out_of_bounds_is_refused(
    api: Api, quantity: str
) -> None:
    """Issue 11: ``"quantity": "0"`` was accepted. A use is more than 0 and less than a billion
    units, with at most 6 decimals."""
    w = metered_world(api)
    now = utc(datetime.now(UTC))
    refused(
        api.call("POST", "/usage", w["admin"], use(w["sub"], now, quantity=quantity)),
        "quantity",
        "out_of_range",
        "invalid_format",
    )
    assert usage_keys(api, w["admin"], w["sub"]) == []


@pytest.mark.parametrize("quantity", ["0.000001", "999999999.999999", "1", "12.5"])
def test_r25_usage_quantities_within_the_bounds_are_recorded(api: Api, quantity: str) -> None:
    w = metered_world(api)
    body = use(w["sub"], utc(datetime.now(UTC)), quantity=quantity)
    assert created(api.call("POST", "/usage", w["admin"], body))["quantity"] == quantity


# --- billing runs (R24) ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("period_start", "code"),
    [
        ("1900-01-01", "out_of_range"),
        ("0001-01-01", "out_of_range"),
        ("2025-11-01", "out_of_range"),  # before the tenant was created, and too far back
        ("2026-01-01", "out_of_range"),  # the previous period, but the tenant is from February
        ("2026-04-01", "future_period"),  # two periods ahead
        ("9999-12-01", "future_period"),
    ],
)
def test_r24_r29_issue_11_a_billing_run_of_a_period_out_of_bounds_is_refused(
    api: Api, clock: Clock, period_start: str, code: str
) -> None:
    """Issue 11: ``POST /billing-runs {"period_start": "1900-01-01"}`` answered 202 and the run
    completed. Cloud, created on 10 February 2026 (billing day 1), may run February (current),
    March (ahead); nothing else, and nothing is written for a refused one."""
    clock.set(f"2026-02-10T{BERLIN_NOON}:00:00+00:00")
    w = metered_world(api)
    before = writes()
    body = {"period_start": period_start}
    refused(api.call("POST", "/billing-runs", w["admin"], body), "period_start", code)
    assert writes() == before
    assert created(api.call("GET", "/billing-runs", w["admin"]))["items"] == []


def test_r24_the_previous_current_and_next_periods_may_be_run(api: Api, clock: Clock) -> None:
    """A tenant created in December may, on 10 February, run January (late, or resumed),
    February and March (ahead); December is too far back (its ledgers may be pruned)."""
    clock.set(f"2025-12-05T{BERLIN_NOON}:00:00+00:00")
    w = metered_world(api)
    clock.set(f"2026-02-10T{BERLIN_NOON}:00:00+00:00")
    for period in ("2026-01-01", "2026-02-01", "2026-03-01"):
        run = created(api.call("POST", "/billing-runs", w["admin"], {"period_start": period}))
        assert run["period_start"] == period
    error = refused(
        api.call("POST", "/billing-runs", w["admin"], {"period_start": "2025-12-01"}),
        "period_start",
        "out_of_range",
    )
    assert error["details"]["earliest"] == "2026-01-01"


# --- free text ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def text_world() -> Iterator[dict[str, Any]]:
    """A tenant with a customer, a product and a price list: the targets of the text cases."""
    with aws_env() as api:
        platform = token("platform_admin")
        tenant = created(api.call("POST", "/tenants", platform, {"name": "Cloud", **PLACE}))["id"]
        admin = token("tenant_admin", tenant)
        product = created(
            api.call(
                "POST",
                "/products",
                admin,
                {
                    "sku": "E3",
                    "name": "E3",
                    "type": "license",
                    "billing_cycles": ["monthly"],
                    "unit": "seat",
                },
            )
        )["id"]
        retail = created(
            api.call(
                "POST", "/pricelists", admin, {"name": "Retail", "currency": "EUR", "default": True}
            )
        )["id"]
        created(
            api.call(
                "POST",
                f"/pricelists/{retail}/prices",
                admin,
                {"product_id": product, "billing_cycle": "monthly", "price": "10.00"},
            )
        )
        account = created(api.call("POST", "/accounts", admin, {"name": "Customer Z"}))["id"]
        yield {"api": api, "admin": admin, "account": account, "product": product}


ADDRESS = {"line1": "Main St 1", "city": "Berlin", "postal_code": "10115", "country": "DE"}

#: (method, path, body with ``{}`` where the text goes, the field named); every context
TEXT_FIELDS: list[tuple[str, str, dict[str, Any], str]] = [
    ("POST", "/accounts", {"name": "{}"}, "name"),
    ("PATCH", "/accounts/{account}", {"name": "{}"}, "name"),
    ("PATCH", "/accounts/{account}", {"accounting_number": "{}"}, "accounting_number"),
    ("PATCH", "/accounts/{account}", {"address": {**ADDRESS, "line1": "{}"}}, "address.line1"),
    ("PATCH", "/accounts/{account}", {"address": {**ADDRESS, "line2": "{}"}}, "address.line2"),
    ("PATCH", "/accounts/{account}", {"address": {**ADDRESS, "city": "{}"}}, "address.city"),
    (
        "PATCH",
        "/accounts/{account}",
        {"address": {**ADDRESS, "postal_code": "{}"}},
        "address.postal_code",
    ),
    ("POST", "/accounts/{account}/contacts", {"name": "{}"}, "name"),
    ("POST", "/accounts/{account}/notes", {"text": "{}"}, "text"),
    ("POST", "/tenants", {"name": "{}", **PLACE, "price_list_id": "nope"}, "name"),
    ("POST", "/tenants", {"name": "T", "country": "DE", "time_zone": "{}"}, "time_zone"),
    (
        "POST",
        "/usage",
        {
            "subscription_id": "s",
            "quantity": "1",
            "unit": "{}",
            "at": "2026-01-01T00:00:00Z",
            "key": "k",
        },
        "unit",
    ),
    ("POST", "/pricelists", {"name": "{}", "currency": "EUR"}, "name"),
    (
        "POST",
        "/products",
        {
            "sku": "{sku}",
            "name": "{}",
            "type": "license",
            "billing_cycles": ["monthly"],
            "unit": "u",
        },
        "name",
    ),
    (
        "POST",
        "/products",
        {
            "sku": "{sku}",
            "name": "N",
            "type": "license",
            "billing_cycles": ["monthly"],
            "unit": "{}",
        },
        "unit",
    ),
    (
        "POST",
        "/products",
        {
            "sku": "{sku}",
            "name": "N",
            "type": "license",
            "billing_cycles": ["monthly"],
            "unit": "u",
            "description": "{}",
        },
        "description",
    ),
    ("PATCH", "/products/{product}", {"categories": ["ok", "{}"]}, "categories.1"),
    (
        "POST",
        "/subscriptions",
        {
            "account_id": "{account}",
            "product_id": "{product}",
            "billing_cycle": "monthly",
            "characteristics": {"domain": "{}"},
        },
        "characteristics.domain",
    ),
]


def _filled(template: Any, text: str, world: dict[str, Any]) -> Any:
    if isinstance(template, str):
        if template == "{}":
            return text
        return template.format(**world) if "{" in template else template
    if isinstance(template, list):
        return [_filled(item, text, world) for item in template]
    if isinstance(template, dict):
        return {key: _filled(value, text, world) for key, value in template.items()}
    return template


def _send(world: dict[str, Any], case: tuple[str, str, dict[str, Any], str], text: str) -> Any:
    method, path, body, _ = case
    world = {**world, "sku": f"NEW-{uuid.uuid4().hex[:12]}"}  # one SKU per product (R1)
    return world["api"].call(
        method, path.format(**world), world["admin"], _filled(body, text, world)
    )


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    case=st.sampled_from(TEXT_FIELDS),
    before=st.text(
        alphabet=st.characters(codec="utf-8", exclude_categories=("Cc", "Cs")), max_size=8
    ),
    bad=st.sampled_from(FORBIDDEN),
    after=st.text(
        alphabet=st.characters(codec="utf-8", exclude_categories=("Cc", "Cs")), max_size=8
    ),
)
def test_r29_issue_11_free_text_with_a_control_or_bidi_character_is_refused_naming_the_field(
    text_world: dict[str, Any],
    case: tuple[str, str, dict[str, Any], str],
    before: str,
    bad: str,
    after: str,
) -> None:
    """Issue 11: account names and characteristics holding NUL or bidi control characters were
    accepted. One text rule (``core/schemas.py``) covers every free-text field of every context:
    no C0/C1 control character (a multi-line text may hold tab, LF and CR) and no bidi
    formatting character (U+061C, U+200E/F, U+202A–E, U+2066–9)."""
    multiline = case[3] in ("text", "description")
    if multiline and bad in MULTILINE_OK:
        bad = "\x00"
    text = f"x{before}{bad}{after}"[:20]
    if bad not in text:
        text = f"x{bad}"
    status, body = _send(text_world, case, text)
    assert status == 400, (case, repr(text), body)
    assert body["error"]["details"]["field"] == case[3], body
    assert body["error"]["code"] == "invalid_format", body


@pytest.mark.parametrize("case", TEXT_FIELDS, ids=lambda case: f"{case[0]} {case[1]} {case[3]}")
def test_r29_free_text_without_them_is_still_accepted(
    text_world: dict[str, Any], case: tuple[str, str, dict[str, Any], str]
) -> None:
    """The rule refuses only those characters: accents, scripts, emoji (a ZWJ sequence) and,
    in notes and descriptions, line breaks are kept."""
    _, path, _, field = case
    text = "Zoë 東京 👩\u200d💻"
    if field in ("text", "description"):
        text = "line one\nline two\r\n\tend"
    if field == "address.postal_code":
        text = "10115"
    if field == "time_zone":
        text = "Europe/Berlin"
    status, body = _send(text_world, case, text)
    if path in ("/tenants", "/usage"):  # refused for another field (made-up ids), not the text
        assert body["error"].get("details", {}).get("field") != field, body
        return
    assert status in (200, 201), (case, body)


@pytest.mark.parametrize("blank", [" ", "\u3000", "\u00a0\u00a0"])
def test_r29_a_name_that_is_only_white_space_is_refused(
    text_world: dict[str, Any], blank: str
) -> None:
    status, body = _send(text_world, TEXT_FIELDS[0], blank)
    assert (status, body["error"]["details"]["field"]) == (400, "name"), body


def test_r29_issue_11_a_characteristic_key_with_a_control_character_is_refused(
    text_world: dict[str, Any],
) -> None:
    body = {
        "account_id": text_world["account"],
        "product_id": text_world["product"],
        "billing_cycle": "monthly",
        "characteristics": {"dom\u0000ain": "example.com"},
    }
    status, answer = text_world["api"].call("POST", "/subscriptions", text_world["admin"], body)
    assert status == 400, answer
    assert answer["error"]["details"]["field"].startswith("characteristics."), answer


def _strings(schema: Any, defs: dict[str, Any], where: str) -> Iterator[tuple[str, Any]]:
    """Every string schema under ``schema`` (properties, items, additionalProperties, keys)."""
    if not isinstance(schema, dict):
        return
    if "$ref" in schema:
        yield from _strings(defs[schema["$ref"].rsplit("/", 1)[-1]], defs, where)
        return
    for branch in schema.get("anyOf", []):
        yield from _strings(branch, defs, where)
    if schema.get("type") == "string":
        yield where, schema
    for name, sub in schema.get("properties", {}).items():
        yield from _strings(sub, defs, f"{where}.{name}")
    yield from _strings(schema.get("items"), defs, f"{where}[]")
    yield from _strings(schema.get("additionalProperties"), defs, f"{where}{{}}")
    for pattern, sub in schema.get("patternProperties", {}).items():
        yield f"{where}{{key}}", {"type": "string", "pattern": pattern}
        yield from _strings(sub, defs, f"{where}{{}}")
    if "propertyNames" in schema and not schema.get("patternProperties"):  # else: their keys
        yield f"{where}{{key}}", {"type": "string", **schema["propertyNames"]}


#: strings no field may match, whatever its own format: a forbidden character first, inside a
#: word, and inside an e-mail address (tab, LF and CR are allowed in multi-line text; the
#: generated cases above check one-line fields refuse them)
PROBES = [
    p
    for ch in FORBIDDEN
    if ch not in MULTILINE_OK
    for p in (f"{ch}a", f"a{ch}a", f"a{ch}@b.cd", f"ab@c{ch}d.ef")
]
#: query parameters that are not text: a cursor is decoded and checked (400 invalid_cursor)
NOT_TEXT = {"query.cursor"}


def test_r29_issue_11_every_string_of_every_request_refuses_controls_and_bidi(
    text_world: dict[str, Any],
) -> None:
    """The guard for fields to come: in ``/openapi.json``, every string a request carries (body
    or query, any depth) is an enum, a date, or has a pattern no string holding a control or
    bidi character matches — the pattern the server checks (``core/schemas.py``)."""
    document = created(text_world["api"].call("GET", "/openapi.json"))
    defs = document.get("components", {}).get("schemas", {})
    unchecked = []
    checked = 0
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if not isinstance(operation, dict):
                continue
            where = f"{method.upper()} {path}"
            schemas = [
                (f"{where} query.{p['name']}", p.get("schema", {}))
                for p in operation.get("parameters", [])
                if p.get("in") == "query"
            ]
            content = operation.get("requestBody", {}).get("content", {})
            schemas += [(f"{where} body", c.get("schema", {})) for c in content.values()]
            for root, schema in schemas:
                for name, string in _strings(schema, defs, root):
                    if "enum" in string or string.get("format") in ("date", "date-time"):
                        continue
                    if name.split(" ", 2)[-1] in NOT_TEXT:
                        continue
                    checked += 1
                    pattern = string.get("pattern")
                    if pattern is None or any(re.search(pattern, p) for p in PROBES):
                        unchecked.append((name, pattern))
    assert checked > 40
    assert unchecked == []


def test_r29_a_cursor_holding_a_control_character_is_a_400(text_world: dict[str, Any]) -> None:
    status, body = text_world["api"].call("GET", "/accounts?cursor=ab%00cd", text_world["admin"])
    assert (status, body["error"]["details"]["field"]) == (400, "cursor"), body


# --- SKUs (R1, R3, R5) ------------------------------------------------------------------------


def product(sku: str, name: str = "P") -> dict[str, Any]:
    return {"sku": sku, "name": name, "type": "license", "billing_cycles": ["monthly"], "unit": "u"}


def skus(api: Api, who: str) -> list[str]:
    return sorted(p["sku"] for p in created(api.call("GET", "/products?limit=100", who))["items"])


def test_r1_r29_issue_11_an_own_product_reusing_an_own_sku_is_refused(api: Api) -> None:
    platform = token("platform_admin")
    cloud = created(api.call("POST", "/tenants", platform, {"name": "Cloud", **PLACE}))["id"]
    admin = token("tenant_admin", cloud)
    first = created(api.call("POST", "/products", admin, product("E3")))["id"]
    before = writes()
    error = refused(
        api.call("POST", "/products", admin, product("E3", "again")), "sku", "sku_taken"
    )
    assert error["details"]["product_id"] == first
    assert writes() == before
    # another tenant's catalogue is its own: the same SKU there is fine
    other = created(api.call("POST", "/tenants", platform, {"name": "Other", **PLACE}))["id"]
    created(api.call("POST", "/products", token("tenant_admin", other), product("E3")))


def _provider_and_child(api: Api) -> dict[str, str]:
    """Cloud sells E3 through its "Resell" list to Cloud Resell (full propagation), whose
    catalogue is copied from it (R3)."""
    platform = token("platform_admin")
    cloud = created(api.call("POST", "/tenants", platform, {"name": "Cloud", **PLACE}))["id"]
    admin = token("tenant_admin", cloud)
    e3 = created(api.call("POST", "/products", admin, product("E3")))["id"]
    resell = created(api.call("POST", "/pricelists", admin, {"name": "Resell", "currency": "EUR"}))
    created(
        api.call(
            "POST",
            f"/pricelists/{resell['id']}/prices",
            admin,
            {"product_id": e3, "billing_cycle": "monthly", "price": "20.00"},
        )
    )
    child = created(
        api.call(
            "POST",
            "/tenants",
            admin,
            {"name": "Cloud Resell", **PLACE, "price_list_id": resell["id"]},
        )
    )["id"]
    return {"admin": admin, "resell": resell["id"], "child_admin": token("tenant_admin", child)}


def test_r3_r29_issue_11_an_own_product_reusing_an_inherited_sku_is_refused(api: Api) -> None:
    """Issue 11: a tenant reseller's own product reused the SKU of a product copied from its
    provider (R3)."""
    w = _provider_and_child(api)
    assert skus(api, w["child_admin"]) == ["E3"]
    refused(api.call("POST", "/products", w["child_admin"], product("E3")), "sku", "sku_taken")
    assert skus(api, w["child_admin"]) == ["E3"]


def test_r1_renaming_an_own_sku_takes_the_new_one_and_frees_the_old(api: Api) -> None:
    w = _provider_and_child(api)
    mine = created(api.call("POST", "/products", w["child_admin"], product("MINE")))["id"]
    refused(
        api.call("PATCH", f"/products/{mine}", w["child_admin"], {"sku": "E3"}), "sku", "sku_taken"
    )
    created(api.call("PATCH", f"/products/{mine}", w["child_admin"], {"sku": "MINE-2"}))
    created(api.call("POST", "/products", w["child_admin"], product("MINE")))  # free again
    refused(api.call("POST", "/products", w["child_admin"], product("MINE-2")), "sku", "sku_taken")
    assert skus(api, w["child_admin"]) == ["E3", "MINE", "MINE-2"]


def test_r5_a_propagated_copy_sharing_an_own_sku_is_made_and_blocks_it_again(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    """Decision: the provider's offer always reaches its tenant (R5), so a product the provider
    adds to the list is copied even when the child has an own product with its SKU (made
    before); both keep the SKU (a warning is logged), and no further own product may take
    it."""
    w = _provider_and_child(api)
    Runner().drain()
    mine = created(api.call("POST", "/products", w["child_admin"], product("NEW1", "mine")))["id"]
    new = created(api.call("POST", "/products", w["admin"], product("NEW1", "provider's")))["id"]
    created(
        api.call(
            "POST",
            f"/pricelists/{w['resell']}/prices",
            w["admin"],
            {"product_id": new, "billing_cycle": "monthly", "price": "5.00"},
        )
    )
    with caplog.at_level("WARNING"):
        Runner().drain()
    assert skus(api, w["child_admin"]) == ["E3", "NEW1", "NEW1"]
    assert any(
        "shares SKU NEW1" in r.getMessage() and mine in r.getMessage() for r in caplog.records
    )
    refused(api.call("POST", "/products", w["child_admin"], product("NEW1")), "sku", "sku_taken")
    created(api.call("PATCH", f"/products/{mine}", w["child_admin"], {"sku": "NEW1-OWN"}))
    refused(api.call("POST", "/products", w["child_admin"], product("NEW1")), "sku", "sku_taken")


def test_r1_two_creations_of_one_sku_racing_give_one_product(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The race-free part: the check before the write is only for the message. Two creations
    that both find the SKU free (here: the second's read made to miss the first) still give
    one product, because the SKU is taken in the product's own transaction."""
    from functions import composition

    platform = token("platform_admin")
    cloud = created(api.call("POST", "/tenants", platform, {"name": "Cloud", **PLACE}))["id"]
    admin = token("tenant_admin", cloud)
    created(api.call("POST", "/products", admin, product("E3")))
    products = composition.container().catalogue.products
    real = products.sku_holders
    calls: list[str] = []

    def stale_first_read(tenant_id: str, sku: str) -> set[str]:
        calls.append(sku)
        return set() if len(calls) == 1 else real(tenant_id, sku)

    monkeypatch.setattr(products, "sku_holders", stale_first_read)
    refused(api.call("POST", "/products", admin, product("E3", "racer")), "sku", "sku_taken")
    assert len(calls) == 2
    assert skus(api, admin) == ["E3"]


# --- tokens (R28) ------------------------------------------------------------------------------


def _claims(**changes: Any) -> dict[str, Any]:
    claims: dict[str, Any] = {
        "sub": "someone",
        "role": "tenant_admin",
        "tenant_id": "tnt_any",
        "exp": int(time.time()) + 3600,
    }
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"exp": "9999999999"}, "exp"),  # accepted before: PyJWT reads a numeric string
        ({"exp": str(int(time.time()) + 3600)}, "exp"),
        ({"exp": "soon"}, "exp"),
        ({"exp": True}, "exp"),
        ({"exp": 1e300}, "exp"),
        ({"exp": [1]}, "exp"),
        ({"iat": "0"}, "iat"),
        ({"iat": {"at": 1}}, "iat"),
        ({"nbf": "0"}, "nbf"),
        ({"nbf": int(time.time()) + 3600}, "nbf"),  # not valid yet
        ({"exp": int(time.time()) - 10}, "exp"),  # expired
        ({"role": ["tenant_admin"]}, "role"),
        ({"role": {"name": "tenant_admin"}}, "role"),
        ({"sub": 7}, "sub"),
        ({"tenant_id": 5}, "tenant_id"),
        ({"tenant_id": ["tnt_any"]}, "tenant_id"),
    ],
)
def test_r28_r29_issue_11_a_token_with_a_mistyped_claim_is_401_naming_it(
    api: Api, changes: dict[str, Any], field: str
) -> None:
    """Issue 11: a JWT whose ``exp`` is a string was accepted. A claim of the wrong type is the
    token's problem: 401 (``unauthorized``, as every token problem), ``details.field`` naming
    the claim — never a 500, never a 200."""
    bearer = jwt.encode(_claims(**changes), SECRET, algorithm="HS256")
    status, body = api.call("GET", "/accounts", bearer)
    assert status == 401, body
    assert body["error"]["code"] == "unauthorized"
    assert body["error"]["details"]["field"] == field


def test_r28_a_token_with_fractional_times_is_fine(api: Api) -> None:
    """RFC 7519's NumericDate may be fractional: a token with ``exp`` and ``iat`` as floats is
    valid (here: for a tenant that does not exist, so 404, not 401)."""
    now = time.time()
    bearer = jwt.encode(_claims(exp=now + 600.5, iat=now - 1.5), SECRET, algorithm="HS256")
    status, _ = api.call("GET", "/tenants/tnt_any", bearer)
    assert status != 401
