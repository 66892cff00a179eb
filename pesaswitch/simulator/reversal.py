"""The simulator's Transaction Reversal API (``POST /mpesa/reversal/v1/request``).

Like Daraja, the request is only acknowledged; the Result goes to ResultURL after
``callback_delay``. What the simulator checks, in order: the initiator (2001), that the
receipt is a completed STK payment to ``ReceiverParty`` for exactly ``Amount``
(R000002, "The OriginalTransactionID is invalid": the simulator's choice for a wrong
amount or shortcode too, Daraja's own answer there is not documented), and that it was
not reversed already (R000001). Then the *payer's* number picks the behaviour, so that
a test can pay from a number whose reversal misbehaves (the payment itself succeeds):

    254711980001   the reversal fails with ResultCode 1 (the shortcode's balance is short)
    254711980002   the Result is never sent; Transaction Status reveals the success
    254711980003   the Result is sent twice
    anything else  the reversal succeeds

An executed reversal is kept with the B2C payouts (by its OriginatorConversationID), so
Transaction Status answers for it exactly as for a payout.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import structlog
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from pesaswitch.kit.clock import NAIROBI
from pesaswitch.simulator import b2c_wire, wire
from pesaswitch.simulator.b2c_wire import SimulatedPayout
from pesaswitch.simulator.scenarios import Behaviour, SimulatedPush

if TYPE_CHECKING:
    from pesaswitch.simulator.b2c import B2CSimulator

log = structlog.get_logger(__name__)

REVERSAL_PATH = "/mpesa/reversal/v1/request"
RECEIVER_IDENTIFIER_TYPES = {"11"}
FAILS_WITH_1 = "254711980001"
LOSES_RESULT = "254711980002"
RESULT_TWICE = "254711980003"
DESCRIPTIONS = {
    0: "The service request is processed successfully.",
    1: "The balance is insufficient for the transaction.",
    2001: "The initiator information is invalid.",
}
CODE_DESCRIPTIONS = {
    "R000001": "The transaction has already been reversed.",
    "R000002": "The OriginalTransactionID is invalid.",
}
REVERSAL_CHARGE = 0  # Safaricom does not publish a reversal charge; the simulator takes none


class ReversalSimulator:
    """Part of ``Simulator``; it shares the B2C side's tokens, initiator and payouts."""

    def __init__(self, b2c: B2CSimulator, pushes: dict[str, SimulatedPush]) -> None:
        self.b2c = b2c
        self.pushes = pushes
        self.reversed: dict[str, str] = {}  # original receipt -> reversal OriginatorConversationID

    def register(self, app: FastAPI) -> None:
        app.add_api_route(REVERSAL_PATH, self.reversal, methods=["POST"])

    def _original(self, receipt: str) -> SimulatedPush | None:
        return next((p for p in self.pushes.values() if p.receipt == receipt), None)

    async def reversal(self, request: Request) -> JSONResponse:
        b2c = self.b2c
        body = await b2c._authorized_body(request, ("401.002.01", 401))
        if isinstance(body, JSONResponse):
            return body
        receipt = str(body.get("TransactionID") or "").strip()
        amount = wire.whole_amount(body.get("Amount"))
        receiver = str(body.get("ReceiverParty", ""))
        occasion = body.get("Occasion")
        checks: list[tuple[str, object]] = [
            ("Initiator", _text(body.get("Initiator"), 1, 100)),
            ("SecurityCredential", _text(body.get("SecurityCredential"), 1, 4096)),
            ("CommandID", body.get("CommandID") == "TransactionReversal"),
            ("TransactionID", _text(receipt, 10, 10)),
            ("Amount", amount is not None and amount >= 1),
            ("ReceiverParty", wire.SHORTCODE.match(receiver)),
            (
                "RecieverIdentifierType",
                str(body.get("RecieverIdentifierType")) in RECEIVER_IDENTIFIER_TYPES,
            ),
            ("ResultURL", wire.is_callback_url(body.get("ResultURL"))),
            ("QueueTimeOutURL", wire.is_callback_url(body.get("QueueTimeOutURL"))),
            ("Remarks", _text(body.get("Remarks"), 2, 100)),
            ("Occasion", occasion in (None, "") or _text(occasion, 1, 100)),
        ]
        for field_name, ok in checks:
            if not ok:
                return wire.invalid(field_name)
        assert amount is not None
        original = self._original(receipt)
        code: int | str
        if not b2c._initiator_ok(body.get("Initiator"), body.get("SecurityCredential")):
            code = 2001
        elif (
            original is None
            or original.result_code != 0
            or original.amount != amount
            or original.shortcode != receiver
        ):
            code = "R000002"
        elif receipt in self.reversed:
            code = "R000001"
        elif original.msisdn == FAILS_WITH_1:
            code = 1
        else:
            code = 0
        now = time.monotonic()
        moment = datetime.now(UTC)
        ack, (originator_id, conversation) = b2c._query_ids()
        behaviour = Behaviour.NORMAL
        if original is not None and code == 0:
            self.reversed[receipt] = originator_id
            if original.msisdn == LOSES_RESULT:
                behaviour = Behaviour.LOST_CALLBACK
            elif original.msisdn == RESULT_TWICE:
                behaviour = Behaviour.DUPLICATE_CALLBACK
        record = SimulatedPayout(
            originator_conversation_id=originator_id,
            conversation_id=conversation,
            transaction_id=wire.receipt_number(moment),
            command_id="TransactionReversal",
            amount=amount,
            party_a=receiver,
            party_b=original.msisdn if original is not None else "",
            result_url=str(body["ResultURL"]),
            queue_timeout_url=str(body["QueueTimeOutURL"]),
            result_code=code if isinstance(code, int) else 1,
            behaviour=behaviour,
            created_at=now,
            final_at=now + b2c.config.callback_delay,
            initiated=moment,
            balances=b2c.accounts_for(receiver).snapshot(),
        )
        if code == 0:
            b2c.payouts[originator_id] = record  # Transaction Status finds it there
        result = _result_body(record, code, receipt)
        log.info("simulator.reversal.accepted", code=str(code), behaviour=behaviour.value)
        if behaviour is not Behaviour.LOST_CALLBACK:
            copies = 2 if behaviour is Behaviour.DUPLICATE_CALLBACK else 1
            b2c._spawn(self._send_later(record, result, copies))
        return JSONResponse(ack)

    async def _send_later(
        self, record: SimulatedPayout, result: dict[str, Any], copies: int
    ) -> None:
        await asyncio.sleep(max(0.0, record.final_at - time.monotonic()))
        sent = await asyncio.gather(
            *(self.b2c._post(record.result_url, result) for _ in range(copies))
        )
        record.results_sent.extend(sent)


