"""The local platform (``make run`` = ``python -m local.platform``).

An embedded moto server stands in for DynamoDB, SQS, Step Functions, S3 and SES; every table of
``functions.composition.models()`` and every queue of ``infra/events.py`` is created on it; the
event runner (``local/runner.py``) delivers the table streams and queues to the app's Lambda
functions as Lambda's event source mappings would; the billing run (R24) is the state machine of
``infra/billing_run.asl.json``, executed by moto with its Task states routed to the app's
functions (``local/stepfunctions.py``), with the documents bucket and the mail sender's identity
on moto, and its schedule played by a thread (once at start, then hourly, where AWS runs it
daily); the Chalice app is served over HTTP by
Chalice's in-process local server on 127.0.0.1:$PORT (default 8000), and the demo data of SPEC §1
is loaded through that API (with the runner already delivering, so back ordering's backfill and
stream flow as they would in AWS).

``BSS_JWT_SECRET`` from the environment is honoured; without it a random one is generated and
printed. Ctrl-C (or SIGTERM) stops everything and exits 0, within a few seconds
(``STOP_BUDGET_S``).

``make run`` keeps its state between runs (``local/state.py``): the tables, queues, stored
objects, the event runner's checkpoints, the generated secret and the demo's ids and tokens are
saved under ``.local/`` (``BSS_LOCAL_DIR``) on a clean stop and every 30 s while they change, and
restored on the next start before anything is delivered; ``RESET=1`` starts afresh. The banner
says which it did.

Tests use it in-process too::

    with start_platform(0, seed=True) as platform:
        platform.url, platform.tokens["customer_x"]
"""

from __future__ import annotations

import contextlib
import gc
import json
import logging
import os
import secrets
import signal
import socket
import sys
import threading
import time
import urllib.request
from collections import deque
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from types import FrameType, TracebackType
from typing import Any, cast

from chalice.config import Config
from chalice.local import LocalChalice, LocalDevServer, ThreadedHTTPServer

from local import demo as demo_data
from local import moto_guard, stepfunctions
from local import runner as event_runner
from local import state as local_state
from local.gateway import GatewayHandler

HOST = "127.0.0.1"
DEFAULT_PORT = 8000
TABLE_PREFIX = "local"
DEFAULT_REGION = "eu-central-1"
MIN_SECRET_LENGTH = 32
#: the billing run's local resources (in AWS: the stack's bucket and the ``MailFrom`` parameter)
DOCUMENTS_BUCKET = f"{TABLE_PREFIX}-documents"
MAIL_FROM = "billing@bss.local"
#: how often the local schedule calls ``billing_schedule`` (AWS: daily)
SCHEDULE_INTERVAL_S = 3600.0
#: how long a stop waits, all together, for the billing schedule's call and the event runner's
#: batches in flight before saving the state and exiting (what is cut short is redone after the
#: next start: a batch is delivered again, a billing run resumes)
STOP_BUDGET_S = 2.5
#: how often the servers' loops look whether they were asked to stop (the socketserver default,
#: 0.5 s, is added to every stop)
SERVE_POLL_S = 0.1
#: the listen backlog of the API's server (the socketserver default, 5, drops the connections of
#: a burst of clients: their SYNs are retried a second or more later, or reset on some systems)
LISTEN_BACKLOG = 128
#: saved bearer tokens are printed again while they have at least this long to live
TOKEN_REUSE_MIN_S = 3600


class PlatformError(RuntimeError):
    """The platform could not start (a busy port, a bad setting): the message says why."""


# --- the HTTP server ---------------------------------------------------------------------------


class _Server(ThreadedHTTPServer):
    """Chalice's threaded server; rebinding a just-freed port works (a second ``make run``)."""

    allow_reuse_address = True
    daemon_threads = True
    #: twenty (and more) clients connecting at once are all served (issue 11)
    request_queue_size = LISTEN_BACKLOG
    #: one short line per request on stderr, once the platform is ready
    access_log = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: the connections being served (one thread each), for ``drain``
        self._connections: set[socket.socket] = set()
        self._served = threading.Condition()

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError):
            return  # the client went away (a timeout, Ctrl-C on curl): not the server's problem
        super().handle_error(request, client_address)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        with self._served:
            self._connections.add(request)
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self._served:
                self._connections.discard(request)
                self._served.notify_all()

    def drain(self, timeout: float) -> int:
        """Once ``shutdown``: no further request is read on an open connection (a kept-alive one
        ends at once), and the requests being answered are waited for, at most ``timeout``
        seconds, so that what a client was told is written is in the state saved next. The
        number of connections still busy."""
        with self._served:
            for connection in list(self._connections):
                with contextlib.suppress(OSError):
                    connection.shutdown(socket.SHUT_RD)
            self._served.wait_for(lambda: not self._connections, timeout)
            return len(self._connections)


