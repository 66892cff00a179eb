"""Daraja's C2B shapes: Register URL, the validation and confirmation notifications and
their replies, and Pull Transactions (daraja.md §7, Safaricom's C2B v2 and Pull
Transactions pages).

Register URL (``/mpesa/c2b/v2/registerurl``) answers synchronously; the misspelt
``OriginatorCoversationID`` is Daraja's. Validation and confirmation bodies carry every
value as a string; v2 masks the MSISDN (``2547 ***** 126``), v1 sends a SHA-256 hash.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any

import httpx

from pesaswitch.daraja.errors import DarajaBusinessError, DarajaTechnicalError
from pesaswitch.daraja.wire import MalformedCallback, error_fields

REGISTER_URL_PATH = "/mpesa/c2b/v2/registerurl"
PULL_REGISTER_PATH = "/pulltransactions/v1/register"
PULL_QUERY_PATH = "/pulltransactions/v1/query"
# "YYYY-MM-DD HH:MM:SS", Nairobi time, as the Pull Transactions examples send it.
PULL_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
# The most rows one Pull Transactions page holds; ``OffSetValue`` steps by this much.
PULL_PAGE = 100

Post = Callable[[str, dict[str, Any]], Awaitable[httpx.Response]]


class ResponseType(StrEnum):
    """What M-Pesa does when the validation URL does not answer in time (sentence case,
    exactly: Daraja refuses other spellings)."""

    COMPLETED = "Completed"
    CANCELLED = "Cancelled"


class ValidationCode(StrEnum):
    """The only ResultCodes a validation reply may carry."""

    ACCEPTED = "0"
    INVALID_MSISDN = "C2B00011"
    INVALID_ACCOUNT = "C2B00012"
    INVALID_AMOUNT = "C2B00013"
    INVALID_KYC = "C2B00014"
    INVALID_SHORTCODE = "C2B00015"
    OTHER = "C2B00016"


def validation_reply(code: ValidationCode) -> dict[str, str]:
    if code is ValidationCode.ACCEPTED:
        return {"ResultCode": "0", "ResultDesc": "Accepted"}
    return {"ResultCode": code.value, "ResultDesc": "Rejected"}


# The confirmation's acknowledgement: M-Pesa does not act on it (the payment is done).
CONFIRMATION_REPLY: dict[str, Any] = {"ResultCode": 0, "ResultDesc": "Success"}


def confirmation_refusal(code: ValidationCode) -> dict[str, Any]:
    return {"ResultCode": code.value, "ResultDesc": "Rejected"}


@dataclass(frozen=True, slots=True)
class C2BRegisterRequest:
    shortcode: str
    response_type: ResponseType
    confirmation_url: str
    validation_url: str

    def to_json(self) -> dict[str, Any]:
        return {
            "ShortCode": self.shortcode,
            "ResponseType": self.response_type.value,
            "ConfirmationURL": self.confirmation_url,
            "ValidationURL": self.validation_url,
        }


@dataclass(frozen=True, slots=True)
class C2BRegistered:
    originator_conversation_id: str
    response_code: str
    response_description: str


@dataclass(frozen=True, slots=True)
class C2BNotice:
    """A validation or confirmation notification, read."""

    transaction_type: str  # "Pay Bill" | "Buy Goods"
    trans_id: str
    trans_time: str
    amount: int
    shortcode: str
    bill_ref: str
    msisdn: str  # as sent: masked (v2) or hashed (v1)
    first_name: str
    middle_name: str
    last_name: str
    org_balance: str


def _text(body: dict[str, Any], key: str, limit: int) -> str:
    value = body.get(key)
    if value is None:
        return ""
    if not isinstance(value, str | int) or isinstance(value, bool):
        raise MalformedCallback(f"{key} must be a string")
    text = str(value).strip()
    if "\x00" in text:
        raise MalformedCallback(f"{key} holds a NUL character")
    if len(text) > limit:
        raise MalformedCallback(f"{key} is longer than {limit} characters")
    return text


def whole_shillings(raw: Any) -> int:
    """``"5.00"`` → 5. C2B amounts are whole shillings; anything else is refused."""
    if isinstance(raw, bool) or not isinstance(raw, str | int | float):
        raise MalformedCallback("TransAmount must be a number")
    try:
        amount = Decimal(str(raw).strip())
    except InvalidOperation as exc:
        raise MalformedCallback("TransAmount must be a number") from exc
    if not amount.is_finite() or amount != amount.to_integral_value() or amount < 1:
        raise MalformedCallback("TransAmount must be a whole number of shillings, at least 1")
    return int(amount)


def parse_c2b_notice(body: Any, *, confirmation: bool) -> C2BNotice:
    if not isinstance(body, dict):
        raise MalformedCallback("a C2B notification is a JSON object")
    trans_id = _text(body, "TransID", 20)
    shortcode = _text(body, "BusinessShortCode", 10)
    # Daraja leaves TransID empty in some validation requests; a confirmation needs it.
    if (confirmation and not trans_id) or not shortcode.isdigit():
        raise MalformedCallback("TransID and a numeric BusinessShortCode are required")
    if trans_id and not trans_id.isalnum():
        raise MalformedCallback("TransID must be alphanumeric")
    return C2BNotice(
        transaction_type=_text(body, "TransactionType", 40),
        trans_id=trans_id.upper(),
        trans_time=_text(body, "TransTime", 14),
        amount=whole_shillings(body.get("TransAmount")),
        shortcode=shortcode,
        bill_ref=_text(body, "BillRefNumber", 100),
        msisdn=_text(body, "MSISDN", 64),
        first_name=_text(body, "FirstName", 100),
        middle_name=_text(body, "MiddleName", 100),
        last_name=_text(body, "LastName", 100),
        org_balance=_text(body, "OrgAccountBalance", 30),
    )


def parse_validation_reply(body: Any) -> ValidationCode | None:
    """What a validation URL answered, or None when it is not a reply Daraja can read."""
    if not isinstance(body, dict):
        return None
    try:
        return ValidationCode(str(body.get("ResultCode")).strip())
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class PulledTransaction:
    trans_id: str
    trans_time: str | None
    msisdn: str
    amount: int
    bill_ref: str
    sender: str


def _pull_time(raw: Any) -> str | None:
    """``2020-08-05T10:12:40Z`` / ``2020-08-05 10:12:40`` → ``20200805101240``."""
    if raw is None:
        return None
    text = str(raw).strip().removesuffix("Z").replace("T", " ")
    for fmt in (PULL_TIME_FORMAT, "%Y%m%d%H%M%S"):
        try:
            return datetime.strptime(text, fmt).strftime("%Y%m%d%H%M%S")
        except ValueError:
            continue
    return None


def parse_pull_answer(body: Any) -> list[PulledTransaction]:
    """The ``Response`` list; sources show it both flat and as a list of lists."""
    if not isinstance(body, dict):
        raise MalformedCallback("a Pull Transactions answer is a JSON object")
    rows = body.get("Response") or []
    if rows and isinstance(rows, list) and all(isinstance(r, list) for r in rows):
        rows = [item for group in rows for item in group]
    if not isinstance(rows, list):
        raise MalformedCallback("Response must be a list")
    pulled = []
    for row in rows:
        if not isinstance(row, dict) or not str(row.get("transactionId") or "").strip():
            continue  # an empty window answers [[]] or [{}]
        pulled.append(
            PulledTransaction(
                trans_id=str(row["transactionId"]).strip().upper(),
                trans_time=_pull_time(row.get("trxDate")),
                msisdn=str(row.get("msisdn") or ""),
                amount=whole_shillings(row.get("amount")),
                bill_ref=str(row.get("billreference") or "")[:100],
                sender=str(row.get("sender") or "")[:200],
            )
        )
    return pulled


def _ok_or_raise(response: httpx.Response, what: str) -> Any:
    try:
        body = response.json()
    except ValueError:
        body = None
    fields = error_fields(body)
    if response.status_code == 200 and isinstance(body, dict) and fields is None:
        return body
    if fields is not None and (response.status_code < 500 or fields[0].startswith("500.003")):
        raise DarajaBusinessError(
            http_status=response.status_code, error_code=fields[0], message=fields[1]
        )
    raise DarajaTechnicalError(f"unexpected {what} answer: HTTP {response.status_code}",
                               maybe_sent=True)  # fmt: skip


async def register_urls(post: Post, request: C2BRegisterRequest) -> C2BRegistered:
    body = _ok_or_raise(await post(REGISTER_URL_PATH, request.to_json()), "Register URL")
    code = str(body.get("ResponseCode", "")).strip()
    # "0" in the docs; the sandbox has answered "00000000" (daraja.md §7).
    if code.strip("0") != "":
        raise DarajaBusinessError(
            http_status=200, error_code=code,
            message=str(body.get("ResponseDescription", "")),
        )  # fmt: skip
    return C2BRegistered(
        originator_conversation_id=str(
            body.get("OriginatorCoversationID") or body.get("OriginatorConversationID") or ""
        ),
        response_code=code,
        response_description=str(body.get("ResponseDescription", "")),
    )


async def pull_transactions(
    post: Post, *, shortcode: str, start: datetime, end: datetime, offset: int = 0
) -> list[PulledTransaction]:
    """One page of C2B transactions to ``shortcode`` between ``start`` and ``end``
    (Nairobi time; Daraja keeps about 48 hours)."""
    payload = {
        "ShortCode": shortcode,
        "StartDate": start.strftime(PULL_TIME_FORMAT),
        "EndDate": end.strftime(PULL_TIME_FORMAT),
        "OffSetValue": str(offset),
    }
    body = _ok_or_raise(await post(PULL_QUERY_PATH, payload), "Pull Transactions")
    return parse_pull_answer(body)
