"""The mappings from Daraja's ResultCodes to a provider-neutral outcome (daraja.md §5, §7).

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


# Transaction Status answers "no such transaction" with this code (daraja.md §5, §7).
TRANSACTION_NOT_FOUND_CODE = "2032"


def outcome_for_b2c_result_code(code: str | int) -> Outcome:
    """B2C (and Account Balance) Results: 0 is done, every other code is a failure.

    A payout has no customer prompt, so 1032/1037 are plain failures here, not
    cancelled/expired; and a Result is always final (there is no 4999 in a callback).
    """
    return Outcome.COMPLETED if str(code).strip() == "0" else Outcome.FAILED


def outcome_for_transaction_status(result_code: str | int, status: str | None) -> Outcome:
    """The *original* transaction's outcome, from a Transaction Status Result.

    The query's own ResultCode comes first: 2032 means the transaction does not exist
    (it never ran, e.g. it expired in Daraja's queue), so it failed; any other non-zero
    code means the query itself failed (locked or wrong credential, busy), which says
    nothing about the original: still pending. With code 0, ``TransactionStatus`` decides.
    Only "Completed" is documented (daraja.md §7); the failure words below are a guess.
    An unknown word stays pending: calling a payout failed when it was in fact paid
    would let it be paid twice.
    """
    code = str(result_code).strip()
    if code == TRANSACTION_NOT_FOUND_CODE:
        return Outcome.FAILED
    if code != "0":
        return Outcome.PENDING
    match (status or "").strip().lower():
        case "completed":
            return Outcome.COMPLETED
        case "failed" | "declined" | "cancelled" | "expired" | "reversed":
            return Outcome.FAILED
        case _:
            return Outcome.PENDING
