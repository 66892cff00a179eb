"""The PayNexus dialect, in-process: keys, shapes, statuses, caps, rate limits, webhooks."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from typing import Any

import pytest

from tests.conftest import Gateway, Merchant, create_merchant
from tests.support.receiver import running_receiver

SETTINGS = {"sandbox_allow_private_urls": True, "webhook_interval": 0.05,
            "webhook_retry_schedule": "0.1"}  # fmt: skip


def key(k: str) -> dict[str, str]:
    return {"X-API-Key": k}


async def setup(gateway_factory: Any, **overrides: Any) -> tuple[Gateway, Merchant]:
    gateway: Gateway = await gateway_factory(**{**SETTINGS, **overrides})
    return gateway, await create_merchant(gateway.settings)


async def initiate(gateway: Gateway, merchant: Merchant, **fields: Any) -> Any:
    body = {"amount": 30, "phone": "0746990866", "description": "Order #12345", **fields}
    return await gateway.client.post(
        "/api/mpesa/payment/initiate", headers=key(merchant.secret_key), json=body
    )


async def settled(gateway: Gateway, merchant: Merchant, reference: str) -> dict[str, Any]:
    """PayNexus' view of the payment once it is final, or as it is after 10 s."""
    deadline = asyncio.get_running_loop().time() + 10
    while True:
        read = await gateway.client.get(
            f"/api/payments/{reference}", headers=key(merchant.public_key)
        )
        data: dict[str, Any] = read.json()["data"]
        if data["status"] not in ("initiated", "processing"):
            return data
        if asyncio.get_running_loop().time() > deadline:
            return data
        await asyncio.sleep(0.05)


async def test_initiate_and_read_in_paynexus_shapes(gateway_factory: Any) -> None:
    # Held on the sandbox phone until the PIN, so the answer is read while it is
    # "initiated"; settled by its callback (with the receipt), no reconciler query first.
    gateway, merchant = await setup(
        gateway_factory, simulator_mode="interactive", reconcile_after=3600
    )
    response = await initiate(gateway, merchant)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["success"] is True
    data = body["data"]
    assert set(data) == {"reference", "checkout_request_id", "amount", "phone", "status"}
    assert data["phone"] == "254746990866"
    assert data["amount"] == 30
    assert data["status"] == "initiated"
    for header in ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"):
        assert response.headers[header].isdigit()

    pin = await gateway.client.post(
        f"/simulator/phone/prompts/{data['checkout_request_id']}/pin", data={"pin": "1234"}
    )
    assert pin.status_code == 303
    assert (await settled(gateway, merchant, data["reference"]))["status"] == "completed"
    by_checkout = await gateway.client.post(
        "/api/payments/status-by-checkout-id", headers=key(merchant.public_key),
        json={"checkout_request_id": data["checkout_request_id"]},
    )  # fmt: skip
    assert by_checkout.json()["data"]["reference"] == data["reference"]
    assert len(by_checkout.json()["data"]["mpesa_receipt_number"]) == 10
    bearer = await gateway.client.get(
        f"/api/payments/{data['reference']}",
        headers={"Authorization": f"Bearer {merchant.public_key}"},
    )
    assert bearer.status_code == 200


@pytest.mark.parametrize(
    ("phone", "status"),
    [("0711001032", "cancelled"), ("0711001037", "expired"), ("0711002001", "failed")],
)
async def test_final_statuses(gateway_factory: Any, phone: str, status: str) -> None:
    gateway, merchant = await setup(gateway_factory)
    data = (await initiate(gateway, merchant, phone=phone)).json()["data"]
    assert (await settled(gateway, merchant, data["reference"]))["status"] == status


async def test_public_key_cannot_initiate_and_accounts_are_separate(gateway_factory: Any) -> None:
    gateway, merchant = await setup(gateway_factory)
    refused = await gateway.client.post(
        "/api/mpesa/payment/initiate", headers=key(merchant.public_key),
        json={"amount": 10, "phone": "0746990866"},
    )  # fmt: skip
    assert refused.status_code == 403
    assert refused.json()["success"] is False
    data = (await initiate(gateway, merchant)).json()["data"]
    other = await create_merchant(gateway.settings, "Other")
    for headers in (key(other.public_key), key(other.secret_key)):
        read = await gateway.client.get(f"/api/payments/{data['reference']}", headers=headers)
        assert read.status_code == 404
        assert read.json()["success"] is False
        by_checkout = await gateway.client.post(
            "/api/payments/status-by-checkout-id", headers=headers,
            json={"checkout_request_id": data["checkout_request_id"]},
        )  # fmt: skip
        assert by_checkout.status_code == 404
    missing = await gateway.client.get("/api/payments/NOPE", headers=key("sk_test_wrong"))
    assert missing.status_code == 401


