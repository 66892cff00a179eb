"""Daraja's wire formats as the simulator writes them: ids, receipts, errors, callbacks."""

from __future__ import annotations

import re
import secrets
import string
from datetime import datetime
from typing import Any
from urllib.parse import urlparse

from fastapi import Request
from fastapi.responses import JSONResponse
from starlette.requests import ClientDisconnect

from pesaswitch.kit.clock import NAIROBI
from pesaswitch.kit.ids import new_reference
from pesaswitch.simulator.scenarios import SimulatedPush, describe

_UPPER_DIGITS = string.ascii_uppercase + string.digits

SHORTCODE = re.compile(r"^\d{5,7}$")
TIMESTAMP = re.compile(r"^\d{14}$")
MSISDN = re.compile(r"^254[17]\d{8}$")
DIGITS = re.compile(r"^\d{1,12}$")
TRANSACTION_TYPES = {"CustomerPayBillOnline", "CustomerBuyGoodsOnline"}
MAX_ACCOUNT_REFERENCE = 12
MAX_TRANSACTION_DESC = 13


def request_id() -> str:
    """Daraja's newer MerchantRequestID: hex groups of 4, 4, 4 and 12, then up to 7 digits."""
    # One read of the system's randomness for the hex (a choice per character made 24,
    # a tenth of the simulator's CPU under load).
    digits = secrets.token_hex(12)
    return f"{digits[:4]}-{digits[4:8]}-{digits[8:12]}-{digits[12:]}" + str(
        secrets.randbelow(10**7)
    )


def checkout_request_id(msisdn: str, moment: datetime) -> str:
    """``ws_CO_`` + DDMMYYYYHHmmss (Nairobi) + sub-second digits + national MSISDN."""
    local = moment.astimezone(NAIROBI)
    return f"ws_CO_{local:%d%m%Y%H%M%S}{local.microsecond // 1000:03d}{msisdn[3:]}"


def receipt_number(moment: datetime) -> str:
    # Real receipts start with a letter that advances with the year (T… in 2025, U… in 2026).
    year_letter = _UPPER_DIGITS[(moment.year - 2006) % 26]
    return year_letter + new_reference(9)  # the same alphabet: A-Z and 0-9


def transaction_date(moment: datetime) -> int:
    return int(moment.astimezone(NAIROBI).strftime("%Y%m%d%H%M%S"))


async def read_json(request: Request) -> Any:
    """The request's JSON body. ValueError when it is not JSON, or when the client went
    away while it was being read (a gateway process killed mid-request, in chaos runs),
    which is no fault of the simulator's and needs no traceback."""
    try:
        return await request.json()
    except ClientDisconnect as exc:
        raise ValueError("the client disconnected") from exc


def error(http_status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse(
        {"requestId": request_id(), "errorCode": code, "errorMessage": message},
        status_code=http_status,
    )


def invalid(field: str) -> JSONResponse:
    return error(400, "400.002.02", f"Bad Request - Invalid {field}")


def is_callback_url(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    parsed = urlparse(value)
    return parsed.scheme in {"http", "https"} and bool(parsed.hostname)


def whole_amount(value: Any) -> int | None:
    """Amount as Daraja takes it: a whole number, as a JSON number or a digit string."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def stk_callback_body(push: SimulatedPush) -> dict[str, Any]:
    callback: dict[str, Any] = {
        "MerchantRequestID": push.merchant_request_id,
        "CheckoutRequestID": push.checkout_request_id,
        "ResultCode": push.result_code,
        "ResultDesc": describe(push.result_code, for_query=False),
    }
    if push.result_code == 0:
        callback["CallbackMetadata"] = {
            "Item": [
                {"Name": "Amount", "Value": push.amount},
                {"Name": "MpesaReceiptNumber", "Value": push.receipt},
                {"Name": "Balance"},
                {"Name": "TransactionDate", "Value": push.transaction_date},
                {"Name": "PhoneNumber", "Value": int(push.msisdn)},
            ]
        }
    return {"Body": {"stkCallback": callback}}
