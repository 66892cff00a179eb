"""A Transaction Status that has not heard of a payout yet (2032) must not release its
funds while a late Result may still spend them.

Found by the chaos run (seed 3): the simulator's Result came after the reconciler's
Transaction Status answered 2032; the gateway had failed the payout and put the money
back in the wallet, and the recipient was paid as well.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select

from pesaswitch.ledger.fees import Tariff
from pesaswitch.payouts.models import Payout, PayoutCallback
from pesaswitch.simulator.b2c_wire import failed_query_body
from tests.conftest import Gateway
from tests.payouts.helpers import balance, funded, invariants

FEE = Tariff().payout_fee
BODY = {"amount": 1000, "phone": "0711990002", "name": "Jane Doe", "reference": "PO-LATE",
        "description": "Refund"}  # fmt: skip


async def lost_result_payout(gateway: Gateway, auth: dict[str, str]) -> Payout:
    # 254711990002: the simulator sends no Result; the test posts what Daraja would.
    created = await gateway.client.post("/v1/payouts", headers=auth, json=BODY)
    assert created.status_code == 201, created.text
    async with gateway.app.state.runtime.sessionmaker() as session:
        row = await session.get(Payout, created.json()["id"])
        assert row is not None
        return row


def success_result(originator: str) -> bytes:
    parameters = [{"Key": "TransactionAmount", "Value": 1000},
                  {"Key": "TransactionReceipt", "Value": "UKLATE0001"}]  # fmt: skip
    return json.dumps({"Result": {
        "ResultType": 0, "ResultCode": 0, "ResultDesc": "The service request is processed "
        "successfully.", "OriginatorConversationID": originator, "ConversationID": "AG_late",
        "TransactionID": "UKLATE0001", "ResultParameters": {"ResultParameter": parameters},
    }}).encode()  # fmt: skip


async def outcomes(gateway: Gateway, payout_id: str) -> list[str]:
    async with gateway.app.state.runtime.sessionmaker() as session:
        rows = await session.scalars(
            select(PayoutCallback.outcome)
            .where(PayoutCallback.payout_id == payout_id)
            .order_by(PayoutCallback.id)
        )
        return list(rows)


async def test_an_early_2032_waits_for_the_late_result(gateway_factory: Any) -> None:
    # No reconciliation during the test: only the posts below may settle the payout.
    gateway, merchant = await funded(
        gateway_factory, 5_000, reconcile_after=60, payout_not_found_grace=60
    )
    payout = await lost_result_payout(gateway, merchant.auth)
    status = failed_query_body(2032, "AG_query", "AG_query_conv")
    answer = await gateway.client.post(
        f"/daraja/b2c/status/{payout.callback_token}", content=json.dumps(status).encode()
    )
    assert answer.status_code == 200
    current = (await gateway.client.get(f"/v1/payouts/{payout.id}", headers=merchant.auth)).json()
    assert current["status"] == "processing"
    assert await balance(gateway, merchant) == {"available": 5_000 - 1000 - FEE(1000),
                                                 "reserved": 1000 + FEE(1000)}  # fmt: skip

    late = await gateway.client.post(
        f"/daraja/b2c/result/{payout.callback_token}",
        content=success_result(payout.originator_conversation_id),
    )
    assert late.status_code == 200
    final = (await gateway.client.get(f"/v1/payouts/{payout.id}", headers=merchant.auth)).json()
    assert final["status"] == "completed"
    assert await outcomes(gateway, payout.id) == ["too_early", "applied"]
    assert await balance(gateway, merchant) == {"available": 5_000 - 1000 - FEE(1000),
                                                 "reserved": 0}  # fmt: skip
    assert await invariants(gateway) == []


async def test_2032_after_the_grace_fails_and_releases(gateway_factory: Any) -> None:
    gateway, merchant = await funded(
        gateway_factory, 5_000, reconcile_after=60, payout_not_found_grace=0
    )
    payout = await lost_result_payout(gateway, merchant.auth)
    status = failed_query_body(2032, "AG_query", "AG_query_conv")
    answer = await gateway.client.post(
        f"/daraja/b2c/status/{payout.callback_token}", content=json.dumps(status).encode()
    )
    assert answer.status_code == 200
    final = (await gateway.client.get(f"/v1/payouts/{payout.id}", headers=merchant.auth)).json()
    assert final["status"] == "failed"
    assert await outcomes(gateway, payout.id) == ["applied"]
    assert await balance(gateway, merchant) == {"available": 5_000, "reserved": 0}
    assert await invariants(gateway) == []
