"""One M-Pesa receipt credits once, whichever record of it arrives first, and nothing
answers 500: an STK payment's C2B echo (the confirmation Daraja also sends when the
shortcode has registered URLs) arriving before the STK callback or the STK Query.

The STK payments here use 254711990002 (the simulator sends no callback): each test
posts the callback itself, or runs the STK Query itself, in the order it is about.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, or_, select, text

from pesaswitch.accounts.models import ChannelKind
from pesaswitch.c2b import confirmations
from pesaswitch.c2b import service as c2b_service
from pesaswitch.daraja.c2b import parse_c2b_notice
from pesaswitch.daraja.wire import parse_stk_callback
from pesaswitch.db import create_engine, transaction
from pesaswitch.ledger.models import EntryKind, JournalEntry
from pesaswitch.payments import callbacks
from pesaswitch.payments.models import Payment
from pesaswitch.payments.tasks import reconcile_payment
from tests.c2b.helpers import fresh_shortcode, give_gateway_paybill, set_up_channel
from tests.conftest import Gateway, Merchant, create_merchant, problem
from tests.ledger.helpers import assert_sound

LOST_CALLBACK = "254711990002"


@dataclass
class Push:
    id: str
    token: str
    checkout: str
    receipt: str  # what the simulator's customer paid with
    gateway_reference: str


async def _gateway(gateway_factory: Any) -> Gateway:
    # No reconciler or receipt lookup of its own: each test decides what happens when.
    gateway: Gateway = await gateway_factory(
        daraja_shortcode=fresh_shortcode(), reconcile_after=3600, stk_receipt_lookup=False
    )
    return gateway


async def _push(gateway: Gateway, merchant: Merchant, amount: int, **extra: Any) -> Push:
    created = await gateway.client.post(
        "/v1/payments", headers=merchant.auth,
        json={"amount": amount, "phone": LOST_CALLBACK, **extra},
    )  # fmt: skip
    assert created.status_code == 201, created.text
    body = created.json()
    async with gateway.app.state.runtime.sessionmaker() as session:
        row = await session.get(Payment, body["id"])
        assert row is not None
        assert row.checkout_request_id is not None
        token, checkout = row.callback_token, row.checkout_request_id
    receipt = gateway.app.state.runtime.simulator.pushes[checkout].receipt
    assert receipt is not None
    return Push(body["id"], token, checkout, receipt, body["gateway_reference"])


def _echo(shortcode: str, push: Push, amount: int, bill_ref: str) -> dict[str, Any]:
    """Daraja's C2B confirmation of the push's money (v2: the payer's number masked)."""
    return {
        "TransactionType": "Pay Bill", "TransID": push.receipt, "TransTime": "20261203101010",
        "TransAmount": f"{amount}.00", "BusinessShortCode": shortcode,
        "BillRefNumber": bill_ref, "InvoiceNumber": "", "OrgAccountBalance": "",
        "ThirdPartyTransID": "", "MSISDN": "2547 ***** 002", "FirstName": "JANE",
        "MiddleName": "", "LastName": "",
    }  # fmt: skip


def _callback(push: Push, amount: int) -> dict[str, Any]:
    items = [{"Name": "Amount", "Value": amount},
             {"Name": "MpesaReceiptNumber", "Value": push.receipt},
             {"Name": "TransactionDate", "Value": 20261203101010},
             {"Name": "PhoneNumber", "Value": int(LOST_CALLBACK)}]  # fmt: skip
    return {"Body": {"stkCallback": {
        "MerchantRequestID": "m-1", "CheckoutRequestID": push.checkout, "ResultCode": 0,
        "ResultDesc": "The service request is processed successfully.",
        "CallbackMetadata": {"Item": items}}}}  # fmt: skip


def _confirmation_url(gateway: Gateway, shortcode: str) -> str:
    url: str = gateway.app.state.runtime.simulator.c2b.registrations[shortcode].confirmation_url
    return url


async def _payments(gateway: Gateway, merchant: Merchant) -> list[dict[str, Any]]:
    response = await gateway.client.get("/v1/payments", headers=merchant.auth)
    data: list[dict[str, Any]] = response.json()["data"]
    return data


async def _payment(gateway: Gateway, merchant: Merchant, payment_id: str) -> dict[str, Any]:
    response = await gateway.client.get(f"/v1/payments/{payment_id}", headers=merchant.auth)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def _balance(gateway: Gateway, merchant: Merchant) -> int:
    body = (await gateway.client.get("/v1/balance", headers=merchant.auth)).json()
    return int(next((a["amount"] for a in body["available"] if a["currency"] == "KES"), 0))


async def _credits(gateway: Gateway, push: Push) -> list[str]:
    """The keys of every collection entry for this money: by its receipt, or by the STK
    payment's id (a credit made without the receipt)."""
    async with gateway.app.state.runtime.sessionmaker() as session:
        keys = await session.scalars(
            select(JournalEntry.key).where(
                JournalEntry.kind == EntryKind.COLLECTION.value,
                or_(JournalEntry.key == f"collection:{push.receipt}",
                    JournalEntry.key == f"collection:{push.id}"),
            )
        )  # fmt: skip
        return list(keys)


async def _holders(gateway: Gateway, receipt: str) -> int:
    async with gateway.app.state.runtime.sessionmaker() as session:
        count = await session.scalar(
            select(func.count()).select_from(Payment).where(Payment.mpesa_receipt == receipt)
        )
        return int(count or 0)


class TestEchoMatchedOnWhatThePushSent:
    """A merchant's reference is cleaned and cut to 12 characters for the push; its echo
    carries that, not the reference as stored. It used to match nothing: a C2B payment
    took the receipt, and the STK callback answered 500 on the unique receipt."""

    REFERENCE = "INV-2024/0001-XYZ"
    SENT = "INV20240001X"

    async def test_confirmation_first_then_callback(self, gateway_factory: Any) -> None:
        gateway = await _gateway(gateway_factory)
        merchant = await create_merchant(gateway.settings)
        channel = await set_up_channel(gateway, merchant, ChannelKind.PAYBILL)
        push = await _push(gateway, merchant, 75, channel_id=channel["channel_id"],
                           reference=self.REFERENCE)  # fmt: skip
        url = _confirmation_url(gateway, channel["shortcode"])
        echo = await gateway.client.post(url, json=_echo(channel["shortcode"], push, 75, self.SENT))
        assert echo.status_code == 200
        late = await gateway.client.post(f"/daraja/stk/{push.token}", json=_callback(push, 75))
        assert late.status_code == 200, late.text
        [payment] = await _payments(gateway, merchant)  # one payment, the STK one
        assert (payment["id"], payment["status"], payment["mpesa_receipt"]) == (
            push.id, "completed", push.receipt,
        )  # fmt: skip
        assert payment["reference"] == self.REFERENCE

    async def test_confirmation_first_then_query(self, gateway_factory: Any) -> None:
        gateway = await _gateway(gateway_factory)
        merchant = await create_merchant(gateway.settings)
        channel = await set_up_channel(gateway, merchant, ChannelKind.PAYBILL)
        push = await _push(gateway, merchant, 76, channel_id=channel["channel_id"],
                           reference=self.REFERENCE)  # fmt: skip
        url = _confirmation_url(gateway, channel["shortcode"])
        echo = await gateway.client.post(url, json=_echo(channel["shortcode"], push, 76, self.SENT))
        assert echo.status_code == 200
        # The STK Query has no receipt; the matched echo has it.
        await reconcile_payment(gateway.app.state.runtime, push.id)
        [payment] = await _payments(gateway, merchant)
        assert (payment["id"], payment["status"], payment["mpesa_receipt"]) == (
            push.id, "completed", push.receipt,
        )  # fmt: skip


class TestGatewayPaybill:
    """The gateway's paybill (wallet channels) is given to one account, and confirms
    every account's wallet payments: each echo is the paying account's money."""

    async def test_another_accounts_echo_then_query_credits_once(
        self, gateway_factory: Any
    ) -> None:
        gateway = await _gateway(gateway_factory)
        house = await create_merchant(gateway.settings, "House account")
        shop = await create_merchant(gateway.settings, "Shop")
        await give_gateway_paybill(gateway, house)
        shortcode = gateway.settings.daraja_shortcode
        push = await _push(gateway, shop, 500)
        url = _confirmation_url(gateway, shortcode)
        echo = await gateway.client.post(
            url, json=_echo(shortcode, push, 500, push.gateway_reference)
        )
        assert echo.status_code == 200
        await reconcile_payment(gateway.app.state.runtime, push.id)
        payment = await _payment(gateway, shop, push.id)
        assert (payment["status"], payment["mpesa_receipt"]) == ("completed", push.receipt)
        # The shop's money, credited once, under the receipt; none to the paybill's holder.
        assert 0 < await _balance(gateway, shop) <= 500
        assert await _balance(gateway, house) == 0
        assert await _payments(gateway, house) == []
        assert await _credits(gateway, push) == [f"collection:{push.receipt}"]
        await assert_sound(gateway.app.state.runtime.sessionmaker)

    async def test_unmatched_echo_then_callback_settles_a_duplicate(
        self, gateway_factory: Any
    ) -> None:
        gateway = await _gateway(gateway_factory)
        merchant = await create_merchant(gateway.settings)
        await give_gateway_paybill(gateway, merchant)
        shortcode = gateway.settings.daraja_shortcode
        push = await _push(gateway, merchant, 300)
        # An echo nothing ties to the push (its BillRefNumber is not what the push sent):
        # it is recorded as a C2B payment of its own, with the receipt and the credit.
        url = _confirmation_url(gateway, shortcode)
        echo = await gateway.client.post(url, json=_echo(shortcode, push, 300, "SHOP 12"))
        assert echo.status_code == 200
        [c2b] = [p for p in await _payments(gateway, merchant) if p["source"] == "c2b"]
        credited = await _balance(gateway, merchant)
        assert 0 < credited <= 300

        for _ in range(2):  # the callback, and Daraja's duplicate of it
            late = await gateway.client.post(f"/daraja/stk/{push.token}", json=_callback(push, 300))
            assert late.status_code == 200, late.text
        payment = await _payment(gateway, merchant, push.id)
        assert (payment["status"], payment["duplicate_of"], payment["mpesa_receipt"]) == (
            "completed", c2b["id"], None,
        )  # fmt: skip
        assert await _balance(gateway, merchant) == credited
        assert await _credits(gateway, push) == [f"collection:{push.receipt}"]
        events = (await gateway.client.get("/v1/events", headers=merchant.auth)).json()["data"]
        completed = {e["data"]["id"]: e["data"] for e in events if e["type"] == "payment.completed"}
        assert set(completed) == {push.id, c2b["id"]}
        assert completed[push.id]["duplicate_of"] == c2b["id"]
        # Returning the duplicate would return the same money twice.
        refund = await gateway.client.post(
            f"/v1/payments/{push.id}/refund", json={}, headers=merchant.auth
        )
        assert refund.status_code == 409, refund.text
        assert problem(refund)["code"] == "payment_not_refundable"
        await assert_sound(gateway.app.state.runtime.sessionmaker)


class TestRacing:
    """The callback and the confirmation at once: whichever commits first, one credit."""

    async def _started_waiting(self, gateway: Gateway, request: asyncio.Task[Any]) -> None:
        """Until ``request`` waits for the transaction the test holds open: on PostgreSQL
        on the receipt's unique index (a lock not granted), on SQLite for the write lock
        (nothing to observe: it cannot start before the commit)."""
        engine = create_engine(gateway.settings)
        try:
            if engine.dialect.name != "postgresql":
                for _ in range(20):
                    await asyncio.sleep(0)
                return
            async with engine.connect() as watcher:
                while not request.done():
                    waiting = await watcher.scalar(
                        text("SELECT count(*) FROM pg_locks WHERE NOT granted")
                    )
                    if waiting:
                        return
                    await asyncio.sleep(0.01)
        finally:
            await engine.dispose()

    async def test_callback_waits_for_an_unmatched_echo(self, gateway_factory: Any) -> None:
        gateway = await _gateway(gateway_factory)
        merchant = await create_merchant(gateway.settings)
        await give_gateway_paybill(gateway, merchant)
        runtime = gateway.app.state.runtime
        shortcode = gateway.settings.daraja_shortcode
        push = await _push(gateway, merchant, 430)
        notice = parse_c2b_notice(_echo(shortcode, push, 430, "SHOP 12"), confirmation=True)
        async with transaction(runtime.sessionmaker) as session:
            registration = await c2b_service.get_registration(
                session, account_id=merchant.account_id, channel_id=merchant.channel_id
            )
            outcome = await confirmations.record_confirmation(
                session, registration=registration, notice=notice, source="confirmation"
            )
            assert outcome == "applied"  # the C2B payment, with the receipt, not committed
            late = asyncio.create_task(
                gateway.client.post(f"/daraja/stk/{push.token}", json=_callback(push, 430))
            )
            await self._started_waiting(gateway, late)
        response = await late
        assert response.status_code == 200, response.text
        [c2b] = [p for p in await _payments(gateway, merchant) if p["source"] == "c2b"]
        payment = await _payment(gateway, merchant, push.id)
        assert (payment["status"], payment["duplicate_of"]) == ("completed", c2b["id"])
        assert await _credits(gateway, push) == [f"collection:{push.receipt}"]
        await assert_sound(runtime.sessionmaker)

    async def test_unmatched_echo_waits_for_the_callback(self, gateway_factory: Any) -> None:
        gateway = await _gateway(gateway_factory)
        merchant = await create_merchant(gateway.settings)
        await give_gateway_paybill(gateway, merchant)
        runtime = gateway.app.state.runtime
        shortcode = gateway.settings.daraja_shortcode
        push = await _push(gateway, merchant, 440)
        body = _callback(push, 440)
        async with transaction(runtime.sessionmaker) as session:
            applied = await callbacks.apply_callback(
                session, token=push.token, result=parse_stk_callback(body),
                body=json.dumps(body), source_ip=None,
            )  # fmt: skip
            assert applied is not None  # the receipt on the STK payment, not committed
            url = _confirmation_url(gateway, shortcode)
            echo = asyncio.create_task(
                gateway.client.post(url, json=_echo(shortcode, push, 440, "SHOP 12"))
            )
            await self._started_waiting(gateway, echo)
        response = await echo
        assert response.status_code == 200, response.text
        assert [p for p in await _payments(gateway, merchant) if p["source"] == "c2b"] == []
        payment = await _payment(gateway, merchant, push.id)
        assert (payment["mpesa_receipt"], payment["duplicate_of"]) == (push.receipt, None)
        notes = (await gateway.client.get("/v1/c2b/notifications", headers=merchant.auth)).json()
        assert [n["outcome"] for n in notes if n["trans_id"] == push.receipt] == ["matched_stk"]
        assert await _credits(gateway, push) == [f"collection:{push.receipt}"]
        await assert_sound(runtime.sessionmaker)

    async def _race(self, gateway_factory: Any, bill_ref_of: Any, amount: int) -> None:
        gateway = await _gateway(gateway_factory)
        merchant = await create_merchant(gateway.settings)
        await give_gateway_paybill(gateway, merchant)
        shortcode = gateway.settings.daraja_shortcode
        push = await _push(gateway, merchant, amount)
        url = _confirmation_url(gateway, shortcode)
        answers = await asyncio.gather(
            gateway.client.post(url, json=_echo(shortcode, push, amount, bill_ref_of(push))),
            gateway.client.post(f"/daraja/stk/{push.token}", json=_callback(push, amount)),
        )
        assert [a.status_code for a in answers] == [200, 200], [a.text for a in answers]
        payment = await _payment(gateway, merchant, push.id)
        assert payment["status"] == "completed"
        c2b = [p for p in await _payments(gateway, merchant) if p["source"] == "c2b"]
        if c2b:  # the confirmation first, unmatched: the STK payment is its duplicate
            assert payment["duplicate_of"] == c2b[0]["id"]
        else:  # the callback first, or the echo matched
            assert (payment["mpesa_receipt"], payment["duplicate_of"]) == (push.receipt, None)
        assert await _holders(gateway, push.receipt) == 1
        assert await _credits(gateway, push) == [f"collection:{push.receipt}"]
        assert 0 < await _balance(gateway, merchant) <= amount
        await assert_sound(gateway.app.state.runtime.sessionmaker)

    async def test_matched_echo_and_callback(self, gateway_factory: Any) -> None:
        await self._race(gateway_factory, lambda push: push.gateway_reference, 410)

    async def test_unmatched_echo_and_callback(self, gateway_factory: Any) -> None:
        await self._race(gateway_factory, lambda push: "SHOP 12", 420)
