"""Every kind of bad request gets a 4xx problem+json and creates nothing."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Gateway, Merchant, create_merchant, problem
from tests.payments.test_create import count_payments

GOOD: dict[str, Any] = {"amount": 10, "phone": "0708374149"}


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"phone": "0708374149"}, 422, "validation_error"),
        ({"amount": 10}, 422, "validation_error"),
        ({**GOOD, "amount": 0}, 422, "amount_out_of_range"),
        ({**GOOD, "amount": -5}, 422, "amount_out_of_range"),
        ({**GOOD, "amount": 10.5}, 422, "validation_error"),
        ({**GOOD, "amount": 10.0}, 422, "validation_error"),
        ({**GOOD, "amount": "10"}, 422, "validation_error"),
        ({**GOOD, "amount": True}, 422, "validation_error"),
        ({**GOOD, "amount": None}, 422, "validation_error"),
        ({**GOOD, "amount": 250_001}, 422, "amount_out_of_range"),
        ({**GOOD, "amount": 10**30}, 422, "amount_out_of_range"),
        ({**GOOD, "phone": "0733123456"}, 422, "unsupported_network"),
        ({**GOOD, "phone": "0771123456"}, 422, "unsupported_network"),
        ({**GOOD, "phone": "2547083741491"}, 422, "invalid_phone"),
        ({**GOOD, "phone": "hello"}, 422, "invalid_phone"),
        ({**GOOD, "phone": 708374149}, 422, "validation_error"),
        ({**GOOD, "description": "x" * 10_240}, 422, "validation_error"),
        ({**GOOD, "reference": "r" * 101}, 422, "validation_error"),
        ({**GOOD, "channel_id": 999_999}, 404, "channel_not_found"),
        ({**GOOD, "channel_id": "1"}, 422, "validation_error"),
        ({**GOOD, "callback_url": "ftp://example.com/x"}, 422, "validation_error"),
        ({**GOOD, "status": "completed"}, 422, "validation_error"),
        ({**GOOD, "metadata": {"k": "v" * 5000}}, 422, "validation_error"),
        ([GOOD], 422, "validation_error"),
    ],
)
async def test_bad_bodies(
    gateway: Gateway, merchant: Merchant, body: Any, status: int, code: str
) -> None:
    response = await gateway.client.post("/v1/payments", headers=merchant.auth, json=body)
    assert response.status_code == status, response.text
    assert problem(response)["code"] == code
    assert await count_payments(gateway, merchant) == 0


@pytest.mark.parametrize(
    "raw",
    [b"{not json", b'{"amount": 10, "phone": "0708374149"', b"", b"\xff\xfe"],
)
async def test_malformed_json(gateway: Gateway, merchant: Merchant, raw: bytes) -> None:
    response = await gateway.client.post(
        "/v1/payments",
        headers={**merchant.auth, "Content-Type": "application/json"},
        content=raw,
    )
    assert response.status_code in (400, 422), response.text
    assert problem(response)["code"] in ("invalid_json", "validation_error")
    assert await count_payments(gateway, merchant) == 0


async def test_oversized_body_is_413(gateway: Gateway, merchant: Merchant) -> None:
    response = await gateway.client.post(
        "/v1/payments",
        headers={**merchant.auth, "Content-Type": "application/json"},
        content=b'{"amount": 10, "phone": "0708374149", "description": "' + b"x" * 100_000 + b'"}',
    )
    assert response.status_code == 413
    assert problem(response)["code"] == "payload_too_large"
    assert await count_payments(gateway, merchant) == 0


async def test_another_accounts_channel_is_not_found(gateway: Gateway, merchant: Merchant) -> None:
    other = await create_merchant(gateway.settings, "Other shop")
    response = await gateway.client.post(
        "/v1/payments", headers=merchant.auth, json={**GOOD, "channel_id": other.channel_id}
    )
    assert response.status_code == 404
    assert problem(response)["code"] == "channel_not_found"
    assert await count_payments(gateway, merchant) == 0
    assert await count_payments(gateway, other) == 0


@pytest.mark.parametrize(
    ("authorization", "code"),
    [
        (None, "invalid_api_key"),
        ("Bearer", "invalid_api_key"),
        ("Basic c2tfdGVzdDo=", "invalid_api_key"),
        ("Bearer sk_test_not-a-real-key", "invalid_api_key"),
        ("Bearer nonsense", "invalid_api_key"),
    ],
)
async def test_bad_credentials_are_401(
    gateway: Gateway, merchant: Merchant, authorization: str | None, code: str
) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    response = await gateway.client.post("/v1/payments", headers=headers, json=GOOD)
    assert response.status_code == 401
    assert problem(response)["code"] == code
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert await count_payments(gateway, merchant) == 0


async def test_public_key_cannot_create(gateway: Gateway, merchant: Merchant) -> None:
    response = await gateway.client.post("/v1/payments", headers=merchant.read_auth, json=GOOD)
    assert response.status_code == 403
    assert problem(response)["code"] == "insufficient_permissions"
    assert await count_payments(gateway, merchant) == 0


async def test_revoked_key_is_refused(gateway: Gateway, merchant: Merchant) -> None:
    from pesaswitch.accounts.service import revoke_api_key
    from pesaswitch.db import transaction

    async with transaction(gateway.app.state.runtime.sessionmaker) as session:
        await revoke_api_key(session, key_id=merchant.secret_key_id)
    response = await gateway.client.post("/v1/payments", headers=merchant.auth, json=GOOD)
    assert response.status_code == 401
    assert problem(response)["code"] == "api_key_revoked"
    assert await count_payments(gateway, merchant) == 0


async def test_idempotency_key_too_long(gateway: Gateway, merchant: Merchant) -> None:
    response = await gateway.client.post(
        "/v1/payments", headers={**merchant.auth, "Idempotency-Key": "k" * 256}, json=GOOD
    )
    assert response.status_code == 422
    assert await count_payments(gateway, merchant) == 0
