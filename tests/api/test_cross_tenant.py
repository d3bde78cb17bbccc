"""R28: a caller never reads or changes another tenant's or another account's data; the answer is
the one a resource that never existed gets (404 for a resource the request addresses), and
nothing is written.

The matrix covers every route of ``functions.core.api.ROUTES``: each route either has probes (a
route added later without an entry fails ``test_r28_matrix_covers_every_route``) or is exempt
with a reason. Every probe of a route naming a resource is run twice: with tenant A's real id,
and with an id that never existed (the "twin"); both answers must be the same status, code and
``details.field`` (R28: "as if it did not exist"), and ``writes()`` must not move.

Two kinds of foreign caller per route:
- *tenant*: tenant B's tenant_admin (also A's child tenant's admin, and the platform admin,
  where they may call the route);
- *account*: a user of another account inside tenant A (customer Y on customer X's data, lite
  reseller L on direct customer Z's data, reseller L2 on L's customers); on a tenant-admin-only
  route it is refused by role (403) before any lookup.

What a foreign id answers: 404 where it is the resource the request addresses (a path id, or
the ``account_id`` / ``parent_account_id`` the request acts for, body or query); where it is a
catalogue reference the request *uses* (a ``product_id`` / ``addon_for`` / ``price_list_id``),
the API answers a never-existing id with 400 naming the field (R29: "unknown product → 400
naming product_id"), so another tenant's id gets exactly that 400 too.
"""

from __future__ import annotations

import json
import string
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

import app  # noqa: F401  (registers every route in ROUTES)
from functions.core.api import ROUTES
from tests.api.world import Tenant, World, world_env


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    with world_env() as built:
        yield built


# --- the matrix -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Probe:
    """One foreign call. ``token``, ``path`` and the strings in ``body`` are templates over the
    world: ``{a.x}`` is tenant A's customer X, ``{a.as_y}`` customer Y's token, ``{b.admin}``
    tenant B's admin token, ``{platform}`` the platform admin's token."""

    why: str
    token: str
    path: str
    body: dict[str, Any] | None = None
    status: int = 404
    field: str | None = None  # the field a 400 names

    @property
    def kind(self) -> str:
        """``tenant``: a caller from another tenant (or the platform); ``account``: another
        account's user inside tenant A."""
        return "account" if self.token.startswith("{a.as_") else "tenant"


NEW_TENANT = {"name": "Sneaky", "country": "DE", "time_zone": "Europe/Berlin"}
USAGE = {
    "subscription_id": "{a.sub_z}",
    "quantity": "1",
    "unit": "seat",
    "at": "2026-11-22T10:00:00Z",
    "key": "k1",
}
UPGRADE = {"account_id": "{a.lite}", "country": "DE", "time_zone": "Europe/Berlin"}
MONTHLY = {"billing_cycle": "monthly"}

