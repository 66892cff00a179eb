"""The simulator answers like Daraja, and the client copes with Daraja's quirks."""

from __future__ import annotations

import base64
import dataclasses
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from pesaswitch.config import SANDBOX_PASSKEY
from pesaswitch.daraja.client import DarajaApp, DarajaClient
from pesaswitch.daraja.errors import DarajaBusinessError
from pesaswitch.daraja.result_codes import Outcome
from pesaswitch.daraja.wire import StkPushRequest, stk_password
from pesaswitch.kit.clock import NAIROBI, daraja_timestamp
from pesaswitch.simulator.app import Simulator, SimulatorConfig

KEY, SECRET = "app-key", "app-secret"
REQUEST_174379 = StkPushRequest(
    business_shortcode="174379", passkey=SANDBOX_PASSKEY, buy_goods=False, amount=1,
    phone="254708374149", party_b="174379", callback_url="https://example.com/cb",
    account_reference="ref", description="desc",
)  # fmt: skip


@pytest.fixture
async def simulator() -> AsyncIterator[Simulator]:
    sim = Simulator(SimulatorConfig(KEY, SECRET, accept_any_app=False, callback_delay=5.0))
    yield sim
    await sim.aclose()


@pytest.fixture
async def http(simulator: Simulator) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=simulator.app), base_url="http://daraja.test"
    ) as client:
        yield client


def basic(key: str, secret: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{key}:{secret}".encode()).decode()}


async def token(http: httpx.AsyncClient) -> str:
    response = await http.get(
        "/oauth/v1/generate",
        params={"grant_type": "client_credentials"},
        headers=basic(KEY, SECRET),
    )
    assert response.status_code == 200
    body = response.json()
    assert body["expires_in"] == "3599"
    return str(body["access_token"])


def push_body(**overrides: Any) -> dict[str, Any]:
    timestamp = daraja_timestamp()
    body: dict[str, Any] = {
        "BusinessShortCode": "174379",
        "Password": stk_password("174379", SANDBOX_PASSKEY, timestamp),
        "Timestamp": timestamp,
        "TransactionType": "CustomerPayBillOnline",
        "Amount": "1",
        "PartyA": "254708374149",
        "PartyB": "174379",
        "PhoneNumber": "254708374149",
        "CallBackURL": "https://example.com/cb",
        "AccountReference": "ref",
        "TransactionDesc": "desc",
    }
    body.update(overrides)
    return body


async def test_oauth_errors(http: httpx.AsyncClient) -> None:
    wrong = await http.get(
        "/oauth/v1/generate", params={"grant_type": "client_credentials"}, headers=basic(KEY, "x")
    )
    assert wrong.status_code == 400
    assert wrong.json()["errorCode"] == "400.008.01"
    grant = await http.get(
        "/oauth/v1/generate", params={"grant_type": "password"}, headers=basic(KEY, SECRET)
    )
    assert grant.json()["errorCode"] == "400.008.02"


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"BusinessShortCode": "12"}, "BusinessShortCode"),
        ({"Timestamp": "2024"}, "Timestamp"),
        ({"TransactionType": "Pay"}, "TransactionType"),
        ({"Amount": "1.5"}, "Amount"),
        ({"Amount": 0}, "Amount"),
        ({"PhoneNumber": "0708374149"}, "PhoneNumber"),
        ({"PartyA": "25470837414"}, "PartyA"),
        ({"CallBackURL": "not a url"}, "CallBackURL"),
        ({"AccountReference": "x" * 13}, "AccountReference"),
        ({"TransactionDesc": None}, "Remarks"),
    ],
)
async def test_push_validation_like_daraja(
    http: httpx.AsyncClient, overrides: dict[str, Any], field: str
) -> None:
    response = await http.post(
        "/mpesa/stkpush/v1/processrequest",
        json=push_body(**overrides),
        headers={"Authorization": f"Bearer {await token(http)}"},
    )
    assert response.status_code == 400
    assert response.json()["errorCode"] == "400.002.02"
    assert response.json()["errorMessage"] == f"Bad Request - Invalid {field}"


async def test_wrong_password_and_token(http: httpx.AsyncClient) -> None:
    bearer = {"Authorization": f"Bearer {await token(http)}"}
    wrong = await http.post(
        "/mpesa/stkpush/v1/processrequest", json=push_body(Password="bm9wZQ=="), headers=bearer
    )
    assert wrong.status_code == 500
    assert wrong.json() | {"requestId": ""} == {
        "requestId": "",
        "errorCode": "500.001.1001",
        "errorMessage": "Wrong credentials",
    }
    no_token = await http.post(
        "/mpesa/stkpush/v1/processrequest",
        json=push_body(),
        headers={"Authorization": "Bearer stale"},
    )
    assert no_token.status_code == 404
    assert no_token.json()["errorCode"] == "404.001.03"


