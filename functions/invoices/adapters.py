"""DynamoDB table of usage records (R25) and its repository."""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import replace
from datetime import date
from decimal import Decimal
from typing import Any

from pynamodb.attributes import ListAttribute, MapAttribute, NumberAttribute, UnicodeAttribute
from pynamodb.exceptions import UpdateError
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex, LocalSecondaryIndex

from functions.core.adapters import AccountModel
from functions.core.domain import Account
from functions.core.errors import ConcurrentUpdate, present
from functions.core.pagination import Page, decode_cursor, encode_cursor
from functions.core.persistence import (
    BaseTable,
    DecimalAttribute,
    complete_items,
    conditional_failed,
    entity_values,
    put_if,
    to_entity,
    transaction,
)
from functions.core.settings import Settings
from functions.invoices.domain import (
    DRAFT,
    ISSUED,
    LINES_PER_PART,
    VOID,
    BillingRun,
    Chunk,
    Invoice,
    InvoiceLine,
    Line,
    LineKind,
    Period,
    UsageRecord,
    margin,
)
from functions.orders.adapters import BILLING_SHARDS, SubscriptionModel
from functions.orders.domain import Subscription
from functions.pricelist.adapters import PriceModel
from functions.pricelist.domain import Price

log = logging.getLogger("bss.persistence")


class UsageByTime(LocalSecondaryIndex["UsageModel"]):
    """A subscription's usage in time order: what a period's rating sums (R21)."""

    class Meta:
        index_name = "by_time"
        projection = AllProjection()

    subscription_key = UnicodeAttribute(hash_key=True)
    at_key = UnicodeAttribute(range_key=True)  # {at}#{key}


class UsageModel(BaseTable):
    base_name = "usage"
    streamed = True

    subscription_key = UnicodeAttribute(hash_key=True)  # {tenant_id}#{subscription_id}
    key = UnicodeAttribute(range_key=True)  # the deduplication key
    at_key = UnicodeAttribute()
    tenant_id = UnicodeAttribute()
    subscription_id = UnicodeAttribute()
    quantity = DecimalAttribute()
    unit = UnicodeAttribute()
    at = UnicodeAttribute()
    recorded_at = UnicodeAttribute()
    source = MapAttribute[str, str](null=True)
    by_time = UsageByTime()

    @classmethod
    def of(cls, record: UsageRecord) -> UsageModel:
        return cls(
            subscription_key=f"{record.tenant_id}#{record.subscription_id}",
            key=record.key,
            at_key=f"{record.at}#{record.key}",
            tenant_id=record.tenant_id,
            subscription_id=record.subscription_id,
            quantity=record.quantity,
            unit=record.unit,
            at=record.at,
            recorded_at=record.recorded_at,
            source=record.source,
        )

    def entity(self) -> UsageRecord:
        return to_entity(self, UsageRecord)


_USAGE_TIME_KEYS = frozenset({"subscription_key", "key", "at_key"})


class UsageRepository:
    def record_once(self, record: UsageRecord) -> bool:
        """Put the record unless its key is taken; False if it was (R25)."""
        return put_if(UsageModel.of(record), UsageModel.key.does_not_exist())

    def get(self, tenant_id: str, subscription_id: str, key: str) -> UsageRecord | None:
        try:
            return UsageModel.get(f"{tenant_id}#{subscription_id}", key).entity()
        except UsageModel.DoesNotExist:
            return None

    def page(
        self, tenant_id: str, subscription_id: str, limit: int, cursor: str | None
    ) -> Page[UsageRecord]:
        """A subscription's usage, oldest first."""
        partition = f"{tenant_id}#{subscription_id}"
        start = decode_cursor(cursor, {"subscription_key": {"S": partition}}, _USAGE_TIME_KEYS)
        result = UsageModel.by_time.query(partition, limit=limit, last_evaluated_key=start)
        found = complete_items(UsageModel, result, what="usage")
        return Page([item.entity() for item in found], encode_cursor(result.last_evaluated_key))

    def total(self, tenant_id: str, subscription_id: str, start: str, end: str) -> Decimal:
        """The quantity used in ``[start, end)`` (RFC 3339 UTC): a period's usage (R21). The
        sort key ``{at}#{key}`` of a record at ``end`` sorts after ``end``: not counted."""
        query = UsageModel.by_time.query(
            f"{tenant_id}#{subscription_id}",
            range_key_condition=UsageModel.at_key.between(start, end),
        )
        found = complete_items(UsageModel, query, what="usage total")
        return sum((item.quantity for item in found), Decimal(0))


