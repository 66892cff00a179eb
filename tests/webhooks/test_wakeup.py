"""PostgreSQL wakes the dispatcher at commit (NOTIFY from the deliveries trigger), SQLite
by the worker's watch of the deliveries table, so a webhook leaves long before the next
poll; PostgreSQL's listener comes back after losing its connection. The poll is set to a
minute here: anything sent within seconds was woken."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import pytest

from pesaswitch.config import Settings
from pesaswitch.webhooks.wakeup import CHANNEL
from tests.conftest import settings_maker
from tests.support.receiver import Receiver, running_receiver
from tests.webhooks.test_delivery import add_endpoint, pay, setup, wait_until

POLL_RARELY = {"webhook_interval": 60.0}


@pytest.fixture
def make_settings(isolated_database_url: str) -> Callable[..., Settings]:
    return settings_maker(isolated_database_url)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver() as running:
        yield running


async def listeners(url: str) -> list[int]:
    """The backends listening on the dispatcher's channel (their last statement)."""
    connection = await asyncpg.connect(url.replace("postgresql+asyncpg", "postgresql"))
    try:
        rows = await connection.fetch(
            "SELECT pid FROM pg_stat_activity WHERE query = $1", f'LISTEN "{CHANNEL}"'
        )
        return [row["pid"] for row in rows]
    finally:
        await connection.close()


async def listening(url: str, timeout: float = 10.0) -> list[int]:
    deadline = asyncio.get_running_loop().time() + timeout
    while not (pids := await listeners(url)):
        assert asyncio.get_running_loop().time() < deadline, "no listener"
        await asyncio.sleep(0.05)
    return pids


async def test_a_webhook_leaves_long_before_the_next_poll(
    gateway_factory: Any, receiver: Receiver
) -> None:
    gateway, merchant = await setup(gateway_factory, **POLL_RARELY)
    await add_endpoint(gateway, merchant, receiver.url + "/hook")
    for count, phone in enumerate(("0708374149", "0708374150", "0708374151"), start=1):
        payment = await pay(gateway, merchant, phone)
        assert payment["status"] == "completed"
        await wait_until(lambda n=count: len(receiver.received) == n, timeout=5)  # type: ignore[misc]
        assert payment["id"].encode() in receiver.received[-1].body
    assert len(receiver.received) == 3


@pytest.mark.postgres_only
async def test_a_webhook_leaves_at_commit_not_at_the_next_poll(
    gateway_factory: Any, receiver: Receiver, isolated_database_url: str
) -> None:
    gateway, merchant = await setup(gateway_factory, **POLL_RARELY)
    await add_endpoint(gateway, merchant, receiver.url + "/hook")
    await listening(isolated_database_url)
    for count, phone in enumerate(("0708374149", "0708374150"), start=1):
        payment = await pay(gateway, merchant, phone)
        assert payment["status"] == "completed"
        await wait_until(lambda n=count: len(receiver.received) == n, timeout=5)  # type: ignore[misc]
        assert payment["id"].encode() in receiver.received[-1].body
    assert len(receiver.received) == 2


@pytest.mark.postgres_only
async def test_the_listener_reconnects_after_its_connection_is_killed(
    gateway_factory: Any, receiver: Receiver, isolated_database_url: str
) -> None:
    gateway, merchant = await setup(gateway_factory, **POLL_RARELY)
    await add_endpoint(gateway, merchant, receiver.url + "/hook")
    [first] = await listening(isolated_database_url)
    killer = await asyncpg.connect(
        isolated_database_url.replace("postgresql+asyncpg", "postgresql")
    )
    try:
        assert await killer.fetchval("SELECT pg_terminate_backend($1)", first)
    finally:
        await killer.close()
    deadline = asyncio.get_running_loop().time() + 10
    while (pids := await listeners(isolated_database_url)) in ([], [first]):
        assert asyncio.get_running_loop().time() < deadline, "the listener did not come back"
        await asyncio.sleep(0.05)
    assert first not in pids
    payment = await pay(gateway, merchant, "0708374149")
    await wait_until(lambda: len(receiver.received) == 1, timeout=5)
    assert payment["id"].encode() in receiver.received[0].body


@pytest.mark.postgres_only
async def test_a_settlement_with_nothing_to_deliver_wakes_no_dispatcher(
    gateway_factory: Any, receiver: Receiver, isolated_database_url: str
) -> None:
    """No endpoint and no callback URL: the settlement inserts no delivery, so nothing is
    notified; once an endpoint exists, the next settlement notifies."""
    gateway, merchant = await setup(gateway_factory, **POLL_RARELY)
    heard: list[str] = []
    connection = await asyncpg.connect(
        isolated_database_url.replace("postgresql+asyncpg", "postgresql")
    )
    try:
        await connection.add_listener(CHANNEL, lambda *args: heard.append(args[1]))
        payment = await pay(gateway, merchant, "0708374149")
        assert payment["status"] == "completed"
        await asyncio.sleep(0.5)  # a notification is sent at commit, before the status reads
        assert heard == []
        await add_endpoint(gateway, merchant, receiver.url + "/hook")
        payment = await pay(gateway, merchant, "0708374150")
        await wait_until(lambda: len(heard) >= 1, timeout=5)
        await wait_until(lambda: len(receiver.received) == 1, timeout=5)
        assert payment["id"].encode() in receiver.received[0].body
    finally:
        await connection.close()
