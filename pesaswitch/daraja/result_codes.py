"""The one mapping from Daraja's ResultCode to a provider-neutral outcome (daraja.md §5).

Branch on codes, never on description text: the same code arrives with different
wording by channel and by day.
"""

from __future__ import annotations

from enum import StrEnum


class Outcome(StrEnum):
    PENDING = "pending"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    FAILED = "failed"


# Answers to an STK Query that mean "no final result yet", not failure.
STILL_PROCESSING_CODES = frozenset({"4999"})

# Codes Daraja uses for an invalid or expired access token; they differ by API.
INVALID_TOKEN_CODES = frozenset({"404.001.03", "400.003.01", "401.002.01", "401.001"})


def outcome_for_result_code(code: str | int) -> Outcome:
    """Every code maps somewhere: 0 is paid, the documented misses are named, the rest fail."""
    normalized = str(code).strip()
    match normalized:
        case "0":
            return Outcome.COMPLETED
        case "1032":
            return Outcome.CANCELLED
        case "1037" | "1019":
            return Outcome.EXPIRED
        case code_ if code_ in STILL_PROCESSING_CODES:
            return Outcome.PENDING
        case _:
            # 1, 2, 3, 4, 8, 17, 26, 1001, 1025, 2001, 2028, 9999, SFC_IC0003, E3008, …
            return Outcome.FAILED
