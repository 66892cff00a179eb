"""POST /v1/payments in-process: happy path, idempotency, Daraja refusals."""

from __future__ import annotations

import asyncio

import httpx
from sqlalchemy import func, select

from pesaswitch.payments.models import Payment
from tests.conftest import Gateway, Merchant, problem


async def count_payments(gateway: Gateway, merchant: Merchant) -> int:
    async with gateway.app.state.runtime.sessionmaker() as session:
        total = await session.scalar(
            select(func.count())
            .select_from(Payment)
            .where(Payment.account_id == merchant.account_id)
        )
    return int(total or 0)


async def test_payment_completes_with_a_receipt(gateway_factory: object) -> None:
    from tests.conftest import create_merchant

    # Held on the sandbox phone until the PIN, so the answer to the POST is pending
    # whatever the load; then settled by its callback, which carries the receipt (the
    # reconciler, whose STK query knows none, does not ask while the test waits).
    gateway: Gateway = await gateway_factory(  # type: ignore[operator]
        simulator_mode="interactive", reconcile_after=3600
    )
    merchant = await create_merchant(gateway.settings)
    response = await gateway.client.post(
        "/v1/payments",
        headers=merchant.auth,
        json={
            "amount": 150,
            "phone": "0708374149",
            "reference": "INV-1",
            "description": "Order 1",
            "customer_name": "Wanjiku",
            "metadata": {"order": 1},
        },
    )
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["id"].startswith("pay_")
    assert created["status"] == "pending"
    assert created["checkout_request_id"].startswith("ws_CO_")
    assert created["merchant_request_id"]
    assert created["reference"] == "INV-1"
    assert len(created["gateway_reference"]) == 10
    assert created["phone"] == "254708374149"
    assert created["channel_id"] == merchant.channel_id

    cid = created["checkout_request_id"]
    pin = await gateway.client.post(f"/simulator/phone/prompts/{cid}/pin", data={"pin": "1234"})
    assert pin.status_code == 303
    final = await gateway.wait_for_status(merchant, created["id"])
    assert final["status"] == "completed"
    assert final["result_code"] == "0"
    assert len(final["mpesa_receipt"]) == 10
    assert final["mpesa_receipt"].isalnum()
    assert final["mpesa_receipt"].isupper()
    assert final["metadata"] == {"order": 1}


async def test_idempotency_key_replays_the_first_response(
    gateway: Gateway, merchant: Merchant
) -> None:
    body = {"amount": 20, "phone": "0712000001"}
    headers = {**merchant.auth, "Idempotency-Key": "order-77"}
    first = await gateway.client.post("/v1/payments", headers=headers, json=body)
    second = await gateway.client.post("/v1/payments", headers=headers, json=body)
    assert first.status_code == second.status_code == 201
    assert first.json() == second.json()
    assert await count_payments(gateway, merchant) == 1

    different = await gateway.client.post(
        "/v1/payments", headers=headers, json={"amount": 21, "phone": "0712000001"}
    )
    assert different.status_code == 422
    assert problem(different)["code"] == "idempotency_key_mismatch"
    assert await count_payments(gateway, merchant) == 1


async def test_idempotency_key_in_flight_is_409(gateway_factory: object) -> None:
    from tests.conftest import create_merchant

    gateway: Gateway = await gateway_factory()  # type: ignore[operator]
    merchant = await create_merchant(gateway.settings)
    # The first request is held at its STK push, which comes after it has claimed the key,
    # until the second has its answer: in flight for as long as the test needs it.
    pushed, release = asyncio.Event(), asyncio.Event()

    async def hold_the_push(request: httpx.Request) -> None:
        if request.url.path == "/mpesa/stkpush/v1/processrequest":
            pushed.set()
            await release.wait()

    daraja = gateway.app.state.runtime.daraja.http
    hooks = daraja.event_hooks
    daraja.event_hooks = {**hooks, "request": [*hooks["request"], hold_the_push]}
    headers = {**merchant.auth, "Idempotency-Key": "slow-1"}
    body = {"amount": 30, "phone": "0712000004"}
    first = asyncio.create_task(gateway.client.post("/v1/payments", headers=headers, json=body))
    try:
        await asyncio.wait_for(pushed.wait(), timeout=10)
        second = await gateway.client.post("/v1/payments", headers=headers, json=body)
    finally:
        release.set()
    assert second.status_code == 409
    assert problem(second)["code"] == "idempotency_key_in_use"
    assert (await first).status_code == 201
    assert await count_payments(gateway, merchant) == 1


