"""moto made safe for the local platform's concurrent clients (issue 11).

moto's backends are plain Python objects with no locking, and its threaded server runs every
request on a thread of its own. Seen with moto 5.2.5 under ten parallel quantity changes:

* two ``TransactWriteItems`` both passed their version conditions (each checks, then writes,
  with nothing between them held), so two orders started from the same old quantity;
* a cancelled transaction rolled back by putting back a *deep copy of the whole table* taken when
  it began: every write other requests made to that table in between was lost (orders whose ids
  had been answered 200 were 404), and the table's stream shard was replaced by the copy, so the
  runner's shard iterator, still on the old shard object, never saw a record again;
* responses built while another thread changed a table failed (``dictionary changed size during
  iteration``), and a query could see an item half way through an update.

Two remedies, both touching moto internals (``moto`` is pinned in requirements-dev.txt and
``install`` refuses any other release):

* ``serialized(app)`` wraps the moto server's WSGI application so requests run one at a time
  (the lock is ``LOCK``, which in-process readers of moto's state take too). Step Functions
  requests are left out: an execution's Task states call the app, whose DynamoDB requests must
  get through while the execution runs. moto is bound by the interpreter's lock anyway, so the
  cost is small.
* ``install()`` makes a cancelled transaction restore the items it touched, and truncate the
  stream records it had added, instead of putting back a copy of whole tables: the same
  outcome for the transaction, nothing lost for anyone else, and the same shard object (the
  copy is also quadratic in the table's size: ``bench/billing.py``).

Two more, so the lock is held less (issue 11's soak):

* ``WRITES`` tells the local event runner which tables and queues the server's requests wrote,
  so a poller that found nothing waits for a write to its source (or a second) instead of
  asking moto every 0.1 s: seven pollers asked it 70 times a second when nothing happened;
* moto's server found the backend of every request by listing its package directory
  (``moto.backends.list_of_moto_modules``: a ``stat`` per service, about 170, a fifth of the
  time a request held the lock under load); ``install()`` lists it once.
"""

from __future__ import annotations

import copy
import io
import json
import threading
from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Any

#: the moto release whose internals this module patches
MOTO_VERSION = "5.2.5"

#: held while moto serves a request (``serialized``) or while in-process code reads moto's state
LOCK = threading.RLock()

#: request targets that may wait on other requests, so they must not hold the lock
_UNSERIALIZED_TARGETS = ("AWSStepFunctions",)

#: the requests that write a table (DynamoDB) or put a message on a queue (SQS, JSON protocol)
_WRITE_TARGETS = frozenset(
    {
        "DynamoDB_20120810.PutItem",
        "DynamoDB_20120810.UpdateItem",
        "DynamoDB_20120810.DeleteItem",
        "DynamoDB_20120810.BatchWriteItem",
        "DynamoDB_20120810.TransactWriteItems",
        "AmazonSQS.SendMessage",
        "AmazonSQS.SendMessageBatch",
    }
)

_installed: dict[str, Any] = {}


class Writes:
    """Which tables and queues have been written, as counters a poller waits on: it reads the
    counter of its source before a poll and, if the poll found nothing, waits for it to move
    (``wait``). ``nudge`` wakes every waiter (a runner stopping, or waiting until idle)."""

    ALL = "*"

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._counts: defaultdict[str, int] = defaultdict(int)
        #: whether a guarded moto server is signalling (``serialized``)
        self.active = False

    def seen(self, name: str) -> tuple[int, int]:
        with self._changed:
            return self._counts[name], self._counts[self.ALL]

    def notify(self, names: Iterable[str]) -> None:
        with self._changed:
            for name in names:
                self._counts[name] += 1
            self._changed.notify_all()

    def nudge(self) -> None:
        self.notify([self.ALL])

    def wait(self, name: str, seen: tuple[int, int], timeout: float) -> bool:
        """Until ``name`` (or everything) was written after ``seen``; False on timeout."""
        with self._changed:
            return self._changed.wait_for(
                lambda: (self._counts[name], self._counts[self.ALL]) != seen, timeout
            )


#: the writes the local platform's moto server served (``serialized``)
WRITES = Writes()


def written(target: str, body: bytes) -> set[str]:
    """The tables (``TableName``) or queues (the name of a ``QueueUrl``) a write request names;
    ``{Writes.ALL}`` if its body cannot be read."""
    try:
        request = json.loads(body)
        if "QueueUrl" in request:
            return {str(request["QueueUrl"]).rstrip("/").rsplit("/", 1)[-1]}
        if "RequestItems" in request:  # BatchWriteItem
            return {str(name) for name in request["RequestItems"]}
        if "TransactItems" in request:
            return {
                str(action["TableName"])
                for entry in request["TransactItems"]
                for action in entry.values()
                if isinstance(action, dict) and "TableName" in action
            }
        return {str(request["TableName"])}
    except (ValueError, KeyError, TypeError, AttributeError):
        return {Writes.ALL}


