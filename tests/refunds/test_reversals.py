"""Reversals through the real gateway and the simulator's Transaction Reversal API:
success, failure, a lost Result found by Transaction Status, a duplicated Result, and a
wallet that no longer holds the money."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import select

from pesaswitch.daraja.reversal import ReversalRequest
from pesaswitch.payouts.initiate import initiator
from pesaswitch.refunds.models import Reversal, ReversalCallback
from tests.conftest import problem
from tests.ledger.helpers import fees_balance
from tests.refunds.helpers import (
    COLLECTION_FEE,
    balance,
    event_types,
    invariants,
    paid,
    payment,
    shop,
    wait_final,
)

FAILS_WITH_1 = "0711980001"
LOSES_RESULT = "0711980002"
RESULT_TWICE = "0711980003"


async def reverse(gateway: Any, merchant: Any, payment_id: str, **body: Any) -> Any:
    return await gateway.client.post(
        f"/v1/payments/{payment_id}/reversal", headers=merchant.auth, json=body
    )


async def test_reversal_undoes_the_collection(gateway_factory: Any) -> None:
    gateway, merchant = await shop(gateway_factory)
    sessions = gateway.app.state.runtime.sessionmaker
    fees_before = await fees_balance(sessions)
    pay = await paid(gateway, merchant, 1000)
    assert await fees_balance(sessions) == fees_before + COLLECTION_FEE(1000)
    created = await reverse(gateway, merchant, pay["id"], reason="Wrong order")
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["id"].startswith("rv_")
    assert (body["amount"], body["wallet_amount"], body["receipt"]) == (
        1000, 1000 - COLLECTION_FEE(1000), pay["mpesa_receipt"],
    )  # fmt: skip
    final = await wait_final(gateway, merchant, f"/v1/reversals/{body['id']}")
    assert (final["status"], final["result_code"]) == ("completed", "0")
    assert len(final["transaction_id"]) == 10
    assert await balance(gateway, merchant) == {"available": 0, "reserved": 0}
    assert await fees_balance(sessions) == fees_before
    shown = await payment(gateway, merchant, pay["id"])
    assert (shown["reversed"], shown["amount_refundable"]) == (True, 0)
    assert shown["reversal"]["id"] == body["id"]
    assert await event_types(gateway, merchant) == ["payment.completed", "payment.reversed"]
    again = await reverse(gateway, merchant, pay["id"])
    assert again.status_code == 409
    assert problem(again)["code"] == "payment_already_reversed"
    refund = await gateway.client.post(
        f"/v1/payments/{pay['id']}/refund", headers=merchant.auth, json={}
    )
    assert problem(refund)["code"] == "payment_already_reversed"
    entries = (await gateway.client.get("/v1/ledger/entries", headers=merchant.auth)).json()
    kinds = sorted(e["kind"] for e in entries["data"])
    assert kinds == ["collection", "reversal_reserve", "reversal_settle"]
    assert await invariants(gateway) == []


async def test_failed_reversal_releases_the_wallet(gateway_factory: Any) -> None:
    gateway, merchant = await shop(gateway_factory)
    pay = await paid(gateway, merchant, 1000, phone=FAILS_WITH_1)
    created = await reverse(gateway, merchant, pay["id"])
    assert created.status_code == 201, created.text
    final = await wait_final(gateway, merchant, f"/v1/reversals/{created.json()['id']}")
    assert (final["status"], final["result_code"]) == ("failed", "1")
    assert await balance(gateway, merchant) == {
        "available": 1000 - COLLECTION_FEE(1000), "reserved": 0,
    }  # fmt: skip
    shown = await payment(gateway, merchant, pay["id"])
    assert (shown["reversed"], shown["amount_refundable"]) == (False, 1000)
    assert "reversal.failed" in await event_types(gateway, merchant)
    assert await invariants(gateway) == []


async def test_lost_result_is_found_by_transaction_status(gateway_factory: Any) -> None:
    gateway, merchant = await shop(gateway_factory)
    pay = await paid(gateway, merchant, 700, phone=LOSES_RESULT)
    created = await reverse(gateway, merchant, pay["id"])
    assert created.json()["status"] == "processing"
    final = await wait_final(gateway, merchant, f"/v1/reversals/{created.json()['id']}")
    assert final["status"] == "completed"
    reversal_id = created.json()["id"]
    async with gateway.app.state.runtime.sessionmaker() as session:
        kinds = list(await session.scalars(
            select(ReversalCallback.kind).where(ReversalCallback.reversal_id == reversal_id)
        ))  # fmt: skip
        settled_by = await session.scalar(
            select(Reversal.settled_by).where(Reversal.id == reversal_id)
        )
    assert (kinds, settled_by) == (["status"], "query")
    assert await balance(gateway, merchant) == {"available": 0, "reserved": 0}
    assert await invariants(gateway) == []


async def test_duplicated_result_settles_once(gateway_factory: Any) -> None:
    gateway, merchant = await shop(gateway_factory)
    pay = await paid(gateway, merchant, 500, phone=RESULT_TWICE)
    created = await reverse(gateway, merchant, pay["id"])
    final = await wait_final(gateway, merchant, f"/v1/reversals/{created.json()['id']}")
    assert final["status"] == "completed"
    for _ in range(100):
        async with gateway.app.state.runtime.sessionmaker() as session:
            outcomes = sorted(
                await session.scalars(
                    select(ReversalCallback.outcome).where(
                        ReversalCallback.reversal_id == created.json()["id"]
                    )
                )
            )
        if len(outcomes) == 2:
            break
        await asyncio.sleep(0.05)
    assert outcomes == ["applied", "duplicate"]
    assert await event_types(gateway, merchant) == ["payment.completed", "payment.reversed"]
    assert await invariants(gateway) == []


async def test_wallet_without_the_money_refuses_the_reversal(gateway_factory: Any) -> None:
    gateway, merchant = await shop(gateway_factory)
    pay = await paid(gateway, merchant, 1000)
    spent = await gateway.client.post(
        "/v1/payouts", headers=merchant.auth,
        json={"amount": 900, "phone": "0712345679", "reference": "SPEND-1"},
    )  # fmt: skip
    assert spent.status_code == 201, spent.text
    await wait_final(gateway, merchant, f"/v1/payouts/{spent.json()['id']}")
    before = await balance(gateway, merchant)
    refused = await reverse(gateway, merchant, pay["id"])
    assert refused.status_code == 422
    assert problem(refused)["code"] == "insufficient_funds"
    assert await balance(gateway, merchant) == before
    shown = await payment(gateway, merchant, pay["id"])
    assert (shown["reversal"], shown["reversed"]) == (None, False)
    assert await invariants(gateway) == []


async def test_a_refunded_payment_cannot_be_reversed(gateway_factory: Any) -> None:
    gateway, merchant = await shop(gateway_factory)
    pay = await paid(gateway, merchant, 1000)
    refunded = await gateway.client.post(
        f"/v1/payments/{pay['id']}/refund", headers=merchant.auth, json={"amount": 100}
    )
    assert refunded.status_code == 201, refunded.text
    refused = await reverse(gateway, merchant, pay["id"])
    assert refused.status_code == 409
    assert problem(refused)["code"] == "payment_not_reversible"
    assert problem(refused)["reason"] == "has_refunds"


async def test_idempotent_reversal_replay(gateway_factory: Any) -> None:
    gateway, merchant = await shop(gateway_factory)
    pay = await paid(gateway, merchant, 300)
    headers = {**merchant.auth, "Idempotency-Key": "rev-1"}
    path = f"/v1/payments/{pay['id']}/reversal"
    first = await gateway.client.post(path, headers=headers, json={})
    again = await gateway.client.post(path, headers=headers, json={})
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()


async def test_already_reversed_at_mpesa_fails_and_releases(gateway_factory: Any) -> None:
    """Someone reversed the receipt in the M-Pesa portal first: Daraja says R000001."""
    gateway, merchant = await shop(gateway_factory)
    pay = await paid(gateway, merchant, 800)
    runtime = gateway.app.state.runtime
    earlier = ReversalRequest(
        initiator=await initiator(runtime), transaction_id=pay["mpesa_receipt"], amount=800,
        receiver_party=gateway.settings.daraja_shortcode,
        result_url="http://127.0.0.1:9/r", queue_timeout_url="http://127.0.0.1:9/t",
    )  # fmt: skip
    await runtime.daraja.for_app(None).transaction_reversal(earlier)
    created = await reverse(gateway, merchant, pay["id"])
    final = await wait_final(gateway, merchant, f"/v1/reversals/{created.json()['id']}")
    assert (final["status"], final["result_code"]) == ("failed", "R000001")
    assert await balance(gateway, merchant) == {
        "available": 800 - COLLECTION_FEE(800), "reserved": 0,
    }  # fmt: skip
    assert await invariants(gateway) == []


async def test_racing_refund_and_reversal_cannot_both_win(gateway_factory: Any) -> None:
    gateway, merchant = await shop(gateway_factory)
    pay = await paid(gateway, merchant, 1000)
    refund, reversal = await asyncio.gather(
        gateway.client.post(
            f"/v1/payments/{pay['id']}/refund", headers=merchant.auth, json={"amount": 300}
        ),
        reverse(gateway, merchant, pay["id"]),
    )
    assert sorted([refund.status_code, reversal.status_code]) == [201, 409], (
        refund.text, reversal.text,
    )  # fmt: skip
    loser = refund if refund.status_code == 409 else reversal
    assert problem(loser)["code"] in {"payment_already_reversed", "payment_not_reversible"}


async def test_bad_reversal_callbacks_change_nothing(gateway_factory: Any) -> None:
    gateway, merchant = await shop(gateway_factory)
    pay = await paid(gateway, merchant, 600, phone=LOSES_RESULT)
    # The Result is never sent: only Transaction Status settles this one.
    created = await reverse(gateway, merchant, pay["id"])
    reversal_id = created.json()["id"]
    async with gateway.app.state.runtime.sessionmaker() as session:
        token = await session.scalar(
            select(Reversal.callback_token).where(Reversal.id == reversal_id)
        )
    unknown = await gateway.client.post("/daraja/reversal/result/not-a-token", json={})
    assert unknown.status_code == 404
    garbage = await gateway.client.post(
        f"/daraja/reversal/result/{token}", content=b"{not json",
        headers={"Content-Type": "application/json"},
    )  # fmt: skip
    assert garbage.status_code == 400
    assert problem(garbage)["code"] == "bad_request"
    async with gateway.app.state.runtime.sessionmaker() as session:
        outcomes = list(
            await session.scalars(
                select(ReversalCallback.outcome).where(ReversalCallback.reversal_id == reversal_id)
            )
        )
    assert "invalid" in outcomes
    final = await wait_final(gateway, merchant, f"/v1/reversals/{reversal_id}")
    assert final["status"] == "completed"  # settled by Transaction Status all the same
    assert await invariants(gateway) == []
