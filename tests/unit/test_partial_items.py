"""Readers of a list never 500 on an item lacking attributes (issue 11, finding 2; R29).

Under load, ``GET /subscriptions`` answered 500 (``int(None)`` in the subscriptions reader): a
query had returned an item without its quantity, caught half written by moto's threaded server.
An index item can lack attributes for good reasons too (a projection without them, an index
behind its table). Decision, per reader (``docs/local-platform.md``, "Concurrency"):

* every list reader of ``functions/*/adapters.py`` reads such an item again from the table by its
  key (one batched read) and lists that; if the table's item lacks them too, or is gone, the
  item is left out with a warning (logger ``bss.persistence``) naming it and what it lacked;
* the two readers that take one attribute of a sparse index item, the tenants a price list is
  assigned to (R5) and the billing run's list step (R20, R24), read the table when it is missing:
  leaving the entry out would keep a price change from a child, or a subscription from its
  invoice; they skip only an entry the table no longer has, and say so.

Items are fed to the readers as a query returns them, with attributes taken away.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from decimal import Decimal
from typing import Any

import boto3
import pytest

from functions.core.adapters import AccountModel, AccountRepository, TenantModel, TenantRepository
from functions.core.domain import Account, Tenant
from functions.invoices.adapters import BillingRepository, InvoiceModel, UsageModel, UsageRepository
from functions.invoices.domain import Invoice, UsageRecord
from functions.orders.adapters import (
    OrderModel,
    OrderRepository,
    SubscriptionModel,
    SubscriptionRepository,
)
from functions.orders.domain import Order, OrderLine
from tests.unit.test_backorder_domain import NOW
from tests.unit.test_backorder_domain import SUB as STORED

SUB = replace(STORED, version=None)  # new: saved at version 1
TENANT = SUB.tenant_id


class Result(list[Any]):
    """What a PynamoDB query returns: the items, and where the page ended."""

    last_evaluated_key = None


def partial(item: Any, *drop: str) -> Any:
    """``item`` as a query would return it without the attributes ``drop``."""
    raw = item.serialize()
    for name in drop:
        raw.pop(name, None)
    return type(item).from_raw_data(raw)


def remove_in_table(model: Any, key: dict[str, str], *names: str) -> None:
    boto3.client("dynamodb").update_item(
        TableName=model.Meta.table_name,
        Key={k: {"S": v} for k, v in key.items()},
        UpdateExpression="REMOVE " + ", ".join(names),
    )


def left_out(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "left out" in r.getMessage()]


@pytest.fixture
def warnings(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.WARNING, logger="bss.persistence")
    return caplog


# --- subscriptions (table, keys-only indexes) -----------------------------------------------------


def test_issue_11_r29_a_subscription_list_leaves_out_an_item_without_its_quantity_and_says_so(
    aws: None, warnings: pytest.LogCaptureFixture
) -> None:
    """Before: ``int(None)``, a 500 for ``GET /subscriptions``."""
    SubscriptionModel.of(SUB).save()
    SubscriptionModel.of(replace(SUB, id="sub_y")).save()
    remove_in_table(SubscriptionModel, {"tenant_id": TENANT, "id": "sub_y"}, "quantity")
    repository = SubscriptionRepository()

    for page in (
        repository.page(TENANT, 100, None),  # the table
        repository.for_account(TENANT, SUB.account_id, 100, None),  # a keys-only index
    ):
        assert [sub.id for sub in page.items] == [SUB.id]
    [message, *_] = left_out(warnings)
    assert "sub_y" in message and "quantity" in message


# --- orders (all-attributes indexes) -------------------------------------------------------------

ORDER = Order(
    id="ord_1",
    number="O-1",
    tenant_id=TENANT,
    account_id=SUB.account_id,
    subscription_id=SUB.id,
    type="quantity_change",
    date="2026-11-22",
    currency="EUR",
    lines=[
        OrderLine(
            product_id=SUB.product_id,
            sku="E3",
            name="Office 365 E3",
            billing_cycle="monthly",
            quantity=10,
            unit_price=Decimal("27.03"),
            amount=Decimal("270.30"),
            previous_quantity=5,
        )
    ],
    total=Decimal("270.30"),
    created_at=NOW,
    created_by="user",
    price_list_id="prl_child",
)


def test_issue_11_an_order_index_entry_without_its_lines_is_read_again_from_the_table(
    aws: None, monkeypatch: pytest.MonkeyPatch, warnings: pytest.LogCaptureFixture
) -> None:
    OrderModel.of(ORDER).save()
    entry = partial(OrderModel.of(ORDER), "lines", "total", "number")
    monkeypatch.setattr(OrderModel.by_account, "query", lambda *a, **k: Result([entry]))
    [order] = OrderRepository().for_account(TENANT, SUB.account_id, 100, None).items
    assert order == ORDER
    assert left_out(warnings) == []


def test_issue_11_an_order_index_entry_whose_order_is_gone_is_left_out_and_said(
    aws: None, monkeypatch: pytest.MonkeyPatch, warnings: pytest.LogCaptureFixture
) -> None:
    entry = partial(OrderModel.of(ORDER), "lines", "total")
    monkeypatch.setattr(OrderModel.by_account, "query", lambda *a, **k: Result([entry]))
    assert OrderRepository().for_account(TENANT, SUB.account_id, 100, None).items == []
    [message] = left_out(warnings)
    assert "ord_1" in message and "gone" in message


# --- tenants and accounts -------------------------------------------------------------------------

CLOUD = Tenant(
    id="tnt_cloud",
    name="Cloud",
    parent_id=None,
    currency="EUR",
    country="DE",
    time_zone="Europe/Berlin",
    billing_day=1,
    created_at=NOW,
)
RESELL = replace(CLOUD, id="tnt_resell", name="Cloud Resell", parent_id="tnt_cloud")
LITE = Account(
    id="acc_lite",
    tenant_id="tnt_resell",
    name="Cloud Lite",
    kind="lite_reseller",
    currency="EUR",
    created_at=NOW,
)
X = replace(LITE, id="acc_x", name="Cloud Customer X", kind="customer", parent_account_id=LITE.id)
RESELLER = Account(
    id="acc_reseller",
    tenant_id="tnt_cloud",
    name="Cloud Resell",
    kind="tenant_reseller",
    currency="EUR",
    created_at=NOW,
    price_list_id="prl_resell",
    child_tenant_id=RESELL.id,
)


def test_issue_11_index_entries_of_tenants_and_accounts_without_attributes_are_read_again(
    aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    TenantModel.of(RESELL).save()
    AccountModel.of(X).save()
    tenant_entry = partial(TenantModel.of(RESELL), "name", "billing_day")
    account_entry = partial(AccountModel.of(X), "name", "kind", "currency")
    monkeypatch.setattr(TenantModel.by_parent, "query", lambda *a, **k: Result([tenant_entry]))
    monkeypatch.setattr(AccountModel.by_parent, "query", lambda *a, **k: Result([account_entry]))
    [tenant] = TenantRepository().children(CLOUD.id, 100, None).items
    assert (tenant.name, tenant.billing_day) == ("Cloud Resell", 1)
    [account] = AccountRepository().children(RESELL.id, LITE.id, 100, None).items
    assert (account.name, account.kind, account.currency) == (X.name, "customer", "EUR")


def test_r5_issue_11_an_assignee_entry_without_its_child_tenant_still_reaches_the_child(
    aws: None, monkeypatch: pytest.MonkeyPatch, warnings: pytest.LogCaptureFixture
) -> None:
    """Skipping it would keep a price-list change from the child tenant."""
    AccountModel.of(RESELLER).save()
    entry = partial(AccountModel.of(RESELLER), "child_tenant_id")
    gone = partial(AccountModel.of(replace(RESELLER, id="acc_gone")), "child_tenant_id")
    monkeypatch.setattr(
        AccountModel.by_assigned_list, "query", lambda *a, **k: Result([entry, gone])
    )
    page = AccountRepository().assignees(CLOUD.id, "prl_resell", 100, None)
    assert page.items == [RESELL.id]
    [message] = left_out(warnings)
    assert "acc_gone" in message


# --- usage, invoices and the billing run's list step ----------------------------------------------

USE = UsageRecord(
    tenant_id=TENANT,
    subscription_id=SUB.id,
    key="k1",
    quantity=Decimal("12.5"),
    unit="GB",
    at="2026-11-10T00:00:00Z",
    recorded_at=NOW,
)


def test_r25_issue_11_a_usage_index_entry_without_its_quantity_is_counted_from_the_table(
    aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before: the period's total failed (``None`` in a sum), so the usage was not billed."""
    UsageModel.of(USE).save()
    entry = partial(UsageModel.of(USE), "quantity")
    monkeypatch.setattr(UsageModel.by_time, "query", lambda *a, **k: Result([entry]))
    usage = UsageRepository()
    assert usage.total(TENANT, SUB.id, "2026-11-01T00:00:00Z", "2026-12-01T00:00:00Z") == Decimal(
        "12.5"
    )
    assert usage.page(TENANT, SUB.id, 100, None).items == [USE]


