"""The margin report (R32), pure: what a tenant invoiced for each end-customer subscription it
sells (revenue) beside what its provider invoiced it for the same subscription (cost), grouped
by reseller, customer or product, built from issued invoices only.

Two writers fill one tenant's report of a period, each with items of its own ``side``, so
neither ever overwrites the other (their runs may overlap):

- ``REVENUE`` — the tenant's own run: a row per subscription of its issued invoices' lines
  (``revenue_rows``), and its own cost where the product is its own (a root tenant's products,
  or a child's own products: ``own_cost``, from the product's cost); then, when the run closes,
  the sums per group (``summaries``).
- ``COST`` — its provider's run: the lines the provider billed the tenant's reseller account,
  each traced through its mirror to the tenant's subscription (``cost_rows``), and their sums.
  A line the provider billed that is not a mirror (the tenant's own purchase, such as its
  reseller plan) is a row of its own (``purchase``), so the costs add up to what was billed.

A report line is the two sides merged (``line``): margin = revenue − cost, margin % of revenue.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from decimal import ROUND_HALF_UP, Decimal

from functions.core.money import round_money
from functions.invoices.domain.invoice import ISSUED, Invoice
from functions.invoices.domain.lines import InvoiceLine, LineKind
from functions.invoices.domain.periods import prorated

REVENUE, COST = "r", "c"
SIDES = (COST, REVENUE)  # the order their items sort in (``report_item``)
RESELLER, CUSTOMER, PRODUCT = "reseller", "customer", "product"
GROUPINGS = (RESELLER, CUSTOMER, PRODUCT)
#: the reseller group of a subscription sold directly; the group of the tenant's own purchases
DIRECT, OWN = "direct", "own"
ZERO = Decimal(0)


@dataclass(frozen=True)
class Sold:
    """Who a subscription of the reporting tenant is sold to: the customer, the reseller account
    selling it (a lite reseller, or a tenant reseller for a mirror; ``DIRECT`` otherwise) and the
    tenant's product."""

    subscription_id: str
    customer_id: str
    reseller_id: str
    product_id: str


@dataclass(frozen=True)
class Row:
    """One side's figures of one subscription in a period."""

    side: str
    subscription_id: str
    customer_id: str
    reseller_id: str
    product_id: str
    amount: Decimal  # revenue (REVENUE) or what the provider billed (COST)
    own_cost: Decimal = ZERO  # REVENUE only: the tenant's own product cost
    lines: int = 0
    customer_name: str = ""
    reseller_name: str = ""
    product_name: str = ""
    sku: str = ""
    purchase: bool = False  # COST only: billed to the tenant, not for a subscription it sells
    currency: str = ""

    def key(self, grouping: str) -> str:
        return {RESELLER: self.reseller_id, CUSTOMER: self.customer_id, PRODUCT: self.product_id}[
            grouping
        ]

    def name(self, grouping: str) -> str:
        return {
            RESELLER: self.reseller_name,
            CUSTOMER: self.customer_name,
            PRODUCT: self.product_name,
        }[grouping]


@dataclass(frozen=True)
class Group:
    """One side's sums over a group's rows; ``grouping`` and ``key`` empty: the tenant's total."""

    side: str
    grouping: str
    key: str
    name: str
    amount: Decimal
    own_cost: Decimal
    subscriptions: int
    currency: str = ""


@dataclass(frozen=True)
class Figures:
    """A report line (a subscription, a group or the total): both sides merged."""

    revenue: Decimal
    billed_cost: Decimal
    own_cost: Decimal

    @property
    def cost(self) -> Decimal:
        return self.billed_cost + self.own_cost

    @property
    def margin(self) -> Decimal:
        return self.revenue - self.cost

    @property
    def margin_percent(self) -> Decimal | None:
        """Of revenue, to two places; None without revenue."""
        if not self.revenue:
            return None
        return (self.margin * 100 / self.revenue).quantize(Decimal("0.01"), ROUND_HALF_UP)

    @property
    def negative(self) -> bool:
        return self.margin < 0


def figures(revenue: Row | Group | None, cost: Row | Group | None) -> Figures:
    return Figures(
        revenue=revenue.amount if revenue else ZERO,
        billed_cost=cost.amount if cost else ZERO,
        own_cost=revenue.own_cost if revenue else ZERO,
    )


def period_label(period_start: str) -> str:
    """The report a run's invoices go to: the month its period starts in (``YYYY-MM``)."""
    return period_start[:7]


def sold(sub_id: str, account_id: str, reseller_account_id: str | None, product_id: str) -> Sold:
    return Sold(sub_id, account_id, reseller_account_id or DIRECT, product_id)


def line_cost(line: InvoiceLine, unit_cost: Decimal, currency: str) -> Decimal:
    """The tenant's own cost of what one line bills, by the line's own rule (R22): a charge or
    credit for its days of the period, usage by quantity; rounded half-up like the line."""
    if line.kind == LineKind.USAGE:
        return round_money(unit_cost * line.quantity, currency)
    if line.kind == LineKind.FEE:  # R31: a cancellation fee costs the root nothing of its own
        return round_money(Decimal(0), currency)
    rated = line.rated()
    cost = prorated(unit_cost, rated.quantity, rated.days, rated.period, currency)
    return -cost if line.kind == LineKind.CREDIT else cost


