"""Time helpers. All stored times are naive UTC so SQLite and PostgreSQL compare alike.

``utcnow()`` is the process's notion of "now" for everything the gateway stores and
compares (payments, guards, leases). Tests move it forward with ``travel`` to show that
time-based rules (e.g. a 24 h block) lift, without waiting. Daraja timestamps
(``nairobi_now``) keep the real time: Daraja checks them against its own clock.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Annotated
from zoneinfo import ZoneInfo

from pydantic import BeforeValidator

NAIROBI = ZoneInfo("Africa/Nairobi")

# Process-wide and shared by every task: time travel is for tests, never for production.
_offset = timedelta(0)


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None) + _offset


def clock_offset() -> timedelta:
    return _offset


@contextmanager
def travel(delta: timedelta) -> Iterator[None]:
    """Move ``utcnow()`` by ``delta`` (nested travels add up) until the block ends."""
    global _offset
    previous = _offset
    _offset = previous + delta
    try:
        yield
    finally:
        _offset = previous


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


def _iso_only(value: object) -> object:
    # Pydantic reads a bare number as Unix seconds: "created_after=2020" would mean
    # 00:33:40 on 1 January 1970, not the year 2020. Only ISO 8601 is documented.
    if isinstance(value, int | float) or (
        isinstance(value, str) and re.fullmatch(r"\s*[+-]?\d+(\.\d*)?\s*", value)
    ):
        raise ValueError("must be an ISO 8601 date-time, e.g. 2026-01-31T12:00:00Z")
    return value


# A date-time parameter: ISO 8601 only (no Unix seconds).
IsoDateTime = Annotated[datetime, BeforeValidator(_iso_only)]