# --- invoices (R26) and the billing run (R24) --------------------------------------------------


def _json(value: Any) -> str:
    return json.dumps(value, default=str, separators=(",", ":"), sort_keys=True)


def line_values(line: InvoiceLine) -> dict[str, Any]:
    return {f.name: getattr(line, f.name) for f in dataclasses.fields(line)}


def invoice_line(values: dict[str, Any]) -> InvoiceLine:
    decimals = ("quantity", "unit_price", "proration", "amount")
    return InvoiceLine(
        **{
            **values,
            **{name: Decimal(values[name]) for name in decimals},
            "kind": LineKind(values["kind"]),
        }
    )


def ledger_values(line: Line, invoice_id: str) -> dict[str, Any]:
    return {
        "invoice_id": invoice_id,
        "kind": line.kind,
        "subscription_id": line.subscription_id,
        "product_id": line.product_id,
        "period": [line.period.start.isoformat(), line.period.end.isoformat()],
        "start": line.start.isoformat(),
        "end": line.end.isoformat(),
        "quantity": str(line.quantity),
        "unit_price": str(line.unit_price),
        "proration": str(line.proration),
        "amount": str(line.amount),
        "credits": line.credits,
    }


def ledger_line(values: dict[str, Any]) -> tuple[str, Line]:
    start, end = values["period"]
    return values["invoice_id"], Line(
        kind=LineKind(values["kind"]),
        subscription_id=values["subscription_id"],
        product_id=values["product_id"],
        period=Period(date.fromisoformat(start), date.fromisoformat(end)),
        start=date.fromisoformat(values["start"]),
        end=date.fromisoformat(values["end"]),
        quantity=Decimal(values["quantity"]),
        unit_price=Decimal(values["unit_price"]),
        proration=Decimal(values["proration"]),
        amount=Decimal(values["amount"]),
        credits=values["credits"],
    )


class InvoicesByAccount(GlobalSecondaryIndex["InvoiceModel"]):
    """An account's invoices by period: what its customer or reseller reads (R26)."""

    class Meta:
        index_name = "by_account"
        projection = AllProjection()

    account_key = UnicodeAttribute(hash_key=True)  # {tenant_id}#{account_id}
    period_key = UnicodeAttribute(range_key=True)  # {period_start}#{id}


class InvoiceModel(BaseTable):
    base_name = "invoices"

    tenant_id = UnicodeAttribute(hash_key=True)  # the issuer
    id = UnicodeAttribute(range_key=True)
    account_key = UnicodeAttribute()
    period_key = UnicodeAttribute()
    run_id = UnicodeAttribute()
    account_id = UnicodeAttribute()
    end_customer_id = UnicodeAttribute(null=True)
    currency = UnicodeAttribute()
    period_start = UnicodeAttribute()
    period_end = UnicodeAttribute()
    status = UnicodeAttribute()
    issuer = MapAttribute[str, Any]()
    bill_to = MapAttribute[str, Any]()
    subtotal = DecimalAttribute()
    tax_rate = DecimalAttribute()
    tax = DecimalAttribute()
    total = DecimalAttribute()
    line_count = NumberAttribute()
    created_at = UnicodeAttribute()
    number = UnicodeAttribute(null=True)
    sequence = NumberAttribute(null=True)
    issued_at = UnicodeAttribute(null=True)
    document_key = UnicodeAttribute(null=True)
    emailed_at = UnicodeAttribute(null=True)
    voided_at = UnicodeAttribute(null=True)
    by_account = InvoicesByAccount()

    @classmethod
    def of(cls, invoice: Invoice) -> InvoiceModel:
        values = entity_values(invoice)
        values.pop("version", None)
        return cls(
            account_key=f"{invoice.tenant_id}#{invoice.account_id}",
            period_key=f"{invoice.period_start}#{invoice.id}",
            **values,
        )

    def entity(self) -> Invoice:
        invoice = to_entity(self, Invoice)
        return replace(
            invoice,
            line_count=int(self.line_count),
            sequence=int(self.sequence) if self.sequence is not None else None,
        )


