"""`pesaswitch ledger check`, run as an operator would, on the suite's database."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from click.testing import Result
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from typer.testing import CliRunner

from pesaswitch.cli import app
from pesaswitch.config import Settings
from pesaswitch.db import transaction
from pesaswitch.ledger import service
from tests.conftest import TEST_SECRET_KEY, create_merchant
from tests.ledger.helpers import fund_wallet


async def ledger_check(settings: Settings) -> Result:
    env = {
        "PESASWITCH_DATABASE_URL": settings.database_url,
        "PESASWITCH_SECRET_KEY": TEST_SECRET_KEY,
        "PESASWITCH_LOG_LEVEL": "warning",
    }
    # In a thread: the command runs its own event loop, as it does from a shell.
    return await asyncio.to_thread(
        CliRunner().invoke, app, ["ledger", "check"], env=env, catch_exceptions=False
    )


async def test_check_passes_then_fails_on_a_corrupted_balance(
    make_settings: Callable[..., Settings], sessions: async_sessionmaker[AsyncSession]
) -> None:
    settings = make_settings()
    merchant = await create_merchant(settings, "Audited shop")
    await fund_wallet(sessions, account_id=merchant.account_id, amount=250)

    clean = await ledger_check(settings)
    assert clean.exit_code == 0, clean.output
    assert clean.stdout.startswith("ledger ok: ")
    assert " entries, " in clean.stdout

    async with sessions() as session:
        wallet_id = (
            await service.wallet_account(session, account_id=merchant.account_id, currency="KES")
        ).id
    corrupt = text("UPDATE ledger_accounts SET balance = balance + :delta WHERE id = :id")
    async with transaction(sessions) as session:
        await session.execute(corrupt, {"delta": 7, "id": wallet_id})
    try:
        broken = await ledger_check(settings)
        assert broken.exit_code == 1
        assert f"account {wallet_id} (wallet:{merchant.account_id}:KES) caches balance 257" in (
            broken.stderr
        )
        assert "all cached balances in KES sum to 7, not 0" in broken.stderr
        assert "ledger broken: 2 breach(es)" in broken.stderr
    finally:
        # The suite shares one database: put it back for the tests that follow.
        async with transaction(sessions) as session:
            await session.execute(corrupt, {"delta": -7, "id": wallet_id})
    assert (await ledger_check(settings)).exit_code == 0
