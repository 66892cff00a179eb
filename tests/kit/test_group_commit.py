"""SQLite group commit (kit/group_commit.py): a commit returns only after an fsync of the
WAL that began after it, and concurrent writers share fsyncs."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

from sqlalchemy import text

from pesaswitch.config import Settings
from pesaswitch.db import create_engine, create_sessionmaker, group_commit_of, read_sessions
from pesaswitch.kit.group_commit import Durability


def _settings(tmp_path: Path, mode: str) -> Settings:
    return Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'group.db'}",
        secret_key="x" * 32,
        sqlite_commit=mode,
    )


async def test_concurrent_writers_share_fsyncs_and_every_row_is_there(tmp_path: Path) -> None:
    engine = create_engine(_settings(tmp_path, "group"))
    sessions = create_sessionmaker(engine)
    try:
        async with sessions() as session, session.begin():
            await session.execute(text("CREATE TABLE t (n INTEGER PRIMARY KEY)"))
            mode = await session.scalar(text("PRAGMA synchronous"))
        assert mode == 1  # NORMAL: the flush is ours

        async def write(n: int) -> None:
            async with sessions() as session, session.begin():
                await session.execute(text("INSERT INTO t (n) VALUES (:n)"), {"n": n})

        await asyncio.gather(*(write(n) for n in range(40)))
        group = group_commit_of(engine)
        assert group is not None
        durability = group.for_running_loop()
        assert durability.commits == 41
        assert 1 <= durability.flushes < durability.commits
        assert group.wal.exists()

        # A read-only transaction writes nothing and waits for no flush.
        async with read_sessions(sessions)() as session:
            assert await session.scalar(text("SELECT count(*) FROM t")) == 40
        assert durability.commits == 41
    finally:
        await engine.dispose()


async def test_full_mode_leaves_durability_to_sqlite(tmp_path: Path) -> None:
    engine = create_engine(_settings(tmp_path, "full"))
    try:
        async with create_sessionmaker(engine)() as session:
            assert await session.scalar(text("PRAGMA synchronous")) == 2  # FULL
        assert group_commit_of(engine) is None
    finally:
        await engine.dispose()


async def test_a_commit_during_a_flush_waits_for_the_next_one(tmp_path: Path) -> None:
    # Each flush is held open (a slow disk) until the test lets it finish, to see whom
    # it releases.
    running = [threading.Event(), threading.Event()]
    finish = [threading.Event(), threading.Event()]
    calls: list[int] = []

    def slow_flush(_path: Path) -> bool:
        n = len(calls)
        calls.append(n)
        running[n].set()
        assert finish[n].wait(5)
        return True

    durability = Durability(tmp_path / "db-wal", flush=slow_flush)
    first = asyncio.create_task(durability.wait())
    assert await asyncio.to_thread(running[0].wait, 5)  # the first flush has begun
    second = asyncio.create_task(durability.wait())  # committed after it began
    third = asyncio.create_task(durability.wait())
    await asyncio.sleep(0.05)
    finish[0].set()
    await asyncio.wait_for(first, 5)
    # The first flush may have missed them.
    assert not second.done()
    assert not third.done()
    assert await asyncio.to_thread(running[1].wait, 5)
    finish[1].set()
    await asyncio.wait_for(asyncio.gather(second, third), 5)
    assert calls == [0, 1]  # the two later commits shared one flush
    assert (durability.commits, durability.flushes) == (3, 2)