class InvoiceLinesModel(BaseTable):
    """An invoice's lines, ``LINES_PER_PART`` per item, as JSON (amounts as strings)."""

    base_name = "invoice_lines"

    invoice_key = UnicodeAttribute(hash_key=True)  # {tenant_id}#{invoice_id}
    part = NumberAttribute(range_key=True)
    lines = UnicodeAttribute()


class LedgerModel(BaseTable):
    """What was invoiced for a subscription in periods that can still be corrected (R22): read
    by key when its next run reconciles (no query), pruned as periods close."""

    base_name = "billing_ledger"

    subscription_key = UnicodeAttribute(hash_key=True)  # {tenant_id}#{subscription_id}
    lines = UnicodeAttribute()
    updated_at = UnicodeAttribute()


class SequenceModel(BaseTable):
    """The last invoice number a tenant issued: gapless (R24), advanced only in the
    transaction that issues the invoices it numbers."""

    base_name = "invoice_sequences"

    tenant_id = UnicodeAttribute(hash_key=True)
    last = NumberAttribute(default=0)


class BillingRunModel(BaseTable):
    base_name = "billing_runs"

    tenant_id = UnicodeAttribute(hash_key=True)
    id = UnicodeAttribute(range_key=True)
    period_start = UnicodeAttribute()
    period_end = UnicodeAttribute()
    status = UnicodeAttribute()
    attempt = NumberAttribute()
    created_at = UnicodeAttribute()
    updated_at = UnicodeAttribute()
    started_by = UnicodeAttribute()
    chunks = NumberAttribute(default=0)
    accounts = NumberAttribute(default=0)
    chunks_rated = NumberAttribute(default=0)
    chunks_rendered = NumberAttribute(default=0)
    invoices = NumberAttribute(default=0)
    issued = NumberAttribute(default=0)
    failed_accounts = NumberAttribute(default=0)
    finished_at = UnicodeAttribute(null=True)


class BillingChunkModel(BaseTable):
    """A page of a run's billable accounts (≤ ``CHUNK_ACCOUNTS`` accounts, ≤ ``CHUNK_SUBS``
    subscriptions): one Map iteration rates it; the ids it produced are kept for finalizing and
    rendering."""

    base_name = "billing_chunks"

    run_key = UnicodeAttribute(hash_key=True)  # {tenant_id}#{run_id}
    chunk = UnicodeAttribute(range_key=True)  # {attempt:04d}#{n:05d}
    accounts = UnicodeAttribute()  # JSON {bill_to: [subscription ids]}
    status = UnicodeAttribute(default="pending")
    invoice_ids = ListAttribute(of=UnicodeAttribute, default=list)
    failures = UnicodeAttribute(default="[]")


def _run(item: BillingRunModel) -> BillingRun:
    run = to_entity(item, BillingRun)
    return replace(
        run,
        attempt=int(item.attempt),
        chunks=int(item.chunks),
        accounts=int(item.accounts),
        chunks_rated=int(item.chunks_rated),
        chunks_rendered=int(item.chunks_rendered),
        invoices=int(item.invoices),
        issued=int(item.issued),
        failed_accounts=int(item.failed_accounts),
        failures=[],  # kept on the chunks (``BillingService.run`` gathers them)
    )


#: a chunk's steps: pending → rated → finalized → rendered, each once per attempt
PREVIOUS_STATUS = {"rated": "pending", "finalized": "rated", "rendered": "finalized"}


def chunk_key(attempt: int, n: int) -> str:
    return f"{attempt:04d}#{n:05d}"


