"""The callback's hot path (``payments/store_settle.py``: on PostgreSQL two round trips
outside a transaction, on SQLite one trip to ``sqlite_direct``'s thread): it stores what
the transactional path stores, and every case it does not take writes nothing, so the
transactional path decides it.

The payments use 254711990002 (the simulator sends no callback): each test hands the
callback over itself, directly or through the gateway's endpoint.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from sqlalchemy import func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from pesaswitch.daraja.wire import parse_stk_callback
from pesaswitch.db import transaction
from pesaswitch.ledger import idcache
from pesaswitch.ledger.flows import collection_entry
from pesaswitch.ledger.models import JournalEntry, LedgerAccount, Posting
from pesaswitch.payments import callbacks, store_settle
from pesaswitch.payments.models import DarajaCallback, Payment
from pesaswitch.payments.service import Applied
from pesaswitch.webhooks.models import Delivery, Event
from tests.conftest import Gateway, Merchant, create_merchant
from tests.ledger.helpers import assert_sound

NO_CALLBACK = "254711990002"
# Columns that differ between two payments however they were settled.
_OWN = {"id", "callback_token", "checkout_request_id", "merchant_request_id", "mpesa_receipt",
        "reference", "created_at", "updated_at", "finalized_at", "next_query_at"}  # fmt: skip


async def _setup(gateway_factory: Any, **overrides: Any) -> tuple[Gateway, Merchant]:
    defaults = {"reconcile_after": 3600, "stk_receipt_lookup": False,
                "sandbox_allow_private_urls": True, "stk_protection": False,
                # Twin payments of one amount, to compare what each path stored.
                "simulator_rule_same_amount": False}  # fmt: skip
    gateway: Gateway = await gateway_factory(**{**defaults, **overrides})
    merchant = await create_merchant(gateway.settings)
    endpoint = await gateway.client.post(
        "/v1/webhook-endpoints", headers=merchant.auth, json={"url": "http://127.0.0.1:9/hook"}
    )
    assert endpoint.status_code == 201, endpoint.text
    return gateway, merchant


def _sessions(gateway: Gateway) -> async_sessionmaker[AsyncSession]:
    sessions: async_sessionmaker[AsyncSession] = gateway.app.state.runtime.sessionmaker
    return sessions


async def _push(gateway: Gateway, merchant: Merchant, amount: int) -> Payment:
    created = await gateway.client.post(
        "/v1/payments", headers=merchant.auth,
        json={"amount": amount, "phone": NO_CALLBACK,
              "callback_url": "http://127.0.0.1:9/callback"},
    )  # fmt: skip
    assert created.status_code == 201, created.text
    async with _sessions(gateway)() as session:
        payment = await session.get(Payment, created.json()["id"])
    assert payment is not None
    assert payment.checkout_request_id is not None
    return payment


def _receipt(gateway: Gateway, payment: Payment) -> str:
    receipt: str = gateway.app.state.runtime.simulator.pushes[payment.checkout_request_id].receipt
    return receipt


def _callback(payment: Payment, receipt: str, code: int = 0) -> dict[str, Any]:
    items = [{"Name": "Amount", "Value": payment.amount},
             {"Name": "MpesaReceiptNumber", "Value": receipt},
             {"Name": "TransactionDate", "Value": 20261204101010},
             {"Name": "PhoneNumber", "Value": int(NO_CALLBACK)}]  # fmt: skip
    callback: dict[str, Any] = {
        "MerchantRequestID": payment.merchant_request_id,
        "CheckoutRequestID": payment.checkout_request_id, "ResultCode": code,
        "ResultDesc": "The service request is processed successfully." if code == 0
        else "Request cancelled by user",
    }  # fmt: skip
    if code == 0:
        callback["CallbackMetadata"] = {"Item": items}
    return {"Body": {"stkCallback": callback}}


async def _direct(gateway: Gateway, payment: Payment, body: dict[str, Any]) -> Any:
    return await callbacks.settle_without_transaction(
        _sessions(gateway), token=payment.callback_token, result=parse_stk_callback(body),
        body=json.dumps(body), source_ip="127.0.0.1",
    )  # fmt: skip


async def _warm_ledger_ids(gateway: Gateway, merchant: Merchant, payment: Payment,
                           receipt: str) -> None:  # fmt: skip
    """Make and cache the accounts this payment's credit posts to (a committed read)."""
    async with transaction(_sessions(gateway)) as session:
        await collection_entry(
            session, payment_id=payment.id, account_id=merchant.account_id,
            amount=payment.amount, receipt=receipt,
            shortcode=gateway.settings.daraja_shortcode,
        )  # fmt: skip