#: how many API requests are handled at once; the others wait their turn (issue 11). The API,
#: moto and the event runner share one Python process, so one interpreter lock: twenty requests
#: handled at once left the runner a twentieth of it, and back ordering fell a minute behind
#: twenty clients (``make soak``, docs/local-platform.md "Concurrency")
API_CONCURRENCY = 4


class _Admission:
    """At most ``limit`` holders at once, admitted in the order they came (a semaphore's
    wake-ups are not: under fifty clients, some requests waited more than a minute)."""

    def __init__(self, limit: int) -> None:
        self._lock = threading.Lock()
        self._free = limit
        self._queue: deque[threading.Event] = deque()

    def __enter__(self) -> None:
        with self._lock:
            if self._free and not self._queue:
                self._free -= 1
                return
            turn = threading.Event()
            self._queue.append(turn)
        turn.wait()  # the holder leaving hands its place over

    def __exit__(self, *exc_info: object) -> None:
        with self._lock:
            if self._queue:
                self._queue.popleft().set()
            else:
                self._free += 1


_ADMISSION = _Admission(API_CONCURRENCY)


class _Handler(GatewayHandler):
    """API Gateway's stand-in (``local/gateway.py``): every answer in the error object, every
    method passed to the app (no 501 HTML page), 404 for a path the API lacks."""

    def _generic_handle(self) -> None:
        with _ADMISSION:  # API_CONCURRENCY at a time
            super()._generic_handle()

    do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = do_PATCH = do_OPTIONS = _generic_handle

    def log_message(self, format: str, *args: Any) -> None:
        if getattr(self.server, "access_log", False):
            stamp = time.strftime("%H:%M:%S")
            sys.stderr.write(f"{stamp} {self.client_address[0]} {format % args}\n")


def _local_app() -> Any:
    """``app.app`` made thread-safe for the local server: each thread its own current request.

    This is what ``chalice.local.create_local_server`` does, guarded so that a second start in
    the same process (tests) does not re-base the class onto itself.
    """
    from chalice.local import CustomLocalChalice

    from app import app

    if not isinstance(app, LocalChalice):
        CustomLocalChalice.__bases__ = (LocalChalice, type(app))
        app.__class__ = CustomLocalChalice
    return app


class _HttpServer:
    """One Chalice local server on its own daemon thread."""

    def __init__(self, port: int) -> None:
        config = Config.create(app_name="bss")
        try:
            self._dev = LocalDevServer(
                _local_app(), config, HOST, port, handler_cls=_Handler, server_cls=_Server
            )
        except OSError as error:
            raise _port_error(port, error) from None
        self.server = cast(_Server, self._dev.server)
        self.port = int(self.server.server_address[1])
        self.url = f"http://{HOST}:{self.port}"
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self.server.serve_forever,
            kwargs={"poll_interval": SERVE_POLL_S},
            name=f"bss-http-{self.port}",
            daemon=True,
        )
        self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        """Stop accepting, let the requests in flight finish (at most ``timeout`` s), close."""
        if self._thread is not None:
            self.server.shutdown()
            self._thread.join(timeout=timeout)
            self._thread = None
            busy = self.server.drain(timeout)
            if busy:
                logging.getLogger(__name__).warning(
                    "%d request(s) still being answered after %.1f s; stopping anyway",
                    busy,
                    timeout,
                )
        self.server.server_close()


def _port_error(port: int, error: OSError) -> PlatformError:
    return PlatformError(
        f"cannot listen on {HOST}:{port} ({error.strerror or error}); "
        "is another platform running? Set PORT to another port."
    )


