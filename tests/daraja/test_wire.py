from __future__ import annotations

import pytest

from pesaswitch.daraja.result_codes import Outcome, outcome_for_result_code
from pesaswitch.daraja.wire import (
    MalformedCallback,
    parse_stk_callback,
    parse_stk_query_answer,
    stk_password,
)

SUCCESS = {
    "Body": {
        "stkCallback": {
            "MerchantRequestID": "ac7b-470b-8df7-23ab3cef38271280493",
            "CheckoutRequestID": "ws_CO_230920262019337708374149",
            "ResultCode": 0,
            "ResultDesc": "The service request is processed successfully.",
            "CallbackMetadata": {
                "Item": [
                    {"Name": "Amount", "Value": 1.0},
                    {"Name": "MpesaReceiptNumber", "Value": "UJ22T8IYOU"},
                    {"Name": "Balance"},
                    {"Name": "TransactionDate", "Value": 20261006095233},
                    {"Name": "PhoneNumber", "Value": 254708374149},
                ]
            },
        }
    }
}


def test_success_callback_is_read_by_name_not_position() -> None:
    body = {"Body": {"stkCallback": dict(SUCCESS["Body"]["stkCallback"])}}
    items = list(reversed(body["Body"]["stkCallback"]["CallbackMetadata"]["Item"]))
    body["Body"]["stkCallback"]["CallbackMetadata"] = {"Item": items}
    result = parse_stk_callback(body)
    assert result.outcome is Outcome.COMPLETED
    assert result.receipt == "UJ22T8IYOU"
    assert result.amount == 1
    assert result.transaction_date == "20261006095233"
    assert result.phone == "254708374149"


def test_failure_callback_has_no_metadata() -> None:
    body = {
        "Body": {
            "stkCallback": {
                "MerchantRequestID": "f1e2",
                "CheckoutRequestID": "ws_CO_1",
                "ResultCode": 1032,
                "ResultDesc": "[STK_CB - ]Request cancelled by user",
            }
        }
    }
    result = parse_stk_callback(body)
    assert result.outcome is Outcome.CANCELLED
    assert result.receipt is None


def test_string_result_code_is_accepted() -> None:
    body = {"Body": {"stkCallback": {"CheckoutRequestID": "x", "ResultCode": "SFC_IC0003"}}}
    result = parse_stk_callback(body)
    assert result.outcome is Outcome.FAILED
    assert result.result_code == "SFC_IC0003"


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"Body": {}},
        {"Body": {"stkCallback": {"CheckoutRequestID": "x"}}},
        {"Body": {"stkCallback": {"CheckoutRequestID": "x", "ResultCode": 0}}},
        {"Body": {"stkCallback": {"CheckoutRequestID": "x", "ResultCode": None}}},
        {"Body": {"stkCallback": {"CheckoutRequestID": "x", "ResultCode": "4999"}}},
        [],
    ],
)
def test_malformed_callbacks_are_refused(body: object) -> None:
    with pytest.raises(MalformedCallback):
        parse_stk_callback(body)


@pytest.mark.parametrize(
    ("code", "outcome"),
    [
        (0, Outcome.COMPLETED),
        ("0", Outcome.COMPLETED),
        (1032, Outcome.CANCELLED),
        (1037, Outcome.EXPIRED),
        ("1019", Outcome.EXPIRED),
        ("4999", Outcome.PENDING),
        (1, Outcome.FAILED),
        (17, Outcome.FAILED),
        (2001, Outcome.FAILED),
        ("2028", Outcome.FAILED),
        ("SFC_IC0003", Outcome.FAILED),
        ("E3008", Outcome.FAILED),
        (99999, Outcome.FAILED),
    ],
)
def test_result_code_mapping(code: str | int, outcome: Outcome) -> None:
    assert outcome_for_result_code(code) is outcome


def test_query_answers_that_mean_pending_or_nothing() -> None:
    pending = parse_stk_query_answer(
        200, {"ResultCode": "4999", "ResultDesc": "The transaction is still under processing"}
    )
    assert pending is not None
    assert pending.outcome is Outcome.PENDING
    assert parse_stk_query_answer(500, {"errorCode": "500.001.1001", "errorMessage": ""}) is None
    assert parse_stk_query_answer(200, "not json") is None
    final = parse_stk_query_answer(200, {"ResponseCode": "0", "ResultCode": "1037"})
    assert final is not None
    assert final.outcome is Outcome.EXPIRED


def test_password_is_plain_concatenation() -> None:
    import base64

    password = stk_password("174379", "pk", "20210628092408")
    assert base64.b64decode(password).decode() == "174379pk20210628092408"
