"""Transaction Reversal's wire format: the request's field names (with Daraja's own
spelling) and the Results, success and failure."""

from __future__ import annotations

import pytest

from pesaswitch.daraja.b2c import Initiator
from pesaswitch.daraja.result_codes import Outcome
from pesaswitch.daraja.reversal import ReversalRequest, parse_reversal_result
from pesaswitch.daraja.wire import MalformedCallback


def test_request_uses_darajas_field_names() -> None:
    body = ReversalRequest(
        initiator=Initiator("testapi", "c3VwZXJzZWNyZXQ="), transaction_id="TL3ABC12DE",
        amount=500, receiver_party="174379", result_url="https://gw.example/r",
        queue_timeout_url="https://gw.example/t", remarks="Duplicate order", occasion="pay_1",
    ).to_json()  # fmt: skip
    assert body == {
        "Initiator": "testapi", "SecurityCredential": "c3VwZXJzZWNyZXQ=",
        "CommandID": "TransactionReversal", "TransactionID": "TL3ABC12DE", "Amount": 500,
        "ReceiverParty": "174379", "RecieverIdentifierType": "11",
        "ResultURL": "https://gw.example/r", "QueueTimeOutURL": "https://gw.example/t",
        "Remarks": "Duplicate order", "Occasion": "pay_1",
    }  # fmt: skip


def test_success_result() -> None:
    result = parse_reversal_result(
        {
            "Result": {
                "ResultType": 0, "ResultCode": 0,
                "ResultDesc": "The service request is processed successfully.",
                "OriginatorConversationID": "f1e2-4b95-a71d-b30d3cdbb7a7",
                "ConversationID": "AG_20261203_00004e48cf7e3533f581",
                "TransactionID": "TL3REV0001",
                "ResultParameters": {"ResultParameter": [
                    {"Key": "DebitAccountBalance", "Value": "Utility Account|KES|51661.00"},
                    {"Key": "Amount", "Value": 500.0},
                    {"Key": "TransCompletedTime", "Value": 20261203093051},
                    {"Key": "OriginalTransactionID", "Value": "TL3ABC12DE"},
                    {"Key": "Charge", "Value": 0.0},
                ]},
            }
        }
    )  # fmt: skip
    assert result.outcome is Outcome.COMPLETED
    assert (result.transaction_id, result.amount, result.original_transaction_id) == (
        "TL3REV0001", 500, "TL3ABC12DE",
    )  # fmt: skip
    assert result.completed_at is not None
    assert result.completed_at.hour == 9


@pytest.mark.parametrize("code", ["R000001", "R000002", 2001, "11"])
def test_failure_results(code: object) -> None:
    result = parse_reversal_result(
        {"Result": {"ResultType": 0, "ResultCode": code, "ResultDesc": "no",
                    "OriginatorConversationID": "o", "ConversationID": "c",
                    "TransactionID": "OA90000000"}}
    )  # fmt: skip
    assert result.outcome is Outcome.FAILED
    assert result.result_code == str(code)
    assert result.already_reversed is (code == "R000001")


def test_garbage_is_malformed() -> None:
    with pytest.raises(MalformedCallback):
        parse_reversal_result({"Result": {"ResultCode": 0}})
    with pytest.raises(MalformedCallback):
        parse_reversal_result(["not", "an", "envelope"])
