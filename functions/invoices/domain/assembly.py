"""Invoices assembled from rated subscriptions (R20-R24): who bills whom, one invoice per
account and period (per end customer if the account asked for separate invoices), its lines
named, its totals, and the ledger each subscription keeps of what was invoiced.

``account_drafts`` is a run's (or a preview's) rating of one billed account, on facts loaded up
front (``Facts``); it reads and writes nothing: the service loads, calls it and saves."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from functions.core.domain import Account, Tenant
from functions.core.errors import Conflict
from functions.core.ids import derived_id
from functions.core.periods import Period
from functions.invoices.domain.invoice import Invoice, combined, draft_invoice
from functions.invoices.domain.lines import InvoiceLine, Line, Named, invoice_lines
from functions.invoices.domain.rating import rate_subscription
from functions.invoices.domain.runs import Run
from functions.invoices.domain.tax import Totals
from functions.orders.domain import Subscription
from functions.pricelist.domain import USAGE as METERED
from functions.pricelist.domain import Price, Product, effective_price

#: a subscription's ledger: (invoice id, line) of what was invoiced in open periods (R22)
Ledger = list[tuple[str, Line]]
#: rates one subscription against the lines issued for it (``rated``, with the usage the
#: service reads for a metered one)
Rate = Callable[[Subscription, list[Line]], list[Line]]


class RatingError(Exception):
    """An account that cannot be rated as it stands (a price or account gone): it fails alone,
    is reported on the run, and is rated again by the next attempt (R24)."""


@dataclass(frozen=True)
class Facts:
    """What rating one chunk (or one preview) reads, loaded by key up front: the issuing
    tenant, the run, the subscriptions, the accounts (billed, and the end customers), the
    subscriptions' ledgers, the products and prices they are rated at, and the invoices of the
    period that exist already (by id)."""

    tenant: Tenant
    billing: Run
    subs: Mapping[str, Subscription]
    accounts: Mapping[str, Account]
    ledgers: Mapping[str, Ledger]
    products: Mapping[str, Product]
    prices: Mapping[tuple[str, str, str], Price]  # (price list, product, cycle)
    existing: Mapping[str, Invoice]


@dataclass(frozen=True)
class Draft:
    """An account's invoice of the period (R26) with its lines, and the ledgers it changes
    (R22); an invoice that existed comes with neither."""

    invoice: Invoice
    lines: list[InvoiceLine]
    ledgers: dict[str, Ledger]


@dataclass(frozen=True)
class Preview:
    """An account's next invoices, rated now and stored nowhere (R26)."""

    billing: Run
    drafts: list[Draft]

    @property
    def currency(self) -> str | None:
        """The invoices' currency (an account's are all in one); None with nothing to bill."""
        return self.drafts[0].invoice.currency if self.drafts else None

    @property
    def totals(self) -> Totals:
        return combined(d.invoice for d in self.drafts)


# --- who bills whom (R20) ------------------------------------------------------------------------


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


def end_customers(
    account: Account | None, sub_ids: Sequence[str], subs: Mapping[str, Subscription]
) -> list[str | None]:
    """R20: the end customers an account's invoices are for (``[None]``: one invoice)."""
    if account is None:
        return [None]
    return sorted(
        {end_customer(account, subs[s]) for s in sub_ids if s in subs},
        key=lambda customer: customer or "",
    )


def invoice_id(tenant_id: str, account_id: str, end_customer: str | None, period: Period) -> str:
    """One invoice per account and period (per end customer if the account asked for separate
    invoices): deterministic, so a re-run finds it instead of creating a second (R24)."""
    return derived_id("inv", tenant_id, account_id, end_customer or "", period.start.isoformat())


# --- rating one subscription at its prices (R7, R21, R25) --------------------------------------


def metered(facts: Facts, sub: Subscription) -> bool:
    """R21, R25: a usage product's subscription is billed in arrears for its usage."""
    product = facts.products.get(sub.product_id)
    return product is not None and product.type == METERED


def price_of(facts: Facts, sub: Subscription, product_id: str) -> Decimal:
    """R4, R7: a product's price in the subscription's list and cycle today (fixed, or a
    markup over cost); the subscription's own product no longer listed keeps the price it
    was sold at; another product without a price cannot be rated (``RatingError``)."""
    entry = facts.prices.get((sub.price_list_id, product_id, sub.billing_cycle))
    item = facts.products.get(product_id)
    if (
        entry is not None
        and item is not None
        and (entry.price is not None or sub.billing_cycle in item.costs)
    ):
        return effective_price(entry, item, sub.currency)
    if product_id == sub.product_id:
        return sub.unit_price  # not in the list any more: the price it was sold at
    raise RatingError(f"no {sub.billing_cycle} price for {product_id}")


