"""What billing's services (``services/``) need of the repositories, the document store, the
mailer and the state machine: ``typing.Protocol``s, each with exactly the methods the services
call. The adapters (``adapters.py``) meet them structurally (mypy checks it where
``functions.composition`` builds the services).

Pure: the stdlib, the domains and the kernel's pure modules only, never an adapter, PynamoDB,
boto3 or botocore (``lint-imports``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from decimal import Decimal
from typing import Any, Protocol

from functions.core.domain import Account
from functions.core.pagination import Page
from functions.invoices.domain import BillingRun, Chunk, Invoice, InvoiceLine, Line, UsageRecord
from functions.orders.domain import Subscription
from functions.pricelist.domain import Price


class Usage(Protocol):
    """Usage records (R25; ``adapters.UsageRepository``)."""

    def record_once(self, record: UsageRecord) -> bool:
        """Put the record unless its key is taken; False if it was (R25)."""
        ...

    def get(self, tenant_id: str, subscription_id: str, key: str) -> UsageRecord | None: ...

    def page(
        self, tenant_id: str, subscription_id: str, limit: int, cursor: str | None
    ) -> Page[UsageRecord]:
        """A subscription's usage, oldest first."""
        ...

    def total(self, tenant_id: str, subscription_id: str, start: str, end: str) -> Decimal:
        """The quantity used in ``[start, end)`` (RFC 3339 UTC): a period's usage (R21)."""
        ...


class Runs(Protocol):
    """Whether a billing run is there (what ``UsageService`` reads of ``BillingRecords``)."""

    def run(
        self, tenant_id: str, run_id: str, *, consistent: bool = False
    ) -> BillingRun | None: ...


class BillingRecords(Runs, Protocol):
    """The billing run's tables and the invoices, and what rating reads of the other contexts'
    tables by key (``adapters.BillingRepository``)."""

    # runs

    def save_run(self, run: BillingRun, *, expected_attempt: int | None) -> bool:
        """Put the run if its stored attempt is ``expected_attempt`` (None: it is new)."""
        ...

    def update_run(self, tenant_id: str, run_id: str, attempt: int, **fields: Any) -> None:
        """Set fields of the run's current attempt (an older attempt's step changes nothing)."""
        ...

    def runs(self, tenant_id: str, limit: int, cursor: str | None) -> Page[BillingRun]: ...

    # chunks

    def put_chunks(
        self, tenant_id: str, run_id: str, attempt: int, chunks: Sequence[dict[str, list[str]]]
    ) -> None: ...

    def chunk(self, tenant_id: str, run_id: str, attempt: int, n: int) -> Chunk: ...

    def chunks(self, tenant_id: str, run_id: str, attempt: int, count: int) -> list[Chunk]: ...

    def chunk_done(
        self,
        tenant_id: str,
        run_id: str,
        attempt: int,
        n: int,
        *,
        status: str,
        invoice_ids: Sequence[str] = (),
        failures: Sequence[dict[str, str]] = (),
        counts: dict[str, int],
    ) -> bool:
        """Mark a chunk rated (or rendered) and add its counts to the run's, together and
        once. False if it was done already."""
        ...

    # invoices

    def invoice(self, tenant_id: str, invoice_id: str) -> Invoice | None: ...

    def invoices(self, tenant_id: str, ids: Iterable[str]) -> dict[str, Invoice]:
        """By id, strongly consistent."""
        ...

    def lines(self, invoice: Invoice) -> list[InvoiceLine]: ...

    def lines_of(self, invoices: Iterable[Invoice]) -> dict[str, list[InvoiceLine]]: ...

    def put_draft(
        self,
        invoice: Invoice,
        lines: Sequence[InvoiceLine],
        ledgers: dict[str, list[tuple[str, Line]]],
    ) -> bool:
        """The draft's lines and ledgers, then the draft itself, only if no invoice has its id:
        the commit point of rating an account (R24)."""
        ...

    def ledgers(
        self, tenant_id: str, subscription_ids: Iterable[str]
    ) -> dict[str, list[tuple[str, Line]]]:
        """Per subscription: (invoice id, line) of what was invoiced in open periods."""
        ...

    def last_number(self, tenant_id: str) -> int: ...

    def issue(self, tenant_id: str, last: int, invoices: Sequence[Invoice]) -> bool:
        """Number drafts ``last + 1 …`` and advance the tenant's sequence, all or nothing
        (R24: gapless). False if the sequence or a draft moved meanwhile."""
        ...

    def void(self, invoice: Invoice, subscription_ids: Iterable[str], at: str) -> bool:
        """Take the invoice's lines out of its subscriptions' ledgers, then mark it void (if it
        is still issued); False if it was not."""
        ...

    def documented(self, invoice: Invoice, key: str, emailed_at: str | None) -> None: ...

    def page(
        self, tenant_id: str, account_id: str | None, limit: int, cursor: str | None
    ) -> Page[Invoice]:
        """The tenant's invoices, or one account's (newest period first)."""
        ...

    # what rating reads of the other contexts, by key

    def billable(self, tenant_id: str) -> Iterator[tuple[str, str, str | None]]:
        """(subscription, account, reseller account) of every subscription of the tenant."""
        ...

    def subscriptions(self, tenant_id: str, ids: Iterable[str]) -> dict[str, Subscription]: ...

    def accounts(self, tenant_id: str, ids: Iterable[str]) -> dict[str, Account]: ...

    def prices(
        self, tenant_id: str, wanted: Iterable[tuple[str, str, str]]
    ) -> dict[tuple[str, str, str], Price]:
        """Entries by (price list, product, cycle)."""
        ...


class Documents(Protocol):
    """Invoice PDFs (``adapters.DocumentStore``, S3)."""

    def put(self, key: str, body: bytes) -> None: ...

    def get(self, key: str) -> bytes: ...


class Mailer(Protocol):
    """Email (``adapters.Mailer``, SES)."""

    def send(self, to: str, subject: str, text: str, html: str) -> None: ...


class Launcher(Protocol):
    """Starts the billing state machine (R24; ``adapters.Launcher``, Step Functions)."""

    def start(self, name: str, payload: dict[str, Any]) -> str:
        """Start the execution of that name (the run's attempt: once); its ARN."""
        ...

    def running(self, name: str) -> bool:
        """Whether the execution of that name is still running."""
        ...
