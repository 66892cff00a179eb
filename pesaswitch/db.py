"""Engine, sessions and the declarative base.

SQLite gets WAL, a busy timeout and ``BEGIN IMMEDIATE`` transactions: a deferred
transaction that reads and then writes can fail with SQLITE_BUSY instead of waiting,
which would turn two racing callbacks into a 500 instead of one winner and one no-op.

Writers of one process queue on an asyncio lock before ``BEGIN IMMEDIATE``
(``_WriterQueue``) rather than polling SQLite's lock.

Reads that never write (GET endpoints, API-key lookups) use ``read_sessions()``: on
SQLite a deferred ``BEGIN`` (a WAL snapshot that never takes the write lock, so reads no
longer queue behind writers), on PostgreSQL a ``READ ONLY`` transaction (so a write that
slips into a read path fails loudly instead of passing on one database only).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from functools import cache
from typing import Any, TypeVar
from weakref import WeakKeyDictionary

import structlog
from sqlalchemy import JSON, DateTime, MetaData, Table, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.util import await_only

from pesaswitch.config import Settings
from pesaswitch.errors import transaction_conflict

log = structlog.get_logger(__name__)
_T = TypeVar("_T")
_ModelT = TypeVar("_ModelT", bound="Base")

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

JsonType = JSON().with_variant(JSONB(), "postgresql")
READ_ONLY_OPTION = "pesaswitch_read_only"


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {
        datetime: DateTime(timezone=False),
        dict[str, Any]: JsonType,
        list[str]: JsonType,
    }


@cache
def _attributes_of(model: type[Base]) -> frozenset[str]:
    return frozenset(prop.key for prop in model.__mapper__.attrs)


def transient(model: type[_ModelT], values: dict[str, Any]) -> _ModelT:
    """``model(**values)`` for an object in no session, without the per-attribute events
    the constructor fires: ~1.5 µs against ~25 µs for a Payment. The hot paths build
    several per payment from rows they already hold (payments/store_push.py). Such an
    object behaves as a constructed one: added to a session, its flush inserts what it
    holds; merged, it is copied. Like the constructor, an unknown name is a TypeError."""
    if not values.keys() <= _attributes_of(model):
        unknown = sorted(values.keys() - _attributes_of(model))
        raise TypeError(f"{unknown!r} are not attributes of {model.__name__}")
    instance: _ModelT = model.__mapper__.class_manager.new_instance()
    instance.__dict__.update(values)
    return instance


def _prepare_sqlite(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Hand transaction control to the "begin" hook below (SQLAlchemy's documented recipe).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.close()

    writers = _WriterQueue()
    _SQLITE_WRITERS[engine.sync_engine] = writers
    dialect = engine.sync_engine.dialect
    commit, rollback = dialect.do_commit, dialect.do_rollback

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        # A read-only session's snapshot needs no write lock; everything else takes it first.
        if conn.get_execution_options().get(READ_ONLY_OPTION, False):
            conn.exec_driver_sql("BEGIN")
            return
        writers.acquire(conn.connection)
        try:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        except BaseException:
            writers.release(conn.connection)
            raise

    # Released once COMMIT or ROLLBACK has run (the "commit" event fires before it), so
    # the next writer of this process finds SQLite's lock free. Instance attributes:
    # this engine's dialect only.
    def do_commit(dbapi_connection: Any) -> None:
        try:
            commit(dbapi_connection)
        finally:
            writers.release(dbapi_connection)

    def do_rollback(dbapi_connection: Any) -> None:
        try:
            rollback(dbapi_connection)
        finally:
            writers.release(dbapi_connection)

    dialect.do_commit = do_commit  # type: ignore[method-assign]
    dialect.do_rollback = do_rollback  # type: ignore[method-assign]


def sqlite_writers(engine: AsyncEngine) -> _WriterQueue | None:
    """The queue this SQLite engine's writers take turns in (None: not SQLite), for
    writers that do not go through its sessions (``sqlite_direct.py``)."""
    return _SQLITE_WRITERS.get(engine.sync_engine)


def _raw_id(connection: Any) -> int:
    """The driver connection's identity, whether given it or the pool's proxy for it
    (SQLAlchemy passes the proxy to ``do_commit``/``do_rollback``)."""
    return id(getattr(connection, "dbapi_connection", connection))


class _WriterQueue:
    """This process's SQLite writers, one at a time, in arrival order.

    Without it, concurrent ``BEGIN IMMEDIATE`` calls of one process fight over SQLite's
    lock through its busy handler, which sleeps and retries (1, 2, 5, 10, … ms) instead
    of queueing: under load writers wait far longer than the transactions last, and the
    latest arrival often wins. An asyncio lock (one per event loop) queues them fairly;
    other processes (the worker, other API processes) still meet at SQLite's lock.
    The lock is awaited from the synchronous "begin" hook through SQLAlchemy's greenlet
    bridge (``await_only``), which every async-engine statement runs under.
    """

    def __init__(self) -> None:
        self._locks: WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
            WeakKeyDictionary()
        )
        self._holders: dict[int, asyncio.Lock] = {}  # id(DBAPI connection) → lock held

    def lock(self) -> asyncio.Lock:
        """The running event loop's lock."""
        loop = asyncio.get_running_loop()
        lock = self._locks.get(loop)
        if lock is None:
            lock = self._locks[loop] = asyncio.Lock()
        return lock

    def acquire(self, connection: Any) -> None:
        lock = self.lock()
        # A writer that never finishes would otherwise stop every other one for good;
        # SQLite's own busy timeout is 30 s too.
        await_only(asyncio.wait_for(lock.acquire(), timeout=30))
        self._holders[_raw_id(connection)] = lock

    def release(self, connection: Any) -> None:
        lock = self._holders.pop(_raw_id(connection), None)
        if lock is not None:
            lock.release()


