"""Funding wallets and reading balances for ledger tests, through the real services."""

from __future__ import annotations

import secrets

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from pesaswitch.db import transaction
from pesaswitch.kit.ids import new_id
from pesaswitch.ledger import service
from pesaswitch.ledger.models import LedgerAccount, LedgerAccountKind

# Payouts and test funding go through a shortcode of their own, apart from the gateway's.
TEST_SHORTCODE = "600999"


def new_shortcode() -> str:
    return str(secrets.randbelow(9_000_000) + 1_000_000)


async def fund_wallet(
    sessions: async_sessionmaker[AsyncSession],
    *,
    account_id: str,
    amount: int,
    currency: str = "KES",
    shortcode: str = TEST_SHORTCODE,
) -> None:
    """Money in from outside the ledger, like a collection without a fee."""
    async with transaction(sessions) as session:
        wallet = await service.wallet_account(session, account_id=account_id, currency=currency)
        settlement = await service.settlement_account(
            session, shortcode=shortcode, currency=currency
        )
        entry = await service.post_entry(
            session, key=f"test-fund:{new_id('t')}", kind="adjustment",
            description="test funding", postings=[(settlement, -amount), (wallet, amount)],
        )  # fmt: skip
        assert entry is not None


async def balance_of(session: AsyncSession, key: str) -> int:
    """The cached balance of a ledger account by its natural key (0 before it exists)."""
    value = await session.scalar(select(LedgerAccount.balance).where(LedgerAccount.key == key))
    return int(value or 0)


async def merchant_balance(
    sessions: async_sessionmaker[AsyncSession], account_id: str, currency: str = "KES"
) -> dict[str, int]:
    async with sessions() as session:
        found = await service.balances(session, account_id=account_id)
    return found.get(currency, {"available": 0, "reserved": 0})


async def fees_balance(sessions: async_sessionmaker[AsyncSession], currency: str = "KES") -> int:
    """The operator's fees: the sum of every shard."""
    async with sessions() as session:
        return await service.system_balance(session, kind=LedgerAccountKind.FEES, currency=currency)


async def settlement_balance(session: AsyncSession, shortcode: str, currency: str = "KES") -> int:
    """One shortcode's settlement account: the sum of every shard."""
    return await service.system_balance(
        session, kind=LedgerAccountKind.SETTLEMENT, currency=currency, shortcode=shortcode
    )


async def assert_sound(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions() as session:
        assert await service.check_invariants(session) == []
