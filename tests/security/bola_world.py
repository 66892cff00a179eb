"""Two accounts for the BOLA battery: A (the attacker) and B (the owner of every object).

A is signed in to the dashboard and holds API keys; B owns one object of every kind, and
A's requests name B's objects. ``snapshot`` reads what B sees, to prove a refused action
changed nothing.
"""

from __future__ import annotations

import asyncio
import base64
from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy import select

from pesaswitch.dashboard.hosted import _status_mac
from pesaswitch.db import create_engine, create_sessionmaker
from pesaswitch.links.models import PaymentLink
from pesaswitch.webhooks.models import Event, WebhookEndpoint
from tests.conftest import Gateway, Merchant
from tests.dashboard.conftest import Shop
from tests.dashboard.helpers import post_form
from tests.payouts.helpers import fund, wait_payout


@dataclass
class Theirs:
    """B's objects."""

    payment_id: str
    payment_reference: str  # the gateway's 10-character reference code
    checkout_request_id: str
    pending_payment_id: str
    payout_id: str
    payout_reference: str
    endpoint_id: str
    event_id: str
    link_id: str
    link_slug: str
    key_id: str
    channel_id: int
    refund_id: str  # a completed refund of 10 KES of refunded_payment_id (40 KES)
    refunded_payment_id: str
    reversal_id: str  # the completed reversal of reversed_payment_id
    reversed_payment_id: str


@dataclass
class World:
    gateway: Gateway
    a: Shop
    b: Shop
    theirs: Theirs
    a_link_slug: str
    a_event_id: str

    @property
    def http(self) -> httpx.AsyncClient:
        return self.gateway.client

    def status_mac(self, payment_id: str) -> str:
        return _status_mac(self.gateway.app.state.runtime, payment_id)

    async def snapshot(self, *paths: str) -> list[Any]:
        """What B sees at ``paths`` (native API, B's secret key)."""
        seen = []
        for path in paths:
            response = await self.http.get(path, headers=self.b.merchant.auth)
            seen.append((response.status_code, response.json()))
        return seen


def basic(merchant: Merchant) -> dict[str, str]:
    token = base64.b64encode(f"{merchant.secret_key_id}:{merchant.secret_key}".encode())
    return {"Authorization": f"Basic {token.decode()}"}


def x_api_key(merchant: Merchant) -> dict[str, str]:
    return {"X-API-Key": merchant.secret_key}


async def _a_link_and_event(gateway: Gateway, a: Shop) -> tuple[str, str]:
    await post_form(a.client, "/dashboard/links", "/dashboard/links", {"description": "A's"})
    paid = await gateway.client.post(
        "/v1/payments", json={"amount": 12, "phone": "0708374149"}, headers=a.merchant.auth
    )
    assert paid.status_code == 201, paid.text
    await gateway.wait_for_status(a.merchant, paid.json()["id"])
    slug, event_id = await _link_and_event(gateway, a.merchant.account_id, paid.json()["id"])
    return slug, event_id


async def _link_and_event(gateway: Gateway, account_id: str, payment_id: str) -> tuple[str, str]:
    engine = create_engine(gateway.settings)
    try:
        async with create_sessionmaker(engine)() as session:
            slug = await session.scalar(
                select(PaymentLink.slug).where(PaymentLink.account_id == account_id)
            )
            event_id = await session.scalar(
                select(Event.id).where(Event.object_id == payment_id).limit(1)
            )
    finally:
        await engine.dispose()
    assert slug is not None
    assert event_id is not None
    return slug, event_id


async def _completed_payment(gateway: Gateway, merchant: Merchant, amount: int) -> str:
    paid = await gateway.client.post(
        "/v1/payments", json={"amount": amount, "phone": "0708374149"}, headers=merchant.auth
    )
    assert paid.status_code == 201, paid.text
    final = await gateway.wait_for_status(merchant, paid.json()["id"])
    assert final["status"] == "completed", final
    return str(final["id"])


