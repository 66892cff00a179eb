"""The outbox dispatcher: claims due deliveries with leases and sends them.

A claim increments ``attempt_count`` and pushes ``next_attempt_at`` out by a lease,
atomically: one statement with ``FOR UPDATE SKIP LOCKED`` on PostgreSQL (``store.py``), a
transaction on SQLite, whose ``BEGIN IMMEDIATE`` serialises claimers. So each attempt
number is claimed by one worker only, and a worker that dies mid-send lets the lease
lapse and the next attempt is taken by another — at least once, with the same
``webhook-id``. Finished sends are recorded in batches by the dispatcher's recorder task
(``recording.py``), not a transaction per send.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import Mapping
from datetime import timedelta

import httpx
import structlog
from sqlalchemy import bindparam, or_, select, update

from pesaswitch.accounts.models import Account, Environment
from pesaswitch.db import transaction
from pesaswitch.errors import log_tick_failure
from pesaswitch.kit import crypto
from pesaswitch.kit.clock import utcnow
from pesaswitch.kit.http import async_client
from pesaswitch.runtime import Runtime
from pesaswitch.webhooks import formats, service, signing, store
from pesaswitch.webhooks.models import (
    Delivery,
    DeliveryStatus,
    Event,
    WebhookEndpoint,
)
from pesaswitch.webhooks.recording import Outcome, gone, record_outcomes
from pesaswitch.webhooks.sending import AttemptResult, post_pinned
from pesaswitch.webhooks.store import Claim, destination_of
from pesaswitch.webhooks.wakeup import OutboxWakeup

log = structlog.get_logger(__name__)


def lease_seconds(runtime: Runtime) -> float:
    return runtime.settings.webhook_timeout * 3 + 5


# SQLite's claim. Built once: a claim runs many times a second under load, and building
# its statements (and their cache keys) each time was ~9 % of the worker's CPU.
_DUE = (
    select(Delivery.id, Delivery.endpoint_id, Delivery.url)
    .where(
        Delivery.status == DeliveryStatus.PENDING.value,
        Delivery.next_attempt_at <= bindparam("now"),
    )
    .order_by(Delivery.next_attempt_at)
    .limit(bindparam("window"))
)
_LEASE = (
    update(Delivery)
    .where(Delivery.id.in_(bindparam("ids", expanding=True)))
    .values(
        attempt_count=Delivery.attempt_count + 1,
        next_attempt_at=bindparam("lease_until"),
    )
)
_CLAIMED = (
    select(Delivery, Event.payload, Account.environment, Account.callback_secret_enc,
           WebhookEndpoint)
    .join(Event, Event.id == Delivery.event_id)
    .join(Account, Account.id == Delivery.account_id)
    .outerjoin(WebhookEndpoint, WebhookEndpoint.id == Delivery.endpoint_id)
    .where(Delivery.id.in_(bindparam("ids", expanding=True)))
)  # fmt: skip


async def claim_due(
    runtime: Runtime, limit: int, *, busy: Mapping[str, int] | None = None
) -> list[Claim]:
    """Claim up to ``limit`` due attempts, at most ``webhook_destination_concurrency`` per
    destination counting those already ``busy``, so one slow receiver cannot take every
    slot while other merchants' webhooks wait."""
    now = utcnow()
    cap = runtime.settings.webhook_destination_cap
    lease_until = now + timedelta(seconds=lease_seconds(runtime))
    if runtime.engine.dialect.name == "postgresql":  # one statement (store.py)
        return await store.claim_due(
            runtime.engine, now=now, limit=limit, cap=cap, busy=busy or {},
            lease_until=lease_until,
        )  # fmt: skip
    async with transaction(runtime.sessionmaker) as session:
        query = _DUE
        # Destinations already at their cap are skipped in SQL, so their backlog cannot
        # fill the candidate window and hide everyone else's due rows.
        full = [d for d, n in (busy or {}).items() if n >= cap]
        if full:
            query = query.where(
                or_(Delivery.endpoint_id.is_(None), Delivery.endpoint_id.not_in(full)),
                or_(Delivery.endpoint_id.is_not(None), Delivery.url.not_in(full)),
            )
        taken = Counter(busy or {})
        ids: list[str] = []
        candidates = await session.execute(query, {"now": now, "window": limit * 4})
        for row in candidates.all():
            destination = destination_of(row.endpoint_id, row.url)
            if taken[destination] >= cap:
                continue
            taken[destination] += 1
            ids.append(row.id)
            if len(ids) == limit:
                break
        if not ids:
            return []
        await session.execute(_LEASE, {"ids": ids, "lease_until": lease_until})
        rows = await session.execute(_CLAIMED, {"ids": ids})
        return [
            Claim(
                delivery_id=delivery.id,
                attempt=delivery.attempt_count,
                url=delivery.url,
                event_id=delivery.event_id,
                payload=delivery.body or payload,
                format=delivery.format,
                account_id=delivery.account_id,
                environment=Environment(environment),
                callback_secret_enc=callback_secret_enc,
                endpoint=endpoint,
            )
            for delivery, payload, environment, callback_secret_enc, endpoint in rows.all()
        ]