@pytest.mark.parametrize(
    "body",
    [{}, {"amount": "100", "phone": "0746990866"}, {"amount": 10, "phone": "0733123456"},
     {"amount": 51, "phone": "0746990866"}, {"amount": 0, "phone": "0746990866"}, "text"],
)  # fmt: skip
async def test_bad_requests_get_paynexus_errors(gateway_factory: Any, body: Any) -> None:
    gateway, merchant = await setup(gateway_factory)
    response = await gateway.client.post(
        "/api/mpesa/payment/initiate", headers=key(merchant.secret_key), json=body
    )
    assert 400 <= response.status_code < 500, response.text
    assert response.json()["success"] is False
    assert (await gateway.client.get("/v1/payments", headers=merchant.auth)).json()["data"] == []


async def test_sandbox_cap_is_configurable(gateway_factory: Any) -> None:
    gateway, merchant = await setup(gateway_factory, paynexus_max_amount_sandbox=150_000)
    assert (await initiate(gateway, merchant, amount=100)).status_code == 200


async def test_validate_phone(gateway_factory: Any) -> None:
    gateway, merchant = await setup(gateway_factory)
    ok = await gateway.client.post(
        "/api/mpesa/validate-phone", headers=key(merchant.public_key), json={"phone": "0746990866"}
    )
    assert ok.json() == {
        "success": True,
        "data": {"original": "0746990866", "normalized": "254746990866", "valid": True,
                 "provider": "mpesa"},
    }  # fmt: skip
    airtel = await gateway.client.post(
        "/api/mpesa/validate-phone", headers=key(merchant.public_key), json={"phone": "0733123456"}
    )
    assert airtel.json()["data"]["valid"] is False


async def test_rate_limit_headers_and_429(gateway_factory: Any) -> None:
    gateway, merchant = await setup(gateway_factory, paynexus_rate_limit=3)
    answers = [
        await gateway.client.post(
            "/api/mpesa/validate-phone",
            headers=key(merchant.public_key),
            json={"phone": "0746990866"},
        )
        for _ in range(4)
    ]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert [a.headers["X-RateLimit-Remaining"] for a in answers] == ["2", "1", "0", "0"]
    limited = answers[-1].json()
    assert limited["success"] is False
    assert 1 <= limited["retry_after"] <= 60
    assert answers[-1].headers["Retry-After"] == str(limited["retry_after"])
    # Another key has its own budget.
    other = await gateway.client.post(
        "/api/mpesa/validate-phone", headers=key(merchant.secret_key), json={"phone": "0746990866"}
    )
    assert other.status_code == 200


async def test_registered_webhook_is_signed_paynexus_style(gateway_factory: Any) -> None:
    gateway, merchant = await setup(gateway_factory)
    with running_receiver() as receiver:
        registered = await gateway.client.post(
            "/api/webhooks/register", headers=key(merchant.secret_key),
            json={"url": receiver.url, "events": ["payment.completed"]},
        )  # fmt: skip
        assert registered.status_code == 201, registered.text
        secret = registered.json()["data"]["secret"]
        data = (await initiate(gateway, merchant)).json()["data"]
        for _ in range(200):
            if receiver.received:
                break
            await asyncio.sleep(0.05)
        assert receiver.received
        request = receiver.received[0]
    expected = hmac.new(secret.encode(), request.body, hashlib.sha256).hexdigest()
    assert request.headers["x-paynexus-signature"] == expected
    event = json.loads(request.body)
    assert event["event"] == "payment.completed"
    assert event["data"]["reference"] == data["reference"]
    assert event["data"]["status"] == "completed"
    refused = await gateway.client.post(
        "/api/webhooks/register", headers=key(merchant.public_key), json={"url": receiver.url}
    )
    assert refused.status_code == 403
