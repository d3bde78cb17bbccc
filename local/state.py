"""The local platform's state between runs (issue 11, finding 3).

``make run`` keeps what it holds in one file, ``<dir>/state.pickle``, where ``<dir>`` is
``BSS_LOCAL_DIR`` or ``.local/`` at the repository root:

* moto's DynamoDB tables, with their items, indexes and stream shards (records and sequence
  numbers as they were), its SQS queues with their messages, and its S3 buckets with their objects
  (the invoice PDFs), as the Python objects moto keeps them in (pickled under
  ``local.moto_guard.LOCK``, so never half way through a request);
* the event runner's checkpoints: per stream poller and shard, the sequence number up to which
  records were delivered. A record read but not yet delivered when the snapshot was taken is
  delivered after the restart (a batch in flight is delivered again: handlers are idempotent);
* the platform's own: the JWT secret if it was generated (not one from the environment), the
  demo's ids and the bearer tokens the banner printed.

It is written on a clean stop (Ctrl-C, SIGTERM) and every ``SNAPSHOT_INTERVAL_S`` seconds while
something changed (so a crash, ``kill -9``, loses at most that much), always whole: a temporary
file renamed over the old one. On start it is restored before the tables are created and before
the runner delivers anything: restoring writes no stream record, so nothing is delivered again.
``RESET=1`` starts afresh (the snapshot taken once the platform is ready replaces the file). A
file that cannot be read, or that another release of moto, of this module or of the tables'
definitions wrote, is renamed ``state.pickle.unusable-<time>`` and the platform starts afresh,
saying why.

Not kept: Step Functions executions (the state machine is created again on each start: a billing
run cut short by the stop is resumed by the next scheduled or requested run) and SES's sent mail.

This touches moto internals (the backends' ``tables``, ``queues`` and ``buckets``, the stream
shard's ``items`` and ``starting_sequence_number``) and the runner's stream pollers; ``moto`` is
pinned and ``local.moto_guard.check_version`` guards it. The file is a pickle: it is read only
from the directory the platform itself writes to (a file from elsewhere is code that runs).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import os
import pickle
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from local import moto_guard

log = logging.getLogger("local.state")

#: the layout of the snapshot this module writes; another one is not restored
FORMAT = 1
FILE_NAME = "state.pickle"
LOCK_NAME = "lock"
ENV_DIR = "BSS_LOCAL_DIR"
ENV_RESET = "RESET"
DEFAULT_DIR = Path(__file__).resolve().parents[1] / ".local"
#: how often a running platform writes its state, if it changed
SNAPSHOT_INTERVAL_S = 30.0
#: AWS keeps stream records 24 hours: older records of a stream nothing reads locally are dropped
STREAM_RETENTION_S = 24 * 3600

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"", "0", "false", "no", "off"}


class StateError(RuntimeError):
    """The state directory cannot be used (another platform holds it, it is not writable)."""


def directory(env: Mapping[str, str] | None = None) -> Path:
    """``BSS_LOCAL_DIR``, else ``.local/`` at the repository root."""
    env = os.environ if env is None else env
    raw = env.get(ENV_DIR, "").strip()
    return Path(raw).expanduser().resolve() if raw else DEFAULT_DIR


def reset_requested(env: Mapping[str, str] | None = None) -> bool:
    """``RESET=1`` (or true/yes/on): start afresh; unset, empty or 0/false/no/off: restore."""
    env = os.environ if env is None else env
    raw = env.get(ENV_RESET, "").strip().lower()
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    raise StateError(f"RESET must be 1 (start afresh) or 0, not {env.get(ENV_RESET)!r}")


def shown(path: Path) -> str:
    """The path as a person would type it: relative to the working directory when inside it."""
    try:
        relative = path.relative_to(Path.cwd())
    except ValueError:
        return str(path)
    return f"{relative}/" if path.is_dir() or not path.suffix else str(relative)


def schema_fingerprint() -> str:
    """What the tables' definitions are (keys, indexes, streams): a snapshot of other tables
    is not restored."""
    from functions import composition
    from functions.core.persistence import table_resource

    tables = {
        m.base_name: table_resource(m, m.base_name)["Properties"] for m in composition.models()
    }
    return hashlib.sha256(json.dumps(tables, sort_keys=True).encode()).hexdigest()[:16]


def _moto_version() -> str:
    from moto import __version__

    return str(__version__)


# --- moto's backends ---------------------------------------------------------------------------


def _backends(region: str) -> tuple[Any, Any, Any]:
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.dynamodb.models import dynamodb_backends
    from moto.s3.models import s3_backends
    from moto.sqs.models import sqs_backends

    return (
        dynamodb_backends[DEFAULT_ACCOUNT_ID][region],
        sqs_backends[DEFAULT_ACCOUNT_ID][region],
        s3_backends[DEFAULT_ACCOUNT_ID]["aws"],
    )


_LOCK_TYPES = (type(threading.Lock()), type(threading.RLock()))


class _Pickler(pickle.Pickler):
    """moto's objects hold locks here and there (an SQS queue's): a fresh one on load."""

    def reducer_override(self, obj: Any) -> Any:
        if isinstance(obj, _LOCK_TYPES):
            return (threading.RLock if "RLock" in type(obj).__name__ else threading.Lock, ())
        return NotImplemented


def _dumps(value: Any) -> bytes:
    buffer = io.BytesIO()
    _Pickler(buffer, protocol=pickle.HIGHEST_PROTOCOL).dump(value)
    return buffer.getvalue()


def dump_backends(region: str) -> bytes:
    """moto's DynamoDB tables, SQS queues and S3 buckets, pickled at one instant."""
    moto_guard.check_version()
    dynamodb, sqs, s3 = _backends(region)
    with moto_guard.LOCK:
        return _dumps({"dynamodb": dynamodb.tables, "sqs": sqs.queues, "s3": s3.buckets})