async def test_query_shapes(http: httpx.AsyncClient) -> None:
    bearer = {"Authorization": f"Bearer {await token(http)}"}
    pushed = await http.post("/mpesa/stkpush/v1/processrequest", json=push_body(), headers=bearer)
    assert pushed.json()["ResponseCode"] == "0"
    checkout = pushed.json()["CheckoutRequestID"]
    assert checkout.startswith("ws_CO_")
    assert checkout.endswith("708374149")
    timestamp = daraja_timestamp()
    query = {
        "BusinessShortCode": "174379",
        "Password": stk_password("174379", SANDBOX_PASSKEY, timestamp),
        "Timestamp": timestamp,
        "CheckoutRequestID": checkout,
    }
    pending = await http.post("/mpesa/stkpushquery/v1/query", json=query, headers=bearer)
    assert pending.status_code == 200
    assert pending.json()["ResultCode"] == "4999"
    unknown = await http.post(
        "/mpesa/stkpushquery/v1/query", json={**query, "CheckoutRequestID": "ws_CO_x"},
        headers=bearer,
    )  # fmt: skip
    assert unknown.status_code == 500
    assert unknown.json()["errorMessage"] == "The transaction does not Exist"


async def test_client_refreshes_a_rejected_token(
    simulator: Simulator, http: httpx.AsyncClient
) -> None:
    client = DarajaClient(http, DarajaApp(KEY, SECRET))
    request = StkPushRequest(
        business_shortcode="174379", passkey=SANDBOX_PASSKEY, buy_goods=False, amount=5,
        phone="254712345678", party_b="174379", callback_url="https://example.com/cb",
        account_reference="ref", description="desc",
    )  # fmt: skip
    first = await client.stk_push(request)
    simulator.tokens.clear()  # Daraja forgot the cached token
    second = await client.stk_push(dataclasses.replace(request, phone="254712345679"))
    assert first.checkout_request_id != second.checkout_request_id
    result = await client.stk_query(
        business_shortcode="174379", passkey=SANDBOX_PASSKEY,
        checkout_request_id=first.checkout_request_id,
    )  # fmt: skip
    assert result is not None
    assert result.outcome is Outcome.PENDING


async def test_client_raises_business_errors(http: httpx.AsyncClient) -> None:
    client = DarajaClient(http, DarajaApp(KEY, "wrong"))
    request = StkPushRequest(
        business_shortcode="174379", passkey=SANDBOX_PASSKEY, buy_goods=False, amount=5,
        phone="254712345678", party_b="174379", callback_url="https://example.com/cb",
        account_reference="ref", description="desc",
    )  # fmt: skip
    with pytest.raises(DarajaBusinessError) as err:
        await client.stk_push(request)
    assert err.value.is_credentials_problem


async def test_the_statement_lists_paid_stk_pushes_into_the_shortcode() -> None:
    # Pull Transactions is the shortcode's statement: a paid prompt is money into PartyB
    # under the push's AccountReference; a failed one, or one still on the phone, is not.
    sim = Simulator(SimulatorConfig(KEY, SECRET, callback_delay=0.0))
    sim.use_callback_client(
        httpx.AsyncClient(transport=httpx.MockTransport(lambda _: httpx.Response(200)))
    )
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=sim.app), base_url="http://d.test")
    client = DarajaClient(http, DarajaApp(KEY, SECRET))
    try:
        for phone, reference, party_b in (
            ("254708374149", "PAIDREF001", "174379"),
            ("254711001032", "CANCELREF1", "174379"),  # cancelled: nothing paid
            ("254708374150", "OTHERCODE1", "600111"),  # paid, into another shortcode
        ):
            await client.stk_push(
                dataclasses.replace(
                    REQUEST_174379, phone=phone, account_reference=reference, party_b=party_b
                )
            )
        paid = sim.pushes[next(iter(sim.pushes))]
        now = datetime.now(NAIROBI).replace(tzinfo=None, microsecond=0)
        window = {"start": now - timedelta(minutes=1), "end": now + timedelta(seconds=1)}
        rows = await client.pull_transactions(shortcode="174379", **window)
        assert [(r.bill_ref, r.amount, r.msisdn, r.trans_id) for r in rows] == [
            ("PAIDREF001", 1, "254708374149", paid.receipt)
        ]
        other = await client.pull_transactions(shortcode="600111", **window)
        assert [r.bill_ref for r in other] == ["OTHERCODE1"]
        # Not yet paid (the customer has not answered): not on the statement.
        paid.final_at = float("inf")
        assert await client.pull_transactions(shortcode="174379", **window) == []
    finally:
        await http.aclose()
        await sim.aclose()
