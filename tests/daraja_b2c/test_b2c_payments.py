"""B2C end to end in-process: the client pays out through the simulator, the simulator
posts Daraja-shaped Results, and the client's parser reads them."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import httpx
import pytest

from pesaswitch.daraja.b2c import security_credential
from pesaswitch.daraja.b2c_results import parse_b2c_result, parse_queue_timeout
from pesaswitch.daraja.errors import DarajaBusinessError, DarajaTechnicalError
from pesaswitch.daraja.result_codes import Outcome
from tests.daraja_b2c.conftest import B2C, PASSWORD, RESULT_URL, TIMEOUT_URL

RECEIPT = re.compile(r"^[A-Z0-9]{10}$")


async def test_security_credential_round_trip(b2c: B2C) -> None:
    pem = b2c.simulator.certificate_pem
    served = await b2c.http.get("/simulator/certificate")
    assert served.status_code == 200
    assert served.content == pem
    first = security_credential(PASSWORD, pem)
    second = security_credential(PASSWORD, pem)
    assert first != second  # PKCS#1 v1.5 padding is random
    assert b2c.simulator.b2c.keys.decrypt(first) == PASSWORD
    assert b2c.simulator.b2c.keys.decrypt(second) == PASSWORD
    assert b2c.simulator.b2c.keys.decrypt("bm90IG91cnM=") is None


async def test_success_result_carries_every_parameter(b2c: B2C) -> None:
    request = b2c.payout(amount=1500)
    accepted = await b2c.client.b2c_payment(request)
    assert accepted.originator_conversation_id == request.originator_conversation_id
    assert re.fullmatch(r"AG_\d{8}_[0-9a-f]{20}", accepted.conversation_id)
    assert accepted.response_description == "Accept the service request successfully."

    [body] = await b2c.receiver.wait(RESULT_URL)
    keys = [p["Key"] for p in body["Result"]["ResultParameters"]["ResultParameter"]]
    assert len(keys) == 8
    assert body["Result"]["ReferenceData"]["ReferenceItem"]["Key"] == "QueueTimeoutURL"
    result = parse_b2c_result(body)
    assert result.outcome is Outcome.COMPLETED
    assert result.result_code == "0"
    assert result.conversation_id == accepted.conversation_id
    assert result.originator_conversation_id == request.originator_conversation_id
    assert result.receipt is not None
    assert RECEIPT.match(result.receipt)
    assert result.transaction_id == result.receipt
    assert result.amount == 1500
    assert result.receiver_public_name == "254712345678 - JOHN DOE"
    assert result.completed_at is not None
    assert result.recipient_is_registered is True
    assert result.utility_account_funds == Decimal("998500.00")
    assert result.working_account_funds == Decimal("0")
    assert result.charges_paid_account_funds == Decimal("-22.40")
    await asyncio.sleep(0.05)
    assert len(b2c.receiver.posts) == 1  # delivered once


@pytest.mark.parametrize(
    ("phone", "code"), [("254711001032", 1032), ("254711002001", 2001), ("254711000001", 1)]
)
async def test_test_numbers_fail_with_their_code(b2c: B2C, phone: str, code: int) -> None:
    await b2c.client.b2c_payment(b2c.payout(phone=phone))
    [body] = await b2c.receiver.wait(RESULT_URL)
    assert "ResultParameters" not in body["Result"]
    result = parse_b2c_result(body)
    assert result.outcome is Outcome.FAILED  # 1032 is not "cancelled" for a payout
    assert result.result_code == str(code)
    assert result.receipt is None
    assert b2c.simulator.b2c.accounts_for("600000").utility == Decimal(1_000_000)


@pytest.mark.parametrize(
    "initiator",
    [
        {"password": "wrong-password"},
        {"name": "someone-else"},
    ],
)
async def test_a_bad_initiator_is_accepted_then_fails_2001(
    b2c: B2C, initiator: dict[str, str]
) -> None:
    accepted = await b2c.client.b2c_payment(b2c.payout(initiator=b2c.initiator(**initiator)))
    [body] = await b2c.receiver.wait(RESULT_URL)
    result = parse_b2c_result(body)
    assert result.conversation_id == accepted.conversation_id
    assert result.result_code == "2001"
    assert result.outcome is Outcome.FAILED


async def test_duplicate_result(b2c: B2C) -> None:
    await b2c.client.b2c_payment(b2c.payout(phone="254711990003"))
    first, second = await b2c.receiver.wait(RESULT_URL, count=2)
    assert first == second
    assert parse_b2c_result(first).outcome is Outcome.COMPLETED


async def test_early_result_arrives_before_the_answer(b2c: B2C) -> None:
    await b2c.client.b2c_payment(b2c.payout(phone="254711990004"))
    [body] = b2c.receiver.at(RESULT_URL)  # no waiting: it is already there
    assert parse_b2c_result(body).outcome is Outcome.COMPLETED


async def test_queue_timeout_instead_of_a_result(b2c: B2C) -> None:
    request = b2c.payout(phone="254711990007")
    accepted = await b2c.client.b2c_payment(request)
    [body] = await b2c.receiver.wait(TIMEOUT_URL)
    timeout = parse_queue_timeout(body)
    assert timeout.originator_conversation_id == request.originator_conversation_id
    assert timeout.conversation_id == accepted.conversation_id
    assert b2c.receiver.at(RESULT_URL) == []
    assert b2c.simulator.b2c.accounts_for("600000").utility == Decimal(1_000_000)


@pytest.mark.parametrize(("amount", "code"), [(9, "2"), (250_001, "3"), (10, "0")])
async def test_amount_limits(b2c: B2C, amount: int, code: str) -> None:
    await b2c.client.b2c_payment(b2c.payout(amount=amount))
    [body] = await b2c.receiver.wait(RESULT_URL)
    assert parse_b2c_result(body).result_code == code


async def test_amount_rules_can_be_switched_off(make_b2c: Callable[..., Any]) -> None:
    b2c: B2C = await make_b2c(rule_b2c_min_amount=False, rule_b2c_max_amount=False)
    await b2c.client.b2c_payment(b2c.payout(amount=5))
    await b2c.client.b2c_payment(b2c.payout(amount=300_000))
    bodies = await b2c.receiver.wait(RESULT_URL, count=2)
    assert [parse_b2c_result(b).result_code for b in bodies] == ["0", "0"]


async def test_utility_balance_runs_out(make_b2c: Callable[..., Any]) -> None:
    b2c: B2C = await make_b2c(b2c_utility_balance=100)
    await b2c.client.b2c_payment(b2c.payout(amount=60))
    [first] = await b2c.receiver.wait(RESULT_URL)
    await b2c.client.b2c_payment(b2c.payout(amount=60))
    _, second = await b2c.receiver.wait(RESULT_URL, count=2)
    assert parse_b2c_result(first).utility_account_funds == Decimal(40)
    refused = parse_b2c_result(second)
    assert refused.result_code == "1"
    assert refused.outcome is Outcome.FAILED
    # Another shortcode has its own Utility account.
    await b2c.client.b2c_payment(b2c.payout(amount=60, party_a="600001"))
    third = (await b2c.receiver.wait(RESULT_URL, count=3))[2]
    assert parse_b2c_result(third).result_code == "0"


async def test_a_reused_originator_conversation_id_is_refused(b2c: B2C) -> None:
    request = b2c.payout()
    await b2c.client.b2c_payment(request)
    with pytest.raises(DarajaBusinessError) as err:
        await b2c.client.b2c_payment(request)
    assert err.value.http_status == 500
    assert err.value.error_code == "500.002.1001"
    assert err.value.message == "Duplicate OriginatorConversationID."
    assert err.value.is_duplicate_request
    await asyncio.sleep(0.05)
    assert len(b2c.receiver.at(RESULT_URL)) == 1


async def test_client_refreshes_a_rejected_token(b2c: B2C) -> None:
    await b2c.client.b2c_payment(b2c.payout())
    stale = next(iter(b2c.simulator.tokens))
    b2c.simulator.tokens.clear()  # Daraja forgot the cached token
    raw = await b2c.http.post(
        "/mpesa/b2c/v3/paymentrequest",
        json=b2c.payout().to_json(),
        headers={"Authorization": f"Bearer {stale}"},
    )
    assert raw.status_code == 401
    assert raw.json()["errorCode"] == "401.002.01"
    await b2c.client.b2c_payment(b2c.payout())
    assert len(b2c.simulator.tokens) == 1
    assert stale not in b2c.simulator.tokens
    assert len(await b2c.receiver.wait(RESULT_URL, count=2)) == 2


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"OriginatorConversationID": ""}, "OriginatorConversationID"),
        ({"SecurityCredential": ""}, "SecurityCredential"),
        ({"CommandID": "Pay"}, "CommandID"),
        ({"Amount": "10.5"}, "Amount"),
        ({"PartyA": "12"}, "PartyA"),
        ({"PartyB": "0712345678"}, "PartyB"),
        ({"Remarks": "x"}, "Remarks"),
        ({"QueueTimeOutURL": "nope"}, "QueueTimeOutURL"),
        ({"ResultURL": None}, "ResultURL"),
    ],
)
async def test_validation_like_daraja(b2c: B2C, overrides: dict[str, Any], field: str) -> None:
    request = b2c.payout()
    await b2c.client.b2c_payment(b2c.payout())  # gets a token
    token = next(iter(b2c.simulator.tokens))
    raw = await b2c.http.post(
        "/mpesa/b2c/v3/paymentrequest",
        json=request.to_json() | overrides,
        headers={"Authorization": f"Bearer {token}"},
    )
    assert raw.status_code == 400
    assert raw.json()["errorCode"] == "400.002.02"
    assert raw.json()["errorMessage"] == f"Bad Request - Invalid {field}"
    assert request.originator_conversation_id not in b2c.simulator.b2c.payouts


async def test_client_raises_validation_refusals(b2c: B2C) -> None:
    with pytest.raises(DarajaBusinessError) as err:
        await b2c.client.b2c_payment(b2c.payout(phone="0712345678"))
    assert err.value.http_status == 400
    assert err.value.message == "Bad Request - Invalid PartyB"


async def test_a_hanging_request_times_out_yet_pays(make_b2c: Callable[..., Any]) -> None:
    b2c: B2C = await make_b2c(hang_seconds=0.5, client_timeout=0.2)
    request = b2c.payout(phone="254711990006")
    with pytest.raises(DarajaTechnicalError) as err:
        await b2c.client.b2c_payment(request)
    assert err.value.maybe_sent
    assert err.value.timeout
    assert b2c.receiver.at(RESULT_URL) == []
    [body] = await b2c.receiver.wait(RESULT_URL)
    result = parse_b2c_result(body)
    assert result.outcome is Outcome.COMPLETED
    assert result.originator_conversation_id == request.originator_conversation_id


async def test_an_unreachable_result_url_is_not_retried(b2c: B2C) -> None:
    async def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    async with httpx.AsyncClient(transport=httpx.MockTransport(refuse)) as refusing:
        b2c.simulator.use_callback_client(refusing)
        request = b2c.payout()
        await b2c.client.b2c_payment(request)
        payout = b2c.simulator.b2c.payouts[request.originator_conversation_id]
        async with asyncio.timeout(2):
            while not payout.results_sent:
                await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)
    assert payout.results_sent == [0]
