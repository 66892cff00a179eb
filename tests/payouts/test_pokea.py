"""Pokea Pay's remittance dialect: signed requests, its validation rules, its callback."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from pesaswitch.accounts.service import add_signing_key
from pesaswitch.db import transaction
from pesaswitch.payouts.fx import set_rate
from tests.conftest import Gateway, Merchant
from tests.payouts.helpers import balance, funded, wait_payout
from tests.support.receiver import running_receiver

PRIVATE = rsa.generate_private_key(public_exponent=65537, key_size=2048)
OTHER = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def body(url: str, **transfer: Any) -> dict[str, Any]:
    return {
        "source": {"customer_code": "CUST0001", "account_no": "ACC01"},
        "destination": {"country_code": "KES", "name": "John Doe", "mobile_number": "254712345678"},
        "transfer": {"reference": "122320", "currency": "KES", "amount": "100",
                     "date": "2026-11-22", "description": "Dividend remitting",
                     "channel": "234432", **transfer},
        "result_url": url,
    }  # fmt: skip


def sign(data: dict[str, Any], key: rsa.RSAPrivateKey = PRIVATE) -> str:
    t = data["transfer"]
    text = f"{t['amount']}{t['currency']}{t['reference']}{data['source']['account_no']}"
    return base64.b64encode(key.sign(text.encode(), padding.PKCS1v15(), hashes.SHA256())).decode()


async def setup(gateway_factory: Any) -> tuple[Gateway, Merchant]:
    gateway, merchant = await funded(gateway_factory, 100_000)
    pem = PRIVATE.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    async with transaction(gateway.app.state.runtime.sessionmaker) as session:
        await add_signing_key(session, account_id=merchant.account_id, public_key_pem=pem.decode())
        await set_rate(session, currency="USD", kes_per_unit="130")
    return gateway, merchant


async def remit(
    gateway: Gateway, merchant: Merchant, data: dict[str, Any], signature: str | None
) -> Any:
    headers = {"Authorization": f"Bearer {merchant.secret_key}", "Accept": "application/json"}
    if signature is not None:
        headers["signature"] = signature
    return await gateway.client.post("/remittance/momo/mpesa", headers=headers, json=data)


async def test_signed_remittance_pays_and_calls_back_with_a_hash(gateway_factory: Any) -> None:
    gateway, merchant = await setup(gateway_factory)
    with running_receiver() as receiver:
        data = body(receiver.url)
        response = await remit(gateway, merchant, data, sign(data))
        assert response.status_code == 200, response.text
        assert response.json() == {
            "code": 0,
            "success": True,
            "message": "The service request is submitted successfully.",
        }
        listed = (await gateway.client.get("/v1/payouts", headers=merchant.auth)).json()["data"]
        assert (await wait_payout(gateway, merchant, listed[0]["id"]))["status"] == "completed"
        for _ in range(100):
            if receiver.received:
                break
            await asyncio.sleep(0.05)
        callback = json.loads(receiver.received[0].body)
    assert set(callback) == {"channel", "reference", "transaction_id", "currency", "amount",
                             "fees", "result_code", "result_description", "hash"}  # fmt: skip
    assert callback["channel"] == "234432"
    assert callback["reference"] == "122320"
    assert callback["result_code"] == 0
    assert callback["amount"] == "100"
    secret = (await gateway.client.get("/v1/callback-secret", headers=merchant.auth)).json()
    fields = ("channel", "reference", "transaction_id", "currency", "amount", "fees", "result_code")
    canonical = "|".join(str(callback[f]) for f in fields)
    expected = hmac.new(secret["secret"].encode(), canonical.encode(), hashlib.sha256).hexdigest()
    assert callback["hash"] == expected


@pytest.mark.parametrize(
    ("case", "status", "code"),
    [
        ("missing signature", 401, "invalid_signature"),
        ("wrong key", 401, "invalid_signature"),
        ("garbage signature", 401, "invalid_signature"),
        ("tampered amount", 401, "invalid_signature"),
        ("5-digit reference", 422, "validation_error"),
        ("letters in reference", 422, "validation_error"),
        ("unknown currency", 422, "validation_error"),
        ("USD 10,001", 422, "amount_out_of_range"),
        ("bad date", 422, "validation_error"),
        ("wrong channel", 422, "validation_error"),
        ("duplicate reference", 409, "duplicate_reference"),
    ],
)
async def test_refusals_move_no_money(
    gateway_factory: Any, case: str, status: int, code: str
) -> None:
    gateway, merchant = await setup(gateway_factory)
    before = await balance(gateway, merchant)
    if case == "duplicate reference":
        first = body("http://127.0.0.1:9/cb")
        assert (await remit(gateway, merchant, first, sign(first))).status_code == 200
        # Let the first payout settle, so only the refused one could still move money.
        listed = (await gateway.client.get("/v1/payouts", headers=merchant.auth)).json()["data"]
        assert (await wait_payout(gateway, merchant, listed[0]["id"]))["status"] == "completed"
        before = await balance(gateway, merchant)
    data = body("http://127.0.0.1:9/cb")
    signature: str | None = sign(data)
    match case:
        case "missing signature":
            signature = None
        case "wrong key":
            signature = sign(data, OTHER)
        case "garbage signature":
            signature = "!!!"
        case "tampered amount":
            data["transfer"]["amount"] = "1000"
        case "5-digit reference":
            data["transfer"]["reference"] = "12232"
        case "letters in reference":
            data["transfer"]["reference"] = "12A2320"
        case "unknown currency":
            data["transfer"]["currency"] = "EUR"
        case "USD 10,001":
            data["transfer"].update(currency="USD", amount="10001")
        case "bad date":
            data["transfer"]["date"] = "23-10-2020"
        case "wrong channel":
            data["transfer"]["channel"] = "549319"
    if case not in ("missing signature", "wrong key", "garbage signature", "tampered amount"):
        signature = sign(data)
    response = await remit(gateway, merchant, data, signature)
    assert response.status_code == status, response.text
    answer = response.json()
    assert answer["success"] is False
    assert answer["error"] == code
    assert await balance(gateway, merchant) == before
