"""A migrated SQLite file is already in WAL mode, so the first connections of its processes
only read the mode and never race to switch it: a switch that meets another connection's
shared lock fails at once with "database is locked", whatever the busy timeout (CI saw it
on a fresh copy of the suite's template, two webhook tests failing at their first write)."""

from __future__ import annotations

import asyncio
import sqlite3
from contextlib import closing
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from pesaswitch.config import Settings
from pesaswitch.db import create_engine
from pesaswitch.migrate import upgrade


def journal_mode(path: Path) -> str:
    with closing(sqlite3.connect(path)) as connection:
        mode: str = connection.execute("PRAGMA journal_mode").fetchone()[0]
    return mode


def test_a_migrated_database_is_in_wal_mode_before_any_gateway_connection(tmp_path: Path) -> None:
    path = tmp_path / "fresh.db"
    upgrade(Settings(database_url=f"sqlite+aiosqlite:///{path}"))
    # A bare connection that sets nothing reads the mode the file records.
    assert journal_mode(path) == "wal"


async def first_reads(engine: AsyncEngine) -> int:
    """A new engine's first connection (the journal mode pragma), then ten reads on it."""
    async with engine.connect() as connection:
        counts = [
            (await connection.execute(text("SELECT count(*) FROM accounts"))).scalar_one()
            for _ in range(10)
        ]
    return sum(counts)


async def test_many_first_connections_of_a_migrated_copy_all_open(tmp_path: Path) -> None:
    template = tmp_path / "template.db"
    await asyncio.to_thread(upgrade, Settings(database_url=f"sqlite+aiosqlite:///{template}"))
    for round_number in range(20):
        copy = tmp_path / f"copy_{round_number}.db"
        copy.write_bytes(template.read_bytes())
        engines = [
            create_engine(Settings(database_url=f"sqlite+aiosqlite:///{copy}")) for _ in range(8)
        ]
        try:
            results = await asyncio.gather(*(first_reads(engine) for engine in engines))
        finally:
            for engine in engines:
                await engine.dispose()
        assert results == [0] * len(engines)
        assert journal_mode(copy) == "wal"