def apply_backends(backends: Mapping[str, Any], region: str) -> None:
    """Put the tables, queues and buckets of a snapshot in place of moto's (it was just reset)."""
    moto_guard.check_version()
    dynamodb, sqs, s3 = _backends(region)
    with moto_guard.LOCK:
        dynamodb.tables.clear()
        dynamodb.tables.update(backends["dynamodb"])
        sqs.queues.clear()
        sqs.queues.update(backends["sqs"])
        for name, bucket in backends["s3"].items():
            s3.buckets[name] = bucket
            _register_bucket(name, bucket)


def _register_bucket(name: str, bucket: Any) -> None:
    """moto finds a bucket's account through a global map that ``create_bucket`` fills."""
    from moto.s3.models import s3_backends

    accounts = getattr(s3_backends, "bucket_accounts", None)
    if isinstance(accounts, dict):
        accounts[name] = bucket.account_id


@dataclass(frozen=True)
class Counts:
    tables: int = 0
    items: int = 0
    messages: int = 0
    objects: int = 0

    def describe(self) -> str:
        return (
            f"{self.items} items in {self.tables} tables, {self.messages} queued messages, "
            f"{self.objects} stored objects"
        )


def count(backends: Mapping[str, Any]) -> Counts:
    tables = backends.get("dynamodb", {})
    queues = backends.get("sqs", {})
    buckets = backends.get("s3", {})
    return Counts(
        tables=len(tables),
        items=sum(len(table) for table in tables.values()),
        messages=sum(len(queue._messages) for queue in queues.values()),
        objects=sum(len(bucket.keys) for bucket in buckets.values()),
    )


# --- the event runner's checkpoints ------------------------------------------------------------

#: per stream poller (``function:table``): the stream's ARN, and per shard the sequence number
#: delivered up to, or None (nothing read yet: the next start reads from the shard's first record)
Checkpoints = dict[str, dict[str, Any]]


def _poller_key(poller: Any) -> str:
    return f"{poller.source.function}:{poller.table_name}"


def _shard_checkpoint(shard: Any, previous: str | None, *, settled: bool) -> str | None:
    """Just before the oldest record read and not delivered; else after the last record read.
    A poll that is running (not ``settled``) may have moved ``last_read`` and not yet buffered
    the records it read: with an empty buffer then, the previous checkpoint is kept (older,
    so at worst a record is delivered again)."""
    buffer = list(shard.buffer)
    if buffer:
        return str(int(buffer[0]["dynamodb"]["SequenceNumber"]) - 1)  # moto: consecutive numbers
    if not settled:
        return previous
    return None if shard.last_read is None else str(shard.last_read)


