"""Collections credit wallets through the real gateway: once per receipt, even with
duplicate callbacks; merchant-owned channels move nothing; the API shows it."""

from __future__ import annotations

import asyncio
import json
import secrets
from typing import Any

from sqlalchemy import func, select

from pesaswitch.accounts import service as accounts
from pesaswitch.accounts.models import ChannelKind
from pesaswitch.db import transaction
from pesaswitch.kit.ids import new_id
from pesaswitch.ledger.flows import reserve_payout
from pesaswitch.ledger.models import JournalEntry
from pesaswitch.payments.models import DarajaCallback, Payment
from tests.conftest import Gateway, Merchant, create_merchant
from tests.ledger.helpers import assert_sound, fees_balance, fund_wallet, merchant_balance

DUPLICATE_CALLBACK = "0711990003"  # the simulator calls back twice at once
NO_CALLBACK = "0711990002"


async def pay(gateway: Gateway, merchant: Merchant, **body: Any) -> dict[str, Any]:
    response = await gateway.client.post("/v1/payments", headers=merchant.auth, json=body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def callbacks_of(gateway: Gateway, payment_id: str, count: int) -> list[str]:
    """The outcomes of the payment's stored callbacks, once ``count`` have arrived."""
    for _ in range(200):
        async with gateway.app.state.runtime.sessionmaker() as session:
            rows = list(
                await session.scalars(
                    select(DarajaCallback.outcome).where(DarajaCallback.payment_id == payment_id)
                )
            )
        if len(rows) >= count:
            return sorted(rows)
        await asyncio.sleep(0.05)
    raise AssertionError(f"{payment_id} got {len(rows)} callbacks, not {count}")


async def balance(gateway: Gateway, merchant: Merchant) -> dict[str, Any]:
    response = await gateway.client.get("/v1/balance", headers=merchant.read_auth)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_duplicate_callbacks_credit_the_wallet_once(gateway: Gateway) -> None:
    sessions = gateway.app.state.runtime.sessionmaker
    merchant = await create_merchant(gateway.settings, "Wallet shop")
    fees_before = await fees_balance(sessions)

    created = await pay(gateway, merchant, amount=1000, phone=DUPLICATE_CALLBACK)
    final = await gateway.wait_for_status(merchant, created["id"])
    assert final["status"] == "completed"
    assert await callbacks_of(gateway, created["id"], 2) == ["applied", "duplicate"]

    # 1.5% of 1000 is the operator's; the rest is the merchant's, once.
    assert await merchant_balance(sessions, merchant.account_id) == {
        "available": 985,
        "reserved": 0,
    }
    assert await fees_balance(sessions) == fees_before + 15
    assert await balance(gateway, merchant) == {
        "object": "balance",
        "available": [{"currency": "KES", "amount": 985}],
        "reserved": [{"currency": "KES", "amount": 0}],
    }
    entries = await gateway.client.get("/v1/ledger/entries", headers=merchant.auth)
    [entry] = entries.json()["data"]
    assert entry["object"] == "ledger_entry"
    assert entry["kind"] == "collection"
    assert entry["reference"] == created["id"]
    assert final["mpesa_receipt"] in entry["description"]
    # The account's own line, then the operator's side by kind: the entry sums to zero.
    assert entry["postings"] == [
        {"account": "wallet", "currency": "KES", "amount": 985},
        {"account": "settlement", "currency": "KES", "amount": -1000},
        {"account": "fees", "currency": "KES", "amount": 15},
    ]

    # Another account sees only its own (empty) wallet.
    other = await create_merchant(gateway.settings, "Nosy shop")
    assert (await balance(gateway, other))["available"] == [{"currency": "KES", "amount": 0}]
    listed = await gateway.client.get("/v1/ledger/entries", headers=other.read_auth)
    assert listed.json()["data"] == []
    await assert_sound(sessions)


async def test_racing_identical_callbacks_credit_once(gateway_factory: Any) -> None:
    # No reconciler queries within the test: only the two callbacks below can settle it.
    gateway: Gateway = await gateway_factory(reconcile_after=3600)
    sessions = gateway.app.state.runtime.sessionmaker
    merchant = await create_merchant(gateway.settings, "Race shop")
    created = await pay(gateway, merchant, amount=200, phone=NO_CALLBACK)
    async with sessions() as session:
        payment = await session.get(Payment, created["id"])
        assert payment is not None
        token, checkout = payment.callback_token, payment.checkout_request_id
    receipt = "T" + secrets.token_hex(4).upper()
    body = {
        "Body": {
            "stkCallback": {
                "MerchantRequestID": created["merchant_request_id"],
                "CheckoutRequestID": checkout,
                "ResultCode": 0,
                "ResultDesc": "The service request is processed successfully.",
                "CallbackMetadata": {
                    "Item": [
                        {"Name": "Amount", "Value": 200.0},
                        {"Name": "MpesaReceiptNumber", "Value": receipt},
                        {"Name": "TransactionDate", "Value": 20261122101010},
                        {"Name": "PhoneNumber", "Value": 254711990002},
                    ]
                },
            }
        }
    }
    answers = await asyncio.gather(
        *(gateway.client.post(f"/daraja/stk/{token}", json=body) for _ in range(2))
    )
    assert [a.status_code for a in answers] == [200, 200]
    assert await callbacks_of(gateway, created["id"], 2) == ["applied", "duplicate"]
    assert (await balance(gateway, merchant))["available"] == [{"currency": "KES", "amount": 197}]
    async with sessions() as session:
        credits = await session.scalar(
            select(func.count())
            .select_from(JournalEntry)
            .where(JournalEntry.key == f"collection:{receipt}")
        )
    assert credits == 1
    await assert_sound(sessions)


async def test_a_till_payment_moves_no_wallet_money(gateway: Gateway) -> None:
    sessions = gateway.app.state.runtime.sessionmaker
    merchant = await create_merchant(gateway.settings, "Till shop")
    async with transaction(sessions) as session:
        till = await accounts.add_channel(
            session, account_id=merchant.account_id, kind=ChannelKind.TILL, shortcode="5432101"
        )
    fees_before = await fees_balance(sessions)
    created = await pay(gateway, merchant, amount=500, phone="0708374149", channel_id=till.id)
    assert (await gateway.wait_for_status(merchant, created["id"]))["status"] == "completed"
    assert await merchant_balance(sessions, merchant.account_id) == {
        "available": 0,
        "reserved": 0,
    }
    assert await fees_balance(sessions) == fees_before
    listed = await gateway.client.get("/v1/ledger/entries", headers=merchant.auth)
    assert listed.json()["data"] == []


async def test_the_fee_tariff_comes_from_the_settings(gateway_factory: Any) -> None:
    gateway: Gateway = await gateway_factory(collection_fee_tiers="1-:7")
    merchant = await create_merchant(gateway.settings, "Flat fee shop")
    created = await pay(gateway, merchant, amount=100, phone="0708374149")
    assert (await gateway.wait_for_status(merchant, created["id"]))["status"] == "completed"
    assert (await balance(gateway, merchant))["available"] == [{"currency": "KES", "amount": 93}]


async def test_entries_in_cursor_pages_with_reservations(gateway: Gateway) -> None:
    sessions = gateway.app.state.runtime.sessionmaker
    merchant = await create_merchant(gateway.settings, "Paging shop")
    await fund_wallet(sessions, account_id=merchant.account_id, amount=1000)
    payouts = [new_id("po") for _ in range(4)]
    for payout in payouts:
        async with transaction(sessions) as session:
            await reserve_payout(
                session, payout_id=payout, account_id=merchant.account_id, currency="KES",
                amount=100, fee=15,
            )  # fmt: skip
    assert await balance(gateway, merchant) == {
        "object": "balance",
        "available": [{"currency": "KES", "amount": 540}],
        "reserved": [{"currency": "KES", "amount": 460}],
    }
    seen: list[dict[str, Any]] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2}
        if cursor:
            params["starting_after"] = cursor
        page = (
            await gateway.client.get("/v1/ledger/entries", headers=merchant.auth, params=params)
        ).json()
        seen += page["data"]
        if not page["has_more"]:
            break
        cursor = page["next_cursor"]
    ids = [e["id"] for e in seen]
    assert ids == sorted(ids, reverse=True)  # newest first, each once
    assert len(set(ids)) == 5
    assert {e["reference"] for e in seen} == {*payouts, None}
    reserve = next(e for e in seen if e["kind"] == "payout_reserve")
    assert reserve["postings"] == [
        {"account": "wallet", "currency": "KES", "amount": -115},
        {"account": "payout_hold", "currency": "KES", "amount": 115},
    ]
    assert sorted(e["kind"] for e in seen) == ["adjustment", *["payout_reserve"] * 4]
    for e in seen:  # what the account sees of each entry balances
        assert sum(p["amount"] for p in e["postings"]) == 0, e


