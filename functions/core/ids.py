"""Opaque identifiers.

``new_id`` is time-ordered (lists sorted by id read oldest first); ``derived_id`` is
deterministic, for anything created "once per change" or copied once per source.
"""

from __future__ import annotations

import base64
import hashlib
import os
import time

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford base32, lower case


def _b32(value: int, length: int) -> str:
    chars = []
    for _ in range(length):
        chars.append(_ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def new_id(prefix: str) -> str:
    """``prefix_`` + 10 chars of milliseconds + 16 random chars (a ULID in lower case)."""
    millis = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    return f"{prefix}_{_b32(millis, 10)}{_b32(rand, 16)}"


def derived_id(prefix: str, *parts: str) -> str:
    """The same parts always give the same id."""
    digest = hashlib.sha256("\x1f".join(parts).encode()).digest()[:15]
    return f"{prefix}_" + base64.b32encode(digest).decode().lower()
