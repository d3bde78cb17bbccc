"""Cursor pagination (SPEC §9): ``?limit=&cursor=`` → ``{"items": [...], "next_cursor": ...}``.

A cursor is the opaque, base64url form of DynamoDB's ``LastEvaluatedKey``. Decoding checks that
its partition-key values are the ones of the query being continued, so a cursor can never lead a
query into another partition (another tenant).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from functions.core.errors import BadRequest

T = TypeVar("T")

DEFAULT_LIMIT = 50
MAX_LIMIT = 100


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    next_cursor: str | None = None


def encode_cursor(last_key: Mapping[str, Any] | None) -> str | None:
    if not last_key:
        return None
    raw = json.dumps(last_key, sort_keys=True, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(
    cursor: str | None, expect: Mapping[str, Any], names: frozenset[str]
) -> dict[str, Any] | None:
    """``names`` are the key attributes a ``LastEvaluatedKey`` of this query holds; ``expect``
    maps the partition-key ones to the values this query is bound to."""
    if cursor is None:
        return None
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        key = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    except (ValueError, binascii.Error, UnicodeError):
        raise BadRequest("cursor is not valid", field="cursor", code="invalid_cursor") from None
    well_formed = (
        isinstance(key, dict)
        and set(key) == names
        and all(_is_key_value(value) for value in key.values())
    )
    if not well_formed or any(key.get(name) != value for name, value in expect.items()):
        raise BadRequest(
            "cursor does not belong to this list", field="cursor", code="invalid_cursor"
        )
    return key


def _is_key_value(value: object) -> bool:
    """A DynamoDB string key value in wire form: ``{"S": "..."}``, at most 1,024 bytes of UTF-8
    (DynamoDB's limit for a sort key; a lone surrogate from a ``\\ud800`` escape has none)."""
    if not (isinstance(value, dict) and list(value) == ["S"] and isinstance(value["S"], str)):
        return False
    try:
        size = len(value["S"].encode("utf-8"))
    except UnicodeEncodeError:
        return False
    return 0 < size <= 1024