def _free_port() -> int:
    """A port free now. For ``port=0``, the public server's port is chosen up front: the app's
    settings (``BSS_PUBLIC_URL``, for links in mail) need it before the server is opened."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def _check_port_free(port: int) -> None:
    """Fail fast on a busy port, before anything starts (the real bind comes when ready)."""
    if port == 0:
        return
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server will
        try:
            probe.bind((HOST, port))
        except OSError as error:
            raise _port_error(port, error) from None


def _wait_until_healthy(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise PlatformError(f"{url}/health did not answer within {timeout:.0f} s")
        time.sleep(0.05)


# --- moto --------------------------------------------------------------------------------------


def _moto_server() -> Any:
    """moto's threaded server with its requests serialized (``local/moto_guard.py``); werkzeug's
    listen backlog is 128 already."""
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from moto.server import ThreadedMotoServer
    from werkzeug.serving import make_server

    class GuardedMotoServer(ThreadedMotoServer):
        def _server_entry(self) -> None:
            app = moto_guard.serialized(DomainDispatcherApplication(create_backend_app))
            self._server = make_server(
                self._ip_address, self._port, app, True, request_handler=MotoRequestHandler
            )
            self._server_ready_event.set()
            self._server.serve_forever(poll_interval=SERVE_POLL_S)

    return GuardedMotoServer(ip_address=HOST, port=0, verbose=False)


def _start_moto() -> tuple[Any, str]:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # it logs every request otherwise
    moto_guard.install()
    server = _moto_server()
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    # moto's backends are per process, not per server: start from nothing even if an earlier
    # platform ran in this process (tests)
    reset = urllib.request.Request(f"{endpoint}/moto-api/reset", data=b"", method="POST")
    with urllib.request.urlopen(reset, timeout=10):
        pass
    return server, endpoint


class _IteratorTrim:
    """moto keeps every DynamoDB Streams shard iterator it ever handed out, and every GetRecords
    hands out one (≈1.7 KB each with moto 5.2.5): the runner's polling would grow the process by
    ≈120 MB an hour. Every ``interval`` seconds, all but the newest ``keep`` are dropped (the
    runner always holds the newest of its shard; if it ever held a dropped one, its next poll
    starts a fresh iterator). Touches a moto internal: ``moto`` is pinned in requirements."""

    def __init__(self, interval: float = 30.0, keep: int = 1000) -> None:
        self.interval = interval
        self.keep = keep
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="moto-iterator-trim", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def trim(self) -> int:
        from moto.dynamodbstreams.models import dynamodbstreams_backends

        with moto_guard.LOCK:  # the moto server's requests change these dicts too
            return self._trim(dynamodbstreams_backends)

    def _trim(self, dynamodbstreams_backends: Any) -> int:
        dropped = 0
        for regions in list(dynamodbstreams_backends.values()):
            for backend in list(regions.values()):
                iterators = backend.shard_iterators
                for arn in list(iterators)[: -self.keep or None]:
                    iterators.pop(arn, None)
                    dropped += 1
        return dropped

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.trim()
            except Exception as error:  # moto moved on: stop trimming, say so once
                logging.getLogger(__name__).warning("cannot trim moto's shard iterators: %s", error)
                return


# --- the environment the app reads (functions.core.settings) ----------------------------------


def resolve_secret(env: Mapping[str, str] | None = None) -> tuple[str, bool]:
    """``BSS_JWT_SECRET`` from the environment, else a random 48-character one (generated)."""
    env = os.environ if env is None else env
    secret = env.get("BSS_JWT_SECRET", "").strip()
    if not secret:
        return secrets.token_urlsafe(36), True  # 36 bytes → 48 characters
    if len(secret) < MIN_SECRET_LENGTH:
        raise PlatformError(
            f"BSS_JWT_SECRET must be at least {MIN_SECRET_LENGTH} characters "
            "(or unset it: a random one is generated for the run)"
        )
    return secret, False


def _region() -> str:
    return os.environ.get("AWS_REGION", "").strip() or DEFAULT_REGION


def _app_environment(
    moto_endpoint: str, secret: str, *, state_machine: str, public_url: str
) -> dict[str, str]:
    region = _region()
    return {
        "BSS_AWS_ENDPOINT": moto_endpoint,
        "BSS_TABLE_PREFIX": TABLE_PREFIX,
        "BSS_JWT_SECRET": secret,
        "BSS_BILLING_STATE_MACHINE": state_machine,
        "BSS_DOCUMENTS_BUCKET": DOCUMENTS_BUCKET,
        "BSS_MAIL_FROM": MAIL_FROM,
        "BSS_PUBLIC_URL": public_url,
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,
        # dummy credentials: the only endpoint is the local moto server
        "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local",
        "AWS_SESSION_TOKEN": "local",
        "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",  # NOTES-stack: botocore ≥ 1.44.4 + moto
    }


def _set_environ(values: dict[str, str]) -> dict[str, str | None]:
    """Set ``values``; return what they replaced (for ``Platform.stop`` to restore)."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    return saved


