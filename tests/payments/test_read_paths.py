"""The fast read paths: the in-process API-key cache (revocation here is immediate, from
elsewhere within the TTL) and read-only sessions (they see committed data, never write,
and on SQLite do not wait for the write lock)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import select, text, update

from pesaswitch.accounts.keycache import cache
from pesaswitch.accounts.models import ApiKey, Environment, KeyKind
from pesaswitch.accounts.service import AuthContext, revoke_api_key
from pesaswitch.config import Settings
from pesaswitch.db import create_engine, create_sessionmaker, read_sessions, transaction
from pesaswitch.kit.clock import utcnow
from pesaswitch.payments.models import Payment
from pesaswitch.protection.models import StkAccountGuard
from tests.conftest import Gateway, Merchant, create_merchant, problem

BODY = {"amount": 10, "phone": "0708374149"}


async def _list(gateway: Gateway, merchant: Merchant) -> int:
    response = await gateway.client.get("/v1/payments", headers=merchant.auth)
    return response.status_code


async def test_revoking_in_this_process_is_immediate_despite_the_cache(
    gateway_factory: Callable[..., Any],
) -> None:
    gateway: Gateway = await gateway_factory(api_key_cache_seconds=300)
    merchant = await create_merchant(gateway.settings)
    assert await _list(gateway, merchant) == 200  # verified, now cached for 300 s
    async with transaction(gateway.app.state.runtime.sessionmaker) as session:
        await revoke_api_key(session, key_id=merchant.secret_key_id)
    response = await gateway.client.get("/v1/payments", headers=merchant.auth)
    assert response.status_code == 401
    assert problem(response)["code"] == "api_key_revoked"


async def test_revoking_elsewhere_takes_effect_within_the_ttl(
    gateway_factory: Callable[..., Any],
) -> None:
    # 3 s, not 0.5: on a loaded machine (two test processes, 2 cores) half a second
    # passed between the first request and the second, which then found the revocation.
    gateway: Gateway = await gateway_factory(api_key_cache_seconds=3.0)
    merchant = await create_merchant(gateway.settings)
    assert await _list(gateway, merchant) == 200
    # Another process revokes: a plain UPDATE, which this process never hears about.
    async with transaction(gateway.app.state.runtime.sessionmaker) as session:
        await session.execute(
            update(ApiKey).where(ApiKey.id == merchant.secret_key_id).values(revoked_at=utcnow())
        )
    assert await _list(gateway, merchant) == 200  # still trusted: the stated lag
    await asyncio.sleep(3.1)
    assert await _list(gateway, merchant) == 401


async def test_without_a_cache_every_request_looks_the_key_up(
    gateway_factory: Callable[..., Any],
) -> None:
    gateway: Gateway = await gateway_factory(api_key_cache_seconds=0)
    merchant = await create_merchant(gateway.settings)
    assert await _list(gateway, merchant) == 200
    async with transaction(gateway.app.state.runtime.sessionmaker) as session:
        await session.execute(
            update(ApiKey).where(ApiKey.id == merchant.secret_key_id).values(revoked_at=utcnow())
        )
    assert await _list(gateway, merchant) == 401


def test_a_lookup_that_raced_a_revocation_is_not_cached() -> None:
    context = AuthContext("acct_x", Environment.SANDBOX, "key_race", KeyKind.SECRET)
    generation = cache.generation  # the lookup starts reading here …
    cache.forget("key_race")  # … a revocation commits meanwhile …
    cache.put("db", "digest-race", context, ttl=60, generation=generation)
    assert cache.get("db", "digest-race") is None  # … so its stale answer is dropped
    cache.put("db", "digest-race", context, ttl=60, generation=cache.generation)
    assert cache.get("db", "digest-race") == context
    cache.forget("key_race")
    assert cache.get("db", "digest-race") is None


async def test_reads_see_a_payment_as_soon_as_it_is_committed(
    gateway: Gateway, merchant: Merchant
) -> None:
    created = await gateway.client.post("/v1/payments", headers=merchant.auth, json=BODY)
    assert created.status_code == 201, created.text
    payment_id = created.json()["id"]
    final = await gateway.wait_for_status(merchant, payment_id)
    assert final["status"] == "completed"  # the callback's commit is visible to GETs
    listed = await gateway.client.get("/v1/payments", headers=merchant.read_auth)
    assert payment_id in [p["id"] for p in listed.json()["data"]]


async def test_a_read_session_does_not_wait_for_a_writer(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings()
    merchant = await create_merchant(settings)
    engine = create_engine(settings)
    sessions = create_sessionmaker(engine)
    try:
        async with transaction(sessions) as writer:
            # The writer holds its transaction (SQLite: the write lock) open …
            await writer.execute(
                update(ApiKey).where(ApiKey.id == merchant.secret_key_id).values(last4="zzzz")
            )
            # … and a read still answers at once, from the last committed state.
            async with read_sessions(sessions)() as reader:
                last4 = await asyncio.wait_for(
                    reader.scalar(select(ApiKey.last4).where(ApiKey.id == merchant.secret_key_id)),
                    timeout=5,
                )
            assert last4 == merchant.secret_key[-4:]
    finally:
        await engine.dispose()


async def test_a_read_session_refuses_to_write(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings()
    engine = create_engine(settings)
    try:
        async with read_sessions(create_sessionmaker(engine))() as reader:
            if engine.dialect.name == "sqlite":
                # SQLite has no read-only transaction; the guarantee is that reads start
                # deferred (no write lock), checked in the test above.
                assert await reader.scalar(text("SELECT 1")) == 1
                return
            with pytest.raises(Exception, match="read-only"):
                await reader.execute(update(Payment).values(amount=Payment.amount))
    finally:
        await engine.dispose()


async def test_writers_queue_and_a_failed_one_lets_the_next_through(
    make_settings: Callable[..., Settings],
) -> None:
    """Many writers of one process at once all commit (on SQLite they queue in-process
    rather than poll the lock), and a writer that rolls back or fails to commit releases
    its turn: the next one does not wait for a timeout."""
    settings = make_settings()
    merchant = await create_merchant(settings)
    engine = create_engine(settings)
    sessions = create_sessionmaker(engine)
    guard = StkAccountGuard.account_id == merchant.account_id
    async with transaction(sessions) as session:
        session.add(StkAccountGuard(account_id=merchant.account_id, window_failures=0))

    async def bump() -> None:
        async with transaction(sessions) as session:
            await session.execute(
                update(StkAccountGuard)
                .where(guard)
                .values(window_failures=StkAccountGuard.window_failures + 1)
            )

    async def failing_write() -> None:
        async with transaction(sessions) as session:
            await session.execute(update(StkAccountGuard).where(guard).values(window_failures=-5))
            raise RuntimeError("rolled back")

    try:
        with pytest.raises(RuntimeError):
            await failing_write()
        await asyncio.wait_for(asyncio.gather(*(bump() for _ in range(40))), timeout=20)
        async with read_sessions(sessions)() as reader:
            count = await reader.scalar(select(StkAccountGuard.window_failures).where(guard))
        assert count == 40
    finally:
        await engine.dispose()