def rated(
    facts: Facts, sub: Subscription, issued: list[Line], usage_total: Decimal = Decimal(0)
) -> list[Line]:
    """R20-R22, R25: ``rate_subscription`` at the subscription's prices (``price_of``), a metered
    one with the previous period's ``usage_total``."""
    return rate_subscription(
        sub,
        facts.billing,
        issued,
        lambda product_id: price_of(facts, sub, product_id),
        metered=metered(facts, sub),
        usage_total=usage_total,
    )


# --- an account's drafts (R20-R24) -------------------------------------------------------------


def account_drafts(
    facts: Facts,
    run_id: str,
    account_id: str,
    sub_ids: Sequence[str],
    rate: Rate,
    *,
    created_at: str,
) -> list[Draft]:
    """An account's invoices for the run's period:

    - R20: a mirror is never billed; one invoice for the account, or one per end customer if
      it asked for separate invoices; its subscriptions in the order of their end customers'
      names (then ids), each line naming its product and end customer.
    - R24: an invoice of the period that exists is returned as it is (not rated again); one with
      nothing to bill is not drafted.
    - R23: every subscription is in the account's currency (else ``RatingError``); the draft's
      totals are its lines' and the bill-to country's tax (the issuer's country if the account
      gives none).
    - R22: each subscription's ledger drops the lines of this invoice (rated anew) and those of
      periods ending before the run's window (closed), and gains the lines rated; it is given
      only when it changes.

    ``rate(sub, issued)``: the lines a subscription adds (``rated``)."""
    tenant, billing = facts.tenant, facts.billing
    account = facts.accounts.get(account_id)
    if account is None:
        raise RatingError(f"account {account_id} is gone")
    check_billable(account)
    drafts = []
    for customer, members in _groups(facts, account, sub_ids).items():
        inv_id = invoice_id(tenant.id, account.id, customer, billing.period)
        existing = facts.existing.get(inv_id)
        if existing is not None:
            drafts.append(Draft(existing, [], {}))
            continue
        rated_lines: list[tuple[Line, Named]] = []
        ledgers: dict[str, Ledger] = {}
        for sub in members:
            if sub.currency != account.currency:
                raise RatingError(
                    f"subscription {sub.id} is in {sub.currency}, the account in {account.currency}"
                )
            entries = [e for e in facts.ledgers.get(sub.id, []) if e[0] != inv_id]
            lines = rate(sub, [line for _, line in entries])
            rated_lines += [(line, _named(facts, sub, line)) for line in lines]
            kept = [e for e in entries if e[1].period.end > billing.window.start]
            if lines or len(kept) != len(entries):
                ledgers[sub.id] = kept + [(inv_id, line) for line in lines]
        if not rated_lines:
            continue
        invoiced = invoice_lines(rated_lines)
        draft = draft_invoice(
            id=inv_id,
            tenant_id=tenant.id,
            run_id=run_id,
            account_id=account.id,
            end_customer_id=customer,
            currency=account.currency,
            period=billing.period,
            issuer={"tenant_id": tenant.id, "name": tenant.name, "country": tenant.country},
            bill_to=_bill_to(account, tenant),
            lines=invoiced,
            created_at=created_at,
        )
        drafts.append(Draft(draft, invoiced, ledgers))
    return drafts


def _groups(
    facts: Facts, account: Account, sub_ids: Sequence[str]
) -> dict[str | None, list[Subscription]]:
    """R20: the account's subscriptions by the end customer their invoice is for, in the order
    of the end customers' names, then ids."""
    subs = [facts.subs[s] for s in sub_ids if s in facts.subs]
    groups: dict[str | None, list[Subscription]] = {}
    for sub in sorted(subs, key=lambda s: (_name(facts, s.account_id), s.id)):
        groups.setdefault(end_customer(account, sub), []).append(sub)
    return groups


def _bill_to(account: Account, tenant: Tenant) -> dict[str, Any]:
    """R23, R26: who the invoice is for; its country (the tax's) the issuer's if none."""
    return {
        "account_id": account.id,
        "name": account.name,
        "email": account.email,
        "country": (account.address or {}).get("country") or tenant.country,
        "address": account.address,
        "accounting_number": account.accounting_number,
    }


def _name(facts: Facts, account_id: str) -> str:
    account = facts.accounts.get(account_id)
    return account.name if account else account_id


def _named(facts: Facts, sub: Subscription, line: Line) -> Named:
    """R20, R26: a line names its product and its end customer (a product gone: its id)."""
    product = facts.products.get(line.product_id)
    return Named(
        sku=product.sku if product else line.product_id,
        product_name=product.name if product else line.product_id,
        unit=product.unit if product else "",
        end_customer_id=sub.account_id,
        end_customer_name=_name(facts, sub.account_id),
    )
