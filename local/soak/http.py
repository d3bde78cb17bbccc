"""The soak's HTTP: a JSON client on one keep-alive connection, the statistics of every
answer, and the platform under test as a subprocess (``python -m local.platform``)."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: how long the platform may take to start (the demo is loaded over HTTP first)
START_TIMEOUT_S = 180.0
#: how long one request may take before it counts as not answered
REQUEST_TIMEOUT_S = 60.0
HOST = "127.0.0.1"
ROOT = Path(__file__).resolve().parents[2]


class SoakError(RuntimeError):
    """The soak could not run (the platform did not start, the demo is not there)."""


# --- HTTP -----------------------------------------------------------------------------------------


@dataclass
class Answer:
    status: int  # 0: no answer
    body: Any
    at: float  # time.monotonic() when it was read


class Stats:
    """Every answer, by status and (4xx) error code; the first 5xx kept to show."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests = 0
        self.statuses: Counter[int] = Counter()
        self.codes: Counter[str] = Counter()
        self.server_errors: list[str] = []
        self.no_answer: list[str] = []
        #: seconds from sending to the answer (or to giving up)
        self.latencies: list[float] = []

    def record(
        self, method: str, path: str, answer: Answer, error: str = "", sent: float = 0.0
    ) -> None:
        with self.lock:
            self.requests += 1
            if sent:
                self.latencies.append(answer.at - sent)
            self.statuses[answer.status] += 1
            if 400 <= answer.status < 500:
                code = _error_code(answer.body)
                self.codes[f"{answer.status} {code}"] += 1
            elif answer.status >= 500 and len(self.server_errors) < 10:
                self.server_errors.append(f"{method} {path} → {answer.status} {answer.body}")
            elif answer.status == 0 and len(self.no_answer) < 10:
                self.no_answer.append(f"{method} {path}: {error}")


def _error_code(body: Any) -> str:
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        return str(body["error"].get("code", "?"))
    return "?"


class Http:
    """JSON over one keep-alive connection (one per thread)."""

    def __init__(self, url: str, stats: Stats, timeout: float = REQUEST_TIMEOUT_S) -> None:
        parsed = urllib.parse.urlsplit(url)
        self.host = parsed.hostname or HOST
        self.port = parsed.port or 80
        self.stats = stats
        self.timeout = timeout
        self.connection: http.client.HTTPConnection | None = None

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()
            self.connection = None

    def _once(
        self, method: str, path: str, headers: dict[str, str], data: bytes | None
    ) -> tuple[Answer, str]:
        if self.connection is None:
            self.connection = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        try:
            self.connection.request(method, path, body=data, headers=headers)
            response = self.connection.getresponse()
            raw = response.read()
        except (OSError, http.client.HTTPException) as error:
            self.close()
            return Answer(0, None, time.monotonic()), f"{type(error).__name__}: {error}"
        at = time.monotonic()
        if response.getheader("Connection", "").lower() == "close":
            self.close()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw[:200].decode("utf-8", "replace")
        return Answer(response.status, body, at), ""

    def call(self, method: str, path: str, token: str | None = None, body: Any = None) -> Answer:
        """One request (a POST with an ``Idempotency-Key``); not answered, it is sent once more
        (same key) on a new connection. Both tries are counted."""
        headers = {"Accept": "application/json"}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        data = None
        if body is not None or method == "POST":
            data = json.dumps(body if body is not None else {}).encode()
            headers["Content-Type"] = "application/json"
        if method == "POST":
            headers["Idempotency-Key"] = uuid.uuid4().hex
        sent = time.monotonic()
        answer, error = self._once(method, path, headers, data)
        self.stats.record(method, path, answer, error, sent)
        if answer.status == 0:
            sent = time.monotonic()
            answer, error = self._once(method, path, headers, data)
            self.stats.record(method, path, answer, error, sent)
        return answer

    def items(self, path: str, token: str) -> list[dict[str, Any]]:
        """Every item of a paginated list; raises if a page is not a 200."""
        found: list[dict[str, Any]] = []
        cursor: str | None = None
        while True:
            query = {"limit": "100", **({"cursor": cursor} if cursor else {})}
            sep = "&" if "?" in path else "?"
            answer = self.call("GET", f"{path}{sep}{urllib.parse.urlencode(query)}", token)
            if answer.status != 200:
                raise SoakError(f"GET {path} answered {answer.status}: {answer.body}")
            found.extend(answer.body["items"])
            cursor = answer.body.get("next_cursor")
            if not cursor:
                return found


# --- the platform as a subprocess -----------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


class PlatformProcess:
    """``python -m local.platform`` on a free port, fresh, its output in ``log_path``."""

    def __init__(self, directory: Path, secret: str) -> None:
        self.directory = directory
        self.secret = secret
        self.port = free_port()
        self.url = f"http://{HOST}:{self.port}"
        self.log_path = directory / "platform.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = START_TIMEOUT_S) -> float:
        env = {
            **os.environ,
            "PORT": str(self.port),
            "BSS_LOCAL_DIR": str(self.directory / "state"),
            "RESET": "1",
            "BSS_JWT_SECRET": self.secret,
            "PYTHONUNBUFFERED": "1",
        }
        started = time.monotonic()
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "local.platform"],
                cwd=ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = started + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SoakError(
                    f"the platform exited with {self.process.returncode}:\n{self.tail()}"
                )
            if _healthy(self.url):
                return time.monotonic() - started
            time.sleep(0.2)
        raise SoakError(f"the platform did not answer within {timeout:.0f} s:\n{self.tail()}")

    def stop(self) -> int | None:
        """Ctrl-C, as a person would; killed if it is not gone within 20 s."""
        if self.process is None or self.process.poll() is not None:
            return None if self.process is None else self.process.returncode
        self.process.send_signal(signal.SIGINT)
        try:
            return self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            return None

    def log(self) -> str:
        try:
            return self.log_path.read_text("utf-8", "replace")
        except OSError:
            return ""

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.log().splitlines()[-lines:])


def _healthy(url: str) -> bool:
    try:
        connection = http.client.HTTPConnection(HOST, urllib.parse.urlsplit(url).port, timeout=2)
        connection.request("GET", "/health")
        healthy = connection.getresponse().status == 200
        connection.close()
        return healthy
    except (OSError, http.client.HTTPException):
        return False