async def _stored(gateway: Gateway, payment_id: str) -> dict[str, Any]:
    """Everything a settled payment wrote, less what is its own (ids, times, receipt)."""
    async with _sessions(gateway)() as session:
        row = await session.get(Payment, payment_id, populate_existing=True)
        assert row is not None
        columns = {c.key: getattr(row, c.key) for c in Payment.__mapper__.column_attrs}
        raws = (await session.scalars(
            select(DarajaCallback).where(DarajaCallback.payment_id == payment_id)
            .order_by(DarajaCallback.id)  # in the order they were stored
        )).all()  # fmt: skip
        events = (await session.scalars(select(Event).where(Event.object_id == payment_id))).all()
        deliveries = (await session.scalars(
            select(Delivery).where(Delivery.event_id.in_([e.id for e in events]))
        )).all()  # fmt: skip
        postings = (await session.execute(
            select(LedgerAccount.kind, Posting.amount)
            .join(Posting, Posting.ledger_account_id == LedgerAccount.id)
            .join(JournalEntry, JournalEntry.id == Posting.entry_id)
            .where(JournalEntry.reference == payment_id)
        )).all()  # fmt: skip
    payload = [json.loads(e.payload) for e in events]
    for event in payload:
        for key in ("id", "created_at"):
            event.pop(key)
        event["data"] = {
            k: v
            for k, v in event["data"].items()
            if k not in _OWN | {"paid_at", "gateway_reference"}
        }
    return {
        "payment": {k: v for k, v in columns.items() if k not in _OWN},
        "receipt_stored": columns["mpesa_receipt"] is not None,
        "raw": [
            (
                r.outcome,
                r.source_ip is not None,
                json.loads(r.body)["Body"]["stkCallback"]["ResultCode"],
            )
            for r in raws
        ],
        "events": [(e.type, e.account_id) for e in events],
        "payloads": payload,
        # What each delivery is (the dispatcher may be sending them meanwhile).
        "deliveries": sorted(
            (d.url, d.endpoint_id is not None, d.format, d.body is None) for d in deliveries
        ),
        "postings": sorted(postings),
    }


async def test_it_stores_what_the_transaction_stores(gateway_factory: Any) -> None:
    gateway, merchant = await _setup(gateway_factory)
    first, second = await _push(gateway, merchant, 250), await _push(gateway, merchant, 250)
    one, two = _receipt(gateway, first), _receipt(gateway, second)

    async with transaction(_sessions(gateway)) as session:
        body = _callback(first, one)
        applied = await callbacks.apply_callback(
            session, token=first.callback_token, result=parse_stk_callback(body),
            body=json.dumps(body), source_ip="127.0.0.1",
        )  # fmt: skip
    assert applied is not None
    await _warm_ledger_ids(gateway, merchant, second, two)
    settled = await _direct(gateway, second, _callback(second, two))
    assert settled is not None
    assert settled.payment.status == "completed"
    assert settled.payment.mpesa_receipt == two
    async with _sessions(gateway)() as session:
        row = await session.get(Payment, second.id)
        assert row is not None
        assert (row.mpesa_receipt, row.checkout_request_id, row.merchant_request_id) == (
            two,
            second.checkout_request_id,
            second.merchant_request_id,
        )
        event = await session.scalar(select(Event).where(Event.object_id == second.id))
        assert event is not None
        assert json.loads(event.payload)["data"]["mpesa_receipt"] == two

    by_transaction, direct = await _stored(gateway, first.id), await _stored(gateway, second.id)
    for name in direct:
        assert direct[name] == by_transaction[name], name
    assert direct["payment"]["status"] == "completed"
    assert direct["receipt_stored"]
    assert direct["raw"] == [("applied", True, 0)]
    assert len(direct["deliveries"]) == 2  # the endpoint and the payment's callback URL
    assert [kind for kind, _ in direct["postings"]] == ["fees", "settlement", "wallet"]
    assert sum(amount for _, amount in direct["postings"]) == 0
    await assert_sound(_sessions(gateway))

    # The same callback again: the payment is no longer pending, so this path takes
    # nothing, and the endpoint answers it as a duplicate without a second credit.
    assert await _direct(gateway, second, _callback(second, two)) is None
    again = await gateway.client.post(
        f"/daraja/stk/{second.callback_token}", json=_callback(second, two)
    )
    assert again.status_code == 200, again.text
    stored = await _stored(gateway, second.id)
    assert stored["raw"] == [("applied", True, 0), ("duplicate", True, 0)]
    assert stored["postings"] == direct["postings"]


async def _race_a_held_update(gateway: Gateway, payment: Payment, receipt: str) -> Any:
    """The hot path's answer when another transaction updates the row and holds it: the
    read sees the version before, the settling call waits for the row and then finds a
    newer version."""
    sessions = _sessions(gateway)
    async with transaction(sessions) as session:
        await session.execute(
            update(Payment).where(Payment.id == payment.id).values(query_attempts=1)
        )
        racing = asyncio.create_task(_direct(gateway, payment, _callback(payment, receipt)))
        await _until_waiting(sessions, racing)
    return await racing


