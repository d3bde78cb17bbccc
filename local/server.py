"""The local platform's API server (``make run``, ``local/platform.py``): Chalice's threaded
local server behind API Gateway's stand-in (``local/gateway.py``), admitting ``API_CONCURRENCY``
requests at a time in the order they came, listening with a backlog for bursts of clients, and
draining the requests in flight on a stop; and the port helpers of the start."""

from __future__ import annotations

import contextlib
import logging
import re
import socket
import sys
import threading
import time
import urllib.request
from collections import deque
from typing import Any, cast

from chalice.config import Config
from chalice.local import LocalChalice, LocalDevServer, ThreadedHTTPServer

from local.gateway import GatewayHandler

HOST = "127.0.0.1"
#: how often the servers' loops look whether they were asked to stop (the socketserver default,
#: 0.5 s, is added to every stop)
SERVE_POLL_S = 0.1
#: the listen backlog of the API's server (the socketserver default, 5, drops the connections of
#: a burst of clients: their SYNs are retried a second or more later, or reset on some systems)
LISTEN_BACKLOG = 128


# defined here, where a start first raises it (a busy port); ``local.platform`` raises it for the
# rest and exports it
class PlatformError(RuntimeError):
    """The platform could not start (a busy port, a bad setting): the message says why."""


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
            line = _SECRET_QUERY.sub(r"\1=…", format % args)  # a sign-in link signs in
            sys.stderr.write(f"{stamp} {self.client_address[0]} {line}\n")


#: query parameters the access log leaves out: a storefront's sign-in link (R30)
_SECRET_QUERY = re.compile(r"\b(token)=[^&\s\"]+")


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
