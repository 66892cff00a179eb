"""Reversal reconciliation: a reversal Daraja accepted whose Result has not come is
looked up with Transaction Status by the OriginatorConversationID Daraja gave it; the
answer arrives at ``/daraja/reversal/status/<token>``. Claims are leases on
``next_query_at``, as for payouts. (Refunds are payouts, reconciled with them.)"""

from __future__ import annotations

import asyncio

import structlog
from sqlalchemy import select

from pesaswitch.daraja.b2c import TransactionStatusRequest
from pesaswitch.daraja.errors import DarajaError
from pesaswitch.db import is_sqlite, transaction
from pesaswitch.kit.clock import utcnow
from pesaswitch.payouts.initiate import initiator
from pesaswitch.refunds.models import ReturnStatus, Reversal
from pesaswitch.runtime import Runtime

log = structlog.get_logger(__name__)


async def claim_due_reversals(runtime: Runtime) -> list[Reversal]:
    settings = runtime.settings
    now = utcnow()
    async with transaction(runtime.sessionmaker) as session:
        query = (
            select(Reversal)
            .where(
                Reversal.status == ReturnStatus.PROCESSING.value,
                Reversal.next_query_at.is_not(None),
                Reversal.next_query_at <= now,
            )
            .order_by(Reversal.next_query_at)
            .limit(settings.reconcile_batch)
        )
        if not is_sqlite(session):
            query = query.with_for_update(skip_locked=True)
        found = list(await session.scalars(query))
        for reversal in found:
            reversal.query_attempts += 1
            # The next ask doubles as the lease: a crashed worker's claim simply comes due.
            reversal.next_query_at = settings.next_query_at(
                attempts=reversal.query_attempts, created_at=reversal.created_at, now=now
            )
            if reversal.next_query_at is None:
                log.warning("reversals.reconcile.gave_up", reversal_id=reversal.id)
    return found


async def ask_status(runtime: Runtime, reversal: Reversal) -> None:
    base = f"{runtime.settings.effective_public_url}/daraja/reversal"
    try:
        request = TransactionStatusRequest(
            initiator=await initiator(runtime), party_a=reversal.shortcode,
            result_url=f"{base}/status/{reversal.callback_token}",
            queue_timeout_url=f"{base}/timeout/{reversal.callback_token}",
            original_conversation_id=reversal.originator_conversation_id,
        )  # fmt: skip
        await runtime.daraja.for_app(None).transaction_status(request)
    except DarajaError as exc:
        log.info("reversals.reconcile.query_failed", reversal_id=reversal.id, error=str(exc))


async def reconcile_reversals_once(runtime: Runtime) -> int:
    found = await claim_due_reversals(runtime)
    await asyncio.gather(*(ask_status(runtime, r) for r in found))
    return len(found)