def revenue_rows(
    currency: str,
    invoices: Sequence[tuple[Invoice, Sequence[InvoiceLine]]],
    sold_as: Mapping[str, Sold],
    unit_costs: Mapping[str, Decimal],
) -> list[Row]:
    """REVENUE rows of a run's issued invoices: per subscription, the sum of its lines; its own
    cost where ``unit_costs`` has one (the tenant's own product's cost for the cycle sold)."""
    rows: dict[str, Row] = {}
    for invoice, lines in invoices:
        if invoice.status != ISSUED:
            continue
        for line in lines:
            who = sold_as.get(line.subscription_id) or sold(
                line.subscription_id, line.end_customer_id, None, line.product_id
            )
            own = unit_costs.get(line.subscription_id)
            row = rows.get(line.subscription_id) or Row(
                side=REVENUE,
                subscription_id=line.subscription_id,
                customer_id=who.customer_id,
                reseller_id=who.reseller_id,
                product_id=who.product_id,
                amount=ZERO,
                customer_name=line.end_customer_name,
                reseller_name=_reseller_name(invoice, who),
                product_name=line.product_name,
                sku=line.sku,
                currency=currency,
            )
            rows[line.subscription_id] = replace(
                row,
                amount=row.amount + line.amount,
                own_cost=row.own_cost + (line_cost(line, own, currency) if own else ZERO),
                lines=row.lines + 1,
            )
    return sorted(rows.values(), key=lambda r: r.subscription_id)


def _reseller_name(invoice: Invoice, who: Sold) -> str:
    if who.reseller_id == DIRECT:
        return "Direct"
    if invoice.account_id == who.reseller_id:  # R20: a reseller is billed for what it resells
        return str(invoice.bill_to.get("name") or who.reseller_id)
    return who.reseller_id


def cost_rows(
    invoices: Sequence[tuple[Invoice, Sequence[InvoiceLine]]],
    sources: Mapping[str, str],
    sold_as: Mapping[str, Sold],
    names: Mapping[str, str],
    purchases: Mapping[str, str],
) -> list[Row]:
    """COST rows of the child, from the issued invoices its provider billed its reseller
    account: a line's subscription is a mirror whose source (``sources``: mirror → the child's
    subscription) is sold as ``sold_as`` says; ``names`` are the child's account names. A line
    of no mirror is the child's own purchase, filed under its product's copy in the child
    (``purchases``: the provider's product → the child's copy)."""
    rows: dict[str, Row] = {}
    for invoice, lines in invoices:
        if invoice.status != ISSUED:
            continue
        for line in lines:
            source = sources.get(line.subscription_id)
            who = sold_as.get(source) if source else None
            if who is None:
                key = line.subscription_id
                row = rows.get(key) or Row(
                    side=COST,
                    subscription_id=key,
                    customer_id=OWN,
                    reseller_id=OWN,
                    product_id=purchases.get(line.product_id, line.product_id),
                    amount=ZERO,
                    customer_name="Own purchases",
                    reseller_name="Own purchases",
                    product_name=line.product_name,
                    sku=line.sku,
                    purchase=True,
                    currency=invoice.currency,
                )
            else:
                key = who.subscription_id
                row = rows.get(key) or Row(
                    side=COST,
                    subscription_id=key,
                    customer_id=who.customer_id,
                    reseller_id=who.reseller_id,
                    product_id=who.product_id,
                    amount=ZERO,
                    customer_name=names.get(who.customer_id, line.end_customer_name),
                    reseller_name=(
                        "Direct"
                        if who.reseller_id == DIRECT
                        else names.get(who.reseller_id, who.reseller_id)
                    ),
                    product_name=line.product_name,
                    sku=line.sku,
                    currency=invoice.currency,
                )
            rows[key] = replace(row, amount=row.amount + line.amount, lines=row.lines + 1)
    return sorted(rows.values(), key=lambda r: r.subscription_id)


def summaries(side: str, rows: Iterable[Row]) -> list[Group]:
    """One side's sums per reseller, customer and product, and its total (``grouping`` "")."""
    sums: dict[tuple[str, str], list[Decimal]] = defaultdict(lambda: [ZERO, ZERO, ZERO])
    named: dict[tuple[str, str], str] = {}
    currency = ""
    for row in rows:
        if row.side != side:
            continue
        currency = row.currency
        for grouping, key in [("", ""), *((g, row.key(g)) for g in GROUPINGS)]:
            acc = sums[(grouping, key)]
            acc[0] += row.amount
            acc[1] += row.own_cost
            acc[2] += 1
            if grouping and not named.get((grouping, key)):
                named[(grouping, key)] = row.name(grouping)
    return [
        Group(
            side, grouping, key, named.get((grouping, key), ""), amount, own, int(count), currency
        )
        for (grouping, key), (amount, own, count) in sorted(sums.items())
    ]


def merged(items: Iterable[Row | Group]) -> list[tuple[Row | Group | None, Row | Group | None]]:
    """Items as read (a page of one prefix, both sides interleaved) paired by line: (revenue,
    cost), in the order read."""
    pairs: dict[str, list[Row | Group | None]] = {}
    for item in items:
        key = item.subscription_id if isinstance(item, Row) else item.key
        pair = pairs.setdefault(key, [None, None])
        pair[0 if item.side == REVENUE else 1] = item
    return [(revenue, cost) for revenue, cost in pairs.values()]
