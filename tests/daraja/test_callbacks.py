"""The STK callback endpoint against the gateway: the one-statement settlement applies a
callback only when the payment is pending and Daraja's CheckoutRequestID and amount
agree; everything else is stored with its outcome and changes nothing."""

from __future__ import annotations

import json
import secrets
from typing import Any

from sqlalchemy import func, select

from pesaswitch.ledger.models import JournalEntry
from pesaswitch.payments.models import DarajaCallback, Payment
from tests.conftest import Gateway, create_merchant
from tests.ledger.test_collections import NO_CALLBACK, balance, pay

RECEIPT = "T" + secrets.token_hex(4).upper()  # receipts are unique per database


def _callback(checkout: str | None, *, code: int = 0, amount: float = 300.0) -> dict[str, Any]:
    callback: dict[str, Any] = {
        "MerchantRequestID": "29115-34620561-1",
        "CheckoutRequestID": checkout,
        "ResultCode": code,
        "ResultDesc": "The service request is processed successfully." if code == 0 else "Nope",
    }
    if code == 0:
        callback["CallbackMetadata"] = {
            "Item": [
                {"Name": "Amount", "Value": amount},
                {"Name": "MpesaReceiptNumber", "Value": RECEIPT},
                {"Name": "TransactionDate", "Value": 20261122101010},
                {"Name": "PhoneNumber", "Value": 254711990002},
            ]
        }
    return {"Body": {"stkCallback": callback}}


async def _stored(gateway: Gateway, payment_id: str) -> list[str]:
    async with gateway.app.state.runtime.sessionmaker() as session:
        rows = await session.scalars(
            select(DarajaCallback.outcome)
            .where(DarajaCallback.payment_id == payment_id)
            .order_by(DarajaCallback.id)
        )
        return list(rows)


async def test_only_an_agreeing_callback_settles_and_each_is_stored(
    gateway_factory: Any,
) -> None:
    # No reconciler queries within the test: only the callbacks below can settle it.
    gateway: Gateway = await gateway_factory(reconcile_after=3600)
    sessions = gateway.app.state.runtime.sessionmaker
    merchant = await create_merchant(gateway.settings, "Callback shop")
    created = await pay(gateway, merchant, amount=300, phone=NO_CALLBACK)
    async with sessions() as session:
        payment = await session.get(Payment, created["id"])
        assert payment is not None
        token, checkout = payment.callback_token, payment.checkout_request_id
    assert checkout is not None

    async def send(body: Any) -> int:
        raw = body if isinstance(body, str) else json.dumps(body)
        answer = await gateway.client.post(f"/daraja/stk/{token}", content=raw)
        return answer.status_code

    assert await send(_callback("ws_CO_someone_else")) == 200
    assert await send(_callback(checkout, amount=1.0)) == 200
    assert await send("{not json") == 400
    unknown = await gateway.client.post("/daraja/stk/no-such-token", json=_callback(checkout))
    assert unknown.status_code == 404
    status = await gateway.client.get(f"/v1/payments/{created['id']}", headers=merchant.auth)
    assert status.json()["status"] == "pending"
    assert await _stored(gateway, created["id"]) == ["mismatch", "mismatch", "invalid"]

    assert await send(_callback(checkout)) == 200
    assert await send(_callback(checkout, code=1032)) == 200  # cancelled, too late
    done = (await gateway.client.get(f"/v1/payments/{created['id']}", headers=merchant.auth)).json()
    assert done["status"] == "completed"
    assert done["mpesa_receipt"] == RECEIPT
    assert done["checkout_request_id"] == checkout
    assert done["merchant_request_id"] == created["merchant_request_id"]  # kept, not replaced
    stored = await _stored(gateway, created["id"])
    assert stored == ["mismatch", "mismatch", "invalid", "applied", "conflict"]
    # 300 less the 1.5% fee (rounded up), credited once.
    assert (await balance(gateway, merchant))["available"] == [{"currency": "KES", "amount": 295}]
    async with sessions() as session:
        entries = await session.scalar(
            select(func.count()).select_from(JournalEntry).where(
                JournalEntry.reference == created["id"]
            )
        )  # fmt: skip
    assert entries == 1