def serialized(app: Callable[..., Iterable[bytes]]) -> Callable[..., Iterable[bytes]]:
    """A WSGI application that runs ``app`` under ``LOCK``, response body included; after a
    write, the tables or queues it named are signalled on ``WRITES``."""
    WRITES.active = True

    def guarded(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        target = str(environ.get("HTTP_X_AMZ_TARGET", ""))
        path = str(environ.get("PATH_INFO", ""))
        if target.startswith(_UNSERIALIZED_TARGETS) or path.startswith("/moto-api"):
            return app(environ, start_response)
        names: set[str] = set()
        if target in _WRITE_TARGETS:
            length = int(environ.get("CONTENT_LENGTH") or 0)
            body = environ["wsgi.input"].read(length) if length else b""
            environ["wsgi.input"] = io.BytesIO(body)  # moto reads it again
            names = written(target, body)
        with LOCK:
            result = app(environ, start_response)
            try:
                response = [b"".join(result)]
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()
        if names:
            WRITES.notify(names)
        return response

    return guarded


def check_version() -> None:
    from moto import __version__

    if __version__ != MOTO_VERSION:
        raise RuntimeError(
            f"local/moto_guard.py patches moto {MOTO_VERSION}'s internals; moto {__version__} "
            "is installed: check the patch against it, then update MOTO_VERSION"
        )


class _TablesUncopied:
    """``copy`` as moto's ``transact_write_items`` sees it: a table "copied" for its rollback is
    the table itself (the items are backed up one by one instead), anything else is copied."""

    @staticmethod
    def deepcopy(value: Any, memo: Any = None) -> Any:
        from moto.dynamodb.models.table import Table

        return value if isinstance(value, Table) else copy.deepcopy(value, memo)


def install() -> None:
    """Patch moto's ``DynamoDBBackend.transact_write_items`` (idempotent; ``uninstall`` undoes)."""
    if _installed:
        return
    check_version()
    from moto.dynamodb import models
    from moto.dynamodb.models.dynamo_type import DynamoType

    backend = models.DynamoDBBackend
    original = backend.transact_write_items

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        with LOCK:
            saved: list[tuple[Any, Any, Any, Any]] = []
            streams: dict[int, tuple[Any, int]] = {}
            for entry in transact_items:
                request: dict[str, Any] = next(iter(entry.values()), {})
                if not isinstance(request, dict):
                    continue
                table = self.tables.get(request.get("TableName"))
                key = request.get("Item") or request.get("Key") or {}
                if table is None or table.hash_key_attr not in key:
                    continue
                hash_value = DynamoType(key[table.hash_key_attr])
                range_name = table.range_key_attr
                range_value = DynamoType(key[range_name]) if range_name in key else None
                if range_name is not None and range_value is None:
                    continue  # moto refuses it before writing anything
                before = copy.deepcopy(table.get_item(hash_value, range_value))
                saved.append((table, hash_value, range_value, before))
                shard = table.stream_shard
                if shard is not None and id(shard) not in streams:
                    streams[id(shard)] = (shard, len(shard.items))
            try:
                original(self, transact_items)
            except Exception:
                for table, hash_value, range_value, before in reversed(saved):
                    _restore(table, hash_value, range_value, before)
                for shard, length in streams.values():
                    del shard.items[length:]  # the records of the writes undone
                raise

    models.copy = _TablesUncopied  # type: ignore[assignment]
    backend.transact_write_items = transact_write_items  # type: ignore[method-assign]
    from moto import backends as moto_backends

    listed = moto_backends.list_of_moto_modules
    modules = tuple(listed())
    moto_backends.list_of_moto_modules = lambda: modules
    _installed.update(original=original, copy=copy, modules=listed)


def uninstall() -> None:
    if not _installed:
        return
    from moto.dynamodb import models

    models.DynamoDBBackend.transact_write_items = _installed["original"]  # type: ignore[method-assign]
    models.copy = _installed["copy"]  # type: ignore[assignment]
    from moto import backends as moto_backends

    moto_backends.list_of_moto_modules = _installed["modules"]
    _installed.clear()


def _restore(table: Any, hash_value: Any, range_value: Any, before: Any) -> None:
    if range_value is None:
        if before is None:
            table.items.pop(hash_value, None)
        else:
            table.items[hash_value] = before
        return
    if before is None:
        partition = table.items.get(hash_value)
        if partition is not None:
            partition.pop(range_value, None)
            if not partition:
                table.items.pop(hash_value, None)
    else:
        table.items[hash_value][range_value] = before
