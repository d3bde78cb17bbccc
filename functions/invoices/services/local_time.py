"""Days in a tenant's time zone (R22: periods are half-open days in the tenant's time zone)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

from functions.core.clock import rfc3339


def midnight(day: date, time_zone: str) -> datetime:
    """Local midnight of ``day`` in the tenant's time zone, in UTC (R22)."""
    return datetime.combine(day, time(0), ZoneInfo(time_zone)).astimezone(UTC)


def utc_midnight(day: date, time_zone: str) -> str:
    """Local midnight of ``day`` in the tenant's time zone, as RFC 3339 UTC (R22)."""
    return rfc3339(midnight(day, time_zone))
