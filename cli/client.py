"""The HTTP client of ``bss``: the API at a URL with a bearer token, through a ``Transport``
(the network by default; the tests route it to Chalice's test client).

Every failure is one of two exceptions the commands turn into exit codes (docs/cli.md):
``ApiError`` (the API answered 4xx/5xx, with SPEC §9's error object) and ``Unreachable`` (no
answer, or nothing to ask with: no URL or no token)."""

from __future__ import annotations

import base64
import json
import os
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

ENV_URL = "BSS_URL"
ENV_TOKEN = "BSS_TOKEN"
ENV_CONFIG = "BSS_CONFIG"
TIMEOUT_S = 30.0
#: the page size asked for when a command reads a whole list
PAGE = 100


@dataclass(frozen=True)
class Response:
    status: int
    headers: Mapping[str, str]
    body: bytes


class Transport(Protocol):
    """Sends one request: ``path`` includes the query string; ``headers`` are complete."""

    def __call__(
        self, method: str, path: str, headers: Mapping[str, str], body: bytes | None
    ) -> Response: ...


class ApiError(Exception):
    """The API answered an error (SPEC §9: ``{"error": {"code", "message", "details"}}``)."""

    def __init__(self, status: int, code: str, message: str, details: Mapping[str, Any]) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.details = dict(details)

    @property
    def field(self) -> str | None:
        value = self.details.get("field")
        return str(value) if value is not None else None

    def describe(self) -> str:
        text = f"error: {self.status} {self.code}: {self.message}"
        return text + (f" (field: {self.field})" if self.field else "")


class Unreachable(Exception):
    """No answer from the API, or no URL or token to ask it with."""


class UrllibTransport:
    """The network: ``urllib.request`` against ``base_url``."""

    def __init__(self, base_url: str, timeout: float = TIMEOUT_S) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout

    def __call__(
        self, method: str, path: str, headers: Mapping[str, str], body: bytes | None
    ) -> Response:
        request = urllib.request.Request(
            self.base_url + path, data=body, headers=dict(headers), method=method
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as answer:
                return Response(answer.status, dict(answer.headers), answer.read())
        except urllib.error.HTTPError as error:
            return Response(error.code, dict(error.headers or {}), error.read())
        except (urllib.error.URLError, OSError, ValueError) as error:
            reason = getattr(error, "reason", error)
            raise Unreachable(f"cannot reach the API at {self.base_url}: {reason}") from None


@dataclass
class Client:
    transport: Transport
    token: str
    url: str = ""
    #: a key per command run: a retried POST is not done twice (SPEC §9, Idempotency-Key)
    idempotency: Iterator[str] | None = field(default=None, repr=False)

    def _send(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        query: Mapping[str, Any] | None = None,
        accept: str = "application/json",
    ) -> Response:
        params = {k: v for k, v in (query or {}).items() if v is not None}
        if params:
            path += "?" + urllib.parse.urlencode(
                {k: str(v).lower() if isinstance(v, bool) else v for k, v in params.items()}
            )
        headers = {"Authorization": f"Bearer {self.token}", "Accept": accept}
        payload = None
        if body is not None:
            payload = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        response = self.transport(method, path, headers, payload)
        if response.status >= 400:
            raise _error(response)
        return response

    def call(self, method: str, path: str, body: Any = None, **query: Any) -> Any:
        """The JSON answer of a request (``None`` for an empty body)."""
        response = self._send(method, path, body=body, query=query)
        return json.loads(response.body) if response.body else None

    def get(self, path: str, **query: Any) -> Any:
        return self.call("GET", path, **query)

    def post(self, path: str, body: Any = None) -> Any:
        return self.call("POST", path, {} if body is None else body)

    def items(self, path: str, limit: int | None = None, **query: Any) -> list[Any]:
        """Every item of a paginated list (SPEC §9: ``items``, ``next_cursor``), or the first
        ``limit``."""
        found: list[Any] = []
        cursor = None
        while True:
            page = self.get(path, limit=PAGE, cursor=cursor, **query)
            found += page.get("items", [])
            cursor = page.get("next_cursor")
            if not cursor or (limit is not None and len(found) >= limit):
                return found[:limit] if limit is not None else found

    def document(self, path: str, accept: str) -> bytes:
        return self._send("GET", path, accept=accept).body

    def claims(self) -> dict[str, Any]:
        """The token's claims, read without checking the signature (the API checks it): which
        role and tenant the commands speak for."""
        return claims(self.token)


def claims(token: str) -> dict[str, Any]:
    try:
        payload = token.split(".")[1]
        data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _error(response: Response) -> ApiError:
    try:
        data = json.loads(response.body)
        error = data["error"]
        return ApiError(
            response.status,
            str(error.get("code", "error")),
            str(error.get("message", "")),
            error.get("details") or {},
        )
    except (ValueError, KeyError, TypeError, AttributeError):
        text = response.body.decode("utf-8", "replace").strip()[:200]
        return ApiError(response.status, f"http_{response.status}", text or "no error object", {})


# --- where the URL and token come from ----------------------------------------------------------


def config_path(env: Mapping[str, str] | None = None) -> Path:
    """``BSS_CONFIG``, else ``$XDG_CONFIG_HOME/bss/credentials.json`` (``~/.config``)."""
    env = os.environ if env is None else env
    if env.get(ENV_CONFIG):
        return Path(env[ENV_CONFIG]).expanduser()
    base = env.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base).expanduser() / "bss" / "credentials.json"


