"""The local platform's mail folder: what the app sends through SES (moto) is written to files.

moto's SES keeps every message it accepted (``ses_backends[account][region].sent_messages``),
where nobody can read it. ``MailDrop`` looks every half second and writes each new message
once to ``<state dir>/mail/<nnnn>-<to>.txt`` (To, From, Subject, the body as text), numbered
on from the files already there: the storefront's sign-in emails (R27, R30) and the billing
run's invoice emails (R24), for a person to open. ``MailWriter`` is that writing alone (no
thread, no moto): what the unit tests drive.

It touches a moto internal (the backend's ``sent_messages`` list): moto is pinned. The list is
copied without moto's lock: appending to a list and copying it are atomic in CPython.
"""

from __future__ import annotations

import email
import email.policy
import logging
import re
import threading
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

#: a mail file's name: ``0001-billing@cloud-lite.example.txt``
_FILE = re.compile(r"^(\d{4,})-.*\.txt$")
_UNSAFE = re.compile(r"[^A-Za-z0-9@._+-]+")
#: the elements after which the text of an HTML body breaks its line
_BLOCKS = {"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "table", "ul", "ol"}


class _Text(HTMLParser):
    """An HTML body as plain text: paragraphs on lines of their own, a link as ``label: url``
    (the address in full, to be copied)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._href: str | None = None
        self._label: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self._href = dict(attrs).get("href") or None
            self._label = []
        elif tag in _BLOCKS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._href is not None:
            label = " ".join("".join(self._label).split())
            href, self._href = self._href, None
            self.parts.append(href if not label or label == href else f"{label}: {href}")
        elif tag in _BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        (self._label if self._href is not None else self.parts).append(data)


def html_to_text(body: str) -> str:
    parser = _Text()
    parser.feed(body)
    parser.close()
    lines = [" ".join(line.split()) for line in "".join(parser.parts).splitlines()]
    text = "\n".join(lines)
    return re.sub(r"\n{3,}", "\n\n", text).strip() + "\n"


def _addresses(destinations: Any) -> list[str]:
    """moto's destinations: ``{"ToAddresses": [...], "CcAddresses": ...}`` or a list."""
    if isinstance(destinations, dict):
        found: list[str] = []
        for key in ("ToAddresses", "CcAddresses", "BccAddresses"):
            found += list(destinations.get(key) or [])
        return found
    if isinstance(destinations, list | tuple):
        return [str(a) for a in destinations]
    return []


def render(message: Any, received: datetime | None = None) -> tuple[str, str]:
    """The first recipient and the file's text of one of moto's SES messages (a ``Message``:
    subject and body, the HTML one when there is one; a ``RawMessage``: its MIME text; a
    template's: its name and data)."""
    to = _addresses(getattr(message, "destinations", None))
    subject = getattr(message, "subject", None)
    body = getattr(message, "body", None)
    raw = getattr(message, "raw_data", None)
    if raw is not None and body is None:
        parsed = email.message_from_string(str(raw), policy=email.policy.default)
        subject = subject or str(parsed.get("Subject", ""))
        to = to or [str(a) for a in parsed.get_all("To", [])]
        part = parsed.get_body(preferencelist=("plain", "html"))
        body = part.get_content() if part is not None else str(raw)
    template = getattr(message, "template", None)
    if body is None and template is not None:
        body = f"(template {template})\n{getattr(message, 'template_data', '')}"
    text = str(body or "")
    if re.search(r"<(p|a|div|br|html|body|table)\b", text, re.IGNORECASE):
        text = html_to_text(text)
    received = received or datetime.now(UTC)
    header = [
        f"To: {', '.join(to) or '(nobody)'}",
        f"From: {getattr(message, 'source', '')}",
        f"Subject: {subject or ''}",
        f"Date: {received.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC",
        f"Message-Id: {getattr(message, 'id', '')}",
    ]
    return (to[0] if to else "nobody"), "\n".join(header) + "\n\n" + text.rstrip("\n") + "\n"


def _key(message: Any) -> str:
    """What tells one message from another: moto's message id (its content without one)."""
    found = getattr(message, "id", None)
    if found:
        return str(found)
    parts = ("destinations", "subject", "body", "raw_data", "template", "template_data")
    return repr([getattr(message, name, None) for name in parts])


class MailWriter:
    """Writes each message once (by its id) to ``directory``, numbered on from the files
    already there."""

    def __init__(self, directory: Path, *, fresh: bool = False) -> None:
        """``fresh``: the mail files already there are removed (a fresh demo: their links
        belong to data that is gone)."""
        self.directory = directory
        self.directory.mkdir(parents=True, exist_ok=True)
        numbers = []
        for path in self.directory.iterdir():
            found = _FILE.match(path.name)
            if found is None:
                continue
            if fresh:
                path.unlink(missing_ok=True)
            else:
                numbers.append(int(found.group(1)))
        self.next_number = max(numbers, default=0) + 1
        self._seen: set[str] = set()

    def write_new(self, messages: Iterable[Any]) -> list[Path]:
        """The files written for the messages not written yet, in their order."""
        written = []
        for message in messages:
            key = _key(message)
            if key in self._seen:
                continue
            to, text = render(message)
            name = f"{self.next_number:04d}-{_UNSAFE.sub('_', to)[:80]}.txt"
            path = self.directory / name
            path.write_text(text, encoding="utf-8")
            self._seen.add(key)
            self.next_number += 1
            written.append(path)
        return written


def moto_sent_messages(region: str) -> Callable[[], list[Any]]:
    """What moto's SES has sent in ``region`` (its default account: the platform's
    credentials are dummies), read afresh each time (a moto reset replaces the backend)."""

    def read() -> list[Any]:
        from moto.core import DEFAULT_ACCOUNT_ID
        from moto.ses.models import ses_backends

        return list(ses_backends[DEFAULT_ACCOUNT_ID][region].sent_messages)

    return read


class MailDrop:
    """Every ``interval`` seconds, the messages ``read`` gives that were not written yet are
    written by a ``MailWriter``; ``stop`` writes what came last before it returns."""

    def __init__(
        self,
        directory: Path,
        read: Callable[[], list[Any]],
        *,
        interval: float = 0.5,
        fresh: bool = False,
    ) -> None:
        self.writer = MailWriter(directory, fresh=fresh)
        self.read = read
        self.interval = interval
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._failed = False
        self._thread = threading.Thread(target=self._loop, name="mail-drop", daemon=True)

    @property
    def directory(self) -> Path:
        return self.writer.directory

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        self.poll()

    def poll(self) -> list[Path]:
        with self._lock:
            try:
                written = self.writer.write_new(self.read())
            except Exception as error:  # moto moved on, a full disk: say so once, go on
                if not self._failed:
                    log.warning("cannot write the mail sent through SES to files: %s", error)
                self._failed = True
                return []
            self._failed = False
            return written

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.poll()
