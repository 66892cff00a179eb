"""Ledger fixtures: sessions on the suite's database, bound to the ledger policy."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from pesaswitch.config import Settings
from pesaswitch.db import create_engine, create_sessionmaker
from pesaswitch.ledger.policy import bind_ledger_policy


@pytest.fixture
async def sessions(
    make_settings: Callable[..., Settings],
) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    settings = make_settings()
    engine = create_engine(settings)
    maker = create_sessionmaker(engine)
    bind_ledger_policy(maker, settings)
    yield maker
    await engine.dispose()
