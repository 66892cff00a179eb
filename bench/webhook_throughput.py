"""Delivered webhooks per second: N events in the outbox, M worker processes, one receiver.

    python -m bench.webhook_throughput --events 3000 --workers 1 --db sqlite
    python -m bench.webhook_throughput --events 3000 --workers 2 --db postgres

Everything runs as separate processes on 127.0.0.1 and stops by itself.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

import httpx

from pesaswitch.accounts import service as accounts
from pesaswitch.accounts.models import Environment
from pesaswitch.config import Settings
from pesaswitch.db import create_engine, create_sessionmaker, transaction
from pesaswitch.migrate import upgrade
from pesaswitch.webhooks import service as webhooks
from pesaswitch.webhooks.models import EventType
from tests.support.pg_cluster import throwaway_cluster
from tests.support.processes import PESASWITCH, Process, free_port

SECRET = "benchmark-secret-key-0123456789"


async def fill(database_url: str, url: str, count: int) -> None:
    engine = create_engine(Settings(database_url=database_url, secret_key=SECRET))
    try:
        async with transaction(create_sessionmaker(engine)) as session:
            new = await accounts.create_account(
                session, secret_key=SECRET, name="bench", environment=Environment.SANDBOX
            )
            await webhooks.create_endpoint(
                session, secret_key=SECRET, account_id=new.account.id,
                environment=Environment.SANDBOX, url=url, event_types=None, description="",
                allow_private=True,
            )  # fmt: skip
            for i in range(count):
                await webhooks.record_event(
                    session, account_id=new.account.id, event_type=EventType.PAYMENT_COMPLETED,
                    object_id=f"pay_bench_{i}", data={"n": i, "amount": 100, "status": "completed"},
                )  # fmt: skip
    finally:
        await engine.dispose()


def run(database_url: str, events: int, workers: int, logs: Path, timeout: float) -> float:
    upgrade(Settings(database_url=database_url, secret_key=SECRET))
    port = free_port()
    env = {
        "PESASWITCH_DATABASE_URL": database_url,
        "PESASWITCH_SECRET_KEY": SECRET,
        "PESASWITCH_LOG_LEVEL": "warning",
        "PESASWITCH_DARAJA_BASE_URL": f"http://127.0.0.1:{free_port()}",
        "PESASWITCH_SANDBOX_ALLOW_PRIVATE_URLS": "true",
        "PESASWITCH_WEBHOOK_INTERVAL": "0.05",
    }
    with ExitStack() as stack:
        receiver = Process(
            [sys.executable, "-m", "uvicorn", "bench.receiver:app", "--port", str(port),
             "--log-level", "warning", "--no-access-log"],
            {}, logs / "receiver.log",
        )  # fmt: skip
        stack.callback(receiver.stop)
        receiver.wait_http(f"http://127.0.0.1:{port}/count")
        for n in range(workers):
            worker = Process([PESASWITCH, "worker"], env, logs / f"worker{n}.log")
            stack.callback(worker.stop)
        time.sleep(4)  # let the workers import and start polling; start-up is not measured
        # One transaction: every event becomes visible to the workers at the same moment.
        asyncio.run(fill(database_url, f"http://127.0.0.1:{port}/hook", events))
        started = time.perf_counter()
        deadline = started + timeout
        unique = 0
        while time.perf_counter() < deadline:
            unique = httpx.get(f"http://127.0.0.1:{port}/count").json()["unique"]
            if unique >= events:
                break
            time.sleep(0.05)
        elapsed = time.perf_counter() - started
    if unique < events:
        raise SystemExit(f"only {unique}/{events} delivered in {timeout}s; see {logs}")
    return events / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=3000)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--timeout", type=float, default=300.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="pesaswitch-bench-") as tmp:
        logs = Path(tmp)
        if args.db == "postgres":
            with throwaway_cluster() as url:
                rate = run(url, args.events, args.workers, logs, args.timeout)
        else:
            rate = run(f"sqlite+aiosqlite:///{logs / 'bench.db'}", args.events, args.workers,
                       logs, args.timeout)  # fmt: skip
    cores = os.cpu_count()
    print(f"db={args.db} workers={args.workers} events={args.events} cores={cores}: "
          f"{rate:,.0f} delivered webhooks/s")  # fmt: skip


if __name__ == "__main__":
    main()