MATRIX: dict[tuple[str, str], list[Probe]] = {
    ("POST", "/tenants"): [
        Probe(
            "B makes a tenant reseller on A's price list",
            "{b.admin}",
            "/tenants",
            {**NEW_TENANT, "price_list_id": "{a.price_list}"},
            400,
            "price_list_id",
        ),
        Probe(
            "A's child tenant resells on its provider's list",
            "{a.child_admin}",
            "/tenants",
            {**NEW_TENANT, "price_list_id": "{a.price_list}"},
            400,
            "price_list_id",
        ),
        Probe(
            "a customer of A (role)",
            "{a.as_z}",
            "/tenants",
            {**NEW_TENANT, "price_list_id": "{a.price_list}"},
            403,
        ),
    ],
    ("GET", "/tenants/{tenant_id}"): [
        Probe("B reads A", "{b.admin}", "/tenants/{a.id}"),
        Probe("B reads A's child tenant", "{b.admin}", "/tenants/{a.child}"),
        Probe("A's child reads its provider", "{a.child_admin}", "/tenants/{a.id}"),
        Probe("the platform reads a non-root tenant", "{platform}", "/tenants/{a.child}"),
        Probe("a reseller of A (role)", "{a.as_lite}", "/tenants/{a.id}", status=403),
    ],
    ("POST", "/usage"): [
        Probe("B meters A's subscription", "{b.admin}", "/usage", USAGE, 404),
        Probe("A's child meters its provider's", "{a.child_admin}", "/usage", USAGE, 404),
        Probe("a customer (role)", "{a.as_z}", "/usage", USAGE, 403),
    ],
    ("GET", "/billing-runs/{run_id}"): [
        Probe("B reads A's run", "{b.admin}", "/billing-runs/{a.run}"),
        Probe("A's child reads its provider's run", "{a.child_admin}", "/billing-runs/{a.run}"),
        Probe("a customer (role)", "{a.as_z}", "/billing-runs/{a.run}", status=403),
    ],
    ("POST", "/reconciliation-runs"): [
        Probe(
            "B reconciles A's child",
            "{b.admin}",
            "/reconciliation-runs",
            {"child_tenant_id": "{a.child}"},
        ),
        Probe(
            "A's child reconciles its provider",
            "{a.child_admin}",
            "/reconciliation-runs",
            {"child_tenant_id": "{a.id}"},
        ),
        Probe(
            "a customer (role)",
            "{a.as_z}",
            "/reconciliation-runs",
            {"child_tenant_id": "{a.child}"},
            status=403,
        ),
    ],
    ("GET", "/reconciliation-runs/{run_id}"): [
        Probe("B reads A's run", "{b.admin}", "/reconciliation-runs/{a.reconciliation}"),
        Probe(
            "A's child reads its provider's run",
            "{a.child_admin}",
            "/reconciliation-runs/{a.reconciliation}",
        ),
        Probe(
            "a reseller (role)",
            "{a.as_lite}",
            "/reconciliation-runs/{a.reconciliation}",
            status=403,
        ),
    ],
    ("POST", "/reconciliation-runs/{run_id}/repair"): [
        Probe("B repairs A's run", "{b.admin}", "/reconciliation-runs/{a.reconciliation}/repair"),
        Probe(
            "A's child repairs its provider's run",
            "{a.child_admin}",
            "/reconciliation-runs/{a.reconciliation}/repair",
        ),
        Probe(
            "a customer (role)",
            "{a.as_x}",
            "/reconciliation-runs/{a.reconciliation}/repair",
            status=403,
        ),
    ],
    ("GET", "/invoices"): [
        Probe("B lists A's customer's invoices", "{b.admin}", "/invoices?account_id={a.z}"),
        Probe("Y lists Z's invoices", "{a.as_y}", "/invoices?account_id={a.z}"),
        Probe("L lists direct Z's invoices", "{a.as_lite}", "/invoices?account_id={a.z}"),
    ],
    ("GET", "/invoices/preview"): [
        Probe("B previews A's customer", "{b.admin}", "/invoices/preview?account_id={a.z}"),
        Probe("Y previews Z", "{a.as_y}", "/invoices/preview?account_id={a.z}"),
        Probe("L previews direct Z", "{a.as_lite}", "/invoices/preview?account_id={a.z}"),
    ],
    ("GET", "/invoices/{invoice_id}"): [
        Probe("B reads A's invoice", "{b.admin}", "/invoices/{a.invoice_z}"),
        Probe("A's child reads its provider's", "{a.child_admin}", "/invoices/{a.invoice_z}"),
        Probe("Y reads Z's invoice", "{a.as_y}", "/invoices/{a.invoice_z}"),
        Probe("X reads its reseller's invoice", "{a.as_x}", "/invoices/{a.invoice_lite}"),
    ],
    ("POST", "/invoices/{invoice_id}/void"): [
        Probe("B voids A's invoice", "{b.admin}", "/invoices/{a.invoice_z}/void"),
        Probe("A's child voids its provider's", "{a.child_admin}", "/invoices/{a.invoice_z}/void"),
        Probe("a customer (role)", "{a.as_z}", "/invoices/{a.invoice_z}/void", status=403),
    ],
    ("GET", "/invoices/{invoice_id}/document"): [
        Probe("B reads A's document", "{b.admin}", "/invoices/{a.invoice_z}/document"),
        Probe("Y reads Z's document", "{a.as_y}", "/invoices/{a.invoice_z}/document"),
        Probe("X reads L's document", "{a.as_x}", "/invoices/{a.invoice_lite}/document"),
    ],
    ("GET", "/usage"): [
        Probe("B reads A's usage", "{b.admin}", "/usage?subscription_id={a.sub_z}"),
        Probe("Y reads X's usage", "{a.as_y}", "/usage?subscription_id={a.sub_x}"),
        Probe("L reads direct Z's usage", "{a.as_lite}", "/usage?subscription_id={a.sub_z}"),
    ],
    ("PATCH", "/tenants/{tenant_id}"): [
        Probe("B sets A's child", "{b.admin}", "/tenants/{a.child}", {"overwrite_names": True}),
        Probe(
            "A's child sets its provider",
            "{a.child_admin}",
            "/tenants/{a.id}",
            {"overwrite_names": True},
        ),
        Probe(
            "the platform: a child tenant is not its to see",
            "{platform}",
            "/tenants/{a.child}",
            {"overwrite_names": True},
        ),
        Probe(
            "a reseller of A (role)",
            "{a.as_lite}",
            "/tenants/{a.child}",
            {"overwrite_names": True},
            403,
        ),
    ],
    ("POST", "/tenants/{tenant_id}/upgrade"): [
        Probe("B upgrades A's lite reseller", "{b.admin}", "/tenants/{a.id}/upgrade", UPGRADE),
        Probe(
            "B upgrades A's lite reseller in its own tenant",
            "{b.admin}",
            "/tenants/{b.id}/upgrade",
            UPGRADE,
            400,
            "account_id",
        ),
        Probe(
            "A's child upgrades its provider's",
            "{a.child_admin}",
            "/tenants/{a.id}/upgrade",
            UPGRADE,
        ),
        Probe("the platform (role)", "{platform}", "/tenants/{a.id}/upgrade", UPGRADE, 403),
        Probe(
            "the lite reseller itself (role)",
            "{a.as_lite}",
            "/tenants/{a.id}/upgrade",
            UPGRADE,
            403,
        ),
    ],
    ("POST", "/tenants/{tenant_id}/backordering"): [
        Probe("B activates A's child", "{b.admin}", "/tenants/{a.child}/backordering"),
        Probe("A's child activates itself", "{a.child_admin}", "/tenants/{a.child}/backordering"),
        Probe("A activates itself (not its child)", "{b.admin}", "/tenants/{a.id}/backordering"),
        Probe("the platform (role)", "{platform}", "/tenants/{a.child}/backordering", status=403),
        Probe(
            "a reseller of A (role)", "{a.as_lite}", "/tenants/{a.child}/backordering", status=403
        ),
    ],
    ("GET", "/tenants/{tenant_id}/backordering"): [
        Probe("B reads A's child's back ordering", "{b.admin}", "/tenants/{a.child}/backordering"),
        Probe("A's child reads its own", "{a.child_admin}", "/tenants/{a.child}/backordering"),
        Probe("B reads A's (not its child)", "{b.admin}", "/tenants/{a.id}/backordering"),
        Probe("the platform (role)", "{platform}", "/tenants/{a.child}/backordering", status=403),
        Probe("a customer of A (role)", "{a.as_x}", "/tenants/{a.child}/backordering", status=403),
    ],
    ("GET", "/reseller-plans"): [
        Probe("B reads A's reseller's plans", "{b.admin}", "/reseller-plans?account_id={a.lite}"),
        Probe("L2 reads L's plans", "{a.as_lite2}", "/reseller-plans?account_id={a.lite}"),
    ],
    ("POST", "/reseller-plans"): [
        Probe(
            "B puts A's reseller on a plan",
            "{b.admin}",
            "/reseller-plans",
            {"account_id": "{a.lite}", "product_id": "{a.base}"},
        ),
        Probe(
            "L2 puts L on a plan",
            "{a.as_lite2}",
            "/reseller-plans",
            {"account_id": "{a.lite}", "product_id": "{a.base}"},
        ),
    ],
    ("GET", "/accounts/{account_id}/hierarchy"): [
        Probe("B reads A's reseller tree", "{b.admin}", "/accounts/{a.lite}/hierarchy"),
        Probe("Y reads X's tree", "{a.as_y}", "/accounts/{a.x}/hierarchy"),
        Probe("X reads its reseller's tree", "{a.as_x}", "/accounts/{a.lite}/hierarchy"),
        Probe("L reads direct customer Z's tree", "{a.as_lite}", "/accounts/{a.z}/hierarchy"),
        Probe("L2 reads L's tree", "{a.as_lite2}", "/accounts/{a.lite}/hierarchy"),
    ],
    ("POST", "/accounts/{account_id}/contacts"): [
        Probe("B adds to A's customer", "{b.admin}", "/accounts/{a.x}/contacts", {"name": "Eve"}),
        Probe("Y adds to X", "{a.as_y}", "/accounts/{a.x}/contacts", {"name": "Eve"}),
        Probe("X adds to its reseller", "{a.as_x}", "/accounts/{a.lite}/contacts", {"name": "Eve"}),
        Probe("L adds to direct Z", "{a.as_lite}", "/accounts/{a.z}/contacts", {"name": "Eve"}),
        Probe("the platform (role)", "{platform}", "/accounts/{a.x}/contacts", {"name": "E"}, 403),
    ],
    ("GET", "/accounts/{account_id}/contacts"): [
        Probe("B reads A's customer's", "{b.admin}", "/accounts/{a.x}/contacts"),
        Probe("Y reads X's", "{a.as_y}", "/accounts/{a.x}/contacts"),
        Probe("L2 reads L's customer's", "{a.as_lite2}", "/accounts/{a.x}/contacts"),
        Probe("the platform (role)", "{platform}", "/accounts/{a.x}/contacts", status=403),
    ],
    ("DELETE", "/accounts/{account_id}/contacts/{contact_id}"): [
        Probe("B removes A's", "{b.admin}", "/accounts/{a.x}/contacts/{a.contact_x}"),
        Probe("Y removes X's", "{a.as_y}", "/accounts/{a.x}/contacts/{a.contact_x}"),
        Probe("L removes direct Z's", "{a.as_lite}", "/accounts/{a.z}/contacts/{a.contact_z}"),
        Probe("X removes Z's via X", "{a.as_x}", "/accounts/{a.x}/contacts/{a.contact_z}"),
    ],
    ("POST", "/accounts/{account_id}/notes"): [
        Probe("B notes on A's customer", "{b.admin}", "/accounts/{a.x}/notes", {"text": "t"}),
        Probe("L2 notes on L's customer", "{a.as_lite2}", "/accounts/{a.x}/notes", {"text": "t"}),
        Probe("L notes on direct Z", "{a.as_lite}", "/accounts/{a.z}/notes", {"text": "t"}),
        Probe("a customer (staff only)", "{a.as_x}", "/accounts/{a.x}/notes", {"text": "t"}),
        Probe("L on its customer (staff)", "{a.as_lite}", "/accounts/{a.x}/notes", {"text": "t"}),
    ],
    ("GET", "/accounts/{account_id}/notes"): [
        Probe("B reads A's customer's", "{b.admin}", "/accounts/{a.x}/notes"),
        Probe("L2 reads L's customer's", "{a.as_lite2}", "/accounts/{a.x}/notes"),
        Probe("a customer reads its own (staff only)", "{a.as_x}", "/accounts/{a.x}/notes"),
        Probe("L reads its customer's (staff only)", "{a.as_lite}", "/accounts/{a.x}/notes"),
    ],
    ("POST", "/accounts"): [
        Probe(
            "B creates a customer under A's lite reseller",
            "{b.admin}",
            "/accounts",
            {"name": "Sneaky", "parent_account_id": "{a.lite}"},
        ),
        Probe(
            "B assigns A's price list",
            "{b.admin}",
            "/accounts",
            {"name": "Sneaky", "price_list_id": "{a.reseller_list}"},
            400,
            "price_list_id",
        ),
        Probe(
            "reseller L2 creates a customer under L",
            "{a.as_lite2}",
            "/accounts",
            {"name": "Sneaky", "parent_account_id": "{a.lite}"},
        ),
        Probe(
            "customer Z (role)",
            "{a.as_z}",
            "/accounts",
            {"name": "Sneaky", "parent_account_id": "{a.lite}"},
            403,
        ),
    ],
    ("GET", "/accounts"): [
        Probe(
            "B lists A's lite reseller's customers",
            "{b.admin}",
            "/accounts?parent_account_id={a.lite}",
        ),
        Probe("L2 lists L's customers", "{a.as_lite2}", "/accounts?parent_account_id={a.lite}"),
        Probe(
            "X lists its reseller's customers", "{a.as_x}", "/accounts?parent_account_id={a.lite}"
        ),
    ],
    ("GET", "/accounts/{account_id}"): [
        Probe("B reads A's customer", "{b.admin}", "/accounts/{a.x}"),
        Probe(
            "A's child reads its account in A's BSS",
            "{a.child_admin}",
            "/accounts/{a.child_account}",
        ),
        Probe("Y reads X", "{a.as_y}", "/accounts/{a.x}"),
        Probe("X reads its lite reseller", "{a.as_x}", "/accounts/{a.lite}"),
        Probe("L reads direct customer Z", "{a.as_lite}", "/accounts/{a.z}"),
        Probe("L reads L2", "{a.as_lite}", "/accounts/{a.lite2}"),
        Probe("L2 reads L's customer", "{a.as_lite2}", "/accounts/{a.x}"),
    ],
    ("PATCH", "/accounts/{account_id}"): [
        Probe("B renames A's customer", "{b.admin}", "/accounts/{a.x}", {"name": "Mine"}),
        Probe(
            "B assigns A's price list to its own customer",
            "{b.admin}",
            "/accounts/{b.z}",
            {"price_list_id": "{a.price_list}"},
            400,
            "price_list_id",
        ),
        Probe("Y renames X", "{a.as_y}", "/accounts/{a.x}", {"name": "Mine"}),
        Probe("L renames Z", "{a.as_lite}", "/accounts/{a.z}", {"email": "l@example.com"}),
        Probe("L2 renames L's customer", "{a.as_lite2}", "/accounts/{a.y}", {"name": "Mine"}),
    ],
    ("GET", "/products"): [
        Probe(
            "B browses at A's price list",
            "{b.admin}",
            "/products?price_list_id={a.price_list}",
            status=400,
            field="price_list_id",
        ),
        Probe(
            "customer Z browses at the resellers' list",
            "{a.as_z}",
            "/products?price_list_id={a.reseller_list}",
            status=400,
            field="price_list_id",
        ),
    ],
    ("POST", "/products"): [
        Probe(
            "B makes an add-on for A's product",
            "{b.admin}",
            "/products",
            {
                "sku": "SNEAK",
                "name": "Sneak",
                "type": "addon",
                "billing_cycles": ["monthly"],
                "unit": "seat",
                "addon_for": ["{a.base}"],
            },
            400,
            "addon_for",
        ),
        Probe(
            "a reseller of A (role)",
            "{a.as_lite}",
            "/products",
            {
                "sku": "SNEAK",
                "name": "Sneak",
                "type": "addon",
                "billing_cycles": ["monthly"],
                "unit": "seat",
                "addon_for": ["{a.base}"],
            },
            403,
        ),
    ],
    ("GET", "/products/{product_id}"): [
        Probe("B reads A's product", "{b.admin}", "/products/{a.base}"),
        Probe("B reads A's add-on", "{b.admin}", "/products/{a.addon}"),
        Probe(
            "Z reads a product only resellers are offered",
            "{a.as_z}",
            "/products/{a.reseller_only}",
        ),
        Probe("X reads a product its list lacks", "{a.as_x}", "/products/{a.monthly_only}"),
    ],
    ("PATCH", "/products/{product_id}"): [
        Probe("B renames A's product", "{b.admin}", "/products/{a.base}", {"name": "Mine"}),
        Probe(
            "A's child renames its provider's original",
            "{a.child_admin}",
            "/products/{a.base}",
            {"name": "Mine"},
        ),
        Probe("a reseller of A (role)", "{a.as_lite}", "/products/{a.base}", {"name": "Mine"}, 403),
    ],
    ("DELETE", "/products/{product_id}"): [
        Probe("B retires A's product", "{b.admin}", "/products/{a.base}"),
        Probe("A's child retires its provider's original", "{a.child_admin}", "/products/{a.base}"),
        Probe("a reseller of A (role)", "{a.as_lite}", "/products/{a.base}", status=403),
    ],
    ("GET", "/pricelists/{price_list_id}"): [
        Probe("B reads A's list", "{b.admin}", "/pricelists/{a.price_list}"),
        Probe("A's child reads its assigned list", "{a.child_admin}", "/pricelists/{a.price_list}"),
        Probe("customer Z (role)", "{a.as_z}", "/pricelists/{a.price_list}", status=403),
    ],
    ("POST", "/pricelists/{price_list_id}/prices"): [
        Probe(
            "B prices its product in A's list",
            "{b.admin}",
            "/pricelists/{a.price_list}/prices",
            {"product_id": "{b.base}", "price": "1.00", **MONTHLY},
        ),
        Probe(
            "B prices A's product in its own list",
            "{b.admin}",
            "/pricelists/{b.price_list}/prices",
            {"product_id": "{a.base}", "price": "1.00", **MONTHLY},
            400,
            "product_id",
        ),
        Probe(
            "a reseller of A (role)",
            "{a.as_lite}",
            "/pricelists/{a.reseller_list}/prices",
            {"product_id": "{a.base}", "price": "1.00", **MONTHLY},
            403,
        ),
        Probe(
            "B prices several entries in A's list",
            "{b.admin}",
            "/pricelists/{a.price_list}/prices",
            {"entries": [{"product_id": "{b.base}", "price": "1.00", **MONTHLY}]},
        ),
        Probe(
            "B prices A's product among entries of its own list",
            "{b.admin}",
            "/pricelists/{b.price_list}/prices",
            {
                "entries": [
                    {"product_id": "{b.base}", "price": "1.00", **MONTHLY},
                    {"product_id": "{a.base}", "price": "1.00", **MONTHLY},
                ]
            },
            400,
            "entries.1.product_id",
        ),
    ],
    ("POST", "/pricelists/{price_list_id}/simulate"): [
        Probe(
            "B simulates a change of A's list",
            "{b.admin}",
            "/pricelists/{a.price_list}/simulate",
            {"entries": [{"product_id": "{b.base}", "price": "1.00", **MONTHLY}]},
        ),
        Probe(
            "A's child simulates a change of its provider's list",
            "{a.child_admin}",
            "/pricelists/{a.price_list}/simulate",
            {"entries": [{"product_id": "{a.base}", "price": "1.00", **MONTHLY}]},
        ),
        Probe(
            "B simulates A's product in its own list",
            "{b.admin}",
            "/pricelists/{b.price_list}/simulate",
            {"entries": [{"product_id": "{a.base}", "price": "1.00", **MONTHLY}]},
            400,
            "entries.0.product_id",
        ),
        Probe(
            "a reseller of A (role)",
            "{a.as_lite}",
            "/pricelists/{a.reseller_list}/simulate",
            {"entries": [{"product_id": "{a.base}", "price": "1.00", **MONTHLY}]},
            403,
        ),
        Probe(
            "customer Z (role)",
            "{a.as_z}",
            "/pricelists/{a.price_list}/simulate",
            {"entries": [{"product_id": "{a.base}", "price": "1.00", **MONTHLY}]},
            403,
        ),
    ],
    ("GET", "/pricelists/{price_list_id}/prices"): [
        Probe("B reads A's prices", "{b.admin}", "/pricelists/{a.price_list}/prices"),
        Probe(
            "A's child reads its cost list", "{a.child_admin}", "/pricelists/{a.price_list}/prices"
        ),
        Probe(
            "a reseller of A (role)",
            "{a.as_lite}",
            "/pricelists/{a.reseller_list}/prices",
            status=403,
        ),
    ],
    ("POST", "/subscriptions"): [
        Probe(
            "B orders for A's customer",
            "{b.admin}",
            "/subscriptions",
            {"account_id": "{a.z}", "product_id": "{b.base}", **MONTHLY},
        ),
        Probe(
            "B orders A's product for its customer",
            "{b.admin}",
            "/subscriptions",
            {"account_id": "{b.z}", "product_id": "{a.base}", **MONTHLY},
            400,
            "product_id",
        ),
        Probe(
            "Y orders for X",
            "{a.as_y}",
            "/subscriptions",
            {"account_id": "{a.x}", "product_id": "{a.base}", **MONTHLY},
        ),
        Probe(
            "L orders for direct customer Z",
            "{a.as_lite}",
            "/subscriptions",
            {"account_id": "{a.z}", "product_id": "{a.base}", **MONTHLY},
        ),
        Probe(
            "L2 orders for L's customer",
            "{a.as_lite2}",
            "/subscriptions",
            {"account_id": "{a.x}", "product_id": "{a.base}", **MONTHLY},
        ),
    ],
    ("GET", "/subscriptions"): [
        Probe(
            "B lists A's customer's subscriptions", "{b.admin}", "/subscriptions?account_id={a.z}"
        ),
        Probe("Y lists X's", "{a.as_y}", "/subscriptions?account_id={a.x}"),
        Probe("L lists Z's", "{a.as_lite}", "/subscriptions?account_id={a.z}"),
        Probe("L2 lists X's", "{a.as_lite2}", "/subscriptions?account_id={a.x}"),
    ],
    ("GET", "/subscriptions/{subscription_id}"): [
        Probe("B reads A's subscription", "{b.admin}", "/subscriptions/{a.sub_z}"),
        Probe("Y reads X's", "{a.as_y}", "/subscriptions/{a.sub_x}"),
        Probe("Z reads X's add-on", "{a.as_z}", "/subscriptions/{a.sub_x_addon}"),
        Probe("L reads Z's", "{a.as_lite}", "/subscriptions/{a.sub_z}"),
        Probe("L2 reads X's", "{a.as_lite2}", "/subscriptions/{a.sub_x}"),
    ],
    ("POST", "/subscriptions/{subscription_id}/actions"): [
        Probe(
            "B cancels A's", "{b.admin}", "/subscriptions/{a.sub_z}/actions", {"action": "cancel"}
        ),
        Probe(
            "B upgrades its own to A's product",
            "{b.admin}",
            "/subscriptions/{b.sub_z}/actions",
            {"action": "upgrade", "product_id": "{a.base}"},
            400,
            "product_id",
        ),
        Probe(
            "Y cancels X's", "{a.as_y}", "/subscriptions/{a.sub_x}/actions", {"action": "cancel"}
        ),
        Probe(
            "Y changes X's quantity",
            "{a.as_y}",
            "/subscriptions/{a.sub_x}/actions",
            {"action": "change_quantity", "quantity": 50},
        ),
        Probe(
            "L suspends Z's",
            "{a.as_lite}",
            "/subscriptions/{a.sub_z}/actions",
            {"action": "suspend"},
        ),
        Probe(
            "X cancels Z's add-on",
            "{a.as_x}",
            "/subscriptions/{a.sub_z_addon}/actions",
            {"action": "cancel"},
        ),
    ],
    ("POST", "/subscriptions/{subscription_id}/addons"): [
        Probe(
            "B adds an add-on to A's",
            "{b.admin}",
            "/subscriptions/{a.sub_z}/addons",
            {"product_id": "{b.addon}"},
        ),
        Probe(
            "B adds A's add-on to its own",
            "{b.admin}",
            "/subscriptions/{b.sub_z}/addons",
            {"product_id": "{a.addon}"},
            400,
            "product_id",
        ),
        Probe(
            "Y adds to X's",
            "{a.as_y}",
            "/subscriptions/{a.sub_x}/addons",
            {"product_id": "{a.addon}"},
        ),
        Probe(
            "L adds to Z's",
            "{a.as_lite}",
            "/subscriptions/{a.sub_z}/addons",
            {"product_id": "{a.addon}"},
        ),
    ],
    ("GET", "/subscriptions/{subscription_id}/addons"): [
        Probe("B lists A's add-ons", "{b.admin}", "/subscriptions/{a.sub_z}/addons"),
        Probe("Y lists X's add-ons", "{a.as_y}", "/subscriptions/{a.sub_x}/addons"),
        Probe("L lists Z's add-ons", "{a.as_lite}", "/subscriptions/{a.sub_z}/addons"),
    ],
    ("GET", "/orders"): [
        Probe("B lists A's customer's orders", "{b.admin}", "/orders?account_id={a.z}"),
        Probe("Y lists X's orders", "{a.as_y}", "/orders?account_id={a.x}"),
        Probe("L2 lists Y's orders", "{a.as_lite2}", "/orders?account_id={a.y}"),
        Probe("L lists V's orders", "{a.as_lite}", "/orders?account_id={a.v}"),
    ],
    ("GET", "/orders/{order_id}"): [
        Probe("B reads A's order", "{b.admin}", "/orders/{a.order_z}"),
        Probe("Y reads X's order", "{a.as_y}", "/orders/{a.order_x}"),
        Probe("L reads Z's order", "{a.as_lite}", "/orders/{a.order_z}"),
        Probe("L2 reads Y's order", "{a.as_lite2}", "/orders/{a.order_y}"),
        Probe("Z reads V's order", "{a.as_z}", "/orders/{a.order_v}"),
    ],
}

