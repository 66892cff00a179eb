"""The ledger's identity cache: only committed rows reach it, never a rolled-back one
(an outer rollback, a SAVEPOINT's rollback, a SAVEPOINT released in a transaction that
then rolls back), and a cached lookup posts to the same rows without reading them."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from pesaswitch.config import Settings
from pesaswitch.db import transaction
from pesaswitch.ledger import idcache
from pesaswitch.ledger.accounts import entry_accounts
from tests.conftest import create_merchant
from tests.ledger.helpers import new_shortcode


class _Rollback(Exception):
    pass


async def _accounts(session: AsyncSession, account_id: str, shortcode: str) -> list[str]:
    found = await entry_accounts(
        session, account_id=account_id, currency="KES", shortcode=shortcode, shard=3
    )
    return [account.key for account in found]


def _cached(keys: list[str], sessions: async_sessionmaker[AsyncSession]) -> bool:
    engine = sessions.kw["bind"]
    return all(idcache.cache.get(engine.url, key) is not None for key in keys)


async def _rolled_back(sessions: async_sessionmaker[AsyncSession], account_id: str,
                       shortcode: str) -> list[str]:  # fmt: skip
    async with transaction(sessions) as session:
        keys = await _accounts(session, account_id, shortcode)
        raise _Rollback(keys)


async def _released_then_rolled_back(
    sessions: async_sessionmaker[AsyncSession], account_id: str, shortcode: str
) -> None:
    async with transaction(sessions) as session:
        async with session.begin_nested():
            await _accounts(session, account_id, shortcode)
        raise _Rollback  # the SAVEPOINT was released, the transaction is not


async def _savepoint_rolled_back(session: AsyncSession, account_id: str, shortcode: str) -> None:
    async with session.begin_nested():
        await _accounts(session, account_id, shortcode)
        raise _Rollback


async def test_only_committed_rows_are_cached(
    sessions: async_sessionmaker[AsyncSession], make_settings: Callable[..., Settings]
) -> None:
    merchant = await create_merchant(make_settings(), "Cache shop")
    shortcode = new_shortcode()

    with pytest.raises(_Rollback) as raised:
        await _rolled_back(sessions, merchant.account_id, shortcode)
    keys: list[str] = raised.value.args[0]
    assert len(keys) == 4
    assert not _cached(keys, sessions)

    with pytest.raises(_Rollback):
        await _released_then_rolled_back(sessions, merchant.account_id, shortcode)
    assert not _cached(keys, sessions)

    async with transaction(sessions) as session:
        with pytest.raises(_Rollback):
            await _savepoint_rolled_back(session, merchant.account_id, shortcode)
    assert not _cached(keys, sessions)

    async with transaction(sessions) as session:
        created = await entry_accounts(
            session, account_id=merchant.account_id, currency="KES", shortcode=shortcode, shard=3
        )
    assert _cached(keys, sessions)

    async with transaction(sessions) as session:
        again = await entry_accounts(
            session, account_id=merchant.account_id, currency="KES", shortcode=shortcode, shard=3
        )
        assert [a.id for a in again] == [a.id for a in created]
        assert [a.kind for a in again] == [a.kind for a in created]
        assert not any(account in session for account in again)  # nothing was read


async def test_a_closed_transaction_leaves_nothing_to_cache(
    sessions: async_sessionmaker[AsyncSession], make_settings: Callable[..., Settings]
) -> None:
    merchant = await create_merchant(make_settings(), "Cache shop")
    shortcode = new_shortcode()
    async with sessions() as session:
        await session.begin()
        keys = await _accounts(session, merchant.account_id, shortcode)
        await session.close()  # no commit: the rows it made are gone
        async with session.begin():
            pass  # a later commit of the same session caches nothing of the first
    assert not _cached(keys, sessions)
