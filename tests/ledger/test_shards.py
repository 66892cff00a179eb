"""Fees, settlement and wallets are spread over shards: collections racing in parallel land
on several rows, the shards sum to what one account would hold, a payout takes from as
many wallet shards as it needs and never more than their total, and the ledger stays
sound."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from pesaswitch.accounts import service as accounts
from pesaswitch.accounts.models import Environment
from pesaswitch.db import transaction
from pesaswitch.errors import InsufficientFunds
from pesaswitch.kit.ids import new_id
from pesaswitch.kit.pagination import PageParams
from pesaswitch.ledger import service
from pesaswitch.ledger.fees import collection_fee
from pesaswitch.ledger.flows import credit_collection, release_payout, reserve_payout
from pesaswitch.ledger.models import LedgerAccount, LedgerAccountKind
from pesaswitch.ledger.policy import SHARDS
from pesaswitch.ledger.schemas import LedgerEntryOut
from tests.ledger.helpers import (
    assert_sound,
    fees_balance,
    merchant_balance,
    new_shortcode,
    settlement_balance,
)

SECRET = "ledger-shard-tests-secret-0123456789"


async def new_account(sessions: async_sessionmaker[AsyncSession]) -> str:
    async with transaction(sessions) as session:
        created = await accounts.create_account(
            session, secret_key=SECRET, name="Shard shop", environment=Environment.SANDBOX
        )
        return created.account.id


async def collect(
    sessions: async_sessionmaker[AsyncSession],
    *,
    account_id: str,
    shortcode: str,
    receipt: str,
    amount: int,
) -> bool:
    async with transaction(sessions) as session:
        entry = await credit_collection(
            session, payment_id=new_id("pay"), account_id=account_id, amount=amount,
            receipt=receipt, shortcode=shortcode,
        )  # fmt: skip
        return entry is not None


def test_shard_for_is_stable_and_in_range() -> None:
    keys = [f"collection:R{n:08d}" for n in range(2000)]
    shards = [service.shard_for(key) for key in keys]
    assert shards == [service.shard_for(key) for key in keys]
    assert set(shards) == set(range(SHARDS))  # 2,000 keys reach every shard
    assert {service.shard_for(key, 1) for key in keys} == {0}


async def test_parallel_collections_spread_over_shards_and_sum_up(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    account_id, shortcode = await new_account(sessions), new_shortcode()
    fees_before = await fees_balance(sessions)
    amounts = [100 + 37 * n for n in range(40)]
    receipts = [f"SH{new_id('r')[-8:]}{n:02d}" for n in range(len(amounts))]

    # All at once: on PostgreSQL they contend for the same rows; a lock-order mistake
    # would show up as a deadlock error here.
    posted = await asyncio.gather(
        *(
            collect(sessions, account_id=account_id, shortcode=shortcode, receipt=r, amount=a)
            for r, a in zip(receipts, amounts, strict=True)
        )
    )
    assert all(posted)

    fees = sum(collection_fee(a) for a in amounts)
    async with sessions() as session:
        shards = await session.scalar(
            select(func.count())
            .select_from(LedgerAccount)
            .where(
                LedgerAccount.kind == LedgerAccountKind.SETTLEMENT.value,
                LedgerAccount.shortcode == shortcode,
            )
        )
        assert shards is not None
        assert 1 < shards <= SHARDS
        assert await settlement_balance(session, shortcode) == -sum(amounts)
        found = await service.balances(session, account_id=account_id)
    assert found["KES"] == {"available": sum(amounts) - fees, "reserved": 0}
    assert await fees_balance(sessions) == fees_before + fees
    await assert_sound(sessions)

    # A repeated receipt posts nothing, whichever shard it maps to.
    again = await asyncio.gather(
        *(
            collect(sessions, account_id=account_id, shortcode=shortcode, receipt=r, amount=a)
            for r, a in zip(receipts[:10], amounts[:10], strict=True)
        )
    )
    assert not any(again)
    async with sessions() as session:
        assert await settlement_balance(session, shortcode) == -sum(amounts)
    await assert_sound(sessions)


async def test_shard_zero_keeps_the_original_key(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    shortcode = new_shortcode()
    async with transaction(sessions) as session:
        first = await service.settlement_account(session, shortcode=shortcode, currency="KES")
        third = await service.settlement_account(
            session, shortcode=shortcode, currency="KES", shard=3
        )
        fees = await service.fees_account(session, currency="KES")
    assert first.key == f"settlement:{shortcode}:KES"
    assert third.key == f"settlement:{shortcode}:KES#3"
    assert fees.key == "fees:KES"
    assert first.id != third.id


async def wallet_shards(sessions: async_sessionmaker[AsyncSession], account_id: str) -> list[int]:
    async with sessions() as session:
        rows = await session.scalars(
            select(LedgerAccount.balance).where(
                LedgerAccount.account_id == account_id,
                LedgerAccount.kind == LedgerAccountKind.WALLET.value,
            )
        )
        return sorted(rows)


async def test_a_payout_takes_from_several_wallet_shards_and_never_overdraws(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    account_id, shortcode = await new_account(sessions), new_shortcode()
    for n in range(24):
        assert await collect(
            sessions, account_id=account_id, shortcode=shortcode,
            receipt=f"WS{new_id('r')[-8:]}{n:02d}", amount=1000,
        )  # fmt: skip
    shards = await wallet_shards(sessions, account_id)
    assert len(shards) > 1  # 24 receipts spread over several wallet rows
    available = sum(shards)
    assert available == 24 * (1000 - collection_fee(1000))

    # More than any one shard holds, less than all of them: taken from several.
    amount = max(shards) + 1
    payout = new_id("po")
    async with transaction(sessions) as session:
        entry = await reserve_payout(
            session, payout_id=payout, account_id=account_id, currency="KES",
            amount=amount, fee=0,
        )  # fmt: skip
        assert entry is not None
    assert await merchant_balance(sessions, account_id) == {
        "available": available - amount,
        "reserved": amount,
    }
    assert min(await wallet_shards(sessions, account_id)) >= 0

    # The merchant sees one wallet line for it, whatever shards it took from.
    async with sessions() as session:
        rows = await service.list_entries(
            session, account_id=account_id, page=PageParams(limit=1, starting_after=None)
        )
    shown = LedgerEntryOut.render(rows[0]).postings
    assert [(p.account, p.amount) for p in shown] == [("wallet", -amount), ("payout_hold", amount)]

    # A repeat of the same reservation moves nothing, however the shards now split.
    async with transaction(sessions) as session:
        assert await reserve_payout(
            session, payout_id=payout, account_id=account_id, currency="KES",
            amount=amount, fee=0,
        ) is None  # fmt: skip

    # One shilling more than the wallet's total is refused, and nothing moves.
    async with transaction(sessions) as session:
        with pytest.raises(InsufficientFunds) as refused:
            await reserve_payout(
                session, payout_id=new_id("po"), account_id=account_id, currency="KES",
                amount=available - amount + 1, fee=0,
            )  # fmt: skip
    assert refused.value.extra == {"currency": "KES", "available": available - amount}
    async with transaction(sessions) as session:
        await release_payout(
            session, payout_id=payout, account_id=account_id, currency="KES",
            amount=amount, fee=0,
        )  # fmt: skip
    assert await merchant_balance(sessions, account_id) == {"available": available, "reserved": 0}
    await assert_sound(sessions)


async def test_racing_payouts_never_take_more_than_the_wallet(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    account_id, shortcode = await new_account(sessions), new_shortcode()
    for n in range(16):
        assert await collect(
            sessions, account_id=account_id, shortcode=shortcode,
            receipt=f"RP{new_id('r')[-8:]}{n:02d}", amount=100,
        )  # fmt: skip
    available = sum(await wallet_shards(sessions, account_id))

    async def reserve(amount: int) -> bool:
        try:
            async with transaction(sessions) as session:
                await reserve_payout(
                    session, payout_id=new_id("po"), account_id=account_id,
                    currency="KES", amount=amount, fee=0,
                )  # fmt: skip
        except InsufficientFunds:
            return False
        return True

    # Ten payouts of 30% each, at once: exactly three fit.
    share = available * 3 // 10
    done = await asyncio.gather(*(reserve(share) for _ in range(10)))
    assert sum(done) == 3
    assert await merchant_balance(sessions, account_id) == {
        "available": available - 3 * share,
        "reserved": 3 * share,
    }
    assert min(await wallet_shards(sessions, account_id)) >= 0
    await assert_sound(sessions)
