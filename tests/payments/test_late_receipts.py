"""A payment settled by STK Query (which gives no receipt) takes the M-Pesa receipt from
a callback that comes afterwards, and nothing else moves.

Found by the chaos run (every seed): callbacks later than the reconciler's threshold were
stored as duplicates and the completed payment never showed its receipt.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import func, select

from pesaswitch.db import transaction
from pesaswitch.ledger.models import EntryKind, JournalEntry
from pesaswitch.payments.models import Payment
from pesaswitch.payments.tasks import reconcile_payment
from tests.conftest import Gateway, Merchant, create_merchant
from tests.ledger.helpers import assert_sound


def callback(checkout: str, amount: float, receipt: str) -> dict[str, object]:
    items = [{"Name": "Amount", "Value": amount}, {"Name": "MpesaReceiptNumber", "Value": receipt},
             {"Name": "TransactionDate", "Value": 20261203101010},
             {"Name": "PhoneNumber", "Value": 254711990002}]  # fmt: skip
    return {"Body": {"stkCallback": {
        "MerchantRequestID": "m-1", "CheckoutRequestID": checkout, "ResultCode": 0,
        "ResultDesc": "The service request is processed successfully.",
        "CallbackMetadata": {"Item": items}}}}  # fmt: skip


async def test_a_late_callback_fills_in_the_receipt(
    gateway_factory: Callable[..., Awaitable[Gateway]],
) -> None:
    # Without the receipt lookup: the embedded worker would otherwise race the late
    # callback, asking Transaction Status for the receipt first (tests/c2b covers that way).
    gateway = await gateway_factory(stk_receipt_lookup=False)
    runtime = gateway.app.state.runtime
    merchant = await create_merchant(gateway.settings, "Receipt shop")
    created = await gateway.client.post(
        "/v1/payments", headers=merchant.auth, json={"amount": 200, "phone": "0711990002"}
    )
    assert created.status_code == 201, created.text
    payment_id = created.json()["id"]
    await reconcile_payment(runtime, payment_id)  # 254711990002: only the query tells
    settled = await gateway.client.get(f"/v1/payments/{payment_id}", headers=merchant.auth)
    assert settled.json()["status"] == "completed"
    assert settled.json()["mpesa_receipt"] is None
    async with runtime.sessionmaker() as session:
        row = await session.get(Payment, payment_id)
        assert row is not None
        token, checkout = row.callback_token, row.checkout_request_id
    assert checkout is not None

    wrong = await gateway.client.post(
        f"/daraja/stk/{token}", json=callback(checkout, 201, "UWRONGAMT1")
    )
    assert wrong.status_code == 200
    late = await gateway.client.post(
        f"/daraja/stk/{token}", json=callback(checkout, 200, "ULATERCPT1")
    )
    assert late.status_code == 200
    final = (await gateway.client.get(f"/v1/payments/{payment_id}", headers=merchant.auth)).json()
    assert final["status"] == "completed"
    assert final["mpesa_receipt"] == "ULATERCPT1"  # not the one with the wrong amount
    async with transaction(runtime.sessionmaker) as session:
        credits = await session.scalar(
            select(func.count())
            .select_from(JournalEntry)
            .where(
                JournalEntry.reference == payment_id,
                JournalEntry.kind == EntryKind.COLLECTION.value,
            )
        )
    assert credits == 1
    await assert_sound(runtime.sessionmaker)


async def _query_settled(gateway: Gateway, amount: int) -> tuple[Merchant, str, str, str]:
    """A payment the reconciler settled by STK Query (no receipt): the merchant, its id,
    callback token and CheckoutRequestID."""
    runtime = gateway.app.state.runtime
    merchant = await create_merchant(gateway.settings, "Late receipt shop")
    created = await gateway.client.post(
        "/v1/payments", headers=merchant.auth, json={"amount": amount, "phone": "0711990002"}
    )
    assert created.status_code == 201, created.text
    payment_id = created.json()["id"]
    await reconcile_payment(runtime, payment_id)
    async with runtime.sessionmaker() as session:
        row = await session.get(Payment, payment_id)
        assert row is not None
        assert (row.status, row.mpesa_receipt) == ("completed", None)
        assert row.checkout_request_id is not None
        return merchant, payment_id, row.callback_token, row.checkout_request_id


async def _events(gateway: Gateway, merchant: Merchant, event_type: str) -> list[dict[str, Any]]:
    response = await gateway.client.get("/v1/events", headers=merchant.auth)
    return [e for e in response.json()["data"] if e["type"] == event_type]


async def test_a_late_callback_sends_payment_updated_once(
    gateway_factory: Callable[..., Awaitable[Gateway]],
) -> None:
    # The receipt was recorded silently: the merchant never learnt it by webhook, while
    # the Transaction Status way (c2b/receipts.py) sent payment.updated for the same change.
    gateway = await gateway_factory(stk_receipt_lookup=False)
    merchant, payment_id, token, checkout = await _query_settled(gateway, 210)
    for _ in range(2):  # Daraja's duplicate callback, too
        late = await gateway.client.post(
            f"/daraja/stk/{token}", json=callback(checkout, 210, "ULATERCPT2")
        )
        assert late.status_code == 200
    updated = await _events(gateway, merchant, "payment.updated")
    assert [(e["data"]["id"], e["data"]["mpesa_receipt"]) for e in updated] == [
        (payment_id, "ULATERCPT2")
    ]
    completed = await _events(gateway, merchant, "payment.completed")
    assert [e["data"]["mpesa_receipt"] for e in completed] == [None]


async def test_a_late_callback_racing_transaction_status_sends_one_update(
    gateway_factory: Callable[..., Awaitable[Gateway]],
) -> None:
    gateway = await gateway_factory(stk_receipt_lookup=False)
    merchant, payment_id, token, checkout = await _query_settled(gateway, 220)
    status_result = {"Result": {
        "ResultType": 0, "ResultCode": 0, "ResultDesc": "ok", "OriginatorConversationID": "o",
        "ConversationID": "c", "ResultParameters": {"ResultParameter": [
            {"Key": "ReceiptNo", "Value": "ULATERCPT3"},
            {"Key": "TransactionStatus", "Value": "Completed"}, {"Key": "Amount", "Value": 220},
        ]}}}  # fmt: skip
    answers = await asyncio.gather(
        gateway.client.post(f"/daraja/stk/{token}", json=callback(checkout, 220, "ULATERCPT3")),
        gateway.client.post(f"/daraja/receipts/{token}", json=status_result),
    )
    assert [a.status_code for a in answers] == [200, 200]
    updated = await _events(gateway, merchant, "payment.updated")
    assert [(e["data"]["id"], e["data"]["mpesa_receipt"]) for e in updated] == [
        (payment_id, "ULATERCPT3")
    ]