async def _secrets_for(runtime: Runtime, claim: Claim) -> list[str]:
    key = runtime.settings.secret_key
    if claim.endpoint is not None:
        return service.endpoint_secrets(key, claim.endpoint)
    if claim.callback_secret_enc is not None:
        return [crypto.decrypt(key, claim.callback_secret_enc)]
    async with transaction(runtime.sessionmaker) as session:
        return [await service.callback_secret(session, secret_key=key, account_id=claim.account_id)]


async def attempt(runtime: Runtime, http: httpx.AsyncClient, claim: Claim) -> Outcome:
    """Send one claimed attempt (nothing recorded yet): ``record_outcomes`` writes it down."""
    settings = runtime.settings
    endpoint = claim.endpoint
    if endpoint is not None and (not endpoint.enabled or endpoint.deleted_at is not None):
        return Outcome(claim, None, utcnow())
    secrets_ = await _secrets_for(runtime, claim)
    body = formats.finalize(claim.format, secrets_[0], claim.payload)
    headers = signing.sign_headers(webhook_id=claim.event_id, body=body, secrets_=secrets_)
    if endpoint is not None:
        headers.update(formats.vendor_headers(endpoint.style, secrets_[0], body))
    attempted_at = utcnow()
    result = await post_pinned(
        http, claim.url, headers=headers, body=body,
        allow_private=service.allow_private_urls(
            claim.environment, settings.sandbox_allow_private_urls
        ),
        require_https=claim.environment is Environment.LIVE,
    )  # fmt: skip
    if not result.succeeded:
        log.info(
            "webhooks.attempt_failed",
            delivery_id=claim.delivery_id,
            attempt=claim.attempt,
            status_code=result.status_code,
            error=result.error,
        )
    return Outcome(claim, result, attempted_at)


async def deliver(runtime: Runtime, http: httpx.AsyncClient, claim: Claim) -> AttemptResult | None:
    """Send one claimed attempt and record it in a transaction of its own."""
    outcome = await attempt(runtime, http, claim)
    async with transaction(runtime.sessionmaker) as session:
        await record_outcomes(session, [outcome], runtime.settings.webhook_schedule)
    return outcome.result


