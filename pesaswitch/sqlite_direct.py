"""SQLite's hot path: a whole transaction in one trip to a thread, off the ORM.

Through the async engine every statement crosses aiosqlite's thread (a queue put, a
thread wake-up, a ``call_soon_threadsafe`` back) and SQLAlchemy's work per statement; on
SQLite those were most of a payment's CPU (bench/issue-11-rounds.md, ninth round). Here a
synchronous function gets a plain ``sqlite3`` connection in a thread of its own and runs
a whole transaction there: one trip per transaction, however many statements.

Writers take this process's turn in the engine's writer queue (``db._WriterQueue``)
before ``BEGIN IMMEDIATE``, as the sessions' writers do, so the two kinds queue fairly.
Values cross in the ORM's own storage formats: the column types'
SQLite processors convert them both ways (``Codec``), so either path reads what the other
wrote.
"""

from __future__ import annotations

import asyncio
import contextvars
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache
from typing import Any, TypeVar
from weakref import WeakKeyDictionary

from sqlalchemy import Table
from sqlalchemy.dialects.sqlite.pysqlite import SQLiteDialect_pysqlite
from sqlalchemy.ext.asyncio import AsyncEngine

from pesaswitch.db import Base, sqlite_writers

_T = TypeVar("_T")
_DIALECT = SQLiteDialect_pysqlite()
# As db._prepare_sqlite sets every connection of the engine.
_PRAGMAS = (
    "PRAGMA journal_mode=WAL", "PRAGMA busy_timeout=30000", "PRAGMA foreign_keys=ON",
    "PRAGMA synchronous=FULL",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Codec:
    """One table's columns in the ORM's SQLite storage formats: ``store`` converts a
    Python value for a column, ``load`` a stored one back."""

    table: Table
    binds: Mapping[str, Callable[[Any], Any]]
    results: Mapping[str, Callable[[Any], Any]]

    def store(self, column: str, value: Any) -> Any:
        bind = self.binds.get(column)
        return value if bind is None else bind(value)

    def load_row(self, row: sqlite3.Row) -> dict[str, Any]:
        """A stored row by column name, converted back."""
        results = self.results
        out: dict[str, Any] = {}
        # A row iterates its values, not its keys.
        for column, value in zip(row.keys(), row, strict=True):
            result = results.get(column)
            out[column] = value if result is None or value is None else result(value)
        return out

    def insert(self, connection: sqlite3.Connection, rows: Sequence[Mapping[str, Any]]) -> None:
        """INSERT each row (all with the same columns as the first)."""
        if not rows:
            return
        columns = tuple(rows[0])
        connection.executemany(
            _insert_sql(self.table, columns),
            [tuple(self.store(name, row[name]) for name in columns) for row in rows],
        )


@cache
def codec(table_name: str) -> Codec:
    table = Base.metadata.tables[table_name]
    binds: dict[str, Callable[[Any], Any]] = {}
    results: dict[str, Callable[[Any], Any]] = {}
    for column in table.columns:
        impl = column.type.dialect_impl(_DIALECT)
        bind = impl.bind_processor(_DIALECT)
        result = impl.result_processor(_DIALECT, None)
        if bind is not None:
            binds[column.name] = bind
        if result is not None:
            results[column.name] = result
    return Codec(table, binds, results)


@cache
def _insert_sql(table: Table, columns: tuple[str, ...]) -> str:
    """``INSERT INTO table (columns) VALUES (?, …)``, built once. Each name is looked up
    among the table's columns (a KeyError otherwise), so only the schema's names are
    joined in; SQLAlchemy's compiler would add the columns with Python defaults."""
    names = ", ".join(table.columns[name].name for name in columns)
    marks = ", ".join("?" for _ in columns)
    return f"INSERT INTO {table.name} ({names}) VALUES ({marks})"  # noqa: S608  # nosec B608


class SqliteDirect:
    """This process's plain connection to the engine's SQLite file, in a thread of its
    own, for transactions that write."""

    def __init__(self, path: str, engine: AsyncEngine) -> None:
        self._path = path
        writers = sqlite_writers(engine)
        assert writers is not None, "an SQLite engine made by db.create_engine"
        self._writers = writers
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="pesaswitch-sqlite")
        self._sqlite: sqlite3.Connection | None = None
        self._trace: Callable[[str], None] | None = None

    def set_trace(self, callback: Callable[[str], None] | None) -> None:
        """Have ``callback`` called with every statement this connection runs (the
        benchmark counts them), in its thread, in the caller's context."""
        self._trace = callback
        if self._sqlite is not None:
            self._sqlite.set_trace_callback(callback)

    def _connection(self) -> sqlite3.Connection:
        connection = self._sqlite
        if connection is None:
            # Autocommit: this module begins and ends every transaction itself. Used only in
            # its own thread; check_same_thread off so that close() may run elsewhere.
            connection = sqlite3.connect(
                self._path, timeout=30, isolation_level=None, check_same_thread=False
            )
            connection.row_factory = sqlite3.Row
            for pragma in _PRAGMAS:
                connection.execute(pragma)
            connection.set_trace_callback(self._trace)
            self._sqlite = connection
        return connection

    async def write(self, work: Callable[[sqlite3.Connection], _T]) -> _T:
        """Run ``work`` in a transaction of its own (``BEGIN IMMEDIATE``), committed when it
        returns, rolled back if it raises. ``work`` writes only once it has decided to."""

        def run() -> _T:
            connection = self._connection()
            connection.execute("BEGIN IMMEDIATE")
            try:
                result = work(connection)
            except BaseException:
                connection.execute("ROLLBACK")
                raise
            connection.execute("COMMIT")
            return result

        lock = self._writers.lock()
        await asyncio.wait_for(lock.acquire(), timeout=30)
        try:
            # In the caller's context, so that its log context and tags reach the thread.
            context = contextvars.copy_context()
            future = asyncio.get_running_loop().run_in_executor(self._thread, context.run, run)
        except BaseException:
            lock.release()
            raise
        # Released when the thread is done with SQLite's lock, even if the caller is
        # cancelled meanwhile: the next writer of this process would otherwise meet it.
        future.add_done_callback(lambda _: lock.release())
        return await future

    def close(self) -> None:
        self._thread.shutdown(wait=True)
        if self._sqlite is not None:
            self._sqlite.close()
            self._sqlite = None


_DIRECT: WeakKeyDictionary[AsyncEngine, SqliteDirect] = WeakKeyDictionary()


def direct_of(engine: AsyncEngine) -> SqliteDirect | None:
    """The engine's direct connections, made on first use; None unless the engine is
    SQLite on a file (an in-memory database is one per connection)."""
    direct = _DIRECT.get(engine)
    if direct is None:
        path = engine.url.database
        if engine.dialect.name != "sqlite" or not path or path == ":memory:":
            return None
        direct = _DIRECT[engine] = SqliteDirect(path, engine)
    return direct


def close_direct(engine: AsyncEngine) -> None:
    """Close the engine's direct connections, if it has any (with the engine's dispose)."""
    direct = _DIRECT.pop(engine, None)
    if direct is not None:
        direct.close()
