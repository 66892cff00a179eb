"""Prefixed, time-ordered identifiers (``pay_01J…``).

The body is a ULID-style Crockford base32 string: 48 bits of milliseconds then 80 random
bits, so ids sort by creation time and cursor pagination can order by id alone.
"""

from __future__ import annotations

import secrets
import string
import time

# Integer primary keys (channels, credentials) are INTEGER columns: int4 on PostgreSQL.
# A larger number names no row; passed to the driver it would fail as an overflow (a 500).
ROW_ID_MAX = 2**31 - 1


def is_row_id(value: int) -> bool:
    return 1 <= value <= ROW_ID_MAX


_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_REFERENCE_ALPHABET = string.ascii_uppercase + string.digits


def _encode(value: int, length: int) -> str:
    chars = []
    for _ in range(length):
        value, rem = divmod(value, 32)
        chars.append(_CROCKFORD[rem])
    return "".join(reversed(chars))


def new_id(prefix: str, *, now_ms: int | None = None) -> str:
    ms = now_ms if now_ms is not None else time.time_ns() // 1_000_000
    return f"{prefix}_{_encode(ms, 10)}{_encode(secrets.randbits(80), 16)}"


def new_reference(length: int = 10) -> str:
    """The short gateway reference shown to merchants (PayHero's 10-character code)."""
    # One draw below 36**length, written in base 36: as uniform as a choice per character,
    # and one read of the system's randomness instead of one per character.
    value = secrets.randbelow(len(_REFERENCE_ALPHABET) ** length)
    chars = []
    for _ in range(length):
        value, rem = divmod(value, len(_REFERENCE_ALPHABET))
        chars.append(_REFERENCE_ALPHABET[rem])
    return "".join(chars)


def new_token(nbytes: int = 24) -> str:
    """An unguessable URL-safe token (callback paths, API keys)."""
    return secrets.token_urlsafe(nbytes)