def _restore_environ(saved: dict[str, str | None]) -> None:
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


# --- the billing run (R24): Step Functions, S3 and SES on moto ---------------------------------


class _Billing:
    """The billing run's local pieces, and how to take them down again: moto executing state
    machines (its previous settings kept, to be restored: they are process-wide), moto's Lambda
    Tasks routed to the app's functions, the state machine, the documents bucket, the sender's
    verified identity, and the schedule."""

    def __init__(self, moto_endpoint: str) -> None:
        self.endpoint = moto_endpoint
        self.state_machine = ""
        self.scheduler: stepfunctions.Scheduler | None = None
        self._moto_config = stepfunctions.moto_config()

    def create(self, region: str) -> str:
        """Everything but the schedule; the state machine's ARN. Execution is switched on before
        the state machine is created (moto never executes one created before)."""
        import boto3

        stepfunctions.configure_server(self.endpoint)
        stepfunctions.install()
        session = boto3.session.Session(
            aws_access_key_id="local", aws_secret_access_key="local", region_name=region
        )

        def client(service: str) -> Any:
            return session.client(service, endpoint_url=self.endpoint)

        located = {"CreateBucketConfiguration": {"LocationConstraint": region}}
        s3 = client("s3")
        # a bucket restored with the saved state (local/state.py) exists already, objects and all
        with contextlib.suppress(s3.exceptions.BucketAlreadyOwnedByYou):
            s3.create_bucket(Bucket=DOCUMENTS_BUCKET, **({} if region == "us-east-1" else located))
        client("ses").verify_email_identity(EmailAddress=MAIL_FROM)  # moto: verified at once
        self.state_machine = stepfunctions.create_state_machine(
            client("stepfunctions"), prefix=TABLE_PREFIX, region=region
        )
        return self.state_machine

    def start_schedule(self, region: str) -> None:
        self.scheduler = stepfunctions.Scheduler(
            interval=SCHEDULE_INTERVAL_S, prefix=TABLE_PREFIX, region=region
        )
        self.scheduler.start()

    def stop_schedule(self, timeout: float = 10.0) -> None:
        if self.scheduler is not None:
            self.scheduler.stop(timeout=timeout)

    def stop(self) -> None:
        """Before moto stops: its settings are restored through its API."""
        self.stop_schedule()
        stepfunctions.uninstall()
        try:
            stepfunctions.configure_server(self.endpoint, self._moto_config)
        except OSError as error:
            logging.getLogger(__name__).warning("cannot restore moto's settings: %s", error)


# --- the platform ------------------------------------------------------------------------------