async def _settled(gateway: Gateway, merchant: Merchant, path: str) -> None:
    """Wait for a refund or reversal to finish, so that B's views of it hold still."""
    body: dict[str, Any] = {}
    for _ in range(300):
        body = (await gateway.client.get(path, headers=merchant.auth)).json()
        if body["status"] in ("completed", "failed"):
            break
        await asyncio.sleep(0.05)
    assert body["status"] == "completed", body


async def _refund_and_reversal(gateway: Gateway, b: Merchant) -> tuple[str, str, str, str]:
    """B's refund (10 of 40 KES) and B's reversal (of 20 KES), both completed."""
    refunded = await _completed_payment(gateway, b, 40)
    refund = await gateway.client.post(
        f"/v1/payments/{refunded}/refund", json={"amount": 10}, headers=b.auth
    )
    assert refund.status_code == 201, refund.text
    await _settled(gateway, b, f"/v1/refunds/{refund.json()['id']}")
    reversed_ = await _completed_payment(gateway, b, 20)
    reversal = await gateway.client.post(
        f"/v1/payments/{reversed_}/reversal", json={"reason": "B's"}, headers=b.auth
    )
    assert reversal.status_code == 201, reversal.text
    await _settled(gateway, b, f"/v1/reversals/{reversal.json()['id']}")
    return refund.json()["id"], refunded, reversal.json()["id"], reversed_


async def build_world(gateway: Gateway, a: Shop, b: Shop) -> World:
    created = await post_form(
        b.client, "/dashboard/webhooks", "/dashboard/webhooks", {"url": "http://127.0.0.1:9/h"}
    )
    assert created.status_code == 201, created.text
    await post_form(b.client, "/dashboard/links", "/dashboard/links", {"description": "B's"})
    auth = b.merchant.auth
    paid = await gateway.client.post(
        "/v1/payments", json={"amount": 15, "phone": "0708374149"}, headers=auth
    )
    assert paid.status_code == 201, paid.text
    payment = await gateway.wait_for_status(b.merchant, paid.json()["id"])
    # 254711990002: no callback ever arrives, so the payment stays pending for a while.
    pending = await gateway.client.post(
        "/v1/payments", json={"amount": 16, "phone": "254711990002"}, headers=auth
    )
    assert pending.status_code == 201, pending.text
    await fund(gateway, b.merchant, 5_000)
    payout = await gateway.client.post(
        "/v1/payouts", headers=auth,
        json={"amount": 100, "phone": "0708374149", "reference": "B-PAYOUT-1"},
    )  # fmt: skip
    assert payout.status_code == 201, payout.text
    await wait_payout(gateway, b.merchant, payout.json()["id"])
    refund_id, refunded, reversal_id, reversed_ = await _refund_and_reversal(gateway, b.merchant)
    slug, event_id = await _link_and_event(gateway, b.merchant.account_id, payment["id"])
    engine = create_engine(gateway.settings)
    try:
        async with create_sessionmaker(engine)() as session:
            account = b.merchant.account_id
            endpoint_id = await session.scalar(
                select(WebhookEndpoint.id).where(WebhookEndpoint.account_id == account)
            )
            link_id = await session.scalar(
                select(PaymentLink.id).where(PaymentLink.account_id == account)
            )
    finally:
        await engine.dispose()
    assert endpoint_id is not None
    assert link_id is not None
    theirs = Theirs(
        payment_id=payment["id"], payment_reference=payment["gateway_reference"],
        checkout_request_id=payment["checkout_request_id"],
        pending_payment_id=pending.json()["id"], payout_id=payout.json()["id"],
        payout_reference="B-PAYOUT-1", endpoint_id=endpoint_id, event_id=event_id,
        link_id=link_id, link_slug=slug, key_id=b.merchant.secret_key_id,
        channel_id=b.merchant.channel_id, refund_id=refund_id, refunded_payment_id=refunded,
        reversal_id=reversal_id, reversed_payment_id=reversed_,
    )  # fmt: skip
    a_slug, a_event = await _a_link_and_event(gateway, a)
    return World(gateway, a, b, theirs, a_slug, a_event)