def _chunk(n: int, item: BillingChunkModel) -> Chunk:
    return Chunk(
        n=n,
        accounts=json.loads(item.accounts),
        status=item.status,
        invoice_ids=[str(i) for i in item.invoice_ids or []],
        failures=json.loads(item.failures),
    )


class BillingRepository:
    """The billing run's tables, and what rating reads of the other contexts' tables — by key
    (BatchGetItem) wherever it can: a run reads no index per account."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    # runs

    def run(self, tenant_id: str, run_id: str, *, consistent: bool = False) -> BillingRun | None:
        try:
            return _run(BillingRunModel.get(tenant_id, run_id, consistent_read=consistent))
        except BillingRunModel.DoesNotExist:
            return None

    def save_run(self, run: BillingRun, *, expected_attempt: int | None) -> bool:
        """Put the run if its stored attempt is ``expected_attempt`` (None: it is new)."""
        values = entity_values(run)
        values.pop("failures", None)  # read from the chunks
        item = BillingRunModel(**values)
        condition = (
            BillingRunModel.id.does_not_exist()
            if expected_attempt is None
            else BillingRunModel.attempt == expected_attempt
        )
        return put_if(item, condition)

    def update_run(self, tenant_id: str, run_id: str, attempt: int, **fields: Any) -> None:
        """Set fields of the run's current attempt (an older attempt's step changes nothing)."""
        actions = [getattr(BillingRunModel, name).set(value) for name, value in fields.items()]
        try:
            BillingRunModel(tenant_id, run_id).update(
                actions=actions, condition=BillingRunModel.attempt == attempt
            )
        except UpdateError as error:
            if not conditional_failed(error):
                raise

    def runs(self, tenant_id: str, limit: int, cursor: str | None) -> Page[BillingRun]:
        start = decode_cursor(cursor, {"tenant_id": {"S": tenant_id}}, _RUN_KEYS)
        result = BillingRunModel.query(
            tenant_id, scan_index_forward=False, limit=limit, last_evaluated_key=start
        )
        return Page([_run(item) for item in result], encode_cursor(result.last_evaluated_key))

    # chunks

    def put_chunks(
        self, tenant_id: str, run_id: str, attempt: int, chunks: Sequence[dict[str, list[str]]]
    ) -> None:
        with BillingChunkModel.batch_write() as batch:
            for n, accounts in enumerate(chunks):
                batch.save(
                    BillingChunkModel(
                        run_key=f"{tenant_id}#{run_id}",
                        chunk=chunk_key(attempt, n),
                        accounts=_json(accounts),
                    )
                )

    def chunk(self, tenant_id: str, run_id: str, attempt: int, n: int) -> Chunk:
        item = BillingChunkModel.get(
            f"{tenant_id}#{run_id}", chunk_key(attempt, n), consistent_read=True
        )
        return _chunk(n, item)

    def chunks(self, tenant_id: str, run_id: str, attempt: int, count: int) -> list[Chunk]:
        keys = [(f"{tenant_id}#{run_id}", chunk_key(attempt, n)) for n in range(count)]
        items = BillingChunkModel.batch_get(keys, consistent_read=True)  # a step's status
        found = [_chunk(int(i.chunk.split("#")[1]), i) for i in items]
        return sorted(found, key=lambda chunk: chunk.n)

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
        once: a retried or replayed step counts nothing twice. False if it was done already."""
        chunk = BillingChunkModel(f"{tenant_id}#{run_id}", chunk_key(attempt, n))
        previous = PREVIOUS_STATUS[status]
        actions: list[Any] = [BillingChunkModel.status.set(status)]
        if status == "rated":
            actions += [
                BillingChunkModel.invoice_ids.set(list(invoice_ids)),  # type: ignore[arg-type]
                BillingChunkModel.failures.set(_json(list(failures))),
            ]
        try:
            with transaction(self.settings) as tx:
                tx.update(chunk, actions=actions, condition=BillingChunkModel.status == previous)
                tx.update(
                    BillingRunModel(tenant_id, run_id),
                    actions=[getattr(BillingRunModel, k).add(v) for k, v in counts.items()],
                    condition=BillingRunModel.attempt == attempt,
                )
        except ConcurrentUpdate:
            return False
        return True

    # invoices

    def invoice(self, tenant_id: str, invoice_id: str) -> Invoice | None:
        try:
            return InvoiceModel.get(tenant_id, invoice_id, consistent_read=True).entity()
        except InvoiceModel.DoesNotExist:
            return None

    def invoices(self, tenant_id: str, ids: Iterable[str]) -> dict[str, Invoice]:
        """By id, strongly consistent: a step reads what the step before it wrote (a draft
        just numbered must not look like a draft to Render)."""
        keys = [(tenant_id, invoice_id) for invoice_id in dict.fromkeys(ids)]
        items = InvoiceModel.batch_get(keys, consistent_read=True)
        return {item.id: item.entity() for item in items}

    def lines(self, invoice: Invoice) -> list[InvoiceLine]:
        return self.lines_of([invoice])[invoice.id]

    def lines_of(self, invoices: Iterable[Invoice]) -> dict[str, list[InvoiceLine]]:
        """The lines of several invoices in batched reads (100 parts a request)."""
        found: dict[str, list[InvoiceLine]] = {}
        keys = []
        for invoice in invoices:
            found[invoice.id] = []
            keys += [(f"{invoice.tenant_id}#{invoice.id}", part) for part in range(invoice.parts)]
        parts = sorted(
            InvoiceLinesModel.batch_get(keys), key=lambda item: (item.invoice_key, int(item.part))
        )
        for part in parts:
            invoice_id = part.invoice_key.split("#", 1)[1]
            found[invoice_id] += [invoice_line(values) for values in json.loads(part.lines)]
        return found

    def put_draft(
        self,
        invoice: Invoice,
        lines: Sequence[InvoiceLine],
        ledgers: dict[str, list[tuple[str, Line]]],
    ) -> bool:
        """The draft's lines and the ledgers it adds to, then the draft itself, written last
        and only if no invoice has its id: the commit point of rating an account (R24). A
        crash before it leaves lines and ledger entries that the retry rewrites identically
        (the ledger entries of an invoice that does not exist are ignored when rating it)."""
        with InvoiceLinesModel.batch_write() as batch:
            for part in range(invoice.parts):
                chunk = lines[part * LINES_PER_PART : (part + 1) * LINES_PER_PART]
                batch.save(
                    InvoiceLinesModel(
                        invoice_key=f"{invoice.tenant_id}#{invoice.id}",
                        part=part,
                        lines=_json([line_values(line) for line in chunk]),
                    )
                )
        now = invoice.created_at
        with LedgerModel.batch_write() as batch:
            for subscription_id, entries in ledgers.items():
                batch.save(
                    LedgerModel(
                        subscription_key=f"{invoice.tenant_id}#{subscription_id}",
                        lines=_json([ledger_values(line, owner) for owner, line in entries]),
                        updated_at=now,
                    )
                )
        return put_if(InvoiceModel.of(invoice), InvoiceModel.id.does_not_exist())

    def ledgers(
        self, tenant_id: str, subscription_ids: Iterable[str]
    ) -> dict[str, list[tuple[str, Line]]]:
        """Per subscription: (invoice id, line) of what was invoiced in open periods."""
        keys = [f"{tenant_id}#{sub_id}" for sub_id in dict.fromkeys(subscription_ids)]
        return {
            item.subscription_key.split("#", 1)[1]: [
                ledger_line(values) for values in json.loads(item.lines)
            ]
            for item in LedgerModel.batch_get(keys)
        }

    def last_number(self, tenant_id: str) -> int:
        try:
            return int(SequenceModel.get(tenant_id, consistent_read=True).last)
        except SequenceModel.DoesNotExist:
            return 0

    def issue(self, tenant_id: str, last: int, invoices: Sequence[Invoice]) -> bool:
        """Number drafts ``last + 1 …`` and advance the tenant's sequence, all or nothing
        (R24: gapless). False if the sequence or a draft moved meanwhile (nothing written)."""
        sequence = SequenceModel(tenant_id)
        try:
            with transaction(self.settings) as tx:
                if last == 0:
                    tx.save(
                        SequenceModel(tenant_id, last=len(invoices)),
                        condition=SequenceModel.tenant_id.does_not_exist(),
                    )
                else:
                    tx.update(
                        sequence,
                        actions=[SequenceModel.last.set(last + len(invoices))],
                        condition=SequenceModel.last == last,
                    )
                for invoice in invoices:
                    sequence_no = present(invoice.sequence, f"invoice {invoice.id}'s sequence")
                    tx.update(
                        InvoiceModel(tenant_id, invoice.id),
                        actions=[
                            InvoiceModel.status.set(invoice.status),
                            InvoiceModel.number.set(str(invoice.number)),
                            InvoiceModel.sequence.set(sequence_no),
                            InvoiceModel.issued_at.set(str(invoice.issued_at)),
                        ],
                        condition=InvoiceModel.status == DRAFT,
                    )
        except ConcurrentUpdate:
            return False
        return True

    def void(self, invoice: Invoice, subscription_ids: Iterable[str], at: str) -> bool:
        """Take the invoice's lines out of its subscriptions' ledgers, then mark it void (if it
        is still issued). A retry after a crash between the two finds the ledgers clean."""
        ledgers = self.ledgers(invoice.tenant_id, subscription_ids)
        with LedgerModel.batch_write() as batch:
            for subscription_id, entries in ledgers.items():
                kept = [(owner, line) for owner, line in entries if owner != invoice.id]
                batch.save(
                    LedgerModel(
                        subscription_key=f"{invoice.tenant_id}#{subscription_id}",
                        lines=_json([ledger_values(line, owner) for owner, line in kept]),
                        updated_at=at,
                    )
                )
        try:
            InvoiceModel(invoice.tenant_id, invoice.id).update(
                actions=[InvoiceModel.status.set(VOID), InvoiceModel.voided_at.set(at)],
                condition=InvoiceModel.status == ISSUED,
            )
        except UpdateError as error:
            if conditional_failed(error):
                return False
            raise
        return True

    def documented(self, invoice: Invoice, key: str, emailed_at: str | None) -> None:
        actions: list[Any] = [InvoiceModel.document_key.set(key)]
        if emailed_at is not None:
            actions.append(InvoiceModel.emailed_at.set(emailed_at))
        InvoiceModel(invoice.tenant_id, invoice.id).update(actions=actions)

    def page(
        self, tenant_id: str, account_id: str | None, limit: int, cursor: str | None
    ) -> Page[Invoice]:
        """The tenant's invoices, or one account's (newest period first)."""
        if account_id is None:
            start = decode_cursor(cursor, {"tenant_id": {"S": tenant_id}}, _INVOICE_KEYS)
            result = InvoiceModel.query(
                tenant_id, scan_index_forward=False, limit=limit, last_evaluated_key=start
            )
        else:
            partition = f"{tenant_id}#{account_id}"
            start = decode_cursor(cursor, {"account_key": {"S": partition}}, _INVOICE_ACCOUNT_KEYS)
            result = InvoiceModel.by_account.query(
                partition, scan_index_forward=False, limit=limit, last_evaluated_key=start
            )
        found = complete_items(InvoiceModel, result, what="invoices")
        return Page([item.entity() for item in found], encode_cursor(result.last_evaluated_key))

    # what rating reads of the other contexts, by key

    def billable(self, tenant_id: str) -> Iterator[tuple[str, str, str | None]]:
        """(subscription, account, reseller account) of every subscription of the tenant, from
        the small items of the ``by_billing`` index, shard by shard (the run's list step)."""
        for shard in range(BILLING_SHARDS):
            key = f"{tenant_id}#{shard:02d}"
            items = list(SubscriptionModel.by_billing.query(key))
            # an entry without its account (caught half written) is read from the table: a
            # subscription left out of the list would not be billed (issue 11)
            lacking = [(item.tenant_id, item.id) for item in items if not item.account_id]
            reread = {i.id: i for i in SubscriptionModel.batch_get(lacking)} if lacking else {}
            for item in items:
                source = item if item.account_id else reread.get(item.id)
                if source is None or not source.account_id:
                    log.warning("billable: left out subscription %s/%s: gone", tenant_id, item.id)
                    continue
                yield item.id, source.account_id, source.reseller_account_id

    def subscriptions(self, tenant_id: str, ids: Iterable[str]) -> dict[str, Subscription]:
        keys = [(tenant_id, sub_id) for sub_id in dict.fromkeys(ids)]
        return {item.id: item.entity() for item in SubscriptionModel.batch_get(keys)}

    def accounts(self, tenant_id: str, ids: Iterable[str]) -> dict[str, Account]:
        keys = [(tenant_id, account_id) for account_id in dict.fromkeys(ids)]
        return {item.id: to_entity(item, Account) for item in AccountModel.batch_get(keys)}

    def prices(
        self, tenant_id: str, wanted: Iterable[tuple[str, str, str]]
    ) -> dict[tuple[str, str, str], Price]:
        """Entries by (price list, product, cycle)."""
        keys = [PriceModel.keys(tenant_id, *key) for key in dict.fromkeys(wanted)]
        found = (to_entity(item, Price) for item in PriceModel.batch_get(keys))
        return {(p.price_list_id, p.product_id, p.billing_cycle): p for p in found}