def _read_poller(poller: Any, previous: dict[str, Any] | None, *, settled: bool) -> dict[str, Any]:
    before = previous["shards"] if previous and previous.get("arn") == poller.arn else {}
    shards = {
        sid: _shard_checkpoint(shard, before.get(sid), settled=settled)
        for sid, shard in list(poller.shards.items())
    }
    return {"arn": poller.arn, "shards": shards}


def _poller_checkpoints(
    poller: Any, previous: dict[str, Any] | None, attempts: int
) -> dict[str, Any]:
    """The poller's checkpoints between two of its polls if one comes within ``attempts``
    looks (``busy`` and the poll's end times unchanged around the read); else read while it
    polls (``_shard_checkpoint``)."""
    for attempt in range(attempts):
        marks = (poller.busy, poller.idle_since, poller.busy_until)
        if not marks[0]:
            read = _read_poller(poller, previous, settled=True)
            if (poller.busy, poller.idle_since, poller.busy_until) == marks:
                return read
        if attempt + 1 < attempts:
            time.sleep(0.002)
    return _read_poller(poller, previous, settled=False)


def checkpoints(
    runner: Any, *, previous: Checkpoints | None = None, stopped: bool = False
) -> Checkpoints:
    """Where every stream poller of ``runner`` has delivered up to (``previous``: the last
    checkpoints taken, kept for a shard whose poll is under way). Once the runner is
    ``stopped``, a poller still busy is not waited for: it is stuck in its function, and its
    batch, still in the buffer, is delivered again after the restart."""
    from local.runner import StreamPoller

    previous = previous or {}
    return {
        _poller_key(poller): _poller_checkpoints(
            poller, previous.get(_poller_key(poller)), attempts=1 if stopped else 200
        )
        for poller in runner.pollers
        if isinstance(poller, StreamPoller)
    }


def resume(runner: Any, saved: Checkpoints) -> int:
    """Start ``runner``'s stream pollers where the saved checkpoints say (before ``start``); the
    number of shards resumed. A poller finding another stream on its table than the saved one
    starts that stream from its first record (``local.runner``)."""
    from local.runner import StreamPoller, _Shard

    resumed = 0
    for poller in runner.pollers:
        mark = saved.get(_poller_key(poller)) if isinstance(poller, StreamPoller) else None
        if not mark or not mark.get("arn"):
            continue
        poller.arn = mark["arn"]
        for shard_id, sequence in mark.get("shards", {}).items():
            if sequence is not None:
                poller.shards[shard_id] = _Shard(shard_id, last_read=sequence)
                resumed += 1
    return resumed


def trim_streams(
    backends: Mapping[str, Any], saved: Checkpoints, *, now: float | None = None
) -> int:
    """Drop the stream records every local poller has delivered (and, on a stream no poller
    reads, those older than AWS's 24 hours), keeping the sequence numbers of the others: the
    snapshot does not grow with every write ever made. The number of records dropped."""
    now = time.time() if now is None else now
    readers: dict[str, int] = {}
    delivered: dict[str, dict[str, list[str | None]]] = {}
    for key, mark in saved.items():
        table = key.split(":", 1)[1]
        readers[table] = readers.get(table, 0) + 1
        for shard_id, sequence in mark.get("shards", {}).items():
            delivered.setdefault(table, {}).setdefault(shard_id, []).append(sequence)
    dropped = 0
    for name, table in backends.get("dynamodb", {}).items():
        shard = getattr(table, "stream_shard", None)
        if shard is None or not shard.items:
            continue
        if name in readers:
            marks = delivered.get(name, {}).get(shard.id, [])
            if len(marks) < readers[name] or None in marks:
                continue  # a poller has read nothing of it yet
            upto = min(int(mark) for mark in marks if mark is not None)
            drop = max(0, min(len(shard.items), upto - shard.starting_sequence_number + 1))
        else:
            drop = 0
            for record in shard.items:
                created = _epoch(record.record["dynamodb"].get("ApproximateCreationDateTime"))
                if created is None or now - created <= STREAM_RETENTION_S:
                    break
                drop += 1
        if drop:
            del shard.items[:drop]
            shard.starting_sequence_number += drop
            dropped += drop
    return dropped


