"""The outbox under worker crashes and with several workers, as real processes."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from pesaswitch.accounts import service as accounts
from pesaswitch.accounts.models import Environment
from pesaswitch.config import Settings
from pesaswitch.db import create_engine, create_sessionmaker, transaction
from pesaswitch.webhooks import service as webhooks
from pesaswitch.webhooks.models import DeliveryAttempt, EventType
from tests.conftest import TEST_SECRET_KEY
from tests.support.processes import PESASWITCH, Process, free_port
from tests.support.receiver import Receiver, running_receiver


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver() as running:
        yield running


def worker_env(database_url: str) -> dict[str, str]:
    return {
        "PESASWITCH_DATABASE_URL": database_url,
        "PESASWITCH_SECRET_KEY": TEST_SECRET_KEY,
        "PESASWITCH_LOG_LEVEL": "warning",
        # Nothing to reconcile here; the worker only needs somewhere to point.
        "PESASWITCH_DARAJA_BASE_URL": f"http://127.0.0.1:{free_port()}",
        "PESASWITCH_SANDBOX_ALLOW_PRIVATE_URLS": "true",
        "PESASWITCH_WEBHOOK_TIMEOUT": "1",
        "PESASWITCH_WEBHOOK_RETRY_SCHEDULE": "0.2,0.2,0.2,0.2,0.2",
        "PESASWITCH_WEBHOOK_INTERVAL": "0.05",
        "PESASWITCH_WEBHOOK_CONCURRENCY": "16",
    }


async def make_events(database_url: str, url: str, count: int) -> tuple[str, set[str]]:
    settings = Settings(database_url=database_url, secret_key=TEST_SECRET_KEY)
    engine = create_engine(settings)
    sessionmaker = create_sessionmaker(engine)
    try:
        async with transaction(sessionmaker) as session:
            new = await accounts.create_account(
                session, secret_key=TEST_SECRET_KEY, name="Burst", environment=Environment.SANDBOX
            )
            await webhooks.create_endpoint(
                session, secret_key=TEST_SECRET_KEY, account_id=new.account.id,
                environment=Environment.SANDBOX, url=url, event_types=None, description="",
                allow_private=True,
            )  # fmt: skip
            ids = set()
            for i in range(count):
                event = await webhooks.record_event(
                    session, account_id=new.account.id, event_type=EventType.PAYMENT_COMPLETED,
                    object_id=f"pay_burst_{i}", data={"n": i},
                )  # fmt: skip
                ids.add(event.id)
    finally:
        await engine.dispose()
    return new.account.id, ids


async def attempt_numbers(database_url: str, account_id: str) -> dict[str, list[int]]:
    """Attempt numbers per delivery, and how many of them succeeded."""
    from pesaswitch.webhooks.models import Delivery

    engine = create_engine(Settings(database_url=database_url, secret_key=TEST_SECRET_KEY))
    try:
        async with create_sessionmaker(engine)() as session:
            rows = await session.execute(
                select(
                    DeliveryAttempt.delivery_id, DeliveryAttempt.number, DeliveryAttempt.status_code
                )
                .join(Delivery, Delivery.id == DeliveryAttempt.delivery_id)
                .where(Delivery.account_id == account_id)
                .order_by(DeliveryAttempt.delivery_id, DeliveryAttempt.number)
            )
            numbers: dict[str, list[int]] = {}
            for delivery_id, number, status_code in rows.all():
                numbers.setdefault(delivery_id, []).append(number)
                if status_code == 200:
                    numbers.setdefault(f"ok:{delivery_id}", []).append(number)
            return numbers
    finally:
        await engine.dispose()


async def wait_for(check: object, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.1)


async def test_sigkill_mid_burst_loses_nothing(
    database_url: str, receiver: Receiver, tmp_path: Path
) -> None:
    _account, expected = await make_events(database_url, receiver.url, 500)
    env = worker_env(database_url)
    first = Process([PESASWITCH, "worker"], env, tmp_path / "w1.log")
    try:
        await wait_for(lambda: len(receiver.received) >= 100, timeout=60)
        first.kill()
        got_before_kill = len(set(receiver.ids()))
        assert got_before_kill < 500, "the burst finished before the kill; nothing was tested"
        second = Process([PESASWITCH, "worker"], env, tmp_path / "w2.log")
        try:
            await wait_for(lambda: set(receiver.ids()) >= expected, timeout=90)
        finally:
            second.stop()
    finally:
        first.stop()
    ids = receiver.ids()
    assert set(ids) == expected  # every event arrived, and nothing else
    duplicates = [i for i, n in Counter(ids).items() if n > 1]
    # A duplicate can only be a re-send of an attempt cut off by the kill: same webhook-id.
    assert len(duplicates) <= int(env["PESASWITCH_WEBHOOK_CONCURRENCY"])


async def test_two_workers_never_send_an_attempt_twice(
    database_url: str, receiver: Receiver, tmp_path: Path
) -> None:
    account_id, expected = await make_events(database_url, receiver.url, 1000)
    env = worker_env(database_url)
    workers = [Process([PESASWITCH, "worker"], env, tmp_path / f"w{n}.log") for n in (1, 2)]
    try:
        await wait_for(lambda: len(receiver.received) >= 1000, timeout=120)
        await asyncio.sleep(1.0)  # anything sent twice would arrive by now
    finally:
        for worker in workers:
            worker.stop()
    counts = Counter(receiver.ids())
    assert set(counts) == expected
    assert set(counts.values()) == {1}
    numbers = await attempt_numbers(database_url, account_id)
    per_delivery = {k: v for k, v in numbers.items() if not k.startswith("ok:")}
    succeeded = {k: v for k, v in numbers.items() if k.startswith("ok:")}
    assert len(per_delivery) == 1000
    # Each attempt number was claimed once: 1, 2, … with no repeats.
    assert all(v == list(range(1, len(v) + 1)) for v in per_delivery.values())
    assert len(succeeded) == 1000
    assert all(len(v) == 1 for v in succeeded.values())