#: routes that name no resource of anyone else; lists among them are checked by
#: ``test_r28_lists_show_a_foreign_caller_nothing``
EXEMPT: dict[tuple[str, str], str] = {
    ("GET", "/health"): "public, no data",
    ("GET", "/openapi.json"): "public, no data",
    (
        "POST",
        "/pricelists",
    ): "creates a list in the caller's own tenant; the body names no resource",
    ("GET", "/pricelists"): "lists the caller's own tenant's lists; no resource parameter",
    ("GET", "/tenants"): "lists the caller's own children (platform: root tenants); no resource "
    "parameter",
    ("POST", "/billing-runs"): "runs the caller's own tenant; the body names no resource",
    ("GET", "/billing-runs"): "lists the caller's own tenant's runs; no resource parameter",
    ("GET", "/reports/margin"): "the caller's own tenant's report (R32): keyed by the token's "
    "tenant; no resource parameter (tests/integration/test_margin.py: roles, tenants)",
    ("GET", "/reconciliation-runs"): "lists the runs the caller's own tenant started; no resource "
    "parameter",
    ("GET", "/storefront"): "the caller's own storefront; no resource parameter",
    ("GET", "/failures"): "the platform admin's only (403 for every other role, "
    "tests/integration/test_failures.py); names no resource",
    ("PATCH", "/storefront"): "the caller's own storefront; the body names no resource",
}