INVOICE = Invoice(
    id="inv_1",
    tenant_id=TENANT,
    run_id="run_1",
    account_id=SUB.account_id,
    currency="EUR",
    period_start="2026-11-01",
    period_end="2026-12-01",
    status="issued",
    issuer={"name": "Cloud Resell"},
    bill_to={"name": "Cloud Customer X"},
    subtotal=Decimal("100.00"),
    tax_rate=Decimal("0.19"),
    tax=Decimal("19.00"),
    total=Decimal("119.00"),
    line_count=3,
    created_at=NOW,
    number="1",
    sequence=1,
    issued_at=NOW,
)


def test_r26_issue_11_an_invoice_index_entry_without_its_line_count_is_read_again(
    aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before: ``int(None)``, a 500 for ``GET /invoices?account_id=``."""
    InvoiceModel.of(INVOICE).save()
    entry = partial(InvoiceModel.of(INVOICE), "line_count", "total")
    monkeypatch.setattr(InvoiceModel.by_account, "query", lambda *a, **k: Result([entry]))
    [invoice] = BillingRepository(None).page(TENANT, SUB.account_id, 100, None).items  # type: ignore[arg-type]
    assert (invoice.line_count, invoice.total) == (3, Decimal("119.00"))


def test_r20_issue_11_a_billing_index_entry_without_its_account_is_still_billed(
    aws: None, monkeypatch: pytest.MonkeyPatch, warnings: pytest.LogCaptureFixture
) -> None:
    """The run's list step reads the table for an entry that lacks its account; only an entry
    whose subscription is gone is left out (and said)."""
    SubscriptionModel.of(SUB).save()
    entry = partial(SubscriptionModel.of(SUB), "account_id")
    gone = partial(SubscriptionModel.of(replace(SUB, id="sub_gone")), "account_id")
    calls: list[str] = []

    def query(key: str, *args: Any, **kwargs: Any) -> Result:
        calls.append(key)
        return Result([entry, gone] if len(calls) == 1 else [])

    monkeypatch.setattr(SubscriptionModel.by_billing, "query", query)
    assert list(BillingRepository(None).billable(TENANT)) == [  # type: ignore[arg-type]
        (SUB.id, SUB.account_id, None)
    ]
    [message] = left_out(warnings)
    assert "sub_gone" in message
