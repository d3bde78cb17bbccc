"""The local platform (``make run`` = ``python -m local.platform``).

An embedded moto server stands in for DynamoDB, SQS, Step Functions, S3 and SES; every table of
``functions.composition.models()`` and every queue of ``infra/events.py`` is created on it; the
event runner (``local/runner.py``) delivers the table streams and queues to the app's Lambda
functions as Lambda's event source mappings would; the billing run (R24) is the state machine of
``infra/billing_run.asl.json``, executed by moto with its Task states routed to the app's
functions (``local/stepfunctions.py``), with the documents bucket and the mail sender's identity
on moto; its schedule and the other daily rules of ``infra/events.py`` (the automatic renewals
of R31, the reconciliation runs of R33) are played by a thread each (once at start, then
hourly, where AWS runs them daily); the Chalice app is served over HTTP by Chalice's in-process
local server on 127.0.0.1:$PORT (default 8000; ``local/server.py``), and the demo data of SPEC
§1 is loaded through that API (with the runner already delivering, so back ordering's backfill
and stream flow as they would in AWS).

``BSS_JWT_SECRET`` from the environment is honoured; without it a random one is generated and
printed. Ctrl-C (or SIGTERM) stops everything and exits 0, within a few seconds
(``STOP_BUDGET_S``).

``make run`` keeps its state between runs (``local/state.py``): the tables, queues, stored
objects, the event runner's checkpoints, the generated secret and the demo's ids and tokens are
saved under ``.local/`` (``BSS_LOCAL_DIR``) on a clean stop and every 30 s while they change, and
restored on the next start before anything is delivered; ``RESET=1`` starts afresh. The banner
says which it did.

Storefronts (R27, R30): the demo gives Cloud Lite a Standard plan, so three storefronts serve
pages under ``/store/{alias}/``; a fresh demo's Cloud Lite gets a logo (``local/logo.py``), and
every start mints a single-use sign-in link per demo user for the banner (withdrawing those of
the last start). What the app mails through SES is written to ``.local/mail/``
(``local/mail.py``).

Tests use it in-process too::

    with start_platform(0, seed=True) as platform:
        platform.url, platform.tokens["customer_x"]

The command line and the banner it prints are in ``local/cli.py``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import sys
import threading
import time
import urllib.request
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from functions.core import observability
from local import demo as demo_data
from local import logo as demo_logo
from local import mail as local_mail
from local import moto_guard, stepfunctions
from local import runner as event_runner
from local import state as local_state
from local.server import (
    HOST,
    SERVE_POLL_S,
    PlatformError,
    _check_port_free,
    _free_port,
    _HttpServer,
    _wait_until_healthy,
)

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
#: saved bearer tokens are printed again while they have at least this long to live
TOKEN_REUSE_MIN_S = 3600
#: under the state directory: the mail sent through SES, as files (``local/mail.py``)
MAIL_DIR = "mail"
#: under the state directory: the nonces of the sign-in links the banner printed last, which
#: the next start withdraws as it prints new ones
LINKS_FILE = "sign-in-links.json"


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
        self.others: list[stepfunctions.Scheduler] = []  # the other daily rules
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
        """The billing schedule, then every other daily rule (``infra/events.py`` SCHEDULES:
        the automatic renewals of R31, the reconciliation runs of R33), each on its thread."""
        from infra.events import SCHEDULES

        self.scheduler = stepfunctions.Scheduler(
            interval=SCHEDULE_INTERVAL_S, prefix=TABLE_PREFIX, region=region
        )
        self.others = [
            stepfunctions.Scheduler(
                interval=SCHEDULE_INTERVAL_S,
                prefix=TABLE_PREFIX,
                region=region,
                name=rule.function,
                expression=rule.expression,
            )
            for rule in SCHEDULES
        ]
        for scheduler in (self.scheduler, *self.others):
            scheduler.start()

    def describe_schedules(self) -> str:
        return "; ".join(s.describe() for s in (self.scheduler, *self.others) if s is not None)

    def stop_schedule(self, timeout: float = 10.0) -> None:
        for scheduler in (*self.others, self.scheduler):
            if scheduler is not None:
                scheduler.stop(timeout=timeout / (1 + len(self.others)))

    def stop(self) -> None:
        """Before moto stops: its settings are restored through its API."""
        self.stop_schedule()
        stepfunctions.uninstall()
        try:
            stepfunctions.configure_server(self.endpoint, self._moto_config)
        except OSError as error:
            logging.getLogger(__name__).warning("cannot restore moto's settings: %s", error)


# --- the storefronts (R27, R30): the demo's logo, sign-in links, the mail folder --------------


@dataclass(frozen=True)
class SignInLink:
    """A single-use storefront sign-in link the banner prints for a demo user
    (``local.demo.SIGN_INS``), as the emailed one would be."""

    key: str
    label: str
    #: the storefront it signs in to
    alias: str
    #: the account's email, the address the link is for
    email: str
    url: str
    expires: datetime
    #: the link's record (its nonce), for the next start to withdraw it
    tenant_id: str = ""
    account_id: str = ""
    nonce: str = ""


def _set_demo_logo(demo: demo_data.Demo) -> None:
    """Cloud Lite's logo (``local/logo.py``), set as its user would in the storefront: the
    logo has no JSON route, so through the service, in process."""
    from functions.composition import container
    from functions.core.auth import RESELLER, Principal

    principal = Principal(
        sub=demo_data.LITE_USER, role=RESELLER, tenant_id=demo.resell_id, account_id=demo.lite_id
    )
    try:
        container().storefronts.set_logo(principal, demo_logo.demo_logo())
    except Exception as error:
        raise demo_data.DemoError(
            f"demo data: Cloud Lite's storefront logo could not be set ({type(error).__name__}: "
            f"{error})"
        ) from error


def _mint_links(demo: demo_data.Demo, secret: str) -> list[SignInLink]:
    """A new single-use sign-in link (valid 15 minutes) per demo user of ``SIGN_INS``, minted
    by the storefront service as the emailed ones are (each records its nonce). None for a
    demo without storefronts."""
    from functions.composition import container
    from functions.storefront import tokens

    services = container()
    links = []
    for spec in demo_data.SIGN_INS:
        alias = demo.storefronts.get(spec.storefront)
        if alias is None:
            continue
        account = services.tenancy.accounts.get(demo.resell_id, getattr(demo, spec.account))
        if account is None or not account.email:
            continue
        front = services.storefronts.resolve(alias)
        url = services.storefronts.link_url(front, account, spec.role, account.email)
        link = tokens.LoginLink.of(
            tokens.verify(secret, tokens.LINK, url.rsplit("token=", 1)[-1], time.time())
        )
        links.append(
            SignInLink(
                key=spec.key,
                label=spec.label,
                alias=alias,
                email=account.email,
                url=url,
                expires=datetime.fromtimestamp(link.expires, UTC),
                tenant_id=link.tenant_id,
                account_id=link.account_id,
                nonce=link.nonce,
            )
        )
    return links


def _save_links(path: Path, links: list[SignInLink]) -> None:
    entries = [
        {"tenant_id": link.tenant_id, "account_id": link.account_id, "nonce": link.nonce}
        for link in links
    ]
    temporary = path.with_name(f"{path.name}.tmp")
    temporary.write_text(json.dumps(entries, indent=1) + "\n", encoding="utf-8")
    os.chmod(temporary, 0o600)
    temporary.replace(path)


def _withdraw_links(path: Path) -> int:
    """The links the last start printed stop working: their nonces' records are deleted (a
    link without its record signs nobody in). The restored tables hold as many records as
    before the new links: a restart adds nothing. How many were withdrawn."""
    from functions.storefront.adapters import StorefrontModel, owner_key

    try:
        entries = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return 0
    except (OSError, ValueError) as error:
        logging.getLogger(__name__).warning("cannot read %s: %s", path, error)
        return 0
    withdrawn = 0
    for entry in entries if isinstance(entries, list) else []:
        try:
            key = owner_key(entry["tenant_id"], entry["account_id"])
            record = StorefrontModel.get(key, f"login#{entry['nonce']}")
        except StorefrontModel.DoesNotExist:
            continue
        except (KeyError, TypeError) as error:
            logging.getLogger(__name__).warning("%s: not a link: %r (%s)", path, entry, error)
            continue
        record.delete()
        withdrawn += 1
    return withdrawn


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
    #: a fresh single-use storefront sign-in link per demo user, minted at this start
    sign_in_links: list[SignInLink] = field(default_factory=list)
    #: where the mail sent through SES is written, as the banner shows it ("": nowhere)
    mail_dir: str = ""
    _saver: local_state.Saver | None = None
    _store: local_state.Store | None = None
    _mail: local_mail.MailDrop | None = None

    @property
    def openapi_url(self) -> str:
        return f"{self.url}/openapi.json"

    @property
    def storefronts(self) -> dict[str, str]:
        """The demo's storefront pages by ``Demo.storefronts`` key: cloud, resell, lite."""
        if self.demo is None:
            return {}
        return {key: f"{self.url}/store/{alias}/" for key, alias in self.demo.storefronts.items()}

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
            mail=self._mail,
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
    mail: local_mail.MailDrop | None = None,
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
    if mail is not None:
        mail.stop()  # after the runner: what its last batches mailed is written
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


