"""Balance locks do not wait for the KEY SHARE locks of a concurrent postings INSERT.

Found by the chaos run (PostgreSQL, seed 20261207): a deadlock between a reconciler's
entry on the general path (postings INSERT first, which takes KEY SHARE on each of its
ledger accounts for the foreign key, then balance UPDATEs in lock order) and a callback's
fast path, which locked the same balances FOR UPDATE, a lock that conflicts with KEY
SHARE. Both now lock with FOR NO KEY UPDATE, the lock the balance UPDATE itself takes.
Here another transaction holds KEY SHARE on every ledger account while they run.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest
from sqlalchemy import select, text

from pesaswitch.config import SANDBOX_SHORTCODE
from pesaswitch.db import create_engine, create_sessionmaker
from pesaswitch.ledger.accounts import entry_accounts, lock_merchant_accounts
from pesaswitch.ledger.policy import SHARDS
from pesaswitch.payments.models import Payment
from pesaswitch.webhooks.service import callback_secret
from tests.conftest import Gateway, create_merchant
from tests.e2e.test_worker_and_races import callback_body

pytestmark = pytest.mark.postgres_only


async def test_callback_and_wallet_lock_pass_a_postings_key_share(
    gateway_factory: Callable[..., Awaitable[Gateway]],
) -> None:
    # No callback from the simulator (254711990002) and no query for a minute: the
    # callback below is the only settlement.
    gateway = await gateway_factory(reconcile_after=600, stk_receipt_lookup=False)
    merchant = await create_merchant(gateway.settings, "Key share")
    created = await gateway.client.post(
        "/v1/payments", json={"amount": 40, "phone": "254711990002"}, headers=merchant.auth
    )
    assert created.status_code == 201, created.text
    payment = created.json()
    engine = create_engine(gateway.settings)
    sessions = create_sessionmaker(engine)
    try:
        async with sessions() as session:
            token = await session.scalar(
                select(Payment.callback_token).where(Payment.id == payment["id"])
            )
            account_id = await session.scalar(
                select(Payment.account_id).where(Payment.id == payment["id"])
            )
        assert token is not None
        assert account_id is not None
        async with sessions() as session, session.begin():
            # Every row the callback posts to exists before the KEY SHARE is taken.
            for shard in range(SHARDS):
                await entry_accounts(session, account_id=account_id, currency="KES",
                                     shortcode=SANDBOX_SHORTCODE, shard=shard)  # fmt: skip
        async with sessions() as holder, holder.begin():
            # What a postings INSERT holds until its transaction ends.
            await holder.execute(text("SELECT id FROM ledger_accounts FOR KEY SHARE"))
            answer = await asyncio.wait_for(
                gateway.client.post(
                    f"/daraja/stk/{token}",
                    content=callback_body(payment["checkout_request_id"], 0, "UKKEYSH001", 40),
                    headers={"Content-Type": "application/json"},
                ),
                timeout=10,
            )
            assert answer.status_code == 200, answer.text
            async with sessions() as reader:
                credited = await reader.scalar(
                    text("SELECT count(*) FROM journal_entries WHERE reference = :p"),
                    {"p": payment["id"]},
                )
            assert credited == 1  # the wallet was credited: the ledger rows were locked
            async with sessions() as payer, payer.begin():
                await payer.execute(text("SET LOCAL lock_timeout = '2s'"))
                shards, hold = await lock_merchant_accounts(
                    payer, account_id=account_id, currency="KES"
                )
            assert shards
            assert hold.kind == "payout_hold"
    finally:
        await engine.dispose()
    body = (await gateway.client.get(f"/v1/payments/{payment['id']}", headers=merchant.auth)).json()
    assert body["status"] == "completed"
    assert body["mpesa_receipt"] == "UKKEYSH001"


async def test_callback_secret_passes_a_key_share_on_the_account(
    gateway_factory: Callable[..., Awaitable[Gateway]],
) -> None:
    # The dispatcher's FOR UPDATE on the account (signing a callback_url notification)
    # queued behind a callback's event INSERT, which holds KEY SHARE on that account.
    gateway = await gateway_factory()
    merchants = [await create_merchant(gateway.settings, f"Secret {n}") for n in range(2)]
    engine = create_engine(gateway.settings)
    sessions = create_sessionmaker(engine)
    try:
        async with sessions() as session, session.begin():  # one has its secret already
            first = await callback_secret(
                session, secret_key=gateway.settings.secret_key, account_id=merchants[0].account_id
            )
        async with sessions() as holder, holder.begin():
            await holder.execute(text("SELECT id FROM accounts FOR KEY SHARE"))
            for merchant in merchants:
                async with sessions() as signer, signer.begin():
                    await signer.execute(text("SET LOCAL lock_timeout = '2s'"))
                    secret = await callback_secret(
                        signer, secret_key=gateway.settings.secret_key,
                        account_id=merchant.account_id,
                    )  # fmt: skip
                assert secret
        async with sessions() as session, session.begin():
            again = await callback_secret(
                session, secret_key=gateway.settings.secret_key, account_id=merchants[0].account_id
            )
        assert again == first
    finally:
        await engine.dispose()