@dataclass
class Platform:
    """A running local platform: moto, tables, the API; the demo data if seeded."""

    url: str
    moto_endpoint: str
    secret: str
    secret_generated: bool
    demo: demo_data.Demo | None
    role_tokens: list[demo_data.RoleToken]
    startup_seconds: float
    #: the queues created on moto, by base name (``infra.events.queue_names()``)
    queues: dict[str, str]
    #: one line per delivered source, e.g. ``subscriptions_stream ← local-subscriptions stream``
    deliveries: list[str]
    #: the billing run's state machine on moto (``BSS_BILLING_STATE_MACHINE``)
    state_machine: str
    #: when the local schedule calls ``billing_schedule``
    schedule: str
    _http: _HttpServer
    _runner: event_runner.Runner
    _trim: _IteratorTrim
    _billing: _Billing
    _moto: Any
    _saved_env: dict[str, str | None]
    _stopped: bool = field(default=False)
    #: the state directory, as the banner shows it ("" when the state is not kept: tests)
    state_dir: str = ""
    #: what the start did with the saved state: restored it, or why it started afresh
    state: str = ""
    #: whether the generated secret is the one an earlier run generated (kept in the state)
    secret_kept: bool = False
    #: when the bearer tokens kept from the last run expire (None: minted now, valid 12 h)
    tokens_until: datetime | None = None
    #: what the stop did: how long it took, and whether the state was saved
    stop_message: str = ""
    _saver: local_state.Saver | None = None
    _store: local_state.Store | None = None

    @property
    def openapi_url(self) -> str:
        return f"{self.url}/openapi.json"

    @property
    def tokens(self) -> dict[str, str]:
        """Bearer tokens by key: platform_admin, cloud_admin, resell_admin, lite_reseller,
        customer_x, customer_z (only platform_admin without demo data)."""
        return {t.key: t.token for t in self.role_tokens}

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        started = time.monotonic()
        saved = _stop_all(
            self._http,
            self._runner,
            self._trim,
            self._billing,
            self._moto,
            self._saved_env,
            saver=self._saver,
            store=self._store,
        )
        took = f"the stop took {time.monotonic() - started:.1f} s"
        self.stop_message = f"{saved} ({took})" if saved else f"{took[0].upper()}{took[1:]}"

    def __enter__(self) -> Platform:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _stop_all(
    http: _HttpServer | None,
    runner: event_runner.Runner | None,
    trim: _IteratorTrim | None,
    billing: _Billing | None,
    moto: Any,
    saved_env: dict[str, str | None] | None,
    *,
    saver: local_state.Saver | None = None,
    store: local_state.Store | None = None,
) -> str:
    """Stop everything, within ``STOP_BUDGET_S`` for what is in flight; with a ``saver``, save
    the state once the API and the runner are stopped and before moto is. What the saving did."""
    from functions import composition

    deadline = time.monotonic() + STOP_BUDGET_S

    def left() -> float:
        return max(0.1, deadline - time.monotonic())

    saved = ""
    if saver is not None:
        saver.stop()  # no periodic snapshot from now on: the last one is taken below
    if http is not None:
        http.stop(timeout=left())
    if billing is not None:
        billing.stop_schedule(timeout=left())  # before moto, like the runner
    if runner is not None:
        runner.stop(timeout=left())  # before moto: a batch in flight finishes against it
    if trim is not None:
        trim.stop()
    if saver is not None:
        try:
            saver.save(force=True, final=True)
            saved = f"State saved to {saver.store.shown()}"
        except Exception as error:
            saved = f"The state could NOT be saved to {saver.store.shown()}: {error}"
            logging.getLogger(__name__).error("%s", saved)
    if billing is not None:
        billing.stop()
    if moto is not None:
        moto.stop()
        server = getattr(moto, "_server", None)  # stop() leaves the socket open
        if server is not None:
            server.server_close()
    composition.reset()
    if saved_env is not None:
        _restore_environ(saved_env)
    if store is not None:
        store.release()
    return saved


def _create_queues(settings: Any) -> dict[str, str]:
    import boto3

    sqs = boto3.session.Session().client(
        "sqs", region_name=settings.region, endpoint_url=settings.aws_endpoint
    )
    return event_runner.create_queues(sqs, settings.table_prefix)


# --- the state between runs (local/state.py) ---------------------------------------------------


def _check_snapshot(snapshot: local_state.Snapshot) -> None:
    """What the platform reads of a snapshot fits this release's demo (raises if not)."""
    if snapshot.demo is not None:
        demo_data.Demo(**snapshot.demo)
    for token in snapshot.tokens:
        demo_data.RoleToken(**token)


def _load_state(store: local_state.Store, region: str) -> local_state.Loaded:
    try:
        return store.load(
            region=region, schema=local_state.schema_fingerprint(), check=_check_snapshot
        )
    except OSError as error:
        raise PlatformError(
            f"cannot read the local state in {store.shown()} ({error.strerror or error})"
        ) from None


def _kept_tokens(
    snapshot: local_state.Snapshot | None, demo: demo_data.Demo | None, secret: str
) -> tuple[list[demo_data.RoleToken], datetime | None]:
    """The tokens the last run printed, while they are signed with ``secret`` and have at least
    ``TOKEN_REUSE_MIN_S`` to live (with their earliest expiry); else new ones."""
    import jwt

    fresh = demo_data.role_tokens(demo, secret)
    if snapshot is None or not snapshot.tokens:
        return fresh, None
    kept = [demo_data.RoleToken(**token) for token in snapshot.tokens]
    if [t.key for t in kept] != [t.key for t in fresh]:
        return fresh, None
    try:
        expiries = [int(jwt.decode(t.token, secret, algorithms=["HS256"])["exp"]) for t in kept]
    except (jwt.PyJWTError, KeyError, TypeError, ValueError):
        return fresh, None
    if min(expiries) - time.time() < TOKEN_REUSE_MIN_S:
        return fresh, None
    return kept, datetime.fromtimestamp(min(expiries), UTC)