def _route_keys() -> set[tuple[str, str]]:
    return {(route.method, route.path) for route in ROUTES}


def test_r28_matrix_covers_every_route() -> None:
    """A route added without a matrix entry (or an exemption with a reason) fails here."""
    routes = _route_keys()
    assert not set(MATRIX) & set(EXEMPT)
    assert set(MATRIX) | set(EXEMPT) == routes, {
        "missing": sorted(routes - set(MATRIX) - set(EXEMPT)),
        "stale": sorted((set(MATRIX) | set(EXEMPT)) - routes),
    }
    for key, probes in MATRIX.items():
        kinds = {probe.kind for probe in probes}
        assert kinds == {"tenant", "account"}, f"{key}: needs a tenant and an account probe"
        for probe in probes:
            assert probe.path.split("?")[0].count("/") == key[1].count("/"), (key, probe.why)


# --- running a probe --------------------------------------------------------------------------


class Ghost:
    """Tenant A as if its data had never existed: every id is a well-formed id nobody issued
    (same prefix), the tokens stay real."""

    def __init__(self, tenant: Tenant) -> None:
        self._tenant = tenant

    def __getattr__(self, name: str) -> str:
        value = getattr(self._tenant, name)
        if name in ("admin", "child_admin") or name.startswith("as_"):
            return str(value)
        prefix = str(value).split("_", 1)[0]
        return f"{prefix}_0000000000000000000000ghost"


