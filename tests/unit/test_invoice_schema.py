"""The invoice line's fields are declared once, by the domain's ``InvoiceLine`` (R26): the API's
``InvoiceLineOut`` is derived from them, in their order, amounts and factors as strings (R23),
the kind by its value, with the descriptions ``/openapi.json`` shows."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

import pytest

from functions.invoices import domain
from functions.invoices.domain import InvoiceLine, LineKind, Named, Period
from functions.invoices.routes import line_out
from functions.invoices.schemas import LINE_DESCRIPTIONS, InvoiceLineOut, out_model

MARCH = Period(date(2026, 3, 1), date(2026, 4, 1))


def test_r26_the_line_out_has_the_domain_lines_fields_in_their_order() -> None:
    assert list(InvoiceLineOut.model_fields) == [f.name for f in dataclasses.fields(InvoiceLine)]
    schema = InvoiceLineOut.model_json_schema()
    assert {name: schema["properties"][name]["description"] for name in LINE_DESCRIPTIONS} == (
        LINE_DESCRIPTIONS
    )
    assert schema["required"] == [
        f.name for f in dataclasses.fields(InvoiceLine) if f.default is dataclasses.MISSING
    ]
    wire = {name: prop.get("type") for name, prop in schema["properties"].items()}
    assert wire["no"] == "integer"
    assert {wire[name] for name in ("kind", "quantity", "unit_price", "proration", "amount")} == {
        "string"
    }


def test_r23_r26_a_line_is_answered_with_amounts_as_strings_and_its_kind_by_value() -> None:
    segment = domain.Segment(date(2026, 3, 10), date(2026, 4, 1), 3, Decimal("25.00"), "p1")
    charge = domain.charge("sub_1", segment, MARCH, "EUR")
    credit = domain.credit(charge, date(2026, 3, 20), date(2026, 4, 1), "EUR")
    named = Named("SKU", "Seats", "seat", "acc_1", "Anna")
    lines = domain.invoice_lines([(charge, named), (credit, named)])
    answered = [line_out(line, "EUR").model_dump(mode="json") for line in lines]
    assert [(a["kind"], a["amount"], a["proration"]) for a in answered] == [
        ("charge", "53.23", "0.709677"),
        ("credit", "-29.03", "0.387097"),
    ]
    assert answered[1]["credits"] == answered[0]["key"] == charge.key
    assert lines[0].kind is LineKind.CHARGE and lines[1].kind == "credit"


def test_a_description_of_no_field_is_refused() -> None:
    @dataclass(frozen=True)
    class Record:
        amount: Decimal

    assert list(out_model("RecordOut", Record, {}).model_fields) == ["amount"]
    with pytest.raises(ValueError, match="amont"):
        out_model("RecordOut", Record, {"amont": "a typo"})
