"""Orphaned STK pushes: pending, no CheckoutRequestID, no callback. Each is left as an
API process killed mid-push leaves it — the payment committed, the push sent (or not),
its answer never recorded — and the sweep settles it from the shortcode's statement
once the prompt can no longer be answered (payments/orphans.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select

from pesaswitch.accounts.models import ChannelKind
from pesaswitch.accounts.service import resolve_channel
from pesaswitch.db import transaction
from pesaswitch.kit.clock import travel, utcnow
from pesaswitch.kit.phones import normalize_mpesa_phone
from pesaswitch.ledger.fees import Tariff
from pesaswitch.ledger.models import EntryKind, JournalEntry
from pesaswitch.payments import push, service, statement
from pesaswitch.payments.models import DarajaCallback, Payment, PushState
from pesaswitch.payments.orphans import settle_orphans_once
from pesaswitch.payments.schemas import PaymentCreate
from pesaswitch.protection.models import StkPhoneGuard
from pesaswitch.runtime import Runtime
from tests.c2b.helpers import add_channel, set_up_channel
from tests.conftest import Gateway, Merchant, create_merchant

Factory = Callable[..., Awaitable[Gateway]]
PAID_NO_CALLBACK = "254711990002"  # the simulator's lost callback: paid, only queries tell


async def _gateway(gateway_factory: Factory, **overrides: Any) -> tuple[Gateway, Merchant]:
    # No embedded worker: the test runs the sweep itself, at the time it chooses.
    gateway = await gateway_factory(embedded_worker=False, **overrides)
    return gateway, await create_merchant(gateway.settings, "Orphans")


async def orphan(
    gateway: Gateway, merchant: Merchant, *, phone: str, amount: int, sent: bool,
    channel_id: int | None = None,
) -> str:  # fmt: skip
    """A payment as POST /v1/payments commits it, then its push sent (``sent``) with the
    answer dropped: what a SIGKILL between the push and recording its answer leaves."""
    runtime: Runtime = gateway.app.state.runtime
    settings = runtime.settings
    async with transaction(runtime.sessionmaker) as session:
        channel = await resolve_channel(
            session, account_id=merchant.account_id, channel_id=channel_id
        )
        payment = await service.create_pending_payment(
            session, account_id=merchant.account_id, channel=channel,
            data=PaymentCreate(amount=amount, phone=phone), phone=normalize_mpesa_phone(phone),
            orphan_after=settings.orphan_after,
        )  # fmt: skip
        auth = await push.shortcode_auth(session, settings, channel)
        request = push.stk_request(settings=settings, channel=channel, auth=auth, payment=payment)
    if sent:
        await runtime.daraja.for_app(auth.app).stk_push(request)
    return payment.id


async def _row(gateway: Gateway, payment_id: str) -> Payment:
    async with gateway.app.state.runtime.sessionmaker() as session:
        payment = await session.get(Payment, payment_id)
        assert payment is not None
        return payment


async def _collections(gateway: Gateway, payment_id: str) -> int:
    async with gateway.app.state.runtime.sessionmaker() as session:
        count = await session.scalar(
            select(func.count())
            .select_from(JournalEntry)
            .where(
                JournalEntry.kind == EntryKind.COLLECTION.value,
                JournalEntry.reference == payment_id,
            )
        )
    return int(count or 0)


async def _event_types(gateway: Gateway, merchant: Merchant, payment_id: str) -> list[str]:
    events = (await gateway.client.get("/v1/events", headers=merchant.auth)).json()["data"]
    return [e["type"] for e in events if e["data"]["id"] == payment_id]


async def _balance(gateway: Gateway, merchant: Merchant) -> int:
    body = (await gateway.client.get("/v1/balance", headers=merchant.auth)).json()
    return int(next(a["amount"] for a in body["available"] if a["currency"] == "KES"))


def _past_the_window(gateway: Gateway) -> Any:
    return travel(gateway.settings.orphan_after + timedelta(seconds=1))


async def test_a_paid_orphan_completes_from_the_statement_with_one_credit(
    gateway_factory: Factory,
) -> None:
    gateway, merchant = await _gateway(gateway_factory)
    runtime = gateway.app.state.runtime
    payment_id = await orphan(gateway, merchant, phone=PAID_NO_CALLBACK, amount=41, sent=True)
    before = await _row(gateway, payment_id)
    assert (before.status, before.push_state, before.checkout_request_id) == (
        "pending", PushState.SENDING.value, None,
    )  # fmt: skip

    # While the prompt may still be answered, the statement proves nothing: not claimed.
    await settle_orphans_once(runtime)
    assert (await _row(gateway, payment_id)).status == "pending"

    with _past_the_window(gateway):
        await settle_orphans_once(runtime)
    paid = await _row(gateway, payment_id)
    pushes = runtime.simulator.pushes.values()
    [push_] = [p for p in pushes if p.account_reference == paid.reference]
    assert (paid.status, paid.result_code, paid.settled_by) == ("completed", "0", "statement")
    assert paid.mpesa_receipt == push_.receipt
    assert await _collections(gateway, payment_id) == 1
    fee = Tariff.parse(
        gateway.settings.collection_fee_tiers, gateway.settings.payout_fee_tiers
    ).collection_fee(41)
    assert await _balance(gateway, merchant) == 41 - fee
    assert await _event_types(gateway, merchant, payment_id) == ["payment.completed"]

    # Settled: nothing is claimed or credited again.
    with _past_the_window(gateway):
        await settle_orphans_once(runtime)
    assert await _collections(gateway, payment_id) == 1
    assert await _event_types(gateway, merchant, payment_id) == ["payment.completed"]


async def test_an_orphan_never_sent_expires_with_no_transaction(gateway_factory: Factory) -> None:
    gateway, merchant = await _gateway(gateway_factory)
    runtime = gateway.app.state.runtime
    phone = "254712000771"
    payment_id = await orphan(gateway, merchant, phone=phone, amount=42, sent=False)
    await settle_orphans_once(runtime)
    assert (await _row(gateway, payment_id)).status == "pending"

    with _past_the_window(gateway):
        await settle_orphans_once(runtime)
    expired = await _row(gateway, payment_id)
    assert (expired.status, expired.result_code, expired.settled_by) == (
        "expired", statement.NO_TRANSACTION, "statement",
    )  # fmt: skip
    assert "statement" in (expired.result_desc or "")
    assert expired.mpesa_receipt is None
    assert await _collections(gateway, payment_id) == 0
    assert await _balance(gateway, merchant) == 0
    body = (await gateway.client.get(f"/v1/payments/{payment_id}", headers=merchant.auth)).json()
    assert (body["status"], body["result_code"]) == ("expired", "no_transaction")
    assert await _event_types(gateway, merchant, payment_id) == ["payment.expired"]
    # Nobody knows what the customer did: the abuse rules do not count it against them.
    async with runtime.sessionmaker() as session:
        guard = await session.scalar(
            select(StkPhoneGuard).where(
                StkPhoneGuard.account_id == merchant.account_id, StkPhoneGuard.phone == phone
            )
        )
    assert guard is None or guard.consecutive_failures == 0


async def test_a_late_contradicting_callback_is_a_conflict(gateway_factory: Factory) -> None:
    gateway, merchant = await _gateway(gateway_factory)
    runtime = gateway.app.state.runtime
    payment_id = await orphan(gateway, merchant, phone="254712000772", amount=43, sent=False)
    with _past_the_window(gateway):
        await settle_orphans_once(runtime)
    token = (await _row(gateway, payment_id)).callback_token
    callback = {"Body": {"stkCallback": {
        "MerchantRequestID": "m-1", "CheckoutRequestID": "ws_CO_LATE0001", "ResultCode": 0,
        "ResultDesc": "The service request is processed successfully.",
        "CallbackMetadata": {"Item": [
            {"Name": "Amount", "Value": 43}, {"Name": "MpesaReceiptNumber", "Value": "ULATE00001"},
            {"Name": "TransactionDate", "Value": 20261203101010},
            {"Name": "PhoneNumber", "Value": 254712000772}]}}}}  # fmt: skip
    response = await gateway.client.post(f"/daraja/stk/{token}", json=callback)
    assert response.status_code == 200
    kept = await _row(gateway, payment_id)
    assert (kept.status, kept.result_code) == ("expired", "no_transaction")
    assert kept.mpesa_receipt is None
    assert await _collections(gateway, payment_id) == 0
    async with runtime.sessionmaker() as session:
        outcomes = list(
            await session.scalars(
                select(DarajaCallback.outcome).where(DarajaCallback.payment_id == payment_id)
            )
        )
    assert outcomes == ["conflict"]


async def test_racing_sweeps_settle_and_credit_once(gateway_factory: Factory) -> None:
    gateway, merchant = await _gateway(gateway_factory)
    runtime = gateway.app.state.runtime
    paid_id = await orphan(gateway, merchant, phone=PAID_NO_CALLBACK, amount=44, sent=True)
    unpaid_id = await orphan(gateway, merchant, phone="254712000773", amount=45, sent=False)
    with _past_the_window(gateway):
        await asyncio.gather(settle_orphans_once(runtime), settle_orphans_once(runtime))
    assert (await _row(gateway, paid_id)).status == "completed"
    assert (await _row(gateway, unpaid_id)).status == "expired"
    assert await _collections(gateway, paid_id) == 1
    assert await _event_types(gateway, merchant, paid_id) == ["payment.completed"]
    assert await _event_types(gateway, merchant, unpaid_id) == ["payment.expired"]

    # Two workers that both decided on the same statement row: one applies it.
    again_id = await orphan(gateway, merchant, phone=PAID_NO_CALLBACK, amount=46, sent=True)
    reference = (await _row(gateway, again_id)).reference
    [push_] = [p for p in runtime.simulator.pushes.values() if p.account_reference == reference]
    row = statement.PulledTransaction(
        trans_id=push_.receipt, trans_time=None, msisdn=PAID_NO_CALLBACK, amount=46,
        bill_ref=reference, sender="",
    )  # fmt: skip

    async def apply() -> str:
        async with transaction(runtime.sessionmaker) as session:
            applied = await statement.record_paid(
                session, payment_id=again_id, row=row, now=utcnow()
            )
            return applied.value

    assert sorted(await asyncio.gather(apply(), apply())) == ["applied", "duplicate"]
    assert await _collections(gateway, again_id) == 1
    assert await _event_types(gateway, merchant, again_id) == ["payment.completed"]


async def test_a_merchant_paybill_is_settled_from_its_own_statement(
    gateway_factory: Factory,
) -> None:
    gateway, merchant = await _gateway(gateway_factory)
    channel = await set_up_channel(gateway, merchant, ChannelKind.PAYBILL)
    payment_id = await orphan(
        gateway, merchant, phone=PAID_NO_CALLBACK, amount=47, sent=True,
        channel_id=channel["channel_id"],
    )  # fmt: skip
    with _past_the_window(gateway):
        await settle_orphans_once(gateway.app.state.runtime)
    paid = await _row(gateway, payment_id)
    assert (paid.status, paid.settled_by) == ("completed", "statement")
    assert paid.mpesa_receipt is not None
    # The merchant's own paybill: the money is theirs already, no wallet credit.
    assert await _collections(gateway, payment_id) == 0


async def test_channels_no_statement_covers_stay_pending(gateway_factory: Factory) -> None:
    gateway, merchant = await _gateway(gateway_factory)
    paybill = await add_channel(gateway.settings, merchant, ChannelKind.PAYBILL)  # no C2B
    bank = await add_channel(gateway.settings, merchant, ChannelKind.BANK)
    ids = [
        await orphan(gateway, merchant, phone=PAID_NO_CALLBACK, amount=48, sent=True,
                     channel_id=channel_id)
        for channel_id in (paybill, bank)
    ]  # fmt: skip
    with _past_the_window(gateway):
        await settle_orphans_once(gateway.app.state.runtime)
    for payment_id in ids:
        left = await _row(gateway, payment_id)
        # Pending and visible, as before; no longer scheduled (nothing new can tell).
        assert (left.status, left.next_query_at) == ("pending", None)
        listed = await gateway.client.get(f"/v1/payments/{payment_id}", headers=merchant.auth)
        assert listed.json()["status"] == "pending"


async def test_the_check_switched_off_leaves_orphans_pending(gateway_factory: Factory) -> None:
    gateway, merchant = await _gateway(gateway_factory, stk_statement_check=False)
    payment_id = await orphan(gateway, merchant, phone="254712000774", amount=49, sent=False)
    with _past_the_window(gateway):
        assert await settle_orphans_once(gateway.app.state.runtime) == 0
    assert (await _row(gateway, payment_id)).status == "pending"
