"""Payouts, balance, ledger entries and phone validation against the real gateway, with the
sync client and the async one."""

from __future__ import annotations

import time
import uuid

import pytest

from pesaswitch_sdk import (
    InsufficientFundsError,
    NotFoundError,
    PaymentEvent,
    PaymentStatus,
    Payout,
    PayoutStatus,
    Pesaswitch,
    ValidationError,
)

from gateway import Gateway


def fund_wallet(client: Pesaswitch, amount: int) -> None:
    payment = client.payments.create(amount=amount, phone="254708374149")
    assert client.payments.wait_for_final(payment.id, timeout=20).status == "completed"


def wait_for_payout(client: Pesaswitch, payout_id: str, timeout: float = 20) -> Payout:
    deadline = time.monotonic() + timeout
    payout = client.payouts.get(payout_id)
    while not payout.is_final and time.monotonic() < deadline:
        time.sleep(0.1)
        payout = client.payouts.get(payout_id)
    return payout


class TestPayouts:
    def test_a_payout_from_a_funded_wallet(self, client: Pesaswitch) -> None:
        fund_wallet(client, 500)
        before = client.balance.get().available_in("KES")
        reference = f"po-{uuid.uuid4().hex[:8]}"
        payout = client.payouts.create(
            amount=50, phone="0708374149", reference=reference, name="Wanjiru"
        )
        assert payout.id.startswith("po_")
        assert payout.reference == reference
        assert payout.status in {PayoutStatus.PENDING, PayoutStatus.PROCESSING}

        final = wait_for_payout(client, payout.id)
        assert final.status == PayoutStatus.COMPLETED
        assert final.transaction_id is not None
        after = client.balance.get().available_in("KES")
        assert after == before - final.kes_amount - final.fee
        assert payout.id in {p.id for p in client.payouts.list(limit=5)}

    def test_more_than_the_wallet_holds(self, client: Pesaswitch) -> None:
        available = client.balance.get().available_in("KES")
        with pytest.raises(InsufficientFundsError) as raised:
            client.payouts.create(
                amount=available + 1000, phone="254708374149", reference=uuid.uuid4().hex
            )
        assert raised.value.status == 422
        assert raised.value.code == "insufficient_funds"


class TestLedgerAndPhones:
    def test_the_entry_of_a_payment_explains_the_balance(self, client: Pesaswitch) -> None:
        before = client.balance.get().available_in("KES")
        payment = client.payments.create(amount=30, phone="254708374149")
        client.payments.wait_for_final(payment.id, timeout=20)
        after = client.balance.get().available_in("KES")
        # Only this account's side of each entry is listed: its wallet, credited net of fees.
        ours = next(e for e in client.ledger_entries.list(limit=2) if e.reference == payment.id)
        credited = sum(p.amount for p in ours.postings if p.account == "wallet")
        assert 0 < credited <= 30
        assert after - before == credited

    def test_phone_validation(self, client: Pesaswitch) -> None:
        valid = client.phone_numbers.validate("0708 374 149")
        assert valid.valid
        assert valid.normalized == "254708374149"
        invalid = client.phone_numbers.validate("12345")
        assert not invalid.valid
        assert invalid.normalized is None


class TestAsyncClient:
    async def test_a_payment_end_to_end(self, gateway: Gateway) -> None:
        async with gateway.async_client() as client:
            reference = f"async-{uuid.uuid4().hex[:8]}"
            created = [
                await client.payments.create(amount=40, phone="254708374149", reference=reference)
                for _ in range(3)
            ]
            final = await client.payments.wait_for_final(created[0].id, timeout=20)
            assert final.status == PaymentStatus.COMPLETED
            assert final.mpesa_receipt is not None

            page = await client.payments.list(reference=reference, limit=2)
            assert page.has_more
            seen = [payment.id async for payment in page]
            assert sorted(seen) == sorted(p.id for p in created)

            balance = await client.balance.get()
            assert balance.available_in("KES") > 0
            entries = await client.ledger_entries.list(limit=1)
            assert len(entries.data) == 1
            assert (await client.phone_numbers.validate("0708374149")).valid
            events = await client.events.list(type="payment.completed", limit=5)
            assert all(isinstance(event, PaymentEvent) for event in events.data)

    async def test_payouts_endpoints_and_events(self, gateway: Gateway) -> None:
        async with gateway.async_client() as client:
            funding = await client.payments.create(amount=200, phone="254708374149")
            await client.payments.wait_for_final(funding.id, timeout=20)
            payout = await client.payouts.create(
                amount=20, phone="254708374149", reference=f"async-{uuid.uuid4().hex[:8]}"
            )
            assert (await client.payouts.get(payout.id)).reference == payout.reference
            assert payout.id in [p.id async for p in await client.payouts.list(limit=2)]

            endpoint = await client.webhook_endpoints.create(url="http://127.0.0.1:9/hooks")
            assert endpoint.secret is not None
            assert (await client.webhook_endpoints.get(endpoint.id)).url == endpoint.url
            assert endpoint.id in {e.id for e in await client.webhook_endpoints.list()}
            rotated = await client.webhook_endpoints.rotate_secret(endpoint.id)
            assert rotated.secret not in (None, endpoint.secret)
            await client.webhook_endpoints.delete(endpoint.id)
            with pytest.raises(NotFoundError):
                await client.webhook_endpoints.get(endpoint.id)

            latest = (await client.events.list(limit=1)).data[0]
            assert (await client.events.get(latest.id)).id == latest.id
            secret = await client.callback_secret.get()
            assert secret.secret.startswith("whsec_")

    async def test_errors_are_the_same_classes(self, gateway: Gateway) -> None:
        async with gateway.async_client() as client:
            with pytest.raises(ValidationError) as raised:
                await client.payments.create(amount=0, phone="254708374149")
        assert raised.value.code == "amount_out_of_range"