def _fill(template: Any, names: dict[str, Any]) -> Any:
    if isinstance(template, str):
        return string.Formatter().vformat(template, (), names)
    if isinstance(template, list):
        return [_fill(item, names) for item in template]
    if isinstance(template, dict):
        return {key: _fill(value, names) for key, value in template.items()}
    return template


def _call(world: World, method: str, probe: Probe, *, ghost: bool) -> tuple[int, Any]:
    names = {"a": Ghost(world.a) if ghost else world.a, "b": world.b, "platform": world.platform}
    # a refused write must not keep its Idempotency-Key record either
    headers = {"Idempotency-Key": f"probe-{uuid.uuid4()}"} if method == "POST" else None
    return world.api.call(
        method,
        _fill(probe.path, names),
        _fill(probe.token, names),
        _fill(probe.body, names),
        headers=headers,
    )


CASES = [
    pytest.param(method, probe, id=f"{method} {path} | {probe.why}")
    for (method, path), probes in MATRIX.items()
    for probe in probes
]


@pytest.mark.parametrize("method,probe", CASES)
def test_r28_foreign_caller_gets_the_answer_of_a_missing_resource(
    world: World, method: str, probe: Probe
) -> None:
    before = world.counts()
    status, body = _call(world, method, probe, ghost=False)
    assert status == probe.status, body
    error = body["error"]
    assert error["code"] and error["message"]
    if probe.status == 404:
        assert error["code"] == "not_found"
    if probe.field is not None:
        assert error["details"]["field"] == probe.field
    assert world.counts() == before, "a refused request wrote something"

    twin_status, twin = _call(world, method, probe, ghost=True)
    assert (twin_status, twin["error"]["code"], twin["error"].get("details", {}).get("field")) == (
        status,
        error["code"],
        error.get("details", {}).get("field"),
    ), "the foreign resource is told apart from a missing one"
    assert world.counts() == before


