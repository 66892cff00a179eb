"""Set-up for refund and reversal tests: a completed wallet payment through the
simulator, extra wallet funds, and polling helpers."""

from __future__ import annotations

import asyncio
from typing import Any

from pesaswitch.ledger.fees import Tariff
from tests.conftest import Gateway, Merchant, create_merchant
from tests.payouts.helpers import FAST, balance, fund, invariants

__all__ = ["FAST", "balance", "fund", "invariants"]

COLLECTION_FEE = Tariff().collection_fee
PAYOUT_FEE = Tariff().payout_fee


async def paid(
    gateway: Gateway, merchant: Merchant, amount: int = 1000, phone: str = "0712345678"
) -> dict[str, Any]:
    """A completed STK payment to the merchant's wallet channel."""
    created = await gateway.client.post(
        "/v1/payments", headers=merchant.auth, json={"amount": amount, "phone": phone}
    )
    assert created.status_code == 201, created.text
    final = await gateway.wait_for_status(merchant, created.json()["id"])
    assert final["status"] == "completed", final
    return final


async def shop(gateway_factory: Any, **overrides: Any) -> tuple[Gateway, Merchant]:
    gateway: Gateway = await gateway_factory(**{**FAST, **overrides})
    return gateway, await create_merchant(gateway.settings)


async def wait_final(gateway: Gateway, merchant: Merchant, path: str) -> dict[str, Any]:
    body: dict[str, Any] = {}
    for _ in range(300):
        body = (await gateway.client.get(path, headers=merchant.auth)).json()
        if body.get("status") in ("completed", "failed"):
            return body
        await asyncio.sleep(0.05)
    return body


async def payment(gateway: Gateway, merchant: Merchant, payment_id: str) -> dict[str, Any]:
    response = await gateway.client.get(f"/v1/payments/{payment_id}", headers=merchant.auth)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def event_types(gateway: Gateway, merchant: Merchant) -> list[str]:
    events = (await gateway.client.get("/v1/events", headers=merchant.auth)).json()["data"]
    return sorted(e["type"] for e in events)