def load_saved(env: Mapping[str, str] | None = None) -> dict[str, str]:
    try:
        data = json.loads(config_path(env).read_text())
    except (OSError, ValueError):
        return {}
    return (
        {k: str(v) for k, v in data.items() if k in ("url", "token")}
        if isinstance(data, dict)
        else {}
    )


def save(url: str, token: str, env: Mapping[str, str] | None = None) -> Path:
    """Writes the credentials file, readable by its owner only (it holds a bearer token)."""
    path = config_path(env)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps({"url": url, "token": token}, indent=2) + "\n")
    os.chmod(temporary, 0o600)
    temporary.replace(path)
    return path


def resolve(
    url: str | None, token: str | None, env: Mapping[str, str] | None = None
) -> tuple[str, str]:
    """The options first, then ``BSS_URL``/``BSS_TOKEN``, then what ``bss login`` saved."""
    env = os.environ if env is None else env
    saved = load_saved(env)
    found_url = url or env.get(ENV_URL) or saved.get("url") or ""
    found_token = token or env.get(ENV_TOKEN) or saved.get("token") or ""
    if not found_url:
        raise Unreachable(f"no API URL: pass --url, set {ENV_URL} or run `bss login`")
    if not found_token:
        raise Unreachable(f"no token: pass --token, set {ENV_TOKEN} or run `bss login`")
    return found_url.rstrip("/"), found_token


# --- the local platform's tokens (`make run`) -----------------------------------------------------

#: what ``make run`` writes for ``bss login --local`` (``local/cli.py``)
LOCAL_FILE = "cli.json"


def local_dir(env: Mapping[str, str] | None = None) -> Path:
    """The local platform's state directory: ``BSS_LOCAL_DIR``, else ``.local/`` at the
    repository root (as ``local/state.py`` has it)."""
    env = os.environ if env is None else env
    raw = env.get("BSS_LOCAL_DIR", "").strip()
    return (
        Path(raw).expanduser().resolve() if raw else Path(__file__).resolve().parents[1] / ".local"
    )


def local_login(role: str, env: Mapping[str, str] | None = None) -> tuple[str, str]:
    """The URL of the running local platform and the token it printed for ``role``."""
    path = local_dir(env) / LOCAL_FILE
    try:
        data = json.loads(path.read_text())
    except OSError:
        raise Unreachable(
            f"no local platform's tokens in {path}: start it with `make run`"
        ) from None
    except ValueError:
        raise Unreachable(f"{path} is damaged: restart the local platform (`make run`)") from None
    tokens = data.get("tokens", {})
    if role not in tokens:
        known = ", ".join(sorted(tokens)) or "none"
        raise Unreachable(f"the local platform printed no token for {role!r} (it has: {known})")
    return str(data["url"]), str(tokens[role])