_RUN_KEYS = frozenset({"tenant_id", "id"})
_INVOICE_KEYS = frozenset({"tenant_id", "id"})
_INVOICE_ACCOUNT_KEYS = frozenset({"tenant_id", "id", "account_key", "period_key"})


class DocumentStore:
    """Invoice PDFs in S3."""

    def __init__(self, client: Any, bucket: str) -> None:
        self.client = client
        self.bucket = bucket

    def put(self, key: str, body: bytes) -> None:
        self.client.put_object(
            Bucket=self.bucket, Key=key, Body=body, ContentType="application/pdf"
        )

    def get(self, key: str) -> bytes:
        return bytes(self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read())


class Mailer:
    """Email through SES."""

    def __init__(self, client: Any, sender: str) -> None:
        self.client = client
        self.sender = sender

    def send(self, to: str, subject: str, text: str, html: str) -> None:
        self.client.send_email(
            Source=self.sender,
            Destination={"ToAddresses": [to]},
            Message={
                "Subject": {"Data": subject, "Charset": "UTF-8"},
                "Body": {
                    "Text": {"Data": text, "Charset": "UTF-8"},
                    "Html": {"Data": html, "Charset": "UTF-8"},
                },
            },
        )


class Launcher:
    """Starts the billing state machine (R24). The execution's name is the run's attempt, so
    starting the same attempt twice starts it once."""

    def __init__(self, client: Any, state_machine_arn: str) -> None:
        self.client = client
        self.state_machine_arn = state_machine_arn

    def start(self, name: str, payload: dict[str, Any]) -> str:
        try:
            answer = self.client.start_execution(
                stateMachineArn=self.state_machine_arn, name=name, input=json.dumps(payload)
            )
        except self.client.exceptions.ExecutionAlreadyExists:
            return self._execution(name)
        return str(answer["executionArn"])

    def running(self, name: str) -> bool:
        """Whether the execution of that name is still running (a run in progress is not
        started again; one that failed or was stopped is resumed by a new attempt)."""
        try:
            found = self.client.describe_execution(executionArn=self._execution(name))
        except self.client.exceptions.ExecutionDoesNotExist:
            return False
        return found["status"] == "RUNNING"

    def _execution(self, name: str) -> str:
        return f"{self.state_machine_arn.replace(':stateMachine:', ':execution:')}:{name}"


