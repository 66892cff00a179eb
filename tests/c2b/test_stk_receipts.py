"""STK receipts by query: a payment settled by STK Query (no receipt in that answer) gets
its receipt from Transaction Status afterwards, with ``payment.updated``."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from sqlalchemy import update

from pesaswitch.c2b import receipts
from pesaswitch.db import create_engine, create_sessionmaker
from pesaswitch.payments.models import Payment
from pesaswitch.payments.tasks import reconcile_payment
from tests.c2b.helpers import payment_token, status_result
from tests.conftest import Gateway, Merchant, create_merchant


async def _events(gateway: Gateway, merchant: Merchant) -> list[dict[str, Any]]:
    response = await gateway.client.get("/v1/events", headers=merchant.auth)
    events: list[dict[str, Any]] = response.json()["data"]
    return events


async def test_receipt_arrives_after_a_query_settled_the_payment(
    gateway: Gateway, merchant: Merchant
) -> None:
    # 254711990002: no callback; only the STK Query tells that it was paid.
    created = await gateway.client.post(
        "/v1/payments", json={"amount": 30, "phone": "254711990002"}, headers=merchant.auth
    )
    assert created.status_code == 201, created.text
    payment_id = created.json()["id"]
    settled = await gateway.wait_for_status(merchant, payment_id)
    assert settled["status"] == "completed"

    async with asyncio.timeout(10):
        while True:
            body = (
                await gateway.client.get(f"/v1/payments/{payment_id}", headers=merchant.auth)
            ).json()
            if body["mpesa_receipt"] is not None:
                break
            await asyncio.sleep(0.05)
    pushes = gateway.app.state.runtime.simulator.pushes
    [push] = [p for p in pushes.values() if p.checkout_request_id == body["checkout_request_id"]]
    assert body["mpesa_receipt"] == push.receipt

    events = await _events(gateway, merchant)
    updated = [e for e in events if e["type"] == "payment.updated"]
    assert [e["data"]["mpesa_receipt"] for e in updated] == [push.receipt]
    completed = [e for e in events if e["type"] == "payment.completed"]
    assert [e["data"]["mpesa_receipt"] for e in completed] == [None]

    # A second Result, with another receipt, changes nothing.
    token = await payment_token(gateway, payment_id)
    replay = status_result("UZZZZZZZZZ", 30)
    response = await gateway.client.post(f"/daraja/receipts/{token}", json=replay)
    assert response.status_code == 200
    again = (await gateway.client.get(f"/v1/payments/{payment_id}", headers=merchant.auth)).json()
    assert again["mpesa_receipt"] == push.receipt
    assert len([e for e in await _events(gateway, merchant) if e["type"] == "payment.updated"]) == 1


async def test_a_replayed_or_foreign_result_changes_nothing(
    gateway: Gateway, merchant: Merchant
) -> None:
    response = await gateway.client.post("/daraja/receipts/no-such-token", json={"Result": {}})
    assert response.status_code in (400, 404)
    response = await gateway.client.post("/daraja/receipts/no-such-token", content=b"{")
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("application/problem+json")
    response = await gateway.client.post(
        "/daraja/receipts/no-such-token",
        json={"Result": {"ResultCode": 0, "OriginatorConversationID": "a",
                         "ConversationID": "b"}},
    )  # fmt: skip
    assert response.status_code == 404


async def test_racing_workers_claim_each_ask_once(
    gateway_factory: Callable[..., Awaitable[Gateway]],
) -> None:
    # The chaos run's two workers: both read the payment as due, and the loser's INSERT of
    # the claim row failed its whole batch on the primary key (PostgreSQL).
    gateway = await gateway_factory(stk_receipt_lookup=False)  # no embedded claimer
    runtime = gateway.app.state.runtime
    merchant = await create_merchant(gateway.settings, "Receipt race")
    created = await gateway.client.post(
        "/v1/payments", json={"amount": 31, "phone": "254711990002"}, headers=merchant.auth
    )
    assert created.status_code == 201, created.text
    payment_id = created.json()["id"]
    await reconcile_payment(runtime, payment_id)  # settled by query: no receipt
    body = (await gateway.client.get(f"/v1/payments/{payment_id}", headers=merchant.auth)).json()
    assert body["status"] == "completed"
    assert body["mpesa_receipt"] is None

    first, second = await asyncio.gather(receipts.claim_due(runtime), receipts.claim_due(runtime))
    assert (first + second).count(payment_id) == 1
    # Claimed: not due again until its next ask.
    assert payment_id not in await receipts.claim_due(runtime)


async def _settled_by_query(gateway: Gateway, merchant: Merchant, amount: int) -> tuple[str, str]:
    """A completed payment with no receipt yet (its callback lost): its id and token."""
    created = await gateway.client.post(
        "/v1/payments", json={"amount": amount, "phone": "254711990002"}, headers=merchant.auth
    )
    assert created.status_code == 201, created.text
    payment_id: str = created.json()["id"]
    await reconcile_payment(gateway.app.state.runtime, payment_id)
    return payment_id, await payment_token(gateway, payment_id)


@pytest.mark.postgres_only
async def test_a_receipt_taken_between_the_check_and_the_update_is_no_500(
    gateway_factory: Callable[..., Awaitable[Gateway]],
) -> None:
    # Found in review: the Result handler checked that no payment held the receipt, then
    # updated; a payment given the same receipt in between (uncommitted at the check)
    # made the UPDATE fail on the unique constraint, answered 500.
    gateway = await gateway_factory(stk_receipt_lookup=False)
    merchant = await create_merchant(gateway.settings, "Receipt taken")
    asked, token = await _settled_by_query(gateway, merchant, 32)
    other, _ = await _settled_by_query(gateway, merchant, 33)
    result = status_result("UQRACE0001", 32)
    engine = create_engine(gateway.settings)
    try:
        async with create_sessionmaker(engine)() as session, session.begin():
            await session.execute(
                update(Payment).where(Payment.id == other).values(mpesa_receipt="UQRACE0001")
            )
            posted = asyncio.create_task(
                gateway.client.post(f"/daraja/receipts/{token}", json=result)
            )
            await asyncio.sleep(0.5)  # the handler's check sees no holder; its UPDATE waits
            assert not posted.done()
        response = await posted
    finally:
        await engine.dispose()
    assert response.status_code == 200, response.text
    body = (await gateway.client.get(f"/v1/payments/{asked}", headers=merchant.auth)).json()
    assert body["mpesa_receipt"] is None
    held = (await gateway.client.get(f"/v1/payments/{other}", headers=merchant.auth)).json()
    assert held["mpesa_receipt"] == "UQRACE0001"
