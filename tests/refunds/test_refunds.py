"""Refunds through the real gateway and simulator: full, partial, over-refund refused,
racing refunds, idempotent replays, a failed B2C giving the claim back."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.conftest import problem
from tests.refunds.helpers import (
    COLLECTION_FEE,
    PAYOUT_FEE,
    balance,
    event_types,
    fund,
    invariants,
    paid,
    payment,
    shop,
    wait_final,
)


async def refund(gateway: Any, merchant: Any, payment_id: str, **body: Any) -> Any:
    return await gateway.client.post(
        f"/v1/payments/{payment_id}/refund", headers=merchant.auth, json=body
    )


async def test_full_refund_pays_the_payer_back_from_the_wallet(gateway_factory: Any) -> None:
    gateway, merchant = await shop(gateway_factory)
    pay = await paid(gateway, merchant, 1000)
    await fund(gateway, merchant, 100)  # 985 credited; the refund costs 1000 + its fee
    created = await refund(gateway, merchant, pay["id"], reason="Out of stock")
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["id"].startswith("re_")
    assert (body["amount"], body["fee"]) == (1000, PAYOUT_FEE(1000))
    final = await wait_final(gateway, merchant, f"/v1/refunds/{body['id']}")
    assert final["status"] == "completed"
    payout = (await gateway.client.get(f"/v1/payouts/{body['payout_id']}",
                                       headers=merchant.auth)).json()  # fmt: skip
    assert (payout["phone"], payout["reference"]) == (pay["phone"], f"refund:{body['id']}")
    shown = await payment(gateway, merchant, pay["id"])
    assert (shown["amount_refunded"], shown["amount_refundable"]) == (1000, 0)
    assert [r["id"] for r in shown["refunds"]] == [body["id"]]
    left = 1000 - COLLECTION_FEE(1000) + 100 - 1000 - PAYOUT_FEE(1000)
    assert await balance(gateway, merchant) == {"available": left, "reserved": 0}
    assert await event_types(gateway, merchant) == [
        "payment.completed", "payout.completed", "refund.completed",
    ]  # fmt: skip
    assert await invariants(gateway) == []


async def test_partial_refunds_until_nothing_is_left(gateway_factory: Any) -> None:
    gateway, merchant = await shop(gateway_factory)
    pay = await paid(gateway, merchant, 1000)
    await fund(gateway, merchant, 5000)
    first = await refund(gateway, merchant, pay["id"], amount=400)
    assert first.status_code == 201, first.text
    path = f"/v1/refunds/{first.json()['id']}"
    assert (await wait_final(gateway, merchant, path))["status"] == "completed"
    before = await balance(gateway, merchant)
    over = await refund(gateway, merchant, pay["id"], amount=700)
    assert over.status_code == 422
    assert problem(over)["code"] == "refund_exceeds_payment"
    assert problem(over)["refundable"] == 600
    assert await balance(gateway, merchant) == before  # nothing reserved, nothing sent
    rest = await refund(gateway, merchant, pay["id"])  # no amount: all that is left
    assert rest.status_code == 201, rest.text
    assert rest.json()["amount"] == 600
    path = f"/v1/refunds/{rest.json()['id']}"
    assert (await wait_final(gateway, merchant, path))["status"] == "completed"
    nothing = await refund(gateway, merchant, pay["id"], amount=10)
    assert problem(nothing)["code"] == "refund_exceeds_payment"
    shown = await payment(gateway, merchant, pay["id"])
    assert (shown["amount_refunded"], shown["amount_refundable"], len(shown["refunds"])) == (
        1000, 0, 2,
    )  # fmt: skip
    assert await invariants(gateway) == []


async def test_racing_refunds_cannot_exceed_the_payment(gateway_factory: Any) -> None:
    gateway, merchant = await shop(gateway_factory)
    pay = await paid(gateway, merchant, 1000)
    await fund(gateway, merchant, 10_000)
    answers = await asyncio.gather(
        *(refund(gateway, merchant, pay["id"], amount=300) for _ in range(6))
    )
    codes = sorted(a.status_code for a in answers)
    assert codes == [201, 201, 201, 422, 422, 422], [a.text for a in answers]
    assert {problem(a)["code"] for a in answers if a.status_code == 422} == {
        "refund_exceeds_payment"
    }
    for answer in answers:
        if answer.status_code == 201:
            path = f"/v1/refunds/{answer.json()['id']}"
            assert (await wait_final(gateway, merchant, path))["status"] == "completed"
    shown = await payment(gateway, merchant, pay["id"])
    assert (shown["amount_refunded"], shown["amount_refundable"]) == (900, 100)
    assert await invariants(gateway) == []


async def test_idempotent_replay_refunds_once(gateway_factory: Any) -> None:
    gateway, merchant = await shop(gateway_factory)
    pay = await paid(gateway, merchant, 500)
    await fund(gateway, merchant, 1000)
    headers = {**merchant.auth, "Idempotency-Key": "refund-1"}
    path = f"/v1/payments/{pay['id']}/refund"
    first = await gateway.client.post(path, headers=headers, json={"amount": 200})
    again = await gateway.client.post(path, headers=headers, json={"amount": 200})
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    other = await gateway.client.post(path, headers=headers, json={"amount": 300})
    assert other.status_code == 422
    assert problem(other)["code"] == "idempotency_key_mismatch"
    shown = await payment(gateway, merchant, pay["id"])
    assert len(shown["refunds"]) == 1
    assert shown["amount_refundable"] == 300


async def test_failed_refund_gives_the_amount_back(gateway_factory: Any) -> None:
    # The B2C shortcode's Utility account cannot pay: the Result is ResultCode 1.
    gateway, merchant = await shop(gateway_factory, simulator_b2c_utility_balance=100)
    pay = await paid(gateway, merchant, 1000)
    await fund(gateway, merchant, 100)
    before = await balance(gateway, merchant)
    created = await refund(gateway, merchant, pay["id"])
    final = await wait_final(gateway, merchant, f"/v1/refunds/{created.json()['id']}")
    assert final["status"] == "failed"
    assert await balance(gateway, merchant) == before
    shown = await payment(gateway, merchant, pay["id"])
    assert (shown["amount_refunded"], shown["amount_refundable"]) == (0, 1000)
    assert "refund.failed" in await event_types(gateway, merchant)
    assert await invariants(gateway) == []
