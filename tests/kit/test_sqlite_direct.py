"""SQLite's hot path on a connection of its own (``pesaswitch/sqlite_direct.py``): it stores
rows exactly as the ORM does, a transaction commits or rolls back whole, and its writers
take turns with the sessions' writers of the same process without meeting SQLite's lock.

Each test migrates a file of its own, so these run in the SQLite pass only."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator
from contextlib import closing
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from pesaswitch.app import create_app
from pesaswitch.config import Settings
from pesaswitch.db import create_engine, create_sessionmaker, transaction
from pesaswitch.kit.clock import utcnow
from pesaswitch.kit.ids import new_id
from pesaswitch.migrate import upgrade
from pesaswitch.payments import store_push
from pesaswitch.sqlite_direct import close_direct, codec, direct_of
from pesaswitch.webhooks.models import Event
from tests.conftest import TEST_SECRET_KEY, create_merchant

# Columns that differ between two payments however they were stored.
_OWN = {"id", "callback_token", "checkout_request_id", "merchant_request_id", "reference",
        "created_at", "updated_at", "next_query_at"}  # fmt: skip


def _settings(path: Path) -> Settings:
    return Settings(
        database_url=f"sqlite+aiosqlite:///{path}", secret_key=TEST_SECRET_KEY,
        simulator_delay=0.0, reconcile_after=3600, log_level="warning",
        stk_protection=False,
    )  # fmt: skip


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    settings = _settings(tmp_path / "direct.db")
    await asyncio.to_thread(upgrade, settings)  # it runs an event loop of its own
    made = create_engine(settings)
    yield made
    close_direct(made)
    await made.dispose()


def _raw(path: Path, sql: str, *params: Any) -> list[dict[str, Any]]:
    with closing(sqlite3.connect(path)) as connection:
        connection.row_factory = sqlite3.Row
        return [dict(row) for row in connection.execute(sql, params)]


async def test_a_payment_it_creates_is_stored_as_the_orm_stores_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "twins.db"
    settings = _settings(path)
    await asyncio.to_thread(upgrade, settings)  # it runs an event loop of its own
    merchant = await create_merchant(settings)
    app = create_app(settings)
    body = {"amount": 125, "phone": "254711990002", "description": "Order 7",
            "metadata": {"order": 7, "lines": ["a", "b"]}}  # fmt: skip
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw") as client,
    ):
        hot = await client.post("/v1/payments", json=body,
                                headers={**merchant.auth, "Idempotency-Key": "twin-1"})  # fmt: skip
        # The same request through the ORM: the switch the initiation reads, turned off.
        monkeypatch.setattr(store_push, "has_hot_path", lambda _engine: False)
        orm = await client.post("/v1/payments", json=body,
                                headers={**merchant.auth, "Idempotency-Key": "twin-2"})  # fmt: skip
        assert direct_of(app.state.runtime.engine) is not None
    assert hot.status_code == orm.status_code == 201, (hot.text, orm.text)

    rows = {row["id"]: row for row in _raw(path, "SELECT * FROM payments")}
    by_hot, by_orm = rows[hot.json()["id"]], rows[orm.json()["id"]]
    assert {k: v for k, v in by_hot.items() if k not in _OWN} == {
        k: v for k, v in by_orm.items() if k not in _OWN
    }
    # Stored in the ORM's formats: JSON text, times with microseconds.
    assert by_hot["metadata"] == '{"order": 7, "lines": ["a", "b"]}'
    assert len(by_hot["created_at"]) == len("2026-12-04 10:10:10.000000")
    assert by_hot["push_state"] == "accepted"
    keys = {row["key"]: row for row in _raw(path, "SELECT * FROM idempotency_keys")}
    hot_key, orm_key = keys["twin-1"], keys["twin-2"]
    assert (hot_key["state"], hot_key["response_status"]) == ("done", 201)
    assert {k: v for k, v in hot_key.items() if k not in {"id", "key", "resource_id",
            "response_body", "created_at"}} == {
        k: v for k, v in orm_key.items()
        if k not in {"id", "key", "resource_id", "response_body", "created_at"}
    }  # fmt: skip


def _event(account_id: str, n: int) -> dict[str, Any]:
    return {"id": new_id("evt"), "account_id": account_id, "type": "payment.completed",
            "object_id": f"pay_{n}", "payload": "{}", "created_at": utcnow()}  # fmt: skip


async def _account(engine: AsyncEngine, tmp_path: Path) -> str:
    return (await create_merchant(_settings(tmp_path / "direct.db"))).account_id


async def _events(engine: AsyncEngine) -> int:
    async with create_sessionmaker(engine)() as session:
        count: int = await session.scalar(select(func.count()).select_from(Event)) or 0
    return count


async def test_its_writers_and_the_sessions_writers_take_turns(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    account_id = await _account(engine, tmp_path)
    direct = direct_of(engine)
    assert direct is not None
    sessions = create_sessionmaker(engine)

    async def by_direct(n: int) -> None:
        await direct.write(lambda sqlite: codec("events").insert(sqlite, [_event(account_id, n)]))

    async def by_session(n: int) -> None:
        async with transaction(sessions) as session:
            session.add(Event(**_event(account_id, n)))

    await asyncio.gather(*(by_direct(n) if n % 2 else by_session(n) for n in range(60)))
    assert await _events(engine) == 60
    # Read back through the ORM as it wrote them: a datetime, not text.
    async with sessions() as session:
        times = (await session.scalars(select(Event.created_at))).all()
    assert {type(t).__name__ for t in times} == {"datetime"}


async def test_a_write_that_raises_leaves_nothing(engine: AsyncEngine, tmp_path: Path) -> None:
    account_id = await _account(engine, tmp_path)
    direct = direct_of(engine)
    assert direct is not None

    def insert_then_fail(sqlite: sqlite3.Connection) -> None:
        codec("events").insert(sqlite, [_event(account_id, 1)])
        raise ValueError("changed its mind")

    with pytest.raises(ValueError, match="changed its mind"):
        await direct.write(insert_then_fail)
    assert await _events(engine) == 0
    await direct.write(lambda sqlite: codec("events").insert(sqlite, [_event(account_id, 2)]))
    assert await _events(engine) == 1


async def test_a_cancelled_write_finishes_before_the_next_writer_starts(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    account_id = await _account(engine, tmp_path)
    direct = direct_of(engine)
    assert direct is not None
    finished: list[float] = []

    def slow(sqlite: sqlite3.Connection) -> None:
        codec("events").insert(sqlite, [_event(account_id, 1)])
        time.sleep(0.3)  # in the thread, holding SQLite's write lock
        finished.append(time.monotonic())

    task = asyncio.create_task(direct.write(slow))
    await asyncio.sleep(0.05)
    task.cancel()
    # The session's writer gets SQLite's lock (its BEGIN IMMEDIATE, at its first
    # statement) only once the thread has committed the cancelled caller's work.
    async with transaction(create_sessionmaker(engine)) as session:
        await session.execute(select(1))
        started = time.monotonic()
        session.add(Event(**_event(account_id, 2)))
    assert finished
    assert finished[0] <= started
    assert await _events(engine) == 2
    with pytest.raises(asyncio.CancelledError):
        await task
