"""The C2B simulator's shapes: the simulator's own pay request, the paid STK pushes a
shortcode's statement lists, and Transaction Status Results for C2B receipts and paid STK
pushes (``b2c.py`` asks ``status_lookups``)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fastapi.responses import JSONResponse

from pesaswitch.kit.phones import check_phone
from pesaswitch.simulator import wire

# The payer's name in notifications and Transaction Status answers.
PAYER = ("SANDBOX", "", "CUSTOMER")


def parse_pay(body: dict[str, Any]) -> dict[str, Any] | JSONResponse:
    shortcode = str(body.get("shortcode", ""))
    amount = body.get("amount")
    msisdn = check_phone(str(body.get("msisdn", ""))).normalized
    bill_ref = body.get("bill_ref", "")
    kind = body.get("kind", "paybill")
    confirm = body.get("confirm")
    if not wire.SHORTCODE.match(shortcode):
        return problem(422, "invalid_shortcode", "shortcode is a 5-7 digit till or paybill")
    if isinstance(amount, bool) or not isinstance(amount, int) or not 1 <= amount <= 250_000:
        return problem(422, "invalid_amount", "amount is whole shillings, 1 to 250,000")
    if msisdn is None:
        return problem(422, "invalid_msisdn", "msisdn is a Kenyan mobile number")
    if not isinstance(bill_ref, str) or len(bill_ref) > 100:
        return problem(422, "invalid_bill_ref", "bill_ref is text of at most 100 characters")
    if kind not in ("paybill", "till"):
        return problem(422, "invalid_kind", "kind is paybill or till")
    if confirm not in (None, "normal", "lost", "duplicate"):
        return problem(422, "invalid_confirm", "confirm is normal, lost or duplicate")
    return {
        "shortcode": shortcode, "amount": amount, "msisdn": msisdn, "bill_ref": bill_ref.strip(),
        "command": "CustomerBuyGoodsOnline" if kind == "till" else "CustomerPayBillOnline",
        "confirm": confirm,
    }  # fmt: skip


def problem(status: int, code: str, detail: str) -> JSONResponse:
    return JSONResponse(
        {"type": f"https://pesaswitch.dev/errors/{code}", "title": "Bad simulator request",
         "status": status, "code": code, "detail": detail},
        status_code=status, media_type="application/problem+json",
    )  # fmt: skip


@dataclass(frozen=True, slots=True)
class StatementEntry:
    """A payment into a shortcode, as its statement (Pull Transactions) lists it."""

    trans_id: str
    moment: datetime  # aware
    msisdn: str
    buy_goods: bool
    bill_ref: str
    amount: int


StkStatement = Callable[[str], list[StatementEntry]]


def stk_statement(pushes: dict[str, Any]) -> StkStatement:
    """The paid STK pushes into a shortcode (their PartyB), for its statement: an STK
    payment is money into the paybill or till like any other, with the push's
    AccountReference as its account. (UNCERTAIN: Daraja documents Pull Transactions for
    C2B; that it also lists STK payments, and with this BillRefNumber, is the
    simulator's reading, as for the C2B echo of an STK payment.)"""

    def entries(shortcode: str) -> list[StatementEntry]:
        now = time.monotonic()
        found = []
        for push in list(pushes.values()):
            paid_at = push.paid_at(now)
            if paid_at is None or push.party_b != shortcode:
                continue
            found.append(
                StatementEntry(
                    push.receipt, paid_at, push.msisdn, push.buy_goods, push.account_reference,
                    push.amount,
                )
            )  # fmt: skip
        return found

    return entries


StatusLookup = Callable[[str, str], list[tuple[str, Any]] | None]


def stk_status_lookup(pushes: dict[str, Any]) -> StatusLookup:
    """Transaction Status of a paid STK push, by its receipt or, as pesaswitch asks when
    only STK Query settled it, by its CheckoutRequestID as OriginalConversationID (the
    simulator's reading: Daraja's docs do not say which id an STK payment answers to)."""

    def lookup(transaction_id: str, originator: str) -> list[tuple[str, Any]] | None:
        push = None
        for candidate in pushes.values():
            if (transaction_id and candidate.receipt == transaction_id) or (
                originator and candidate.checkout_request_id == originator
            ):
                push = candidate
                break
        if push is None or push.result_code != 0 or push.receipt is None:
            return None
        when = str(push.transaction_date)
        return [
            ("DebitPartyName", f"{push.msisdn} - {' '.join(p for p in PAYER if p)}"),
            ("CreditPartyName", f"{push.shortcode} - Sandbox business"),
            ("OriginatorConversationID", push.checkout_request_id),
            ("InitiatedTime", when), ("DebitAccountType", "MMF Account For Customer"),
            ("DebitPartyCharges", ""), ("TransactionReason", ""),
            ("ReasonType", "Pay Bill Online"), ("TransactionStatus", "Completed"),
            ("FinalisedTime", when), ("Amount", float(push.amount)),
            ("ConversationID", push.merchant_request_id), ("ReceiptNo", push.receipt),
        ]  # fmt: skip

    return lookup


def status_result_body(
    parameters: list[tuple[str, Any]], originator_conversation_id: str, conversation: str,
    transaction_id: str,
) -> dict[str, Any]:  # fmt: skip
    """A Transaction Status Result in the envelope ``b2c_wire`` uses for payouts."""
    return {
        "Result": {
            "ResultType": 0, "ResultCode": 0,
            "ResultDesc": "The service request has been accepted successsfully.",
            "OriginatorConversationID": originator_conversation_id,
            "ConversationID": conversation, "TransactionID": transaction_id,
            "ResultParameters": {
                "ResultParameter": [{"Key": key, "Value": value} for key, value in parameters]
            },
            "ReferenceData": {"ReferenceItem": {"Key": "Occasion"}},
        }
    }  # fmt: skip
