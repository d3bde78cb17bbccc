"""Time: dates are computed in the tenant's time zone (R22), timestamps are RFC 3339 UTC."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


def now_utc() -> datetime:
    return datetime.now(UTC)


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def today_in(time_zone: str, *, at: datetime | None = None) -> date:
    return (at or now_utc()).astimezone(ZoneInfo(time_zone)).date()


def is_time_zone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True