class Dispatcher:
    """Keeps up to ``webhook_concurrency`` sends in flight; a slow receiver holds one slot."""

    def __init__(self, runtime: Runtime, http: httpx.AsyncClient | None = None) -> None:
        self.runtime = runtime
        settings = runtime.settings
        self.http = http or async_client(
            timeout=settings.webhook_timeout,
            follow_redirects=False,
            limits=httpx.Limits(max_connections=settings.webhook_concurrency * 2),
        )
        self.in_flight: set[asyncio.Task[None]] = set()
        self.busy: Counter[str] = Counter()
        # Sent, not yet recorded: written down together by the recorder task.
        # A send keeps its slot until its batch is recorded, so sent-but-unrecorded attempts
        # (sent again after a crash) stay within webhook_concurrency, as before batching.
        self.outcomes: list[Outcome] = []
        self.sent = asyncio.Event()
        self.recorded = asyncio.Event()  # set when the batch now gathering is written
        self.closing = False
        self.drained = False
        self.wakeup = OutboxWakeup(
            runtime.engine, settings.webhook_wakeup_gather, settings.webhook_sqlite_watch
        )
        self.postgresql = runtime.engine.dialect.name == "postgresql"

    async def _run_one(self, claim: Claim) -> None:
        try:
            outcome = await attempt(self.runtime, self.http, claim)
            # Appended after the await: the recorder swaps the list out meanwhile.
            self.outcomes.append(outcome)
            recorded = self.recorded
            self.sent.set()
            await recorded.wait()
        except Exception as exc:
            # The lease will lapse and the attempt is retried; never kill the loop.
            log_tick_failure("webhooks.deliver_error", exc, delivery_id=claim.delivery_id)
        finally:
            self.busy[claim.destination] -= 1

    async def record(self) -> None:
        """Record every outcome sent so far, in one transaction."""
        batch, self.outcomes = self.outcomes, []
        recorded, self.recorded = self.recorded, asyncio.Event()
        self.sent.clear()
        schedule = self.runtime.settings.webhook_schedule
        try:
            if batch and self.postgresql and not any(map(gone, batch)):
                await store.record_outcomes(self.runtime.engine, batch, schedule, utcnow())
            elif batch:
                async with transaction(self.runtime.sessionmaker) as session:
                    await record_outcomes(session, batch, schedule)
        except Exception as exc:
            # Their leases lapse and the attempts are sent again; never kill the loop.
            log_tick_failure("webhooks.record_failed", exc, deliveries=len(batch))
        finally:
            recorded.set()

    async def _recorder(self) -> None:
        # While one batch is written the next sends accumulate: batches grow with load.
        interval = self.runtime.settings.webhook_interval
        while not self.closing:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.sent.wait(), timeout=interval)
            await self.record()

    def room(self) -> int:
        """How many attempts to claim now: claim in batches (a quarter of the slots at
        least) rather than a transaction per freed slot; with nothing in flight, any free
        slot will do."""
        concurrency = self.runtime.settings.webhook_concurrency
        free = concurrency - len(self.in_flight)
        if free <= 0 or (self.in_flight and free < max(1, concurrency // 4)):
            return 0
        return free

    async def tick(self) -> int:
        free = self.room()
        if not free:
            return 0
        self.wakeup.take()
        claims = await claim_due(self.runtime, free, busy=+self.busy)
        # Fewer than asked for: nothing else is due now, and claiming again at once would
        # find nothing (a transaction wasted per wake-up).
        self.drained = len(claims) < free
        for claim in claims:
            self.busy[claim.destination] += 1
            task = asyncio.create_task(self._run_one(claim))
            self.in_flight.add(task)
            task.add_done_callback(self.in_flight.discard)
        return len(claims)

    async def run(self, stop: asyncio.Event) -> None:
        interval = self.runtime.settings.webhook_interval
        recorder = asyncio.create_task(self._recorder())
        listener = asyncio.create_task(self.wakeup.listen(stop))
        try:
            while not stop.is_set():
                try:
                    claimed = await self.tick()
                except Exception as exc:
                    log_tick_failure("webhooks.tick_failed", exc)
                    claimed = 0
                if claimed and not self.drained:
                    await asyncio.sleep(0)  # more may be due: go again without waiting
                elif not self.room():
                    # Slots are busy: wait for one to free up rather than a full tick.
                    await asyncio.wait(
                        self.in_flight, timeout=interval, return_when=asyncio.FIRST_COMPLETED
                    )
                else:
                    # Until new deliveries are notified, a send ends, or the next poll.
                    await self.wakeup.wait(stop, interval, busy=self.in_flight)
        finally:
            listener.cancel()
            await asyncio.gather(listener, return_exceptions=True)
            if self.in_flight:
                await asyncio.gather(*self.in_flight, return_exceptions=True)
            self.closing = True
            self.sent.set()
            await asyncio.gather(recorder, return_exceptions=True)
            await self.record()  # whatever the recorder had not taken yet
            await self.http.aclose()
