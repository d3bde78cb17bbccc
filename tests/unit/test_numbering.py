"""R24: invoice numbers are gapless per issuing tenant whatever fails, and each invoice gets
one. ``BillingService._issue`` against an in-memory repository whose transactions fail at
Hypothesis' choice: before they commit (nothing written), or after (the step dies with its
work done), and concurrent finalizers racing for the same sequence."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from functions.core.errors import Conflict
from functions.invoices import domain
from functions.invoices.domain import DRAFT, Invoice
from functions.invoices.services import BillingService


class Died(Exception):
    pass


class Repository:
    def __init__(self, invoices: list[Invoice], faults: list[str]) -> None:
        self.stored = {invoice.id: invoice for invoice in invoices}
        self.last = 0
        self.faults = faults  # per transaction: "ok", "before" or "after"

    def invoices(self, tenant_id: str, ids: Any) -> dict[str, Invoice]:
        return {i: self.stored[i] for i in ids if i in self.stored}

    def last_number(self, tenant_id: str) -> int:
        return self.last

    def issue(self, tenant_id: str, last: int, invoices: list[Invoice]) -> bool:
        fault = self.faults.pop(0) if self.faults else "ok"
        if fault == "before":
            raise Died("the transaction never reached DynamoDB")
        if fault == "race":  # another finalizer numbered one draft first
            other = next(i for i in self.stored.values() if i.status == DRAFT)
            self.last += 1
            self.stored[other.id] = domain.issue(other, self.last, "t")
            return False
        if last != self.last or any(self.stored[i.id].status != DRAFT for i in invoices):
            return False
        for invoice in invoices:
            self.stored[invoice.id] = invoice
        self.last = last + len(invoices)
        if fault == "after":
            raise Died("the function died after the commit")
        return True


def draft(n: int) -> Invoice:
    zero = Decimal(0)
    return Invoice(
        id=f"inv_{n:04d}",
        tenant_id="t",
        run_id="r",
        account_id=f"acc_{n}",
        currency="EUR",
        period_start="2026-03-01",
        period_end="2026-04-01",
        status=DRAFT,
        issuer={},
        bill_to={},
        subtotal=zero,
        tax_rate=zero,
        tax=zero,
        total=zero,
        line_count=0,
        created_at="t",
    )


@settings(max_examples=200, deadline=None)
@given(
    count=st.integers(min_value=1, max_value=250),
    faults=st.lists(st.sampled_from(["ok", "before", "after", "race"]), max_size=12),
)
def test_r24_numbers_are_gapless_and_unique_whatever_fails(count: int, faults: list[str]) -> None:
    repository = Repository([draft(n) for n in range(count)], list(faults))
    service = BillingService.__new__(BillingService)
    service.repository = repository  # type: ignore[assignment]
    ids = [f"inv_{n:04d}" for n in range(count)]
    for _ in range(len(faults) + 2):  # the state machine retries the step until it succeeds
        try:
            service._issue("t", ids)
            break
        except (Died, Conflict):  # Conflict: ten races in a row; the step is retried too
            continue
    numbers = sorted(i.sequence for i in repository.stored.values() if i.sequence is not None)
    assert numbers == list(range(1, count + 1))
    assert repository.last == count
    assert all(i.number == f"INV-{i.sequence:06d}" for i in repository.stored.values())