def _state_line(store: local_state.Store, loaded: local_state.Loaded) -> str:
    where = store.shown()
    snapshot = loaded.snapshot
    if snapshot is not None:
        counts = snapshot.counts
        return (
            f"restored {counts.items} items ({counts.tables} tables), {counts.messages} queued "
            f"messages and {counts.objects} stored objects from {where} saved at "
            f"{snapshot.saved_at.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC"
        )
    if loaded.set_aside is not None:
        return (
            f"{loaded.reason}; it is kept aside as {local_state.shown(loaded.set_aside)}; "
            "fresh demo data"
        )
    if loaded.reason.startswith(local_state.ENV_RESET):
        return f"fresh demo data; {loaded.reason} (what {where} held is replaced)"
    return f"{loaded.reason}: fresh demo data"


def start_platform(
    port: int = DEFAULT_PORT, *, seed: bool = True, store: local_state.Store | None = None
) -> Platform:
    """Start moto, create the tables, queues and the billing run's state machine, bucket and
    sender, start the event runner, serve the API on 127.0.0.1:``port`` (0: a free port) and,
    with ``seed``, load the demo data (and wait until the runner has delivered what it set off),
    then start the billing schedule. ``port`` is opened only once all of that is done (the demo
    is loaded through a private server on a free port), so a health check on it means ready.

    With a ``store`` (``make run``: ``local/state.py``), the state it saved is restored into
    moto and the runner's checkpoints before the runner starts, in place of the demo (unless
    the store says reset), and saved again while running and on ``stop``."""
    started = time.monotonic()
    secret, generated = resolve_secret()
    _check_port_free(port)
    region = _region()
    loaded = local_state.Loaded(None)
    if store is not None:
        try:
            store.acquire()
        except local_state.StateError as error:
            raise PlatformError(str(error)) from None
    moto = seeder = public = runner = trim = billing = None
    saved_env: dict[str, str | None] | None = None
    try:
        if store is not None:
            loaded = _load_state(store, region)
        snapshot = loaded.snapshot
        secret_kept = bool(generated and snapshot is not None and snapshot.secret)
        if secret_kept and snapshot is not None and snapshot.secret:
            secret = snapshot.secret
        port = port or _free_port()
        moto, moto_endpoint = _start_moto()
        if snapshot is not None:
            # before anything reads moto: no stream record is written, nothing delivered again
            local_state.trim_streams(snapshot.backends, snapshot.checkpoints)
            local_state.apply_backends(snapshot.backends, region)
        trim = _IteratorTrim()
        trim.start()
        billing = _Billing(moto_endpoint)
        state_machine = billing.create(region)
        saved_env = _set_environ(
            _app_environment(
                moto_endpoint,
                secret,
                state_machine=state_machine,
                public_url=f"http://{HOST}:{port}",
            )
        )
        from functions import composition
        from functions.core.persistence import create_tables

        composition.reset()
        settings = composition.container().settings  # reads the settings, binds the models
        create_tables(composition.models())
        queues = _create_queues(settings)
        runner = event_runner.Runner()
        if snapshot is not None:
            local_state.resume(runner, snapshot.checkpoints)
        runner.start()

        demo = None
        if snapshot is not None:
            demo = demo_data.Demo(**snapshot.demo) if snapshot.demo is not None else None
        elif seed:
            seeder = _HttpServer(0)
            seeder.start()
            _wait_until_healthy(seeder.url)
            demo = demo_data.load(seeder.url, secret)
            seeder.stop()
            seeder = None
            runner.wait_idle(timeout=30)  # what the demo set off (mirrors, orders) is delivered
        billing.start_schedule(region)  # its first call bills whoever is due today
        role_tokens, tokens_until = _kept_tokens(snapshot, demo, secret)

        saver = None
        if store is not None:
            saver = local_state.Saver(
                store,
                region=region,
                schema=local_state.schema_fingerprint(),
                platform={
                    "secret": secret if generated else None,
                    "demo": asdict(demo) if demo is not None else None,
                    "tokens": [asdict(t) for t in role_tokens],
                },
                runner=runner,
                checkpoints=snapshot.checkpoints if snapshot is not None else None,
            )
            saver.save(force=True)  # a crash from now on keeps at least this
            saver.start()

        public = _HttpServer(port)
        public.start()
        _wait_until_healthy(public.url)
        public.server.access_log = True
    except BaseException:
        if seeder is not None:
            seeder.stop()
        _stop_all(public, runner, trim, billing, moto, saved_env, store=store)
        raise
    return Platform(
        url=public.url,
        moto_endpoint=moto_endpoint,
        secret=secret,
        secret_generated=generated,
        demo=demo,
        role_tokens=role_tokens,
        startup_seconds=time.monotonic() - started,
        queues=queues,
        deliveries=runner.describe(),
        state_machine=state_machine,
        schedule=billing.scheduler.describe() if billing.scheduler else "",
        _http=public,
        _runner=runner,
        _trim=trim,
        _billing=billing,
        _moto=moto,
        _saved_env=saved_env or {},
        state_dir=store.shown() if store is not None else "",
        state=_state_line(store, loaded) if store is not None else "",
        secret_kept=secret_kept,
        tokens_until=tokens_until,
        _saver=saver,
        _store=store,
    )


