"""SQL statements per payment, by request: ``python -m bench.statements --db sqlite|postgres``.

The gateway in-process with its embedded simulator (callbacks through ASGI, as in the
tests), a webhook endpoint registered, and N payments created one after another with an
Idempotency-Key, each waited for until its callback has settled it. Every statement the
engine sends is counted (``before_cursor_execute``) against the request that sent it —
POST /v1/payments or the Daraja callback — and grouped by verb and table, so a change to
the hot paths shows up here as a number rather than as noise in a throughput run.
BEGIN/COMMIT are not statements the engine sends through a cursor and are not counted.
On PostgreSQL, statements sent on asyncpg directly are counted through its query logger;
on SQLite, those of its hot path's own connection through its trace callback.
"""

from __future__ import annotations

import argparse
import asyncio
import contextvars
import re
import tempfile
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import event
from starlette.types import ASGIApp, Receive, Scope, Send

from pesaswitch.app import create_app
from pesaswitch.config import Settings
from pesaswitch.migrate import upgrade
from pesaswitch.sqlite_direct import direct_of
from tests.conftest import create_merchant
from tests.support.pg_cluster import throwaway_cluster

WARMUP = 40
_TRANSACTION_CONTROL = {"BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE"}
_request: contextvars.ContextVar[str] = contextvars.ContextVar("request", default="other")
_TABLE = re.compile(r"\b(?:FROM|INTO|UPDATE)\s+\"?(\w+)", re.IGNORECASE)


def _label(statement: str) -> str:
    words = statement.split(None, 1)
    verb = words[0].upper() if words else "?"
    if verb in {"SAVEPOINT", "RELEASE", "ROLLBACK"}:
        return verb
    table = _TABLE.search(statement)
    return f"{verb} {table.group(1) if table else '?'}"


class _Tag:
    """Names the request each statement runs under (POST, callback, other)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        name = "callback" if path.startswith("/daraja/") else f"{scope.get('method')} {path}"
        if path.startswith("/v1/payments/"):
            name = "GET /v1/payments/{id}"
        token = _request.set(name)
        try:
            await self.app(scope, receive, send)
        finally:
            _request.reset(token)


@contextmanager
def _database(db: str) -> Iterator[str]:
    if db == "postgres":
        with throwaway_cluster() as url:
            yield url
    else:
        with tempfile.TemporaryDirectory() as tmp:
            yield f"sqlite+aiosqlite:///{Path(tmp) / 'statements.db'}"


async def _count(settings: Settings, payments: int) -> Counter[tuple[str, str]]:
    merchant = await create_merchant(settings)
    app = create_app(settings)
    counts: Counter[tuple[str, str]] = Counter()
    counting = False

    def on_execute(*args: Any) -> None:
        if counting:
            counts[(_request.get(), _label(args[2]))] += 1

    def on_driver_query(record: Any) -> None:
        # Statements sent on asyncpg directly (payments/store.py), which SQLAlchemy's
        # event does not see; SQLAlchemy's own go through prepared statements, which
        # asyncpg does not log, so nothing is counted twice.
        if (
            counting
            and record.query.split(None, 1)[0].rstrip(";").upper() not in _TRANSACTION_CONTROL
        ):
            counts[(_request.get(), _label(record.query))] += 1

    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        driver = getattr(dbapi_connection, "driver_connection", None)
        if hasattr(driver, "add_query_logger"):
            driver.add_query_logger(on_driver_query)

    def on_direct_statement(statement: str) -> None:
        # SQLite's hot path, on a connection of its own (pesaswitch/sqlite_direct.py).
        if counting and statement.split(None, 1)[0].upper() not in _TRANSACTION_CONTROL:
            counts[(_request.get(), _label(statement))] += 1

    direct = direct_of(app.state.runtime.engine)
    if direct is not None:
        direct.set_trace(on_direct_statement)
    engine = app.state.runtime.engine.sync_engine
    event.listen(engine, "before_cursor_execute", on_execute)
    event.listen(engine, "connect", on_connect)
    transport = httpx.ASGITransport(app=_Tag(app))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://gw") as client,
        httpx.AsyncClient(transport=transport, base_url="http://gw") as callbacks,
    ):
        app.state.runtime.simulator.use_callback_client(callbacks)
        auth = merchant.auth
        hook = await client.post("/v1/webhook-endpoints", headers=auth,
                                 json={"url": "http://127.0.0.1:9/hook"})  # fmt: skip
        assert hook.status_code == 201, hook.text
        for n in range(WARMUP + payments):
            # The first ones warm caches and create the ledger's shards (``policy.SHARDS``).
            counting = n >= WARMUP
            body = {"amount": 10, "phone": f"0712{n:06d}"}
            headers = {**auth, "Idempotency-Key": f"stmt-{n}"}
            created = await client.post("/v1/payments", json=body, headers=headers)
            assert created.status_code == 201, created.text
            for _ in range(200):
                status = (await client.get(f"/v1/payments/{created.json()['id']}",
                                           headers=auth)).json()["status"]  # fmt: skip
                if status != "pending":
                    break
                await asyncio.sleep(0.01)
            assert status == "completed", status
    return counts


def per_request(counts: Counter[tuple[str, str]], payments: int) -> dict[str, float]:
    """Statements per payment for the POST, the callback, and both (the polling GETs that
    wait for each payment are not part of it)."""
    totals: Counter[str] = Counter()
    for (request, _label), n in counts.items():
        totals[request] += n
    return {
        "POST": totals["POST /v1/payments"] / payments,
        "callback": totals["callback"] / payments,
        "per payment": sum(n for r, n in totals.items() if not r.startswith("GET ")) / payments,
    }


def count_statements(database_url: str, secret_key: str, payments: int = 20) -> dict[str, float]:
    """The counts of ``main`` against an existing, migrated database (bench.run's own, with
    its secret key, so its running worker can sign this merchant's webhooks too), with STK
    protection off as in the benchmark; a fresh merchant keeps it apart."""
    settings = Settings(
        database_url=database_url, secret_key=secret_key, simulator_delay=0.0,
        embedded_worker=False, stk_protection=False, log_level="warning",
        sandbox_allow_private_urls=True,
    )  # fmt: skip
    return per_request(asyncio.run(_count(settings, payments)), payments)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--payments", type=int, default=20)
    parser.add_argument(
        "--stk-protection", action="store_true",
        help="keep STK abuse protection on (the benchmark turns it off)",
    )  # fmt: skip
    args = parser.parse_args()
    with _database(args.db) as url:
        settings = Settings(
            database_url=url, secret_key="bench-statements", simulator_delay=0.0,
            embedded_worker=False, stk_protection=args.stk_protection, log_level="warning",
            sandbox_allow_private_urls=True,
        )  # fmt: skip
        upgrade(settings)
        counts = asyncio.run(_count(settings, args.payments))
    per_request: Counter[str] = Counter()
    for (request, label), n in sorted(counts.items()):
        per_request[request] += n
        print(f"{request:24} {label:40} {n / args.payments:6.2f}")
    for request, n in sorted(per_request.items()):
        print(f"{request:24} {'total':40} {n / args.payments:6.2f}")
    # The status polling that waits for each payment is not part of the payment.
    paying = sum(n for request, n in per_request.items() if not request.startswith("GET "))
    print(f"{'per payment':24} {'(POST + callback)':40} {paying / args.payments:6.2f}")


if __name__ == "__main__":
    main()