# --- lists ------------------------------------------------------------------------------------

LISTS = sorted(
    (route.method, route.path) for route in ROUTES if route.paginated and route.method == "GET"
)


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


@dataclass
class Viewer:
    """A caller and the ids it must never see in any list."""

    name: str
    token: str
    foreign: set[str]
    own_subscription: str | None = None  # for GET /subscriptions/{id}/addons
    own_price_list: str | None = None  # for GET /pricelists/{id}/prices
    own_account: str | None = None  # for GET /accounts/{id}/contacts and /notes


def _viewers(world: World) -> list[Viewer]:
    a, b = world.a, world.b
    accounts_of = {
        "x": {a.x, a.sub_x, a.sub_x_addon, a.order_x, a.contact_x},
        "y": {a.y, a.sub_y, a.order_y},
        "z": {a.z, a.sub_z, a.sub_z_addon, a.order_z, a.contact_z, a.invoice_z},
        "v": {a.v, a.sub_v, a.order_v},
        "lite": {a.lite, a.invoice_lite},
        "lite2": {a.lite2},
        "child": {a.child_account},
    }

    def but(*mine: str) -> set[str]:
        return set().union(*(ids for name, ids in accounts_of.items() if name not in mine))

    return [
        Viewer("tenant B admin", b.admin, a.ids(), b.sub_z, b.price_list, b.z),
        # a copied product names its origin (R1: origin tenant + origin product id)
        Viewer(
            "A's child tenant admin",
            a.child_admin,
            a.ids() - {a.child, a.id, a.base, a.addon, a.monthly_only},
        ),
        # Y names its reseller L
        Viewer("customer Y", a.as_y, but("y", "lite"), a.sub_y, own_account=a.y),
        Viewer("customer Z", a.as_z, but("z"), a.sub_z, own_account=a.z),
        Viewer("reseller L", a.as_lite, but("lite", "x", "y"), a.sub_x, own_account=a.x),
        Viewer("reseller L2", a.as_lite2, but("lite2", "v"), a.sub_v, own_account=a.v),
    ]


