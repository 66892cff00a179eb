"""A deadlock PostgreSQL breaks by aborting one transaction: the writer that nobody
else will retry (Daraja's callback) runs it again, and anywhere else it is a 503
``transaction_conflict`` with Retry-After, never a 500 with a traceback.

Found by the chaos run (PostgreSQL, seed 20261207): a callback that lost a deadlock in
the ledger was answered 500, its traceback logged, and the payment left to the
reconciler's query.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from pesaswitch.db import retry_on_conflict
from pesaswitch.errors import TransactionConflict, database_outage
from tests.kit.test_database_outage import app_raising, get

pytestmark = pytest.mark.postgres_only


async def _two_rows(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.execute(text("DROP TABLE IF EXISTS conflict_rows"))
        await conn.execute(text("CREATE TABLE conflict_rows (id int PRIMARY KEY, v int)"))
        await conn.execute(text("INSERT INTO conflict_rows VALUES (1, 0), (2, 0)"))


async def _deadlock(engine: AsyncEngine, attempts: int) -> tuple[list[str], list[object]]:
    """Two transactions updating rows 1 and 2 in opposite orders, each waiting until
    the other holds its first row (only on their first run)."""
    tries: list[str] = []
    outcome: list[object] = []
    holding = {"a": asyncio.Event(), "b": asyncio.Event()}

    def transaction(name: str, first: int, second: int) -> Callable[[], Awaitable[str]]:
        async def run() -> str:
            tries.append(name)
            async with engine.begin() as conn:
                await conn.execute(
                    text("UPDATE conflict_rows SET v = v + 1 WHERE id = :i"), {"i": first}
                )
                if tries.count(name) == 1:
                    holding[name].set()
                    await holding["b" if name == "a" else "a"].wait()
                await conn.execute(
                    text("UPDATE conflict_rows SET v = v + 1 WHERE id = :i"), {"i": second}
                )
            return name

        return run

    async def guarded(name: str, first: int, second: int) -> None:
        try:
            run = transaction(name, first, second)
            outcome.append(await retry_on_conflict(run, attempts=attempts))
        except Exception as exc:  # the point is to see it
            outcome.append(exc)

    await asyncio.wait_for(asyncio.gather(guarded("a", 1, 2), guarded("b", 2, 1)), 30)
    return tries, outcome


async def test_a_deadlocked_transaction_is_run_again(database_url: str) -> None:
    engine = create_async_engine(database_url)
    try:
        await _two_rows(engine)
        tries, outcome = await _deadlock(engine, attempts=3)
        assert sorted(outcome, key=str) == ["a", "b"]  # both applied in the end
        assert len(tries) == 3  # the one PostgreSQL aborted ran again
        async with engine.connect() as conn:
            values = (await conn.execute(text("SELECT v FROM conflict_rows ORDER BY id"))).all()
        assert [v for (v,) in values] == [2, 2]  # each once: the aborted run wrote nothing
    finally:
        await engine.dispose()


@pytest.mark.parametrize("vendor", [False, True])
async def test_a_deadlock_not_retried_is_a_503(database_url: str, vendor: bool) -> None:
    engine = create_async_engine(database_url)
    try:
        await _two_rows(engine)
        _tries, outcome = await _deadlock(engine, attempts=1)
    finally:
        await engine.dispose()
    [deadlock] = [o for o in outcome if isinstance(o, Exception)]
    assert isinstance(database_outage(deadlock), TransactionConflict)
    # As asyncpg raises it, unwrapped, on the hot paths' own statements.
    from asyncpg.exceptions import DeadlockDetectedError

    assert isinstance(database_outage(DeadlockDetectedError("deadlock")), TransactionConflict)
    answer = await get(app_raising(deadlock, vendor=vendor))
    assert answer.status_code == 503
    assert answer.headers["retry-after"] == "1"
    body = answer.json()
    assert (body["error"] if vendor else body["code"]) == "transaction_conflict"