_SQLITE_WRITERS: WeakKeyDictionary[Any, _WriterQueue] = WeakKeyDictionary()


def create_engine(settings: Settings) -> AsyncEngine:
    url = settings.database_url
    sqlite_path = settings.sqlite_path()
    if sqlite_path is not None:
        sqlite_path.parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, connect_args={"timeout": 30})
        _prepare_sqlite(engine)
        return engine
    # A fixed pool, as large as the concurrency a process serves: overflow connections are
    # closed on return, and a new backend costs more than waiting for a pooled connection
    # (config.py, db_pool_size).
    # No pre-ping by default: it is one more round trip per checkout, and a connection
    # found dead at use (a restarted server) makes SQLAlchemy invalidate the whole pool,
    # so only the requests in flight at that moment fail (README, configuration).
    return create_async_engine(
        url, pool_size=settings.db_pool_size, max_overflow=settings.db_pool_overflow,
        pool_pre_ping=settings.db_pool_pre_ping,
    )  # fmt: skip


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


_READERS: WeakKeyDictionary[async_sessionmaker[AsyncSession], async_sessionmaker[AsyncSession]]
_READERS = WeakKeyDictionary()


def read_sessions(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> async_sessionmaker[AsyncSession]:
    """Sessions for work that only reads, on the same engine and pool as ``sessionmaker``.

    Made once per sessionmaker (the process's runtime has one), with its session info.
    """
    reader = _READERS.get(sessionmaker)
    if reader is None:
        engine = sessionmaker.kw["bind"]
        assert isinstance(engine, AsyncEngine)
        options = (
            {READ_ONLY_OPTION: True}
            if engine.dialect.name == "sqlite"
            else {"postgresql_readonly": True}
        )
        reader = async_sessionmaker(
            engine.execution_options(**options),
            expire_on_commit=False,
            info=dict(sessionmaker.kw.get("info") or {}),
        )
        _READERS[sessionmaker] = reader
    return reader


@asynccontextmanager
async def transaction(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> AsyncIterator[AsyncSession]:
    """One unit of work: commits when the block ends, rolls back if it raises."""
    async with sessionmaker() as session, session.begin():
        yield session


async def retry_on_conflict(
    attempt: Callable[[], Awaitable[_T]], *, attempts: int = 3, what: str = "transaction"
) -> _T:
    """Run ``attempt`` (a whole transaction) again when PostgreSQL aborted it to break a
    deadlock, up to ``attempts`` times in all, after a short random pause. For writers
    whose caller will not retry: Daraja sends each callback once."""
    for tries in range(1, attempts + 1):
        try:
            return await attempt()
        except Exception as exc:
            if tries == attempts or not transaction_conflict(exc):
                raise
            log.warning("db.transaction_conflict_retried", what=what, tries=tries,
                        error=repr(exc))  # fmt: skip
            await asyncio.sleep(random.uniform(0.005, 0.05) * tries)  # nosec B311: jitter
    raise AssertionError("unreachable")


def is_sqlite(session: AsyncSession) -> bool:
    return session.get_bind().dialect.name == "sqlite"


def is_postgresql(session: AsyncSession) -> bool:
    return session.get_bind().dialect.name == "postgresql"


async def insert_ignoring_conflict(session: AsyncSession, model: type[Base], **values: Any) -> bool:
    """INSERT … ON CONFLICT DO NOTHING; True when the row was inserted.

    Claiming a natural key this way, never SELECT-then-INSERT, is what makes racing
    requests safe (reliability.md §2).
    """
    if is_sqlite(session):
        stmt: Any = sqlite.insert(model).values(**values).on_conflict_do_nothing()
    else:
        stmt = postgresql.insert(model).values(**values).on_conflict_do_nothing()
    result = await session.execute(stmt)
    return bool(getattr(result, "rowcount", 0) == 1)


@cache
def _ignoring_conflict(table: Table, dialect: str) -> Any:
    insert = sqlite.insert if dialect == "sqlite" else postgresql.insert
    return insert(table).on_conflict_do_nothing()


async def claim_row(session: AsyncSession, table: Table, values: dict[str, Any]) -> bool:
    """``insert_ignoring_conflict`` with the statement built once per table and dialect and
    the values bound: for the claims every payment makes (its Idempotency-Key, its ledger
    entry), building the statement cost more CPU than sending it (bench/README.md)."""
    statement = _ignoring_conflict(table, session.get_bind().dialect.name)
    result = await session.execute(statement, values)
    return bool(getattr(result, "rowcount", 0) == 1)


def bind_session_info(
    sessionmaker: async_sessionmaker[AsyncSession], key: str, value: object
) -> None:
    """Make ``value`` reachable as ``session.info[key]`` in every session ``sessionmaker``
    opens, keeping what others bound (``configure(info=…)`` replaces the whole dict)."""
    info = dict(sessionmaker.kw.get("info") or {})
    info[key] = value
    sessionmaker.configure(info=info)