@pytest.mark.postgres_only  # SQLite reads and settles under one write lock: nothing between
async def test_a_row_changed_after_the_read_is_read_again(gateway_factory: Any) -> None:
    gateway, merchant = await _setup(gateway_factory)
    payment = await _push(gateway, merchant, 300)
    receipt = _receipt(gateway, payment)
    await _warm_ledger_ids(gateway, merchant, payment, receipt)

    applied = await _race_a_held_update(gateway, payment, receipt)
    assert applied is not None
    assert applied.outcome is Applied.APPLIED
    stored = await _stored(gateway, payment.id)
    assert stored["payment"]["status"] == "completed"
    assert stored["payment"]["query_attempts"] == 1  # settled on the newer version
    assert stored["raw"] == [("applied", True, 0)]
    assert len(stored["events"]) == 1
    assert len(stored["postings"]) == 3


@pytest.mark.postgres_only
async def test_a_row_changed_after_every_read_is_left_alone(
    gateway_factory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    gateway, merchant = await _setup(gateway_factory)
    payment = await _push(gateway, merchant, 310)
    receipt = _receipt(gateway, payment)
    await _warm_ledger_ids(gateway, merchant, payment, receipt)
    # One read only: the row changes after it, as it would after each of two.
    monkeypatch.setattr(store_settle, "_READS", 1)

    assert await _race_a_held_update(gateway, payment, receipt) is None
    stored = await _stored(gateway, payment.id)
    assert stored["payment"]["status"] == "pending"
    assert (stored["raw"], stored["events"], stored["postings"]) == ([], [], [])
    # The endpoint's transactional path then settles it.
    answer = await gateway.client.post(
        f"/daraja/stk/{payment.callback_token}", json=_callback(payment, receipt)
    )
    assert answer.status_code == 200, answer.text
    stored = await _stored(gateway, payment.id)
    assert stored["payment"]["status"] == "completed"
    assert stored["raw"] == [("applied", True, 0)]
    assert len(stored["postings"]) == 3


async def _until_waiting(sessions: async_sessionmaker[AsyncSession], task: Any) -> None:
    """Return once some session waits for a lock (the racing call, on the held row)."""
    async with sessions() as watcher:
        for _ in range(500):
            assert not task.done(), "the call did not wait for the held row"
            waiting = await watcher.scalar(text("SELECT count(*) FROM pg_locks WHERE NOT granted"))
            if waiting:
                return
            await asyncio.sleep(0.01)
    raise AssertionError("no session waited for the held row")


async def test_uncached_ledger_accounts_are_left_to_the_transaction(gateway_factory: Any) -> None:
    gateway, merchant = await _setup(gateway_factory)
    payment = await _push(gateway, merchant, 350)
    receipt = _receipt(gateway, payment)
    idcache.cache.clear()

    assert await _direct(gateway, payment, _callback(payment, receipt)) is None
    stored = await _stored(gateway, payment.id)
    assert (stored["payment"]["status"], stored["raw"]) == ("pending", [])

    answer = await gateway.client.post(
        f"/daraja/stk/{payment.callback_token}", json=_callback(payment, receipt)
    )
    assert answer.status_code == 200, answer.text
    stored = await _stored(gateway, payment.id)
    assert stored["payment"]["status"] == "completed"
    assert len(stored["postings"]) == 3


async def test_a_receipt_another_payment_holds_writes_nothing(gateway_factory: Any) -> None:
    gateway, merchant = await _setup(gateway_factory)
    holder, payment = await _push(gateway, merchant, 400), await _push(gateway, merchant, 400)
    receipt = _receipt(gateway, holder)
    await _warm_ledger_ids(gateway, merchant, holder, receipt)
    assert await _direct(gateway, holder, _callback(holder, receipt)) is not None

    # The second payment's callback names the first one's receipt.
    assert await _direct(gateway, payment, _callback(payment, receipt)) is None
    stored = await _stored(gateway, payment.id)
    assert (stored["payment"]["status"], stored["raw"], stored["events"]) == ("pending", [], [])
    async with _sessions(gateway)() as session:
        credits = await session.scalar(
            select(func.count()).select_from(JournalEntry)
            .where(JournalEntry.key == f"collection:{receipt}")
        )  # fmt: skip
    assert credits == 1


async def test_a_failure_under_stk_protection_is_left_to_the_transaction(
    gateway_factory: Any,
) -> None:
    gateway, merchant = await _setup(gateway_factory, stk_protection=True)
    payment = await _push(gateway, merchant, 450)
    cancelled = _callback(payment, "", code=1032)

    assert await _direct(gateway, payment, cancelled) is None
    assert (await _stored(gateway, payment.id))["payment"]["status"] == "pending"

    answer = await gateway.client.post(f"/daraja/stk/{payment.callback_token}", json=cancelled)
    assert answer.status_code == 200, answer.text
    stored = await _stored(gateway, payment.id)
    assert stored["payment"]["status"] == "cancelled"
    assert stored["raw"] == [("applied", True, 1032)]
    async with _sessions(gateway)() as session:
        failures = await session.scalar(
            text("SELECT consecutive_failures FROM stk_phone_guards "
                 "WHERE account_id = :a AND phone = :p"),
            {"a": merchant.account_id, "p": payment.phone},
        )  # fmt: skip
    assert failures == 1
