"""The client's B2C pieces on their own: Result parsing (Daraja's documented samples and
garbage) and how synchronous answers are classified."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest

from pesaswitch.daraja.b2c import (
    B2CCommand,
    B2CPaymentRequest,
    Initiator,
    b2c_payment,
)
from pesaswitch.daraja.b2c_results import (
    parse_account_balance_result,
    parse_account_balances,
    parse_b2c_result,
    parse_transaction_status_result,
)
from pesaswitch.daraja.errors import DarajaBusinessError, DarajaTechnicalError
from pesaswitch.daraja.result_codes import (
    Outcome,
    outcome_for_b2c_result_code,
    outcome_for_transaction_status,
)
from pesaswitch.daraja.wire import MalformedCallback
from pesaswitch.kit.clock import NAIROBI

# Safaricom's documented success Result (daraja.md §6).
SUCCESS: dict[str, Any] = {
    "Result": {
        "ResultType": 0,
        "ResultCode": 0,
        "ResultDesc": "The service request is processed successfully.",
        "OriginatorConversationID": "53e3-4aa8-9fe0-8fb5e4092cdd3533373",
        "ConversationID": "AG_20240706_2010364430d9bbdaf872",
        "TransactionID": "SG632NMUAB",
        "ResultParameters": {
            "ResultParameter": [
                {"Key": "TransactionAmount", "Value": 10},
                {"Key": "TransactionReceipt", "Value": "SG632NMUAB"},
                {"Key": "ReceiverPartyPublicName", "Value": "254705912645 - NICHOLAS JOHN SONGOK"},
                {"Key": "TransactionCompletedDateTime", "Value": "06.07.2024 22:48:52"},
                {"Key": "B2CUtilityAccountAvailableFunds", "Value": 8959269.60},
                {"Key": "B2CWorkingAccountAvailableFunds", "Value": 1199371.00},
                {"Key": "B2CRecipientIsRegisteredCustomer", "Value": "Y"},
                {"Key": "B2CChargesPaidAccountAvailableFunds", "Value": -1980.00},
            ]
        },
        "ReferenceData": {
            "ReferenceItem": {
                "Key": "QueueTimeoutURL",
                "Value": "https://internalsandbox.safaricom.co.ke/mpesa/b2cresults/v1/submit",
            }
        },
    }
}


def test_documented_success_is_read_by_key() -> None:
    body = {"Result": dict(SUCCESS["Result"])}
    items = SUCCESS["Result"]["ResultParameters"]["ResultParameter"]
    body["Result"]["ResultParameters"] = {"ResultParameter": list(reversed(items))}
    result = parse_b2c_result(body)
    assert result.outcome is Outcome.COMPLETED
    assert result.receipt == "SG632NMUAB"
    assert result.amount == 10
    assert result.receiver_public_name == "254705912645 - NICHOLAS JOHN SONGOK"
    assert result.completed_at == datetime(2024, 7, 6, 22, 48, 52, tzinfo=NAIROBI)
    assert result.utility_account_funds == Decimal("8959269.60")
    assert result.working_account_funds == Decimal("1199371")
    assert result.charges_paid_account_funds == Decimal("-1980")
    assert result.recipient_is_registered is True


def test_failure_with_string_codes_and_no_parameters() -> None:
    body = {
        "Result": {
            "ResultType": "0",
            "ResultCode": "8006",
            "ResultDesc": "The security credential is locked.",
            "OriginatorConversationID": "po-1",
            "ConversationID": "AG_1",
            "TransactionID": "XXXXXXXXXX",
        }
    }
    result = parse_b2c_result(body)
    assert result.outcome is Outcome.FAILED
    assert result.result_code == "8006"
    assert result.transaction_id == "XXXXXXXXXX"
    assert result.receipt is None
    assert result.utility_account_funds is None


def test_a_garbled_side_value_does_not_lose_the_result() -> None:
    body = {"Result": dict(SUCCESS["Result"])}
    body["Result"]["ResultParameters"] = {
        "ResultParameter": [
            {"Key": "TransactionAmount", "Value": "10.00"},
            {"Key": "TransactionReceipt", "Value": "SG632NMUAB"},
            {"Key": "TransactionCompletedDateTime", "Value": "yesterday"},
            {"Key": "B2CUtilityAccountAvailableFunds", "Value": "lots"},
        ]
    }
    result = parse_b2c_result(body)
    assert result.amount == 10
    assert result.completed_at is None
    assert result.utility_account_funds is None


def _success_with(**changes: Any) -> dict[str, Any]:
    return {"Result": {**SUCCESS["Result"], **changes}}


@pytest.mark.parametrize(
    "body",
    [
        {},
        [],
        {"Result": []},
        {"Result": {"ResultCode": 0}},
        _success_with(ResultCode=None),
        _success_with(ResultCode=True),
        _success_with(ResultCode=" "),
        _success_with(ResultParameters=[]),
        _success_with(ResultParameters={"ResultParameter": "x"}),
        _success_with(ResultParameters=None),  # success without receipt/amount
        _success_with(
            ResultParameters={"ResultParameter": {"Key": "TransactionAmount", "Value": 10}}
        ),
    ],
)
def test_garbage_is_refused(body: Any) -> None:
    with pytest.raises(MalformedCallback):
        parse_b2c_result(body)


def test_b2c_codes_have_one_mapping() -> None:
    assert outcome_for_b2c_result_code(0) is Outcome.COMPLETED
    assert outcome_for_b2c_result_code("0") is Outcome.COMPLETED
    for code in ("1", "2", "3", "1032", "1037", "2001", "8006", "SFC_IC0003"):
        assert outcome_for_b2c_result_code(code) is Outcome.FAILED


@pytest.mark.parametrize(
    ("code", "status", "outcome"),
    [
        (0, "Completed", Outcome.COMPLETED),
        ("0", "Failed", Outcome.FAILED),
        (0, "Pending", Outcome.PENDING),
        (0, "Something new", Outcome.PENDING),
        (0, None, Outcome.PENDING),
        ("2032", None, Outcome.FAILED),
        (2001, None, Outcome.PENDING),
        (26, None, Outcome.PENDING),
    ],
)
def test_transaction_status_outcomes(code: Any, status: str | None, outcome: Outcome) -> None:
    assert outcome_for_transaction_status(code, status) is outcome


def test_documented_status_result() -> None:
    body = {
        "Result": {
            "ResultType": 0,
            "ResultCode": 0,
            "ResultDesc": "The service request has been accepted successsfully.",
            "OriginatorConversationID": "10816-694520-2",
            "ConversationID": "AG_20200120_0000417fed8ed666e976",
            "TransactionID": "LXXXXXX1234",
            "ResultParameters": {
                "ResultParameter": [
                    {"Key": "DebitPartyName", "Value": "600310 - Safaricom333"},
                    {"Key": "TransactionStatus", "Value": "Completed"},
                    {"Key": "Amount", "Value": 300},
                    {"Key": "ReceiptNo", "Value": "LGR019G3J2"},
                    {"Key": "FinalisedTime", "Value": 20200120164825},
                    {"Key": "DebitPartyCharges", "Value": "Fee For B2C Payment|KES|22.40"},
                ]
            },
            "ReferenceData": {"ReferenceItem": {"Key": "Occasion"}},
        }
    }
    status = parse_transaction_status_result(body)
    assert status.outcome is Outcome.COMPLETED
    assert status.receipt == "LGR019G3J2"
    assert status.amount == 300
    assert status.finalised_at == datetime(2020, 1, 20, 16, 48, 25, tzinfo=NAIROBI)
    body["Result"]["ResultParameters"]["ResultParameter"].pop(3)  # no ReceiptNo
    with pytest.raises(MalformedCallback):
        parse_transaction_status_result(body)


def test_documented_account_balance_string() -> None:
    raw = (
        "Working Account|KES|700000.00|700000.00|0.00|0.00"
        "&Float Account|KES|0.00|0.00|0.00|0.00"
        "&Utility Account|KES|228037.00|228037.00|0.00|0.00"
        "&Charges Paid Account|KES|-1540.00|-1540.00|0.00|0.00"
        "&Organization Settlement Account|KES|0.00|0.00|0.00|0.00"
    )
    accounts = parse_account_balances(raw)
    assert [(a.name, a.available) for a in accounts][2:4] == [
        ("Utility Account", Decimal("228037.00")),
        ("Charges Paid Account", Decimal("-1540.00")),
    ]
    with pytest.raises(MalformedCallback):
        parse_account_balances("Working Account|KES")
    with pytest.raises(MalformedCallback):
        parse_account_balances("Working Account|KES|lots")
    body = {
        "Result": {
            "ResultType": "0",
            "ResultCode": "0",
            "OriginatorConversationID": "a",
            "ConversationID": "b",
            "ResultParameters": {"ResultParameter": {"Key": "BOCompletedTime", "Value": 1}},
        }
    }
    with pytest.raises(MalformedCallback, match="AccountBalance"):
        parse_account_balance_result(body)


def _request() -> B2CPaymentRequest:
    return B2CPaymentRequest(
        originator_conversation_id="po-1", initiator=Initiator("testapi", "cred"),
        command=B2CCommand.SALARY_PAYMENT, amount=10, party_a="600000",
        party_b="254712345678", remarks="pay", result_url="https://x.test/r",
        queue_timeout_url="https://x.test/t",
    )  # fmt: skip


def test_request_json_uses_daraja_names() -> None:
    body = _request().to_json()
    assert body["CommandID"] == "SalaryPayment"
    assert body["InitiatorName"] == "testapi"
    assert "Occassion" not in body  # empty occasion is left out
    with_occasion = dataclasses.replace(_request(), occasion="Eid")
    assert with_occasion.to_json()["Occassion"] == "Eid"


def _answering(status: int, body: Any) -> Any:
    async def post(path: str, payload: dict[str, Any]) -> httpx.Response:
        assert path == "/mpesa/b2c/v3/paymentrequest"
        return httpx.Response(status, json=body)

    return post


async def test_acceptance_is_typed() -> None:
    post = _answering(
        200,
        {
            "ConversationID": "AG_20240706_20106e9209f64bebd05b",
            "OriginatorConversationID": "po-1",
            "ResponseCode": "0",
            "ResponseDescription": "Accept the service request successfully.",
        },
    )
    accepted = await b2c_payment(post, _request())
    assert accepted.conversation_id == "AG_20240706_20106e9209f64bebd05b"
    assert accepted.originator_conversation_id == "po-1"


@pytest.mark.parametrize(
    ("status", "code", "message", "business"),
    [
        (500, "500.002.1001", "Duplicate OriginatorConversationID.", True),
        (400, "400.002.02", "Bad Request - Invalid Amount", True),
        (401, "401.002.01", "Error Occurred - Invalid Access Token - x", True),
        (500, "500.003.02", "Spike Arrest Violation", True),
        (500, "500.002.1001", "System internal error.", False),
        (500, "500.003.1001", "Internal Server Error", False),
    ],
)
async def test_refusals_and_unknowns(status: int, code: str, message: str, business: bool) -> None:
    post = _answering(status, {"requestId": "r", "errorCode": code, "errorMessage": message})
    expected = DarajaBusinessError if business else DarajaTechnicalError
    with pytest.raises(expected) as err:
        await b2c_payment(post, _request())
    if isinstance(err.value, DarajaTechnicalError):
        assert err.value.maybe_sent  # the payout may have run: check its status first
    else:
        assert err.value.error_code == code


async def test_an_unreadable_answer_may_have_paid() -> None:
    with pytest.raises(DarajaTechnicalError) as err:
        await b2c_payment(_answering(200, {"ResponseCode": "0"}), _request())
    assert err.value.maybe_sent
