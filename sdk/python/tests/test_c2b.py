"""client.c2b against a real gateway: rules, registration, a customer paying the till
unprompted (the embedded simulator's customer), the sweep and a recovery by receipt."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from pesaswitch_sdk import (
    C2BNotification,
    C2BSettings,
    NotFoundError,
    Payment,
    Pesaswitch,
    ValidationError,
)

from gateway import Gateway

LOST = "254711990002"  # paid, but M-Pesa's confirmation never arrives


def customer_pays(gateway: Gateway, shortcode: str, **kw: Any) -> str:
    body = {"shortcode": shortcode, "amount": 100, "msisdn": "254708374149", "bill_ref": "SDK-1"}
    response = httpx.post(f"{gateway.base_url}/simulator/c2b/pay", json={**body, **kw})
    assert response.status_code == 201, response.text
    trans_id: str = response.json()["trans_id"]
    return trans_id


def by_receipt(client: Pesaswitch, receipt: str) -> Payment | None:
    for payment in client.payments.list(limit=100).data:
        if payment.mpesa_receipt == receipt:
            return payment
    return None


@pytest.fixture
def channel_id(client: Pesaswitch) -> Iterator[int]:
    """The account's wallet channel (a payment names it); its C2B rules back to the
    defaults afterwards, so that every later payment to it is accepted."""
    channel = client.payments.create(amount=10, phone="0708374149").channel_id
    yield channel
    assert client.c2b.put_settings(channel).validation_enabled is False


def test_rules_registration_and_a_payment(
    gateway: Gateway, client: Pesaswitch, channel_id: int
) -> None:
    with pytest.raises(NotFoundError) as missing:
        client.c2b.get_settings(2_000_000)
    assert missing.value.code == "c2b_not_configured"
    with pytest.raises(ValidationError) as refused:
        client.c2b.put_settings(channel_id, min_amount=500, max_amount=100)
    assert refused.value.code == "c2b_invalid_range"

    rules = client.c2b.put_settings(
        channel_id, validation_enabled=True, account_pattern="SDK-[0-9]+", min_amount=50,
        max_amount=10_000, default_action="reject",
    )  # fmt: skip
    assert isinstance(rules, C2BSettings)
    assert (rules.channel_id, rules.validation_enabled, rules.account_pattern) == (
        channel_id, True, "SDK-[0-9]+"
    )  # fmt: skip
    assert (rules.min_amount, rules.max_amount, rules.default_action) == (50, 10_000, "reject")
    assert client.c2b.get_settings(channel_id) == rules
    registered = client.c2b.register(channel_id)
    assert registered.registered_at is not None
    assert registered.shortcode == rules.shortcode

    paid = customer_pays(gateway, rules.shortcode, amount=120, bill_ref="SDK-7")
    refused_by_rule = customer_pays(gateway, rules.shortcode, amount=20, bill_ref="SDK-8")
    payment = by_receipt(client, paid)
    assert payment is not None
    assert (payment.source, payment.direction, payment.amount) == ("c2b", "inbound", 120)
    assert payment.reference == "SDK-7"
    assert by_receipt(client, refused_by_rule) is None

    noted = client.c2b.notifications()
    assert all(isinstance(n, C2BNotification) for n in noted)
    assert [(n.kind, n.outcome) for n in noted if n.trans_id == paid] == [
        ("confirmation", "applied"), ("validation", "accepted")
    ]  # fmt: skip
    refusal = [(n.kind, n.outcome, n.result_code) for n in noted if n.trans_id == refused_by_rule]
    assert refusal == [("validation", "rejected", "C2B00013")]


def test_sweep_and_recover_find_missed_payments(
    gateway: Gateway, client: Pesaswitch, channel_id: int
) -> None:
    shortcode = client.c2b.register(channel_id).shortcode
    swept_lost = customer_pays(gateway, shortcode, msisdn=LOST, amount=70, bill_ref="SDK-9")
    assert by_receipt(client, swept_lost) is None
    swept = client.c2b.sweep(channel_id)
    assert swept.channel_id == channel_id
    assert swept.recovered == [swept_lost]
    assert swept.seen >= 1
    assert client.c2b.sweep(channel_id).recovered == []
    assert by_receipt(client, swept_lost) is not None

    asked_lost = customer_pays(gateway, shortcode, msisdn=LOST, amount=80, bill_ref="SDK-10")
    asked = client.c2b.recover(channel_id, asked_lost.lower())
    assert (asked.receipt, asked.status, asked.payment_id) == (asked_lost, "asked", None)
    deadline = time.monotonic() + 20
    while (found := by_receipt(client, asked_lost)) is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert found is not None
    known = client.c2b.recover(channel_id, asked_lost)
    assert (known.status, known.payment_id) == ("known", found.id)
    with pytest.raises(ValidationError) as bad:
        client.c2b.recover(channel_id, "NOT-A-RECEIPT")
    assert bad.value.code == "invalid_receipt"


def test_the_async_client(gateway: Gateway, channel_id: int) -> None:
    async def run() -> None:
        async with gateway.async_client() as sdk:
            rules = await sdk.c2b.put_settings(channel_id, min_amount=5)
            assert (await sdk.c2b.get_settings(channel_id)) == rules
            assert (await sdk.c2b.register(channel_id)).registered_at is not None
            lost = customer_pays(gateway, rules.shortcode, msisdn=LOST, amount=90)
            assert (await sdk.c2b.sweep(channel_id)).recovered == [lost]
            recovery = await sdk.c2b.recover(channel_id, lost)
            assert recovery.status == "known"
            noted = await sdk.c2b.notifications()
            assert [n.outcome for n in noted if n.trans_id == lost] == ["accepted"]

    asyncio.run(run())