def _result_body(record: SimulatedPayout, code: int | str, receipt: str) -> dict[str, Any]:
    description = (
        CODE_DESCRIPTIONS.get(code, "") if isinstance(code, str) else DESCRIPTIONS.get(code, "")
    )
    result: dict[str, Any] = {
        "ResultType": 0,
        "ResultCode": code,
        "ResultDesc": description or b2c_wire.describe_b2c(int(code)),
        "OriginatorConversationID": record.originator_conversation_id,
        "ConversationID": record.conversation_id,
        "TransactionID": record.transaction_id if code == 0 else b2c_wire.DUMMY_TRANSACTION_ID,
    }
    if code == 0:
        completed = record.initiated.astimezone(NAIROBI)
        balance = record.balances.utility
        result["ResultParameters"] = {
            "ResultParameter": [
                {"Key": "DebitAccountBalance", "Value": f"Utility Account|KES|{balance:.2f}"},
                {"Key": "Amount", "Value": float(record.amount)},
                {"Key": "TransCompletedTime", "Value": int(completed.strftime("%Y%m%d%H%M%S"))},
                {"Key": "OriginalTransactionID", "Value": receipt},
                {"Key": "Charge", "Value": float(REVERSAL_CHARGE)},
                {"Key": "CreditPartyPublicName", "Value": f"{record.party_b} - JOHN DOE"},
                {"Key": "DebitPartyPublicName", "Value": f"{record.party_a} - simulator"},
            ]
        }
    result["ReferenceData"] = {
        "ReferenceItem": {"Key": "QueueTimeoutURL", "Value": b2c_wire.INTERNAL_QUEUE_TIMEOUT_URL}
    }
    return {"Result": result}


def _text(value: Any, shortest: int, longest: int) -> bool:
    return isinstance(value, str) and shortest <= len(value.strip()) <= longest