def _epoch(value: Any) -> float | None:
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()
    if isinstance(value, int | float):
        return float(value)
    return None


# --- the snapshot ------------------------------------------------------------------------------


@dataclass
class Snapshot:
    """What a run saved; ``backends`` are moto's objects, ready for ``apply_backends``."""

    saved_at: datetime
    region: str
    #: the JWT secret, if the run generated it
    secret: str | None
    #: ``local.demo.Demo`` as a dict, if the demo was loaded
    demo: dict[str, Any] | None
    #: ``local.demo.RoleToken`` as dicts: what the banner printed
    tokens: list[dict[str, str]]
    checkpoints: Checkpoints
    backends: dict[str, Any] = field(repr=False)

    @property
    def counts(self) -> Counts:
        return count(self.backends)


@dataclass(frozen=True)
class Loaded:
    """The outcome of reading the state directory: a snapshot, or why there is none."""

    snapshot: Snapshot | None
    #: why nothing was restored: ``RESET=1``, no file, or what was wrong with it
    reason: str = ""
    #: where an unusable file was moved
    set_aside: Path | None = None


class Unusable(Exception):
    """A snapshot that is damaged or written by another release (the message says which)."""


def _error(error: BaseException) -> str:
    text = str(error).splitlines()[0][:200] if str(error) else ""
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


