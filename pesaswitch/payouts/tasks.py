"""Payout reconciliation: a payout whose Result has not come is looked up with
Transaction Status (by our OriginatorConversationID); the answer arrives at
``/daraja/b2c/status/<token>``. Claims are leases on ``next_query_at``, as for payments."""

from __future__ import annotations

import asyncio

import structlog
from sqlalchemy import select

from pesaswitch.daraja.b2c import TransactionStatusRequest
from pesaswitch.daraja.errors import DarajaError
from pesaswitch.db import is_sqlite, transaction
from pesaswitch.kit.clock import utcnow
from pesaswitch.payouts.initiate import initiator
from pesaswitch.payouts.models import OPEN_STATUSES, Payout
from pesaswitch.runtime import Runtime

log = structlog.get_logger(__name__)


async def claim_due_payouts(runtime: Runtime) -> list[Payout]:
    settings = runtime.settings
    now = utcnow()
    async with transaction(runtime.sessionmaker) as session:
        query = (
            select(Payout)
            .where(
                Payout.status.in_(OPEN_STATUSES),
                Payout.next_query_at.is_not(None),
                Payout.next_query_at <= now,
            )
            .order_by(Payout.next_query_at)
            .limit(settings.reconcile_batch)
        )
        if not is_sqlite(session):
            query = query.with_for_update(skip_locked=True)
        payouts = list(await session.scalars(query))
        for payout in payouts:
            payout.query_attempts += 1
            # The next ask doubles as the lease: a crashed worker's claim simply comes due.
            payout.next_query_at = settings.next_query_at(
                attempts=payout.query_attempts, created_at=payout.created_at, now=now
            )
            if payout.next_query_at is None:
                log.warning("payouts.reconcile.gave_up", payout_id=payout.id)
    return payouts


async def ask_status(runtime: Runtime, payout: Payout) -> None:
    settings = runtime.settings
    base = f"{settings.effective_public_url}/daraja/b2c"
    try:
        request = TransactionStatusRequest(
            initiator=await initiator(runtime), party_a=payout.shortcode,
            result_url=f"{base}/status/{payout.callback_token}",
            queue_timeout_url=f"{base}/timeout/{payout.callback_token}",
            transaction_id=payout.transaction_id,
            original_conversation_id=payout.originator_conversation_id,
        )  # fmt: skip
        await runtime.daraja.for_app(None).transaction_status(request)
    except DarajaError as exc:
        log.info("payouts.reconcile.query_failed", payout_id=payout.id, error=str(exc))


async def reconcile_payouts_once(runtime: Runtime) -> int:
    payouts = await claim_due_payouts(runtime)
    await asyncio.gather(*(ask_status(runtime, p) for p in payouts))
    return len(payouts)