# --- the margin report (R32) ---------------------------------------------------------------------


class MarginModel(BaseTable):
    """One item of a tenant's margin report of a period (R32), as JSON (amounts as strings):
    ``s#{subscription}#{side}`` a row, ``g#{grouping}#{key}#{side}`` a group's sums, and the
    total under every prefix (``s##{side}``, ``g#{grouping}##{side}``: first in its range), so a
    page of rows or groups, with the total on the first, is one Query."""

    base_name = "margin_report"

    report_key = UnicodeAttribute(hash_key=True)  # {tenant_id}#{YYYY-MM}
    item = UnicodeAttribute(range_key=True)
    data = UnicodeAttribute()


_MARGIN_KEYS = frozenset({"report_key", "item"})


def margin_item(report_key: str, item: margin.Row | margin.Group) -> MarginModel:
    if isinstance(item, margin.Row):
        key = f"s#{item.subscription_id}#{item.side}"
        kind = "row"
    else:
        key = f"g#{item.grouping}#{item.key}#{item.side}" if item.grouping else f"s##{item.side}"
        kind = "group"
    values = {f.name: getattr(item, f.name) for f in dataclasses.fields(item)}
    return MarginModel(report_key=report_key, item=key, data=_json({"kind": kind, **values}))


def margin_entity(model: MarginModel) -> margin.Row | margin.Group:
    values = json.loads(model.data)
    kind = values.pop("kind")
    for name in ("amount", "own_cost"):
        values[name] = Decimal(values[name])
    return margin.Row(**values) if kind == "row" else margin.Group(**values)


