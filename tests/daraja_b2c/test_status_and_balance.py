"""Transaction Status and Account Balance through the simulator: acknowledged, then
answered as a Result callback that the client's parsers read."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

from pesaswitch.daraja.b2c_results import (
    parse_account_balance_result,
    parse_b2c_result,
    parse_transaction_status_result,
)
from pesaswitch.daraja.result_codes import Outcome
from tests.daraja_b2c.conftest import B2C, BALANCE_URL, RESULT_URL, STATUS_URL


async def test_status_reveals_a_payout_whose_result_was_lost(b2c: B2C) -> None:
    request = b2c.payout(phone="254711990002", amount=700)
    accepted = await b2c.client.b2c_payment(request)
    await asyncio.sleep(0.1)
    assert b2c.receiver.posts == []  # no Result for this number

    ack = await b2c.client.transaction_status(
        b2c.status(original_conversation_id=request.originator_conversation_id)
    )
    [body] = await b2c.receiver.wait(STATUS_URL)
    status = parse_transaction_status_result(body)
    assert status.outcome is Outcome.COMPLETED
    assert status.found
    assert status.transaction_status == "Completed"
    assert status.amount == 700
    assert status.originator_conversation_id == ack.originator_conversation_id
    assert status.conversation_id == ack.conversation_id
    assert status.original_originator_conversation_id == request.originator_conversation_id
    assert status.original_conversation_id == accepted.conversation_id
    payout = b2c.simulator.b2c.payouts[request.originator_conversation_id]
    assert status.receipt == payout.transaction_id
    assert status.credit_party_name == "254711990002 - JOHN DOE"
    assert status.finalised_at is not None
    assert b2c.receiver.at(RESULT_URL) == []


async def test_status_by_receipt_reports_a_failed_payout(b2c: B2C) -> None:
    await b2c.client.b2c_payment(b2c.payout(phone="254711002001"))
    failed = parse_b2c_result((await b2c.receiver.wait(RESULT_URL))[0])
    assert failed.transaction_id is not None
    await b2c.client.transaction_status(b2c.status(transaction_id=failed.transaction_id))
    [body] = await b2c.receiver.wait(STATUS_URL)
    status = parse_transaction_status_result(body)
    assert status.transaction_status == "Failed"
    assert status.outcome is Outcome.FAILED
    assert status.found


async def test_status_of_a_payout_still_running_is_pending(
    make_b2c: Callable[..., Any],
) -> None:
    b2c: B2C = await make_b2c(callback_delay=0.4)
    request = b2c.payout(phone="254711990002")
    await b2c.client.b2c_payment(request)
    b2c.simulator.config.callback_delay = 0.0  # the status answer comes at once
    await b2c.client.transaction_status(
        b2c.status(original_conversation_id=request.originator_conversation_id)
    )
    [body] = await b2c.receiver.wait(STATUS_URL)
    status = parse_transaction_status_result(body)
    assert status.transaction_status == "Pending"
    assert status.outcome is Outcome.PENDING


async def test_status_of_an_unknown_transaction_is_2032(b2c: B2C) -> None:
    await b2c.client.transaction_status(b2c.status(transaction_id="UAB1CD2EF3"))
    [body] = await b2c.receiver.wait(STATUS_URL)
    status = parse_transaction_status_result(body)
    assert status.result_code == "2032"
    assert not status.found
    assert status.outcome is Outcome.FAILED
    assert status.receipt is None


async def test_status_after_a_queue_timeout_is_2032(b2c: B2C) -> None:
    request = b2c.payout(phone="254711990007")
    await b2c.client.b2c_payment(request)
    await b2c.client.transaction_status(
        b2c.status(original_conversation_id=request.originator_conversation_id)
    )
    [body] = await b2c.receiver.wait(STATUS_URL)
    assert parse_transaction_status_result(body).result_code == "2032"


async def test_status_with_a_bad_credential_says_nothing_about_the_payout(b2c: B2C) -> None:
    request = b2c.payout()
    await b2c.client.b2c_payment(request)
    await b2c.client.transaction_status(
        b2c.status(
            initiator=b2c.initiator(password="wrong"),
            original_conversation_id=request.originator_conversation_id,
        )
    )
    [body] = await b2c.receiver.wait(STATUS_URL)
    status = parse_transaction_status_result(body)
    assert status.result_code == "2001"
    assert status.outcome is Outcome.PENDING


async def test_status_needs_an_id_and_a_token(b2c: B2C) -> None:
    with pytest.raises(ValueError, match="transaction_id or original_conversation_id"):
        b2c.status()
    body = b2c.status(transaction_id="UAB1CD2EF3").to_json()
    del body["TransactionID"]
    await b2c.client.account_balance(b2c.balance())  # gets a token
    token = next(iter(b2c.simulator.tokens))
    raw = await b2c.http.post(
        "/mpesa/transactionstatus/v1/query",
        json=body,
        headers={"Authorization": f"Bearer {token}"},
    )
    assert raw.status_code == 400
    assert raw.json()["errorMessage"] == "Bad Request - Invalid TransactionID"
    stale = await b2c.http.post(
        "/mpesa/transactionstatus/v1/query", json=body, headers={"Authorization": "Bearer x"}
    )
    assert stale.json()["errorCode"] == "400.003.01"


async def test_account_balance_reflects_payouts(b2c: B2C) -> None:
    await b2c.client.b2c_payment(b2c.payout(amount=1000))
    await b2c.receiver.wait(RESULT_URL)
    ack = await b2c.client.account_balance(b2c.balance())
    [body] = await b2c.receiver.wait(BALANCE_URL)
    assert body["Result"]["ResultCode"] == "0"  # a string, as Daraja documents it
    result = parse_account_balance_result(body)
    assert result.outcome is Outcome.COMPLETED
    assert result.conversation_id == ack.conversation_id
    assert [a.name for a in result.accounts] == [
        "Working Account",
        "Float Account",
        "Utility Account",
        "Charges Paid Account",
        "Organization Settlement Account",
    ]
    utility = result.account("utility account")
    charges = result.account("Charges Paid Account")
    assert utility is not None
    assert charges is not None
    assert utility.available == Decimal("999000.00")
    assert utility.currency == "KES"
    assert len(utility.other_amounts) == 3
    assert charges.available == Decimal("-22.40")
    assert result.completed_at is not None


async def test_account_balance_with_a_bad_credential_fails_2001(b2c: B2C) -> None:
    await b2c.client.account_balance(b2c.balance(initiator=b2c.initiator(password="nope")))
    [body] = await b2c.receiver.wait(BALANCE_URL)
    result = parse_account_balance_result(body)
    assert result.result_code == "2001"
    assert result.outcome is Outcome.FAILED
    assert result.accounts == ()


async def test_account_balance_refuses_a_stale_token_with_401(b2c: B2C) -> None:
    raw = await b2c.http.post(
        "/mpesa/accountbalance/v1/query",
        json=b2c.balance().to_json(),
        headers={"Authorization": "Bearer stale"},
    )
    assert raw.status_code == 401
    assert raw.json()["errorCode"] == "401.002.01"
    assert raw.json()["errorMessage"] == "Error Occurred - Invalid Access Token - stale"