# The callback endpoint's one-statement settlement applies a callback only when the
# payment is pending and Daraja's CheckoutRequestID and amount agree; everything else is
# stored with its outcome and changes nothing.

RECEIPT = "T" + secrets.token_hex(4).upper()  # receipts are unique per database


def _callback(checkout: str | None, *, code: int = 0, amount: float = 300.0) -> dict[str, Any]:
    callback: dict[str, Any] = {
        "MerchantRequestID": "29115-34620561-1",
        "CheckoutRequestID": checkout,
        "ResultCode": code,
        "ResultDesc": "The service request is processed successfully." if code == 0 else "Nope",
    }
    if code == 0:
        callback["CallbackMetadata"] = {
            "Item": [
                {"Name": "Amount", "Value": amount},
                {"Name": "MpesaReceiptNumber", "Value": RECEIPT},
                {"Name": "TransactionDate", "Value": 20261122101010},
                {"Name": "PhoneNumber", "Value": 254711990002},
            ]
        }
    return {"Body": {"stkCallback": callback}}


async def _stored(gateway: Gateway, payment_id: str) -> list[str]:
    async with gateway.app.state.runtime.sessionmaker() as session:
        rows = await session.scalars(
            select(DarajaCallback.outcome)
            .where(DarajaCallback.payment_id == payment_id)
            .order_by(DarajaCallback.id)
        )
        return list(rows)


