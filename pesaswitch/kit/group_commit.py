"""Group commit for SQLite: one fsync of the WAL for every write transaction that
committed while the previous fsync ran, instead of one each under the write lock.

With ``PRAGMA synchronous=FULL`` SQLite fsyncs the WAL inside every COMMIT, and this
process's writers queue on one lock (``db._WriterQueue``) that is held until COMMIT
returns. An fsync costs ~2 ms on this kind of disk, so it alone capped a process near
500 write transactions per second, and every writer waited for every earlier writer's
flush (bench/README.md).

Here SQLite runs with ``synchronous=NORMAL`` (in WAL mode: no fsync at COMMIT, the WAL
synced before each checkpoint and the database after it) and the COMMIT hook, after the
write lock is released, waits for ``Durability.wait()``: the next fsync of the WAL file
that *starts* after this COMMIT. A caller therefore never returns from its commit, and
never answers a request or sends a push, before its transaction is on disk: the
guarantee of ``FULL``. The fsyncs run in a thread while the next writers commit, and each
covers everyone who committed before it began (fsync flushes the whole file, whoever
wrote its pages; the WAL is only ever appended to, or restarted after a checkpoint that
SQLite has synced).

What differs from ``FULL``: between its COMMIT and the fsync (~2 ms), a transaction is
visible to other connections. A reader that acted on it in that window and a power loss
(not a process crash: the pages are in the OS cache) in the same window would see it
gone. Every write of the gateway's own is preceded by its own commit's wait, which also
flushes everything earlier in the WAL, so only a read-only answer (a GET) can show such
a row. ``PESASWITCH_SQLITE_COMMIT=full`` restores SQLite's own per-commit fsync.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from pathlib import Path
from weakref import WeakKeyDictionary

import structlog

log = structlog.get_logger(__name__)


def fsync_file(path: Path) -> bool:
    """fsync ``path``; False when it does not exist (SQLite removed the WAL after a
    checkpoint it synced itself: nothing of it is left to flush)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    return True


class Durability:
    """The WAL flushes of one SQLite file in one event loop."""

    def __init__(self, wal: Path, flush: Callable[[Path], bool] = fsync_file) -> None:
        self.wal = wal
        self._flush_file = flush
        self._waiting: list[asyncio.Future[None]] = []
        self._flusher: asyncio.Task[None] | None = None
        self.flushes = 0  # fsyncs done: how many commits shared one shows in `commits`
        self.commits = 0

    async def wait(self) -> None:
        """Return once an fsync that began after this call has finished."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        self._waiting.append(future)
        self.commits += 1
        if self._flusher is None or self._flusher.done():
            self._flusher = loop.create_task(self._flush())
        await future

    async def _flush(self) -> None:
        while self._waiting:
            # Whoever arrives during this fsync waits for the next one: its COMMIT may
            # have come after this fsync had already passed its pages.
            batch, self._waiting = self._waiting, []
            try:
                await asyncio.to_thread(self._flush_file, self.wal)
            except OSError as exc:
                log.error("sqlite.fsync_failed", path=str(self.wal), error=str(exc))
                for future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            self.flushes += 1
            for future in batch:
                if not future.done():
                    future.set_result(None)


class GroupCommit:
    """A ``Durability`` per event loop, for one database file (an engine serves one
    file; the test suite runs several loops)."""

    def __init__(self, database: Path) -> None:
        self.wal = database.with_name(database.name + "-wal")
        self._per_loop: WeakKeyDictionary[asyncio.AbstractEventLoop, Durability] = (
            WeakKeyDictionary()
        )

    def for_running_loop(self) -> Durability:
        loop = asyncio.get_running_loop()
        durability = self._per_loop.get(loop)
        if durability is None:
            durability = self._per_loop[loop] = Durability(self.wal)
        return durability