#: list routes with a required query: what selects the viewer's own records
LIST_QUERIES = {"/usage": "?subscription_id={subscription_id}"}


def test_r28_lists_show_a_foreign_caller_nothing(world: World) -> None:
    """Every list route, unfiltered, as every foreign caller: none of the other tenant's (or
    the other accounts') ids appears anywhere in the answer."""
    assert LISTS, "no list routes?"
    leaks = []
    answered = 0
    for viewer in _viewers(world):
        for method, path in LISTS:
            if path in LIST_QUERIES:  # a list of one subscription's records
                path += LIST_QUERIES[path]
            if "{subscription_id}" in path:
                if viewer.own_subscription is None:
                    continue
                path = path.replace("{subscription_id}", viewer.own_subscription)
            if "{price_list_id}" in path:
                if viewer.own_price_list is None:
                    continue
                path = path.replace("{price_list_id}", viewer.own_price_list)
            if "{account_id}" in path:
                if viewer.own_account is None:
                    continue
                path = path.replace("{account_id}", viewer.own_account)
            status, body = world.api.call(method, path, viewer.token)
            if status == 403 or (status == 404 and path.endswith("/notes")):
                continue  # the role may not list this at all (notes: staff only, issue 11)
            assert status == 200, (viewer.name, path, body)
            answered += 1
            leaked = set(_strings(body["items"])) & viewer.foreign
            if leaked:
                leaks.append(f"{viewer.name} {path}: {sorted(leaked)}")
    assert not leaks, "\n".join(leaks)
    assert answered >= 2 * len(LISTS)


