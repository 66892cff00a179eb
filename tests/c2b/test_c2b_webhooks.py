"""A C2B payment goes out like any payment: a native webhook (Standard Webhooks), and the
PayNexus shape to endpoints registered through the PayNexus dialect; once each, however
many confirmations arrive."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from typing import Any

from pesaswitch.webhooks.signing import verify
from tests.c2b.helpers import pay, set_up_channel
from tests.conftest import Gateway, create_merchant
from tests.support.receiver import Receiver, running_receiver


async def _wait(receiver: Receiver, count: int) -> None:
    async with asyncio.timeout(10):
        while len(receiver.received) < count:
            await asyncio.sleep(0.05)


async def test_native_and_paynexus_webhooks(gateway_factory: Any) -> None:
    gateway: Gateway = await gateway_factory(
        sandbox_allow_private_urls=True, webhook_interval=0.05, webhook_retry_schedule="0.1"
    )
    merchant = await create_merchant(gateway.settings)
    with running_receiver() as native, running_receiver() as paynexus:
        created = await gateway.client.post(
            "/v1/webhook-endpoints", json={"url": native.url}, headers=merchant.auth
        )
        assert created.status_code == 201, created.text
        native_secret = created.json()["secret"]
        registered = await gateway.client.post(
            "/api/webhooks/register", headers={"X-API-Key": merchant.secret_key},
            json={"url": paynexus.url, "events": ["payment.completed"]},
        )  # fmt: skip
        assert registered.status_code == 201, registered.text
        paynexus_secret = registered.json()["data"]["secret"]

        channel = await set_up_channel(gateway, merchant)
        # Confirmed twice at once: still one event, one delivery per endpoint.
        played = await pay(gateway, channel["shortcode"], amount=320, msisdn="254711990003")
        await _wait(native, 1)
        await _wait(paynexus, 1)
        await asyncio.sleep(0.3)
        assert len(native.received) == 1
        assert len(paynexus.received) == 1

    event = verify(native.received[0].body, native.received[0].headers, native_secret)
    assert event["type"] == "payment.completed"
    assert event["data"]["source"] == "c2b"
    assert event["data"]["mpesa_receipt"] == played["trans_id"]
    request = paynexus.received[0]
    expected = hmac.new(paynexus_secret.encode(), request.body, hashlib.sha256).hexdigest()
    assert request.headers["x-paynexus-signature"] == expected
    body = json.loads(request.body)
    assert body["event"] == "payment.completed"
    assert body["data"]["mpesa_receipt_number"] == played["trans_id"]
    assert body["data"]["amount"] == 320