async def test_only_an_agreeing_callback_settles_and_each_is_stored(
    gateway_factory: Any,
) -> None:
    # No reconciler queries within the test: only the callbacks below can settle it.
    gateway: Gateway = await gateway_factory(reconcile_after=3600)
    sessions = gateway.app.state.runtime.sessionmaker
    merchant = await create_merchant(gateway.settings, "Callback shop")
    created = await pay(gateway, merchant, amount=300, phone=NO_CALLBACK)
    async with sessions() as session:
        payment = await session.get(Payment, created["id"])
        assert payment is not None
        token, checkout = payment.callback_token, payment.checkout_request_id
    assert checkout is not None

    async def send(body: Any) -> int:
        raw = body if isinstance(body, str) else json.dumps(body)
        answer = await gateway.client.post(f"/daraja/stk/{token}", content=raw)
        return answer.status_code

    assert await send(_callback("ws_CO_someone_else")) == 200
    assert await send(_callback(checkout, amount=1.0)) == 200
    assert await send("{not json") == 400
    unknown = await gateway.client.post("/daraja/stk/no-such-token", json=_callback(checkout))
    assert unknown.status_code == 404
    status = await gateway.client.get(f"/v1/payments/{created['id']}", headers=merchant.auth)
    assert status.json()["status"] == "pending"
    assert await _stored(gateway, created["id"]) == ["mismatch", "mismatch", "invalid"]

    assert await send(_callback(checkout)) == 200
    assert await send(_callback(checkout, code=1032)) == 200  # cancelled, too late
    done = (await gateway.client.get(f"/v1/payments/{created['id']}", headers=merchant.auth)).json()
    assert done["status"] == "completed"
    assert done["mpesa_receipt"] == RECEIPT
    assert done["checkout_request_id"] == checkout
    assert done["merchant_request_id"] == created["merchant_request_id"]  # kept, not replaced
    stored = await _stored(gateway, created["id"])
    assert stored == ["mismatch", "mismatch", "invalid", "applied", "conflict"]
    # 300 less the 1.5% fee (rounded up), credited once.
    assert (await balance(gateway, merchant))["available"] == [{"currency": "KES", "amount": 295}]
    async with sessions() as session:
        entries = await session.scalar(
            select(func.count()).select_from(JournalEntry).where(
                JournalEntry.reference == created["id"]
            )
        )  # fmt: skip
    assert entries == 1
