"""C2B end to end against the simulator: a customer pays a till or paybill unprompted,
Daraja validates then confirms, and the gateway records one payment per TransID."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import func, select

from pesaswitch.accounts.models import ChannelKind
from pesaswitch.c2b.models import C2BTransaction
from pesaswitch.db import create_engine, create_sessionmaker
from pesaswitch.ledger.models import JournalEntry
from tests.c2b.helpers import (
    c2b_payments,
    fresh_shortcode,
    give_gateway_paybill,
    notifications,
    pay,
    set_up_channel,
)
from tests.conftest import Gateway, Merchant, create_merchant


async def _count_transactions(gateway: Gateway, trans_id: str) -> int:
    engine = create_engine(gateway.settings)
    try:
        async with create_sessionmaker(engine)() as session:
            count = await session.scalar(
                select(func.count()).where(C2BTransaction.trans_id == trans_id)
            )
            return int(count or 0)
    finally:
        await engine.dispose()


class TestConfirmation:
    async def test_paybill_payment_is_recorded_once(
        self, gateway: Gateway, merchant: Merchant
    ) -> None:
        channel = await set_up_channel(gateway, merchant)
        played = await pay(gateway, channel["shortcode"], amount=250, bill_ref="INV-42")
        assert played["status"] == "completed"
        assert played["confirmations_sent"] == [200]

        [payment] = await c2b_payments(gateway, merchant)
        assert payment["direction"] == "inbound"
        assert payment["status"] == "completed"
        assert payment["amount"] == 250
        assert payment["mpesa_receipt"] == played["trans_id"]
        assert payment["reference"] == "INV-42"
        assert payment["channel_id"] == channel["channel_id"]
        # Daraja v2 masks the MSISDN; the payer's name is masked too.
        assert payment["phone"] == "2547 ***** 149"
        assert payment["customer_name"] == "Sandbox C."

        events = (await gateway.client.get("/v1/events", headers=merchant.auth)).json()["data"]
        completed = [e for e in events if e["type"] == "payment.completed"]
        assert [e["data"]["id"] for e in completed] == [payment["id"]]
        assert completed[0]["data"]["source"] == "c2b"
        notes = {(n["kind"], n["outcome"]) for n in await notifications(gateway, merchant)}
        assert notes == {("validation", "accepted"), ("confirmation", "applied")}

    async def test_duplicated_confirmation_changes_nothing(
        self, gateway: Gateway, merchant: Merchant
    ) -> None:
        channel = await set_up_channel(gateway, merchant, ChannelKind.TILL)
        # 254711990003: the confirmation arrives twice at the same moment.
        played = await pay(gateway, channel["shortcode"], msisdn="254711990003", kind="till")
        assert played["confirmations_sent"] == [200, 200]
        [payment] = await c2b_payments(gateway, merchant)
        assert payment["description"] == "Buy Goods"
        outcomes = sorted(
            n["outcome"] for n in await notifications(gateway, merchant)
            if n["kind"] == "confirmation"
        )  # fmt: skip
        assert outcomes == ["applied", "duplicate"]
        assert await _count_transactions(gateway, played["trans_id"]) == 1

    async def test_replayed_confirmation_changes_nothing(
        self, gateway: Gateway, merchant: Merchant
    ) -> None:
        channel = await set_up_channel(gateway, merchant)
        played = await pay(gateway, channel["shortcode"])
        registration = gateway.app.state.runtime.simulator.c2b.registrations[channel["shortcode"]]
        tx = gateway.app.state.runtime.simulator.c2b.find(played["trans_id"])
        body = gateway.app.state.runtime.simulator.c2b._notice(tx, registration, confirmation=True)
        # A replay, even with another amount, is the same TransID: nothing changes.
        body["TransAmount"] = "999.00"
        response = await gateway.client.post(registration.confirmation_url, json=body)
        assert response.status_code == 200
        assert response.json() == {"ResultCode": 0, "ResultDesc": "Success"}
        [payment] = await c2b_payments(gateway, merchant)
        assert payment["amount"] == 100

    async def test_wallet_channel_credits_the_wallet_once(self, gateway_factory: Any) -> None:
        gateway: Gateway = await gateway_factory(daraja_shortcode=fresh_shortcode())
        merchant = await create_merchant(gateway.settings)
        shortcode = (await give_gateway_paybill(gateway, merchant))["shortcode"]
        played = await pay(gateway, shortcode, amount=1000, msisdn="254711990003")
        assert played["confirmations_sent"] == [200, 200]
        balance = (await gateway.client.get("/v1/balance", headers=merchant.auth)).json()
        [kes] = [a for a in balance["available"] if a["currency"] == "KES"]
        assert 0 < kes["amount"] <= 1000  # less the collection fee, credited once
        engine = create_engine(gateway.settings)
        try:
            async with create_sessionmaker(engine)() as session:
                entries = await session.scalar(
                    select(func.count()).where(
                        JournalEntry.key == f"collection:{played['trans_id']}"
                    )
                )
        finally:
            await engine.dispose()
        assert entries == 1


class TestValidation:
    async def test_rules_accept_and_reject(self, gateway: Gateway, merchant: Merchant) -> None:
        channel = await set_up_channel(
            gateway, merchant, validation_enabled=True, account_pattern=r"INV-\d+",
            min_amount=10, max_amount=5000,
        )  # fmt: skip
        shortcode = channel["shortcode"]
        accepted = await pay(gateway, shortcode, bill_ref="INV-7", amount=10)
        wrong_account = await pay(gateway, shortcode, bill_ref="inv-7")
        too_little = await pay(gateway, shortcode, bill_ref="INV-8", amount=9)
        too_much = await pay(gateway, shortcode, bill_ref="INV-9", amount=5001)
        assert (accepted["status"], accepted["validation_result_code"]) == ("completed", "0")
        assert (wrong_account["status"], wrong_account["validation_result_code"]) == (
            "rejected", "C2B00012",
        )  # fmt: skip
        assert too_little["validation_result_code"] == "C2B00013"
        assert too_much["validation_result_code"] == "C2B00013"
        # A rejected payment never happened: no confirmation, no payment.
        for refused in (wrong_account, too_little, too_much):
            assert refused["confirmations_sent"] == []
        [payment] = await c2b_payments(gateway, merchant)
        assert payment["mpesa_receipt"] == accepted["trans_id"]
        validations = [n for n in await notifications(gateway, merchant)
                       if n["kind"] == "validation"]  # fmt: skip
        assert sorted(n["result_code"] for n in validations) == [
            "0", "C2B00012", "C2B00013", "C2B00013",
        ]  # fmt: skip

    async def test_disabled_validation_accepts_everything(
        self, gateway: Gateway, merchant: Merchant
    ) -> None:
        channel = await set_up_channel(gateway, merchant, account_pattern=r"INV-\d+")
        played = await pay(gateway, channel["shortcode"], bill_ref="anything")
        assert (played["status"], played["validation_result_code"]) == ("completed", "0")


class TestLostConfirmation:
    async def test_sweep_recovers_it_exactly_once(
        self, gateway: Gateway, merchant: Merchant
    ) -> None:
        channel = await set_up_channel(gateway, merchant)
        seen_before = await pay(gateway, channel["shortcode"], amount=40)
        # 254711990002: paid, but the confirmation never arrives.
        lost = await pay(gateway, channel["shortcode"], msisdn="254711990002", amount=70,
                         bill_ref="LOST-1")  # fmt: skip
        assert lost["status"] == "completed"
        assert lost["confirmations_sent"] == []
        assert [p["amount"] for p in await c2b_payments(gateway, merchant)] == [40]

        url = f"/v1/channels/{channel['channel_id']}/c2b/sweep"
        swept = await gateway.client.post(url, headers=merchant.auth)
        assert swept.status_code == 200, swept.text
        assert swept.json()["seen"] == 2, swept.text
        assert swept.json()["recovered"] == [lost["trans_id"]]
        assert swept.json()["seen"] == 2
        again = await gateway.client.post(url, headers=merchant.auth)
        assert again.json()["recovered"] == []

        payments = {p["mpesa_receipt"]: p for p in await c2b_payments(gateway, merchant)}
        assert set(payments) == {seen_before["trans_id"], lost["trans_id"]}
        recovered = payments[lost["trans_id"]]
        assert (recovered["amount"], recovered["reference"]) == (70, "LOST-1")
        assert recovered["phone"] == "2547 ***** 002"

    async def test_recover_by_receipt(self, gateway: Gateway, merchant: Merchant) -> None:
        channel = await set_up_channel(gateway, merchant)
        lost = await pay(gateway, channel["shortcode"], msisdn="254711990002", amount=85)
        url = f"/v1/channels/{channel['channel_id']}/c2b/recover"
        asked = await gateway.client.post(
            url, json={"receipt": lost["trans_id"].lower()}, headers=merchant.auth
        )
        assert asked.status_code == 202, asked.text
        assert asked.json()["status"] == "asked"
        async with asyncio.timeout(10):
            while not await c2b_payments(gateway, merchant):
                await asyncio.sleep(0.05)
        [payment] = await c2b_payments(gateway, merchant)
        assert (payment["mpesa_receipt"], payment["amount"]) == (lost["trans_id"], 85)
        assert payment["phone"] == "2547 ***** 002"
        again = await gateway.client.post(
            url, json={"receipt": lost["trans_id"]}, headers=merchant.auth
        )
        assert again.json() == {"object": "c2b_recovery", "receipt": lost["trans_id"],
                                "status": "known", "payment_id": payment["id"]}  # fmt: skip

    async def test_recover_an_unknown_or_bad_receipt(
        self, gateway: Gateway, merchant: Merchant
    ) -> None:
        channel = await set_up_channel(gateway, merchant)
        url = f"/v1/channels/{channel['channel_id']}/c2b/recover"
        for bad in ("SHORT", "ABCDEFGHI!", ""):
            response = await gateway.client.post(url, json={"receipt": bad}, headers=merchant.auth)
            assert response.status_code == 422
        response = await gateway.client.post(
            url, json={"receipt": "UNOSUCH123"}, headers=merchant.auth
        )
        assert response.status_code == 202
        async with asyncio.timeout(10):
            while not [n for n in await notifications(gateway, merchant) if n["kind"] == "status"]:
                await asyncio.sleep(0.05)
        [note] = [n for n in await notifications(gateway, merchant) if n["kind"] == "status"]
        assert (note["outcome"], note["result_code"]) == ("not_found", "2032")
        assert await c2b_payments(gateway, merchant) == []


async def test_a_c2b_payment_is_not_refunded_to_a_masked_number(gateway_factory: Any) -> None:
    gateway: Gateway = await gateway_factory(daraja_shortcode=fresh_shortcode())
    merchant = await create_merchant(gateway.settings)
    await give_gateway_paybill(gateway, merchant)
    await pay(gateway, gateway.settings.daraja_shortcode, amount=500)
    [payment] = await c2b_payments(gateway, merchant)
    response = await gateway.client.post(
        f"/v1/payments/{payment['id']}/refund", json={}, headers=merchant.auth
    )
    assert response.status_code == 409, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == "payment_not_refundable"