# --- the command line --------------------------------------------------------------------------

_ENV_NAMES = {
    "platform_admin": "TOKEN_PLATFORM_ADMIN",
    "cloud_admin": "TOKEN_CLOUD_ADMIN",
    "resell_admin": "TOKEN_RESELL_ADMIN",
    "lite_reseller": "TOKEN_LITE_RESELLER",
    "customer_x": "TOKEN_CUSTOMER_X",
    "customer_z": "TOKEN_CUSTOMER_Z",
}


def banner(platform: Platform) -> str:
    lines = [
        f"BSS local platform ready in {platform.startup_seconds:.1f} s",
        f"  API       {platform.url}",
        f"  OpenAPI   {platform.openapi_url}",
        f"  AWS       {platform.moto_endpoint}  (moto: DynamoDB tables and SQS queues "
        f"{TABLE_PREFIX}-*, Step Functions, S3, SES)",
        f"  Events    delivering {len(platform.deliveries)} streams and queues to the app's "
        f"Lambda functions (local runner):",
        *(f"              {line}" for line in platform.deliveries),
        f"  Queues    {', '.join(f'{TABLE_PREFIX}-{base}' for base in platform.queues)}",
        f"  Billing   state machine {platform.state_machine.rsplit(':', 1)[-1]} (moto runs "
        "infra/billing_run.asl.json; its Tasks call the app's functions)",
        f"            schedule: {platform.schedule}",
        f"            documents s3://{DOCUMENTS_BUCKET}, mail from {MAIL_FROM} (moto S3, SES)",
    ]
    if platform.state:
        lines += [
            f"  State     {platform.state}",
            f"            saved to {platform.state_dir} on Ctrl-C and every "
            f"{local_state.SNAPSHOT_INTERVAL_S:g} s while it changes; "
            "`make run RESET=1` starts afresh",
        ]
    if platform.secret_kept:
        lines.append(
            f"  Secret    BSS_JWT_SECRET={platform.secret}  (generated by an earlier run, kept "
            f"in {platform.state_dir})"
        )
    elif platform.secret_generated:
        lines.append(f"  Secret    BSS_JWT_SECRET={platform.secret}  (generated for this run)")
    else:
        lines.append("  Secret    BSS_JWT_SECRET from the environment")
    if platform.demo is not None:
        lines.append("  Demo      Cloud → Cloud Resell → Cloud Lite → X, Y; Cloud Resell → Z")
        backfill = platform.demo.backordering.get("backfill") or {}
        lines.append(
            "            back ordering on for Cloud Resell: "
            f"{backfill.get('mirrored', 0)} subscriptions mirrored into Cloud by the backfill; "
            "every change flows up"
        )
    validity = (
        f"kept from the last run, valid until {platform.tokens_until:%Y-%m-%d %H:%M} UTC"
        if platform.tokens_until is not None
        else "valid 12 h"
    )
    lines += ["", f"Bearer tokens ({validity}), ready to paste into a shell:"]
    for t in platform.role_tokens:
        lines.append(f"  # {t.role}: {t.label}")
        lines.append(f"  export {_ENV_NAMES.get(t.key, t.key.upper())}={t.token}")
    example = "customer_x" if "customer_x" in platform.tokens else "platform_admin"
    path = "/products" if example == "customer_x" else "/tenants"
    lines += [
        "",
        "Try:",
        f'  curl -s -H "Authorization: Bearer ${_ENV_NAMES[example]}" {platform.url}{path}',
    ]
    demo = platform.demo
    if demo is not None and "resell_admin" in platform.tokens:
        body = json.dumps(
            {
                "account_id": demo.x_id,
                "product_id": demo.resell_products["o365_e3"],
                "billing_cycle": "monthly",
                "quantity": 3,
            }
        )
        lines += [
            "  # back ordering: Cloud Resell sells to X, and Cloud's BSS has it at once",
            f'  curl -s -X POST -H "Authorization: Bearer $TOKEN_RESELL_ADMIN" '
            f"-H 'Content-Type: application/json' -d '{body}' {platform.url}/subscriptions",
            f'  curl -s -H "Authorization: Bearer $TOKEN_CLOUD_ADMIN" '
            f"{platform.url}/accounts/{demo.resell_account_id}/hierarchy",
        ]
        price = json.dumps(
            {
                "product_id": demo.cloud_products["o365_e3"],
                "billing_cycle": "monthly",
                "price": "33.00",
            }
        )
        lines += [
            "  # price propagation: Cloud raises E3 in Cloud Resell's list; Cloud Resell's cost"
            " follows and its fixed retail price (32.00) is flagged",
            f'  curl -s -X POST -H "Authorization: Bearer $TOKEN_CLOUD_ADMIN" '
            f"-H 'Content-Type: application/json' -d '{price}' "
            f"{platform.url}/pricelists/{demo.price_lists['cloud_resell_list']}/prices",
            f'  curl -s -H "Authorization: Bearer $TOKEN_RESELL_ADMIN" '
            f"{platform.url}/products/{demo.resell_products['o365_e3']}",
            f'  curl -s -H "Authorization: Bearer $TOKEN_RESELL_ADMIN" '
            f"'{platform.url}/products?margin_alert=true'",
        ]
        lines += [
            "  # billing: Cloud Resell runs this period (the state machine), then its invoices,"
            " Cloud Lite's next invoice (a preview) and a PDF",
            f'  curl -s -X POST -H "Authorization: Bearer $TOKEN_RESELL_ADMIN" '
            f"-H 'Content-Type: application/json' -d '{{}}' {platform.url}/billing-runs",
            f'  curl -s -H "Authorization: Bearer $TOKEN_RESELL_ADMIN" {platform.url}/invoices',
            f'  curl -s -H "Authorization: Bearer $TOKEN_RESELL_ADMIN" '
            f"'{platform.url}/invoices/preview?account_id={demo.lite_id}'",
            f'  curl -s -H "Authorization: Bearer $TOKEN_RESELL_ADMIN" '
            "-H 'Accept: application/pdf' -o invoice.pdf "
            f"{platform.url}/invoices/<id>/document",
        ]
    lines += ["", "Ctrl-C stops."]
    return "\n".join(lines)


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _port_from_env() -> int:
    raw = os.environ.get("PORT", "").strip() or str(DEFAULT_PORT)
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        raise PlatformError(f"PORT must be a port number (1-65535), not {raw!r}")
    return int(raw)


def main() -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even if started with it ignored
    signal.signal(signal.SIGTERM, _raise_interrupt)  # stop like Ctrl-C
    platform: Platform | None = None
    try:
        port = _port_from_env()
        print(f"Starting the BSS local platform on {HOST}:{port} …", flush=True)
        store = local_state.Store.from_env()
        platform = start_platform(port, seed=True, store=store)
        print(banner(platform), flush=True)
        threading.Event().wait()  # until Ctrl-C / SIGTERM
    except KeyboardInterrupt:
        pass
    except (PlatformError, demo_data.DemoError, local_state.StateError) as error:
        print(f"error: {error}", file=sys.stderr, flush=True)
        return 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not interrupt stop
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if platform is not None:
            platform.stop()
    print(f"\nStopped. {platform.stop_message}." if platform else "\nStopped.", flush=True)
    # the process ends now: spare it the final collection of moto's whole heap (~2 s)
    gc.freeze()
    return 0


if __name__ == "__main__":
    sys.exit(main())
