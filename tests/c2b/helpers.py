"""Shared by the C2B tests: a merchant with a till or paybill channel of its own."""

from __future__ import annotations

import itertools
import os
from typing import Any

from sqlalchemy import select

from pesaswitch.accounts import service as accounts
from pesaswitch.accounts.models import ChannelKind
from pesaswitch.c2b import flows
from pesaswitch.c2b.schemas import C2BSettingsOut
from pesaswitch.config import Settings
from pesaswitch.db import create_engine, create_sessionmaker, transaction
from pesaswitch.payments.models import Payment
from tests.conftest import Gateway, Merchant

# One database serves the whole run and a shortcode holds one registration: every test
# takes shortcodes of its own.
_codes = itertools.count(int(os.getpid() % 97) * 10_000 + 5_000_000)


def fresh_shortcode() -> str:
    return str(next(_codes))


async def add_channel(settings: Settings, merchant: Merchant, kind: ChannelKind) -> int:
    engine = create_engine(settings)
    try:
        async with transaction(create_sessionmaker(engine)) as session:
            channel = await accounts.add_channel(
                session, account_id=merchant.account_id, kind=kind,
                shortcode=None if kind is ChannelKind.WALLET
                else "247247" if kind is ChannelKind.BANK else fresh_shortcode(),
                account_number="ACC1" if kind is ChannelKind.BANK else None,
            )  # fmt: skip
            return channel.id
    finally:
        await engine.dispose()


async def set_up_channel(
    gateway: Gateway, merchant: Merchant, kind: ChannelKind = ChannelKind.PAYBILL, **rules: Any
) -> dict[str, Any]:
    """A channel with C2B settings, registered with the simulator; its settings."""
    channel_id = await add_channel(gateway.settings, merchant, kind)
    client = gateway.client
    response = await client.put(f"/v1/channels/{channel_id}/c2b", json=rules, headers=merchant.auth)
    assert response.status_code == 200, response.text
    response = await client.post(f"/v1/channels/{channel_id}/c2b/register", headers=merchant.auth)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert body["registered_at"] is not None
    return body


async def pay(gateway: Gateway, shortcode: str, **kw: Any) -> dict[str, Any]:
    values: dict[str, Any] = {"shortcode": shortcode, "amount": 100, "msisdn": "254708374149",
                              "bill_ref": "INV-1"}  # fmt: skip
    values.update(kw)
    response = await gateway.client.post("/simulator/c2b/pay", json=values)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def c2b_payments(gateway: Gateway, merchant: Merchant) -> list[dict[str, Any]]:
    response = await gateway.client.get("/v1/payments", headers=merchant.auth)
    assert response.status_code == 200, response.text
    return [p for p in response.json()["data"] if p["source"] == "c2b"]


async def notifications(gateway: Gateway, merchant: Merchant) -> list[dict[str, Any]]:
    response = await gateway.client.get("/v1/c2b/notifications", headers=merchant.auth)
    assert response.status_code == 200, response.text
    rows: list[dict[str, Any]] = response.json()
    return rows


async def give_gateway_paybill(gateway: Gateway, merchant: Merchant) -> dict[str, Any]:
    """As the operator (dashboard staff, the CLI) does: the gateway's own paybill's C2B
    given to the merchant's wallet channel and registered with the simulator."""
    row = await flows.register_channel(
        gateway.app.state.runtime, account_id=merchant.account_id,
        channel_id=merchant.channel_id, operator=True,
    )  # fmt: skip
    assert row.shortcode == gateway.settings.daraja_shortcode
    return C2BSettingsOut.render(row).model_dump()


async def payment_token(gateway: Gateway, payment_id: str) -> str:
    """The payment's callback token: the path Daraja's answers about it are posted to."""
    engine = create_engine(gateway.settings)
    try:
        async with create_sessionmaker(engine)() as session:
            token = await session.scalar(
                select(Payment.callback_token).where(Payment.id == payment_id)
            )
    finally:
        await engine.dispose()
    assert token is not None
    return token


def status_result(receipt: str, amount: int, **parameters: str) -> dict[str, Any]:
    """A successful Transaction Status Result carrying ``receipt``, with any further
    ResultParameters by key (``CreditPartyName=…``)."""
    values = {"ReceiptNo": receipt, "TransactionStatus": "Completed", "Amount": amount,
              **parameters}  # fmt: skip
    return {"Result": {
        "ResultType": 0, "ResultCode": 0, "ResultDesc": "ok",
        "OriginatorConversationID": "x", "ConversationID": "y",
        "ResultParameters": {"ResultParameter": [
            {"Key": key, "Value": value} for key, value in values.items()
        ]},
    }}  # fmt: skip
