"""Reconciliation: ask Daraja about payments whose callback has not settled them.

Claims are leases on ``next_query_at``: a claimed row is pushed into the future, so a
worker that dies mid-query simply lets the lease lapse and another takes it over.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

import structlog
from sqlalchemy import ColumnElement, select, update

from pesaswitch.accounts.models import Channel
from pesaswitch.daraja.errors import DarajaError
from pesaswitch.daraja.result_codes import Outcome
from pesaswitch.db import is_sqlite, transaction
from pesaswitch.errors import log_tick_failure
from pesaswitch.kit.clock import utcnow
from pesaswitch.payments import push, service
from pesaswitch.payments.models import Payment, PaymentStatus
from pesaswitch.payments.service import ResultSource
from pesaswitch.runtime import Runtime

log = structlog.get_logger(__name__)

QUERY_CONCURRENCY = 8


async def claim_due_payments(runtime: Runtime) -> list[str]:
    lease = timedelta(seconds=runtime.settings.daraja_timeout * 2 + 5)
    return await claim_due(runtime, Payment.checkout_request_id.is_not(None), lease=lease)


async def claim_due(
    runtime: Runtime, *conditions: ColumnElement[bool], lease: timedelta
) -> list[str]:
    """Pending payments due (``next_query_at`` passed) that also meet ``conditions``, each
    leased to this worker for ``lease`` by moving its ``next_query_at``; racing workers
    claim each once."""
    settings = runtime.settings
    now = utcnow()
    async with transaction(runtime.sessionmaker) as session:
        query = (
            select(Payment.id)
            .where(
                Payment.status == PaymentStatus.PENDING.value,
                Payment.next_query_at.is_not(None),
                Payment.next_query_at <= now,
                *conditions,
            )
            .order_by(Payment.next_query_at)
            .limit(settings.reconcile_batch)
        )
        if not is_sqlite(session):
            # SQLite's BEGIN IMMEDIATE already serialises claimers.
            query = query.with_for_update(skip_locked=True)
        ids = list(await session.scalars(query))
        if ids:
            await session.execute(
                update(Payment).where(Payment.id.in_(ids)).values(next_query_at=now + lease)
            )
    return ids


async def reconcile_payment(runtime: Runtime, payment_id: str) -> None:
    settings = runtime.settings
    async with runtime.sessionmaker() as session:
        payment = await session.get(Payment, payment_id)
        if payment is None or payment.status != PaymentStatus.PENDING.value:
            return
        channel = await session.get(Channel, payment.channel_id)
        assert channel is not None
        assert payment.checkout_request_id is not None
        auth = await push.shortcode_auth(session, settings, channel)
        checkout_request_id = payment.checkout_request_id
    try:
        result = await runtime.daraja.for_app(auth.app).stk_query(
            business_shortcode=auth.business_shortcode,
            passkey=auth.passkey,
            checkout_request_id=checkout_request_id,
        )
    except DarajaError as exc:
        log.info("reconcile.query_failed", payment_id=payment_id, error=str(exc))
        result = None
    async with transaction(runtime.sessionmaker) as session:
        payment = await service.reload(session, payment_id)
        if result is not None and result.outcome is not Outcome.PENDING:
            await service.apply_result(
                session, payment=payment, result=result, source=ResultSource.QUERY
            )
            return
        if payment.status != PaymentStatus.PENDING.value:
            return
        attempts = payment.query_attempts + 1
        next_at = settings.next_query_at(
            attempts=attempts, created_at=payment.created_at, now=utcnow()
        )
        if next_at is None:
            # Still no answer after the whole window: it stays pending and visible.
            log.warning("reconcile.gave_up", payment_id=payment_id, attempts=attempts)
        await session.execute(
            update(Payment)
            .where(Payment.id == payment_id, Payment.status == PaymentStatus.PENDING.value)
            .values(query_attempts=attempts, next_query_at=next_at)
        )


async def reconcile_guarded(runtime: Runtime, payment_id: str) -> None:
    """One payment's step, whatever it meets: a database outage is a warning (the lease
    lapses and a later tick asks again; a traceback here hid nothing but a restart, found
    by the chaos run on PostgreSQL), anything else its traceback."""
    try:
        await reconcile_payment(runtime, payment_id)
    except Exception as exc:
        log_tick_failure("reconcile.error", exc, payment_id=payment_id)


async def reconcile_once(runtime: Runtime) -> int:
    ids = await claim_due_payments(runtime)
    semaphore = asyncio.Semaphore(QUERY_CONCURRENCY)

    async def run(payment_id: str) -> None:
        async with semaphore:
            await reconcile_guarded(runtime, payment_id)

    await asyncio.gather(*(run(pid) for pid in ids))
    return len(ids)