def _shown_dir(path: Path) -> str:
    shown = local_state.shown(path)
    return shown if shown.endswith("/") else f"{shown}/"


def start_platform(
    port: int = DEFAULT_PORT,
    *,
    seed: bool = True,
    store: local_state.Store | None = None,
    mail_dir: Path | None = None,
) -> Platform:
    """Start moto, create the tables, queues and the billing run's state machine, bucket and
    sender, start the event runner, serve the API on 127.0.0.1:``port`` (0: a free port) and,
    with ``seed``, load the demo data (and wait until the runner has delivered what it set off),
    then start the billing schedule. ``port`` is opened only once all of that is done (the demo
    is loaded through a private server on a free port), so a health check on it means ready.

    With a ``store`` (``make run``: ``local/state.py``), the state it saved is restored into
    moto and the runner's checkpoints before the runner starts, in place of the demo (unless
    the store says reset), and saved again while running and on ``stop``.

    The mail sent through SES is written to ``mail_dir`` (``local/mail.py``; by default the
    store's ``mail/``, none without a store). With demo data, fresh or restored, a new
    storefront sign-in link is minted per demo user (``Platform.sign_in_links``); a store
    withdraws those of its last start. A fresh demo's Cloud Lite gets its logo."""
    started = time.monotonic()
    observability.preload()  # before the runner's, the schedules' and the server's threads
    secret, generated = resolve_secret()
    _check_port_free(port)
    region = _region()
    loaded = local_state.Loaded(None)
    if store is not None:
        try:
            store.acquire()
        except local_state.StateError as error:
            raise PlatformError(str(error)) from None
    moto = seeder = public = runner = trim = billing = mail = None
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
        if mail_dir is None and store is not None:
            mail_dir = store.path / MAIL_DIR
        if mail_dir is not None:
            # a fresh demo: the mail of the data it replaces goes (its links lead nowhere)
            mail = local_mail.MailDrop(
                mail_dir, local_mail.moto_sent_messages(region), fresh=snapshot is None
            )
            mail.start()
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
            _set_demo_logo(demo)
        sign_in_links: list[SignInLink] = []
        if demo is not None:
            links_file = store.path / LINKS_FILE if store is not None else None
            if links_file is not None and snapshot is not None:
                _withdraw_links(links_file)
            sign_in_links = _mint_links(demo, secret)
            if links_file is not None:
                _save_links(links_file, sign_in_links)
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
        _stop_all(public, runner, trim, billing, moto, saved_env, store=store, mail=mail)
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
        schedule=billing.describe_schedules(),
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
        sign_in_links=sign_in_links,
        mail_dir=_shown_dir(mail.directory) if mail is not None else "",
        _saver=saver,
        _store=store,
        _mail=mail,
    )


# --- the command line (local/cli.py) -----------------------------------------------------------


def banner(platform: Platform) -> str:
    """What ``make run`` prints once the platform is ready (``local.cli.banner``)."""
    from local import cli

    return cli.banner(platform)


def main() -> int:
    """``make run`` = ``python -m local.platform`` (``local.cli.main``)."""
    from local import cli

    return cli.main()


if __name__ == "__main__":
    sys.exit(main())
