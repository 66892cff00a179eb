"""The outbox claim and the recording of sends on their own (no dispatcher running), on
either database. PostgreSQL's are one statement each (``webhooks/store.py``), SQLite's
transactions; both must write the same rows."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from pesaswitch.accounts.models import Environment
from pesaswitch.config import Settings
from pesaswitch.db import transaction
from pesaswitch.kit.clock import utcnow
from pesaswitch.runtime import Runtime
from pesaswitch.webhooks import service as webhooks
from pesaswitch.webhooks.dispatcher import Dispatcher, claim_due, lease_seconds
from pesaswitch.webhooks.models import Delivery, DeliveryAttempt, DeliveryStatus, EventType
from pesaswitch.webhooks.recording import Outcome
from pesaswitch.webhooks.sending import AttemptResult
from tests.conftest import Gateway, Merchant, create_merchant, settings_maker


@pytest.fixture
def make_settings(isolated_database_url: str) -> Callable[..., Settings]:
    """A database of its own: the claim takes every due row, whoever made it."""
    return settings_maker(isolated_database_url)


async def add_endpoint(runtime: Runtime, settings: Settings, shop: Merchant, url: str) -> str:
    async with transaction(runtime.sessionmaker) as session:
        endpoint = await webhooks.create_endpoint(
            session, secret_key=settings.secret_key, account_id=shop.account_id,
            environment=Environment.SANDBOX, url=url, event_types=["payment.completed"],
            description="claim test", allow_private=True,
        )  # fmt: skip
        return endpoint.endpoint.id


async def queue_events(runtime: Runtime, shop: Merchant, count: int, prefix: str) -> None:
    """``count`` events (one delivery each per endpoint), each due a moment after the last."""
    start = utcnow() - timedelta(minutes=1)
    for i in range(count):
        async with transaction(runtime.sessionmaker) as session:
            event = await webhooks.record_event(
                session, account_id=shop.account_id, event_type=EventType.PAYMENT_COMPLETED,
                object_id=f"{prefix}{i}", data={"n": i},
            )  # fmt: skip
            await session.execute(
                update(Delivery)
                .where(Delivery.event_id == event.id)
                .values(next_attempt_at=start + timedelta(milliseconds=i))
            )


async def claimer(gateway_factory: Any) -> tuple[Gateway, Runtime, Merchant]:
    gateway: Gateway = await gateway_factory(
        embedded_worker=False, sandbox_allow_private_urls=True, webhook_destination_concurrency=3
    )
    shop = await create_merchant(gateway.settings, "Claim shop")
    return gateway, gateway.app.state.runtime, shop


async def test_claim_takes_the_oldest_within_each_destinations_cap(gateway_factory: Any) -> None:
    gateway, runtime, shop = await claimer(gateway_factory)
    busy_one = await add_endpoint(runtime, gateway.settings, shop, "http://127.0.0.1:9/busy")
    await queue_events(runtime, shop, 5, "pay_a")
    other = await add_endpoint(runtime, gateway.settings, shop, "http://127.0.0.1:9/other")
    await queue_events(runtime, shop, 2, "pay_b")
    # The first endpoint already has 2 sends in flight: room for one more of its 7 rows.
    claims = await claim_due(runtime, 10, busy={busy_one: 2})
    by_endpoint: dict[str, list[str]] = {}
    for claim in claims:
        assert claim.endpoint is not None
        by_endpoint.setdefault(claim.endpoint.id, []).append(json.loads(claim.payload)["data"])
    assert by_endpoint[busy_one] == [{"n": 0}]
    # The second endpoint exists only for pay_b's events: both, within its cap of 3.
    assert sorted(d["n"] for d in by_endpoint[other]) == [0, 1]
    for claim in claims:
        assert claim.attempt == 1
        assert claim.endpoint is not None
        assert claim.endpoint.event_types == ["payment.completed"]
        assert claim.endpoint.secret_enc
        assert claim.environment is Environment.SANDBOX
    # Each claimed row is leased: not due again until the lease lapses.
    async with transaction(runtime.sessionmaker) as session:
        leased = (
            await session.execute(
                select(Delivery).where(Delivery.id.in_([c.delivery_id for c in claims]))
            )
        ).scalars()
        floor = utcnow() + timedelta(seconds=lease_seconds(runtime) - 5)
        for delivery in leased:
            assert delivery.attempt_count == 1
            assert delivery.next_attempt_at is not None
            assert delivery.next_attempt_at > floor
    # A destination at its cap is skipped, even with its rows the oldest due.
    assert await claim_due(runtime, 10, busy={busy_one: 3, other: 3}) == []
    nxt = await claim_due(runtime, 10, busy={busy_one: 0})
    assert sorted(json.loads(c.payload)["data"]["n"] for c in nxt) == [1, 2, 3]
    assert {c.endpoint.id for c in nxt if c.endpoint} == {busy_one}


async def test_racing_claims_never_take_the_same_attempt(gateway_factory: Any) -> None:
    gateway, runtime, shop = await claimer(gateway_factory)
    for n in range(6):
        await add_endpoint(runtime, gateway.settings, shop, f"http://127.0.0.1:9/e{n}")
    await queue_events(runtime, shop, 5, "pay_r")  # 30 deliveries, 5 per endpoint
    batches = await asyncio.gather(*(claim_due(runtime, 4) for _ in range(8)))
    taken = [claim.delivery_id for batch in batches for claim in batch]
    assert len(taken) == len(set(taken))
    # Cap 3 per endpoint across the batches is not promised (each claimer counts its own
    # busy), but every batch keeps it.
    for batch in batches:
        per_endpoint: dict[str, int] = {}
        for claim in batch:
            assert claim.endpoint is not None
            per_endpoint[claim.endpoint.id] = per_endpoint.get(claim.endpoint.id, 0) + 1
        assert max(per_endpoint.values(), default=0) <= 3
    # Whatever was not taken is still due, and a last claim finds all of it.
    rest = await claim_due(runtime, 30)
    assert len(taken) + len(rest) == 30


async def test_recorded_outcomes_settle_only_their_own_attempt(gateway_factory: Any) -> None:
    """The recorder writes every attempt and settles each delivery by its attempt's
    outcome; an outcome of an attempt whose lease was retaken is kept but settles nothing."""
    gateway, runtime, shop = await claimer(gateway_factory)
    await add_endpoint(runtime, gateway.settings, shop, "http://127.0.0.1:9/rec")
    await queue_events(runtime, shop, 3, "pay_o")
    ok, failing, stale = await claim_due(runtime, 3)
    # The third's lease lapses and another worker retakes it: attempt 2 is now its own.
    async with transaction(runtime.sessionmaker) as session:
        await session.execute(
            update(Delivery)
            .where(Delivery.id == stale.delivery_id)
            .values(next_attempt_at=utcnow())
        )
    [retaken] = await claim_due(runtime, 3)
    assert (retaken.delivery_id, retaken.attempt) == (stale.delivery_id, 2)
    dispatcher = Dispatcher(runtime)
    sent = utcnow()
    dispatcher.outcomes = [
        Outcome(ok, AttemptResult(204, 12, "", None), sent),
        Outcome(failing, AttemptResult(500, 30, "boom", None), sent),
        Outcome(stale, AttemptResult(200, 5, "late", None), sent),
    ]
    await dispatcher.record()
    await dispatcher.http.aclose()
    async with transaction(runtime.sessionmaker) as session:
        rows = {
            d.id: d
            for d in (
                await session.execute(
                    select(Delivery).where(
                        Delivery.id.in_([ok.delivery_id, failing.delivery_id, stale.delivery_id])
                    )
                )
            ).scalars()
        }
        attempts = (
            await session.execute(
                select(
                    DeliveryAttempt.delivery_id, DeliveryAttempt.number,
                    DeliveryAttempt.status_code, DeliveryAttempt.response_body,
                )
            )
        ).all()  # fmt: skip
    assert (rows[ok.delivery_id].status, rows[ok.delivery_id].last_status_code) == (
        DeliveryStatus.SUCCEEDED.value, 204,
    )  # fmt: skip
    again = rows[failing.delivery_id]
    assert (again.status, again.last_status_code) == (DeliveryStatus.PENDING.value, 500)
    assert again.next_attempt_at is not None
    # The schedule's first step after attempt 1, not the lease.
    first_step = gateway.settings.webhook_schedule[0]
    assert abs((again.next_attempt_at - sent).total_seconds() - first_step) < 5
    # Still held by attempt 2: pending, leased, nothing settled by the late outcome.
    held = rows[stale.delivery_id]
    assert (held.status, held.attempt_count, held.last_status_code) == (
        DeliveryStatus.PENDING.value, 2, None,
    )  # fmt: skip
    assert sorted(attempts) == sorted(
        [
            (ok.delivery_id, 1, 204, ""),
            (failing.delivery_id, 1, 500, "boom"),
            (stale.delivery_id, 1, 200, "late"),
        ]
    )
