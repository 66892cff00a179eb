"""Time helpers. All stored times are naive UTC so SQLite and PostgreSQL compare alike."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

NAIROBI = ZoneInfo("Africa/Nairobi")


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def after(seconds: float) -> datetime:
    return utcnow() + timedelta(seconds=seconds)


def isoformat(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC).isoformat().replace("+00:00", "Z")


def nairobi_now() -> datetime:
    return datetime.now(NAIROBI)


def daraja_timestamp(moment: datetime | None = None) -> str:
    """``YYYYMMDDHHmmss`` in Nairobi time, as Daraja's Password and Timestamp use."""
    return (moment or nairobi_now()).astimezone(NAIROBI).strftime("%Y%m%d%H%M%S")
