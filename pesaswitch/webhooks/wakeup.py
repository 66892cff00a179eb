"""Waking the dispatcher when deliveries are written, instead of at its next poll.

The dispatcher polls the outbox every ``webhook_interval`` (0.5 s). Under load most of a
webhook's latency was that wait: the bench measured 0.41 to 0.46 s median from a payment's
settlement to its webhook's arrival, against ~0.1 s from the POST to the settlement. On
PostgreSQL a statement-level trigger on ``deliveries`` (migration 0011) sends ``NOTIFY``
with every INSERT, whichever process or code path wrote it, and PostgreSQL delivers it
only when that transaction commits: the row is visible by the time the worker wakes.
The worker keeps one connection of its own, outside the pool, listening.

SQLite has no cross-process signal, so the worker watches instead: every
``webhook_sqlite_watch`` seconds (50 ms) it reads the deliveries table's largest rowid on
a plain connection of its own, a read of the b-tree's last page that never waits for a
writer in WAL mode, and wakes when it has grown (new rows, whichever process wrote them).

The poll stays as it was. A lost notification, a listener that cannot connect, or a
watch that fails costs latency, never a webhook: the next poll finds the row.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import Collection
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncEngine

from pesaswitch.errors import log_tick_failure

log = structlog.get_logger(__name__)

CHANNEL = "pesaswitch_deliveries"
_LARGEST_DELIVERY = "SELECT max(rowid) FROM deliveries"
# SQLAlchemy's own connect arguments that asyncpg.connect does not take.
_SQLALCHEMY_ONLY = (
    "async_fallback", "prepared_statement_cache_size", "prepared_statement_name_func",
)  # fmt: skip
_RECONNECT_AFTER = (0.5, 1.0, 2.0, 5.0)  # seconds, then the last one again


class OutboxWakeup:
    """An event set when new deliveries may be due. ``listen`` keeps PostgreSQL's LISTEN
    connection open until ``stop``; on SQLite it returns at once and only polls wake."""

    def __init__(self, engine: AsyncEngine, gather: float = 0.0, watch: float = 0.05) -> None:
        self.engine = engine
        self.gather = gather
        self.watch = watch
        self.due = asyncio.Event()
        self.listening = asyncio.Event()  # set while a LISTEN connection is open (tests)

    def take(self) -> None:
        """Called just before a claim: what is notified from now on asks for another."""
        self.due.clear()

    async def wait(
        self, stop: asyncio.Event, poll: float, busy: Collection[asyncio.Task[None]] = ()
    ) -> None:
        """Until a notification, ``stop``, one of the ``busy`` sends ending, or ``poll``
        seconds, whichever is first."""
        if self.due.is_set() or stop.is_set():
            return
        notified, stopped = asyncio.create_task(self.due.wait()), asyncio.create_task(stop.wait())
        try:
            await asyncio.wait(
                [notified, stopped, *busy], timeout=poll, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            notified.cancel()
            stopped.cancel()
        if self.due.is_set() and self.gather and not stop.is_set():
            # Each payment's commit notifies: a claim per notification cost the worker
            # 2.6 times its CPU per payment under load. Others arrive meanwhile.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.gather)

    async def listen(self, stop: asyncio.Event) -> None:
        if self.engine.dialect.name == "sqlite":
            await self._watch_sqlite(stop)
            return
        if self.engine.dialect.name != "postgresql":
            return
        failures = 0
        while not stop.is_set():
            try:
                await self._listen_until_lost(stop)
                failures = 0
            except Exception as exc:
                # The database is down or restarting: the poll carries on meanwhile.
                log_tick_failure("webhooks.listen_failed", exc)
                failures += 1
            delay = _RECONNECT_AFTER[min(failures, len(_RECONNECT_AFTER) - 1)]
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=delay)

    async def _listen_until_lost(self, stop: asyncio.Event) -> None:
        import asyncpg  # type: ignore[import-untyped]  # SQLite installs never reach here

        _, options = self.engine.dialect.create_connect_args(self.engine.url)
        for name in _SQLALCHEMY_ONLY:
            options.pop(name, None)
        connection = await asyncpg.connect(**options)
        lost = asyncio.Event()
        connection.add_termination_listener(lambda _connection: lost.set())
        try:
            await connection.add_listener(CHANNEL, self._notified)
            self.listening.set()
            # Whatever was written while no one listened is found by this first claim.
            self.due.set()
            log.info("webhooks.listening", channel=CHANNEL)
            await _first(stop.wait(), lost.wait())
        finally:
            self.listening.clear()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(connection.close(), timeout=2)

    def _notified(self, *_args: Any) -> None:
        self.due.set()

    async def _watch_sqlite(self, stop: asyncio.Event) -> None:
        path = self.engine.url.database
        if not path or path == ":memory:":
            return
        # Short busy timeout: a read in WAL mode waits only during a WAL recovery, and a
        # watch that fails now is simply tried again at its next turn.
        with contextlib.closing(sqlite3.connect(path, timeout=0.05)) as connection:
            self.listening.set()
            # Unlike any rowid, so the first reading wakes a claim too: whatever was
            # written before the watch began is found by it, as on PostgreSQL.
            last: object = object()
            try:
                while not stop.is_set():
                    try:
                        # fetchall: no statement left open, which would pin a snapshot
                        # and keep checkpoints from emptying the WAL.
                        [(latest,)] = connection.execute(_LARGEST_DELIVERY).fetchall()
                    except sqlite3.Error as exc:
                        log_tick_failure("webhooks.watch_failed", exc)
                    else:
                        if latest != last:
                            self.due.set()
                            last = latest
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), timeout=self.watch)
            finally:
                self.listening.clear()


async def _first(*waits: Any) -> None:
    tasks = [asyncio.ensure_future(w) for w in waits]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
