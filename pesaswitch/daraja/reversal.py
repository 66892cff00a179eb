"""Daraja's Transaction Reversal API (daraja.md §7 "Reversal"; Safaricom's portal page
``apis/Reversal``): undo a completed M-Pesa transaction, here a collection.

Request: ``POST /mpesa/reversal/v1/request`` with ``Initiator``, ``SecurityCredential``,
``CommandID: "TransactionReversal"``, ``TransactionID`` (the receipt to reverse),
``Amount``, ``ReceiverParty`` (our shortcode) and ``RecieverIdentifierType`` (sic, "11"),
``ResultURL``, ``QueueTimeOutURL``, ``Remarks`` and ``Occasion``. Like B2C, it is only
acknowledged (``ConversationID``, ``OriginatorConversationID`` chosen by Daraja); the
outcome arrives as a ``Result`` envelope at ResultURL. Its parameters on success are
``DebitAccountBalance``, ``Amount``, ``TransCompletedTime``, ``OriginalTransactionID``,
``Charge``, ``CreditPartyPublicName`` and ``DebitPartyPublicName``. Failure codes include
``R000001`` (already reversed), ``R000002`` (the OriginalTransactionID is invalid), 11,
21, 2001, 2006, 2028, 8006 and 1.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pesaswitch.daraja.b2c import B2CAccepted, Initiator, Post, _acknowledgement
from pesaswitch.daraja.b2c_results import (
    DARAJA_TIME_FORMAT,
    _Envelope,
    _nairobi_time,
    _str_or_none,
    _whole_amount,
)
from pesaswitch.daraja.result_codes import Outcome, outcome_for_b2c_result_code

REVERSAL_PATH = "/mpesa/reversal/v1/request"
REVERSAL_COMMAND = "TransactionReversal"
# The receiver is the organisation's shortcode; "11" is the documented type ("4" has
# been refused with 400.002.02 Invalid RecieverIdentifierType, daraja.md §7).
RECEIVER_IDENTIFIER_TYPE = "11"
ALREADY_REVERSED_CODE = "R000001"
INVALID_ORIGINAL_CODE = "R000002"


@dataclass(frozen=True, slots=True)
class ReversalRequest:
    initiator: Initiator
    transaction_id: str  # the M-Pesa receipt of the transaction to reverse
    amount: int
    receiver_party: str  # our shortcode, which received the money
    result_url: str
    queue_timeout_url: str
    remarks: str = "Reversal"
    occasion: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "Initiator": self.initiator.name,
            "SecurityCredential": self.initiator.security_credential,
            "CommandID": REVERSAL_COMMAND,
            "TransactionID": self.transaction_id,
            "Amount": self.amount,
            "ReceiverParty": self.receiver_party,
            "RecieverIdentifierType": RECEIVER_IDENTIFIER_TYPE,  # sic
            "ResultURL": self.result_url,
            "QueueTimeOutURL": self.queue_timeout_url,
            "Remarks": self.remarks,
            "Occasion": self.occasion,
        }


@dataclass(frozen=True, slots=True)
class ReversalResult:
    outcome: Outcome  # COMPLETED or FAILED: a Result is final
    result_code: str
    result_desc: str
    originator_conversation_id: str
    conversation_id: str
    transaction_id: str | None  # the reversal's own M-Pesa transaction
    amount: int | None = None
    original_transaction_id: str | None = None
    charge: int | None = None
    completed_at: datetime | None = None  # Nairobi time

    @property
    def already_reversed(self) -> bool:
        return self.result_code == ALREADY_REVERSED_CODE


async def transaction_reversal(post: Post, request: ReversalRequest) -> B2CAccepted:
    """Ask for the reversal. A DarajaTechnicalError with ``maybe_sent`` means it may run."""
    response = await post(REVERSAL_PATH, request.to_json())
    return _acknowledgement(response, "Reversal", None)


def parse_reversal_result(body: Any) -> ReversalResult:
    envelope = _Envelope.read(body, "Reversal")
    params = envelope.parameters
    return ReversalResult(
        outcome=outcome_for_b2c_result_code(envelope.code),
        result_code=envelope.code,
        result_desc=envelope.desc,
        originator_conversation_id=envelope.originator_conversation_id,
        conversation_id=envelope.conversation_id,
        transaction_id=envelope.transaction_id,
        amount=_whole_amount(params.get("Amount")),
        original_transaction_id=_str_or_none(params.get("OriginalTransactionID")),
        charge=_whole_amount(params.get("Charge")),
        completed_at=_nairobi_time(params.get("TransCompletedTime"), DARAJA_TIME_FORMAT),
    )
