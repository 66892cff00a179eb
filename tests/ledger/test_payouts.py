"""The payout helpers: reserve, settle, release, idempotent by key, refused out of order,
and 200 concurrent reservations against a wallet that can afford exactly 100."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from pesaswitch.config import Settings
from pesaswitch.db import transaction
from pesaswitch.errors import InsufficientFunds, LedgerConflict, UnbalancedEntry
from pesaswitch.kit.ids import new_id
from pesaswitch.kit.pagination import PageParams
from pesaswitch.ledger import service
from pesaswitch.ledger.flows import release_payout, reserve_payout, settle_payout
from tests.conftest import create_merchant
from tests.ledger.helpers import (
    assert_sound,
    fees_balance,
    fund_wallet,
    merchant_balance,
    new_shortcode,
    settlement_balance,
)

Sessions = async_sessionmaker[AsyncSession]


async def funded_merchant(settings: Settings, sessions: Sessions, amount: int) -> str:
    merchant = await create_merchant(settings, "Payout shop")
    await fund_wallet(sessions, account_id=merchant.account_id, amount=amount)
    return merchant.account_id


async def test_reserve_then_settle(
    make_settings: Callable[..., Settings], sessions: Sessions
) -> None:
    account_id = await funded_merchant(make_settings(), sessions, 1000)
    shortcode, payout = new_shortcode(), new_id("po")
    fees_before = await fees_balance(sessions)
    step = {
        "payout_id": payout,
        "account_id": account_id,
        "currency": "KES",
        "amount": 500,
        "fee": 15,
    }

    async with transaction(sessions) as session:
        assert await reserve_payout(session, **step) is not None
    assert await merchant_balance(sessions, account_id) == {"available": 485, "reserved": 515}
    async with transaction(sessions) as session:
        assert await reserve_payout(session, **step) is None  # same key: already done
    assert await merchant_balance(sessions, account_id) == {"available": 485, "reserved": 515}

    for _ in range(2):  # the second settle is a no-op
        async with transaction(sessions) as session:
            await settle_payout(session, **step, shortcode=shortcode)
        assert await merchant_balance(sessions, account_id) == {"available": 485, "reserved": 0}
        assert await fees_balance(sessions) == fees_before + 15
        async with sessions() as session:
            assert await settlement_balance(session, shortcode) == 500

    with pytest.raises(LedgerConflict, match="already settled"):
        async with transaction(sessions) as session:
            await release_payout(session, **step)
    assert await merchant_balance(sessions, account_id) == {"available": 485, "reserved": 0}
    await assert_sound(sessions)

    async with sessions() as session:
        entries = await service.list_entries(session, account_id=account_id, page=PageParams())
    assert [e.entry.kind for e in entries] == ["payout_settle", "payout_reserve", "adjustment"]
    # Only the merchant's own side of each entry.
    assert [[(a.kind, p.amount) for p, a in e.lines] for e in entries] == [
        [("payout_hold", -515)],
        [("wallet", -515), ("payout_hold", 515)],
        [("wallet", 1000)],
    ]
    # The operator's side of each, by kind: no shortcode or account id, and every entry
    # with it sums to zero.
    assert [e.balancing for e in entries] == [
        [("settlement", "KES", 500), ("fees", "KES", 15)],
        [],
        [("settlement", "KES", -1000)],
    ]
    for e in entries:
        assert sum(p.amount for p, _ in e.lines) + sum(t for *_, t in e.balancing) == 0


async def test_reserve_then_release(
    make_settings: Callable[..., Settings], sessions: Sessions
) -> None:
    account_id = await funded_merchant(make_settings(), sessions, 300)
    step = {
        "payout_id": new_id("po"),
        "account_id": account_id,
        "currency": "KES",
        "amount": 200,
        "fee": 15,
    }
    async with transaction(sessions) as session:
        await reserve_payout(session, **step)
    for _ in range(2):
        async with transaction(sessions) as session:
            await release_payout(session, **step)
        assert await merchant_balance(sessions, account_id) == {"available": 300, "reserved": 0}
    with pytest.raises(LedgerConflict, match="already released"):
        async with transaction(sessions) as session:
            await settle_payout(session, **step, shortcode=new_shortcode())
    await assert_sound(sessions)


async def test_out_of_order_and_mismatched_steps_are_refused(
    make_settings: Callable[..., Settings], sessions: Sessions
) -> None:
    account_id = await funded_merchant(make_settings(), sessions, 1000)
    base = {"account_id": account_id, "currency": "KES", "amount": 100, "fee": 10}
    never = new_id("po")
    with pytest.raises(LedgerConflict, match="no reserved funds"):
        async with transaction(sessions) as session:
            await settle_payout(session, payout_id=never, **base, shortcode="600100")
    with pytest.raises(LedgerConflict, match="no reserved funds"):
        async with transaction(sessions) as session:
            await release_payout(session, payout_id=never, **base)

    payout = new_id("po")
    async with transaction(sessions) as session:
        await reserve_payout(session, payout_id=payout, **base)
    with pytest.raises(LedgerConflict, match="other amounts"):
        async with transaction(sessions) as session:
            await reserve_payout(session, payout_id=payout, **{**base, "amount": 101})
    with pytest.raises(LedgerConflict, match="reserved 110, not 111"):
        async with transaction(sessions) as session:
            await settle_payout(
                session, payout_id=payout, **{**base, "fee": 11}, shortcode="600100"
            )
    assert await merchant_balance(sessions, account_id) == {"available": 890, "reserved": 110}
    await assert_sound(sessions)


async def test_insufficient_funds_leaves_nothing_behind(
    make_settings: Callable[..., Settings], sessions: Sessions
) -> None:
    account_id = await funded_merchant(make_settings(), sessions, 100)
    payout = new_id("po")
    async with transaction(sessions) as session:
        with pytest.raises(InsufficientFunds) as caught:
            await reserve_payout(
                session, payout_id=payout, account_id=account_id, currency="KES",
                amount=90, fee=11,
            )  # fmt: skip
        # The caller carries on and commits: the savepoint took everything back.
    assert caught.value.code == "insufficient_funds"
    assert caught.value.status_code == 422
    assert caught.value.extra == {"currency": "KES", "available": 100}
    async with sessions() as session:
        assert await service.entry_by_key(session, key=f"payout:{payout}:reserve") is None
    assert await merchant_balance(sessions, account_id) == {"available": 100, "reserved": 0}
    await assert_sound(sessions)


async def test_unbalanced_entries_and_negative_balances_are_refused(
    make_settings: Callable[..., Settings], sessions: Sessions
) -> None:
    account_id = await funded_merchant(make_settings(), sessions, 50)
    async with transaction(sessions) as session:
        wallet = await service.wallet_account(session, account_id=account_id, currency="KES")
        hold = await service.hold_account(session, account_id=account_id, currency="KES")
        for postings in ([(wallet, -5), (hold, 4)], [(wallet, 5)], [(wallet, 0), (hold, 0)]):
            with pytest.raises(UnbalancedEntry):
                await service.post_entry(
                    session, key=new_id("k"), kind="adjustment", description="", postings=postings
                )
        wallet_id = wallet.id
    # The database itself refuses a negative wallet, whatever the code does.
    with pytest.raises(IntegrityError):
        async with transaction(sessions) as session:
            await session.execute(
                text("UPDATE ledger_accounts SET balance = -1 WHERE id = :id"), {"id": wallet_id}
            )
    async with sessions() as session:
        entries = await service.list_entries(session, account_id=account_id, page=PageParams())
    assert [e.entry.kind for e in entries] == ["adjustment"]  # only the funding
    await assert_sound(sessions)


async def test_200_concurrent_reserves_against_a_wallet_for_100(
    make_settings: Callable[..., Settings], sessions: Sessions
) -> None:
    account_id = await funded_merchant(make_settings(), sessions, 100 * 25)

    payouts = [new_id("po") for _ in range(200)]

    async def reserve(payout_id: str) -> str:
        try:
            async with transaction(sessions) as session:
                await reserve_payout(
                    session, payout_id=payout_id, account_id=account_id,
                    currency="KES", amount=20, fee=5,
                )  # fmt: skip
        except InsufficientFunds:
            return "refused"
        return "reserved"

    outcomes = await asyncio.gather(*(reserve(p) for p in payouts))
    assert outcomes.count("reserved") == 100
    assert outcomes.count("refused") == 100
    assert await merchant_balance(sessions, account_id) == {"available": 0, "reserved": 2500}
    async with sessions() as session:
        entries = await service.list_entries(
            session, account_id=account_id, page=PageParams(limit=100)
        )
        assert len(entries) == 101  # 100 reserves and the funding (limit + 1)
    await assert_sound(sessions)