class Store:
    """The state directory: the snapshot file, and a lock so two platforms never share it."""

    def __init__(self, path: Path, *, reset: bool = False) -> None:
        self.path = path
        self.reset = reset
        self.file = path / FILE_NAME
        self._lock: IO[bytes] | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Store:
        return cls(directory(env), reset=reset_requested(env))

    def shown(self) -> str:
        return shown(self.path)

    # the directory

    def acquire(self) -> None:
        """Create the directory and hold its lock until ``release``."""
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            handle = (self.path / LOCK_NAME).open("a+b")
        except OSError as error:
            raise StateError(
                f"cannot use {self.shown()} for the local state ({error.strerror or error}); "
                f"set {ENV_DIR} to a writable directory"
            ) from None
        try:
            import fcntl
        except ImportError:  # not on a POSIX system: no lock
            self._lock = handle
            return
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            raise StateError(
                f"another local platform is using {self.shown()}; stop it, or set {ENV_DIR} "
                "to another directory for this one"
            ) from None
        self._lock = handle

    def release(self) -> None:
        if self._lock is not None:
            self._lock.close()  # closing drops the lock
            self._lock = None

    # reading

    def load(
        self,
        *,
        region: str,
        schema: str,
        check: Callable[[Snapshot], object] | None = None,
    ) -> Loaded:
        """The saved snapshot if there is a usable one (``check`` raising says it is not). An
        unusable file is renamed aside."""
        if self.reset:
            return Loaded(None, f"{ENV_RESET}=1")
        with contextlib.suppress(FileNotFoundError):
            (self.path / f"{FILE_NAME}.tmp").unlink()  # a write a crash cut short
        if not self.file.exists():
            return Loaded(None, f"no saved state in {self.shown()}")
        try:
            snapshot = self._read(region=region, schema=schema)
            if check is not None:
                try:
                    check(snapshot)
                except Exception as error:
                    raise Unusable(f"its content does not fit ({_error(error)})") from None
            return Loaded(snapshot)
        except Unusable as problem:
            aside = self.set_aside()
            return Loaded(None, f"the saved state could not be used: {problem}", aside)

    def _read(self, *, region: str, schema: str) -> Snapshot:
        try:
            with self.file.open("rb") as f:
                outer = pickle.load(f)
        except Exception as error:
            raise Unusable(f"the file is damaged ({type(error).__name__})") from None
        if not isinstance(outer, dict) or outer.get("format") != FORMAT:
            found = outer.get("format") if isinstance(outer, dict) else None
            raise Unusable(f"it has layout {found!r}, this platform reads layout {FORMAT}")
        if outer.get("moto") != _moto_version():
            raise Unusable(
                f"moto {outer.get('moto')} wrote it, moto {_moto_version()} is installed"
            )
        if outer.get("schema") != schema:
            raise Unusable("the tables' definitions changed since it was written")
        if outer.get("region") != region:
            raise Unusable(f"it holds region {outer.get('region')}, this run uses {region}")
        try:
            backends = pickle.loads(outer["backends"])
            snapshot = Snapshot(
                saved_at=datetime.fromisoformat(outer["saved_at"]),
                region=outer["region"],
                secret=outer["platform"]["secret"],
                demo=outer["platform"]["demo"],
                tokens=list(outer["platform"]["tokens"]),
                checkpoints=dict(outer["checkpoints"]),
                backends=dict(backends),
            )
            for part in ("dynamodb", "sqs", "s3"):
                if not isinstance(snapshot.backends[part], dict):
                    raise TypeError(part)
        except Exception as error:
            raise Unusable(f"its content is damaged ({_error(error)})") from None
        return snapshot

    def set_aside(self) -> Path:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        aside = self.file.with_name(f"{FILE_NAME}.unusable-{stamp}")
        self.file.replace(aside)
        return aside

    # writing

    def write(self, data: bytes) -> None:
        """The whole file or nothing: a temporary file, flushed, renamed over the old one."""
        temporary = self.path / f"{FILE_NAME}.tmp"
        with temporary.open("wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(temporary, 0o600)  # it may hold the JWT secret
        temporary.replace(self.file)


def encode(
    *,
    region: str,
    schema: str,
    platform: Mapping[str, Any],
    checkpoints: Checkpoints,
    backends: bytes,
    saved_at: datetime | None = None,
) -> bytes:
    """The file's bytes: a header of plain values, then moto's objects (pickled apart, so that
    a snapshot from another moto is told apart before they are loaded)."""
    outer = {
        "format": FORMAT,
        "moto": _moto_version(),
        "schema": schema,
        "region": region,
        "saved_at": (saved_at or datetime.now(UTC)).isoformat(timespec="seconds"),
        "platform": dict(platform),
        "checkpoints": checkpoints,
        "backends": backends,
    }
    return pickle.dumps(outer, protocol=pickle.HIGHEST_PROTOCOL)


class Saver:
    """Takes snapshots of a running platform: now (``save``), and every ``interval`` seconds on a
    thread of its own while something changed."""

    def __init__(
        self,
        store: Store,
        *,
        region: str,
        schema: str,
        platform: Mapping[str, Any],
        runner: Any,
        checkpoints: Checkpoints | None = None,
        interval: float = SNAPSHOT_INTERVAL_S,
    ) -> None:
        self.store = store
        self.region = region
        self.schema = schema
        self.platform = dict(platform)
        self.runner = runner
        #: the checkpoints of the last snapshot (at start: those the runner was resumed from)
        self.checkpoints: Checkpoints = dict(checkpoints or {})
        self.interval = interval
        self.saves = 0
        self._last: bytes = b""
        self._guard = threading.Lock()  # one snapshot at a time
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def save(self, *, force: bool = False, final: bool = False) -> bool:
        """Write a snapshot (unless nothing changed since the last one and not ``force``);
        whether it wrote. The runner's checkpoints are read first, then moto's state: a batch
        delivered in between is in both or delivered again, never lost. ``final``: the runner
        is stopped (``checkpoints``)."""
        with self._guard:
            marks = (
                checkpoints(self.runner, previous=self.checkpoints, stopped=final)
                if self.runner is not None
                else {}
            )
            backends = dump_backends(self.region)
            digest = hashlib.sha256(backends + repr(sorted(marks.items())).encode()).digest()
            if not force and digest == self._last:
                return False
            self.store.write(
                encode(
                    region=self.region,
                    schema=self.schema,
                    platform=self.platform,
                    checkpoints=marks,
                    backends=backends,
                )
            )
            self._last = digest
            self.checkpoints = marks
            self.saves += 1
            return True

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="local-state-saver", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=timeout)
            self._thread = None

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.save()
            except Exception as error:  # a full disk: say so, keep the platform running
                log.warning("cannot save the local state to %s: %s", self.store.file, error)
