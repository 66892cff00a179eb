"""Shared set-up for payout tests: a funded wallet and polling helpers."""

from __future__ import annotations

import asyncio
from typing import Any

from pesaswitch.db import transaction
from pesaswitch.kit.ids import new_id
from pesaswitch.ledger.checks import check_invariants
from pesaswitch.ledger.models import EntryKind
from pesaswitch.ledger.service import post_entry, settlement_account, wallet_account
from tests.conftest import Gateway, Merchant, create_merchant

FAST = {"webhook_interval": 0.05, "sandbox_allow_private_urls": True,
        "webhook_retry_schedule": "0.1"}  # fmt: skip


async def fund(gateway: Gateway, merchant: Merchant, amount: int) -> None:
    """Put ``amount`` KES in the wallet, as a collection through the gateway's paybill would."""
    async with transaction(gateway.app.state.runtime.sessionmaker) as session:
        wallet = await wallet_account(session, account_id=merchant.account_id, currency="KES")
        settlement = await settlement_account(
            session, shortcode=gateway.settings.daraja_shortcode, currency="KES"
        )
        await post_entry(
            session, key=f"test-funding:{new_id('x')}", kind=EntryKind.COLLECTION.value,
            description="test funding", postings=[(settlement, -amount), (wallet, amount)],
        )  # fmt: skip


async def funded(gateway_factory: Any, amount: int, **overrides: Any) -> tuple[Gateway, Merchant]:
    gateway: Gateway = await gateway_factory(**{**FAST, **overrides})
    merchant = await create_merchant(gateway.settings)
    await fund(gateway, merchant, amount)
    return gateway, merchant


async def balance(gateway: Gateway, merchant: Merchant) -> dict[str, int]:
    body = (await gateway.client.get("/v1/balance", headers=merchant.auth)).json()
    kes = {"available": 0, "reserved": 0}
    for side in ("available", "reserved"):
        for row in body[side]:
            if row["currency"] == "KES":
                kes[side] = row["amount"]
    return kes


async def wait_payout(gateway: Gateway, merchant: Merchant, payout_id: str) -> dict[str, Any]:
    for _ in range(300):
        body: dict[str, Any] = (
            await gateway.client.get(f"/v1/payouts/{payout_id}", headers=merchant.auth)
        ).json()
        if body["status"] in ("completed", "failed"):
            return body
        await asyncio.sleep(0.05)
    return body


async def invariants(gateway: Gateway) -> list[str]:
    async with gateway.app.state.runtime.sessionmaker() as session:
        return await check_invariants(session)
