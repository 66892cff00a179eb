"""Daraja's JSON shapes: building requests and reading answers and callbacks.

This module and ``simulator/`` are the only places that know Daraja's field names.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

from pesaswitch.daraja.result_codes import Outcome, outcome_for_result_code


def stk_password(shortcode: str, passkey: str, timestamp: str) -> str:
    """``base64(ShortCode + Passkey + Timestamp)``, plain concatenation (daraja.md §2)."""
    return base64.b64encode(f"{shortcode}{passkey}{timestamp}".encode()).decode()


@dataclass(frozen=True, slots=True)
class StkPushRequest:
    business_shortcode: str
    passkey: str
    buy_goods: bool
    amount: int
    phone: str
    party_b: str
    callback_url: str
    account_reference: str
    description: str

    def to_json(self, timestamp: str) -> dict[str, Any]:
        return {
            "BusinessShortCode": self.business_shortcode,
            "Password": stk_password(self.business_shortcode, self.passkey, timestamp),
            "Timestamp": timestamp,
            "TransactionType": (
                "CustomerBuyGoodsOnline" if self.buy_goods else "CustomerPayBillOnline"
            ),
            "Amount": self.amount,
            "PartyA": self.phone,
            "PartyB": self.party_b,
            "PhoneNumber": self.phone,
            "CallBackURL": self.callback_url,
            "AccountReference": self.account_reference,
            "TransactionDesc": self.description,
        }


@dataclass(frozen=True, slots=True)
class StkPushAccepted:
    merchant_request_id: str
    checkout_request_id: str
    customer_message: str


@dataclass(frozen=True, slots=True)
class StkResult:
    """A final or pending STK answer, from a callback or a query."""

    outcome: Outcome
    result_code: str
    result_desc: str
    checkout_request_id: str | None = None
    merchant_request_id: str | None = None
    receipt: str | None = None
    amount: int | None = None
    transaction_date: str | None = None
    phone: str | None = None


class MalformedCallback(ValueError):
    pass


def _item_value(items: list[Any], name: str) -> Any:
    # Read items by Name, never by position: Balance comes and goes (daraja.md §3).
    for item in items:
        if isinstance(item, dict) and item.get("Name") == name:
            return item.get("Value")
    return None


def parse_stk_callback(body: Any) -> StkResult:
    try:
        callback = body["Body"]["stkCallback"]
        raw_code = callback["ResultCode"]
        checkout_request_id = str(callback["CheckoutRequestID"])
    except (KeyError, TypeError) as exc:
        raise MalformedCallback(f"not an STK callback: missing {exc}") from exc
    if not isinstance(raw_code, int | str) or isinstance(raw_code, bool):
        raise MalformedCallback("ResultCode must be a number or a string")
    code = str(raw_code).strip()
    outcome = outcome_for_result_code(code)
    if outcome is Outcome.PENDING:
        raise MalformedCallback(f"ResultCode {code} is not a final result")
    items = (callback.get("CallbackMetadata") or {}).get("Item") or []
    if not isinstance(items, list):
        raise MalformedCallback("CallbackMetadata.Item must be a list")
    amount = _item_value(items, "Amount")
    receipt = _item_value(items, "MpesaReceiptNumber")
    date = _item_value(items, "TransactionDate")
    phone = _item_value(items, "PhoneNumber")
    if outcome is Outcome.COMPLETED and (receipt is None or amount is None):
        raise MalformedCallback("a successful callback must carry Amount and MpesaReceiptNumber")
    try:
        # Amount has been seen as 1, 1.0 and 1.00; it is whole shillings either way.
        whole_amount = None if amount is None else int(float(amount))
    except (TypeError, ValueError) as exc:
        raise MalformedCallback("Amount is not a number") from exc
    return StkResult(
        outcome=outcome,
        result_code=code,
        result_desc=str(callback.get("ResultDesc", "")),
        checkout_request_id=checkout_request_id,
        merchant_request_id=_str_or_none(callback.get("MerchantRequestID")),
        receipt=_str_or_none(receipt),
        amount=whole_amount,
        transaction_date=_str_or_none(date),
        phone=_str_or_none(phone),
    )


def parse_stk_query_answer(http_status: int, body: Any) -> StkResult | None:
    """A final or still-processing result, or None when the answer says nothing.

    Pending shapes seen in the wild: HTTP 200 with ResultCode "4999", and HTTP 500
    ``500.001.1001`` with any message, even after a final state (daraja.md §4).
    """
    if http_status != 200 or not isinstance(body, dict) or "ResultCode" not in body:
        return None
    code = str(body["ResultCode"]).strip()
    return StkResult(
        outcome=outcome_for_result_code(code),
        result_code=code,
        result_desc=str(body.get("ResultDesc", "")),
        checkout_request_id=_str_or_none(body.get("CheckoutRequestID")),
        merchant_request_id=_str_or_none(body.get("MerchantRequestID")),
    )


def error_fields(body: Any) -> tuple[str, str] | None:
    """``(errorCode, errorMessage)`` from Daraja's gateway error envelope, if present."""
    if isinstance(body, dict) and "errorCode" in body:
        return str(body["errorCode"]), str(body.get("errorMessage") or "")
    return None


def _str_or_none(value: Any) -> str | None:
    return None if value is None else str(value)