def test_r28_lists_are_not_empty_for_their_owner(world: World) -> None:
    """Guard for the test above: the owners do see their data in the same lists."""
    a = world.a
    for path, expected in [
        ("/accounts", a.x),
        ("/subscriptions", a.sub_z),
        ("/orders", a.order_z),
        ("/products", a.base),
        ("/pricelists", a.price_list),
        ("/tenants", a.child),
        (f"/accounts/{a.x}/contacts", a.contact_x),
    ]:
        status, body = world.api.call("GET", path, a.admin)
        assert status == 200
        assert expected in set(_strings(body["items"])), path


def test_r28_another_lists_cursor_is_refused(world: World) -> None:
    """A cursor is bound to its list's partition: tenant A's cursor in tenant B's hands (or
    customer X's in customer Z's) is a 400 naming ``cursor``, never a page of A's data."""
    a, b = world.a, world.b
    before = world.counts()
    for path, owner, thief in [
        ("/accounts", a.admin, b.admin),
        ("/products", a.admin, b.admin),
        ("/pricelists", a.admin, b.admin),
        ("/subscriptions", a.admin, b.admin),
        ("/orders", a.admin, b.admin),
        ("/subscriptions", a.as_lite, a.as_lite2),
        (f"/pricelists/{a.price_list}/prices", a.admin, None),
    ]:
        status, page = world.api.call("GET", f"{path}?limit=1", owner)
        assert status == 200, page
        cursor = page["next_cursor"]
        assert cursor, path
        if thief is None:  # the other tenant's list id is a 404 anyway; use B's own list
            status, body = world.api.call(
                "GET", f"/pricelists/{b.price_list}/prices?cursor={cursor}", b.admin
            )
        else:
            status, body = world.api.call("GET", f"{path}?cursor={cursor}", thief)
        assert status == 400, (path, body)
        assert body["error"]["details"]["field"] == "cursor"
        assert body["error"]["code"] == "invalid_cursor"
    assert world.counts() == before


def test_r28_probe_bodies_are_json(world: World) -> None:
    """The matrix' bodies are plain JSON once filled (a typo in a template fails here)."""
    names = {"a": world.a, "b": world.b, "platform": world.platform}
    for probes in MATRIX.values():
        for probe in probes:
            json.dumps(_fill(probe.body, names))
            assert "{" not in _fill(probe.path, names)
