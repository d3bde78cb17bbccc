"""Who bills whom (R20): the account a subscription is billed to, the accounts that may be
billed, the end customer an invoice is for, and the invoice's deterministic id (R24)."""

from __future__ import annotations

from functions.core.domain import Account
from functions.core.errors import Conflict
from functions.core.ids import derived_id
from functions.core.periods import Period
from functions.orders.domain import Subscription


def bill_to(sub: Subscription) -> str:
    """R20: a lite reseller's customer's subscription is billed to the lite reseller, a
    mirrored one to the tenant reseller's account (both its ``reseller_account_id``); any other
    to its own account."""
    return sub.reseller_account_id or sub.account_id


def check_billable(account: Account) -> None:
    """R20: a tenant invoices only its own accounts. A mirror is its reseller's: what is sold
    under it is billed to the tenant reseller's account, so a mirror named as the billed account
    (a record opened under it before R15 closed mirrored hierarchies) is refused, for a person to
    sort out, never invoiced."""
    if account.mirrored:
        raise Conflict(
            f"account {account.id} is a mirror of a reseller's account: the provider bills the "
            "tenant reseller, never a mirror (R20)",
            code="locked_by_reseller",
        )


def end_customer(account: Account, sub: Subscription) -> str | None:
    """R20: the end customer an invoice is for, if the billed account asked for separate
    invoices (one per end customer); None: one invoice for all."""
    return sub.account_id if account.separate_invoices else None


def invoice_id(tenant_id: str, account_id: str, end_customer: str | None, period: Period) -> str:
    """One invoice per account and period (per end customer if the account asked for separate
    invoices): deterministic, so a re-run finds it instead of creating a second (R24)."""
    return derived_id("inv", tenant_id, account_id, end_customer or "", period.start.isoformat())