class MarginReportRepository:
    """The ``margin_report`` table: written by the billing run's steps, read a page at a time."""

    def put(self, report_key: str, items: Iterable[margin.Row | margin.Group]) -> None:
        """Rows and groups; a total is written under every prefix. Rewriting the same item is
        harmless: each side's items are its own, recomputed from issued invoices."""
        with MarginModel.batch_write() as batch:
            for item in items:
                batch.save(margin_item(report_key, item))
                if isinstance(item, margin.Group) and not item.grouping:
                    for grouping in margin.GROUPINGS:
                        batch.save(margin_item(report_key, replace(item, grouping=grouping)))

    def side(self, report_key: str, prefix: str, side: str) -> list[margin.Row | margin.Group]:
        """Every item of one side under ``prefix`` (a run's close: its rows, its groups)."""
        found = MarginModel.query(
            report_key, MarginModel.item.startswith(prefix), consistent_read=True
        )
        return [margin_entity(m) for m in found if m.item.endswith(f"#{side}")]

    def delete(self, report_key: str, items: Iterable[margin.Row | margin.Group]) -> None:
        with MarginModel.batch_write() as batch:
            for item in items:
                batch.delete(margin_item(report_key, item))

    def page(
        self, report_key: str, prefix: str, limit: int, cursor: str | None
    ) -> tuple[list[margin.Row | margin.Group], str | None]:
        """Up to ``limit`` lines (each one or two items, one per side) in one Query; a line cut
        by the Query's limit is left for the next page."""
        start = decode_cursor(cursor, {"report_key": {"S": report_key}}, _MARGIN_KEYS)
        result = MarginModel.query(
            report_key,
            MarginModel.item.startswith(prefix),
            limit=2 * limit + 2,
            last_evaluated_key=start,
        )
        items = list(result)
        more = result.last_evaluated_key is not None
        lines: list[str] = []  # each line's key, in order
        for model in items:
            line = model.item.rsplit("#", 1)[0]
            if not lines or lines[-1] != line:
                lines.append(line)
        keep: list[str] = []
        for line in lines:
            if len([k for k in keep if not k.endswith("#")]) == limit and not line.endswith("#"):
                break
            keep.append(line)
        if more and keep == lines and items[-1].item.endswith(f"#{margin.COST}"):
            keep = keep[:-1]  # its revenue item may be the next one read
        wanted = set(keep)
        kept = [m for m in items if m.item.rsplit("#", 1)[0] in wanted]
        if not kept:
            return [], None
        cut = kept[-1] is not items[-1] or more
        next_key = {"report_key": {"S": report_key}, "item": {"S": kept[-1].item}}
        return [margin_entity(m) for m in kept], encode_cursor(next_key) if cut else None


MODELS: tuple[type[BaseTable], ...] = (
    UsageModel,
    InvoiceModel,
    InvoiceLinesModel,
    LedgerModel,
    SequenceModel,
    BillingRunModel,
    BillingChunkModel,
    MarginModel,
)