async def test_idempotency_keys_are_scoped_per_account(
    gateway: Gateway, merchant: Merchant
) -> None:
    from tests.conftest import create_merchant

    other = await create_merchant(gateway.settings, "Other shop")
    body = {"amount": 40, "phone": "0712000002"}
    a = await gateway.client.post(
        "/v1/payments", headers={**merchant.auth, "Idempotency-Key": "shared"}, json=body
    )
    b = await gateway.client.post(
        "/v1/payments",
        headers={**other.auth, "Idempotency-Key": "shared"},
        json={**body, "phone": "0712000003"},
    )
    assert a.status_code == b.status_code == 201
    assert a.json()["id"] != b.json()["id"]


async def test_locked_subscriber_is_409_and_the_payment_failed(
    gateway: Gateway, merchant: Merchant
) -> None:
    response = await gateway.client.post(
        "/v1/payments", headers=merchant.auth, json={"amount": 10, "phone": "254711990001"}
    )
    assert response.status_code == 409
    body = problem(response)
    assert body["code"] == "daraja_subscriber_locked"
    assert body["payment"]["status"] == "failed"
    assert body["payment"]["result_code"] == "500.001.1001"
    stored = await gateway.client.get(
        f"/v1/payments/{body['payment']['id']}", headers=merchant.auth
    )
    assert stored.json()["status"] == "failed"


async def test_second_push_while_one_is_pending_is_refused(
    gateway_factory: object,
) -> None:
    from tests.conftest import create_merchant

    gateway: Gateway = await gateway_factory(simulator_delay=2.0)  # type: ignore[operator]
    merchant = await create_merchant(gateway.settings)
    first = await gateway.client.post(
        "/v1/payments", headers=merchant.auth, json={"amount": 10, "phone": "0712000010"}
    )
    assert first.status_code == 201
    second = await gateway.client.post(
        "/v1/payments", headers=merchant.auth, json={"amount": 11, "phone": "0712000010"}
    )
    assert second.status_code == 409
    assert problem(second)["code"] == "daraja_subscriber_locked"


async def test_same_amount_twice_within_two_minutes_fails_with_17(
    gateway: Gateway, merchant: Merchant
) -> None:
    body = {"amount": 55, "phone": "0712000020"}
    first = await gateway.client.post("/v1/payments", headers=merchant.auth, json=body)
    assert (await gateway.wait_for_status(merchant, first.json()["id"]))["status"] == "completed"
    second = await gateway.client.post("/v1/payments", headers=merchant.auth, json=body)
    final = await gateway.wait_for_status(merchant, second.json()["id"])
    assert final["status"] == "failed"
    assert final["result_code"] == "17"


async def test_unreachable_daraja_is_503_and_nothing_was_sent(
    gateway_factory: object,
) -> None:
    from tests.conftest import create_merchant
    from tests.support.processes import free_port

    gateway: Gateway = await gateway_factory(  # type: ignore[operator]
        daraja_base_url=f"http://127.0.0.1:{free_port()}"
    )
    merchant = await create_merchant(gateway.settings)
    response = await gateway.client.post(
        "/v1/payments", headers=merchant.auth, json={"amount": 10, "phone": "0712000030"}
    )
    assert response.status_code == 503
    body = problem(response)
    assert body["code"] == "daraja_unavailable"
    assert body["payment"]["status"] == "failed"
