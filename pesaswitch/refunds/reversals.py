"""Reversal state: pending (reserved) -> processing (Daraja accepted) -> completed
(the collection undone) | failed (reserve released, claim given back).

Final states are set by a conditional UPDATE, so duplicate or racing Results (and a
Result racing a Transaction Status answer) settle a reversal once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import structlog
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from pesaswitch.daraja.b2c import B2CAccepted
from pesaswitch.errors import NotFound
from pesaswitch.kit.clock import utcnow
from pesaswitch.kit.ids import new_id, new_token
from pesaswitch.ledger.policy import ledger_policy_of
from pesaswitch.payments.models import Payment
from pesaswitch.refunds import ledger
from pesaswitch.refunds.models import OPEN_STATUSES, ReturnStatus, Reversal, ReversalCallback
from pesaswitch.refunds.schemas import ReversalOut
from pesaswitch.refunds.service import claim_reversal, release_claim
from pesaswitch.webhooks.models import EventType
from pesaswitch.webhooks.service import record_event

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Finish:
    succeeded: bool
    result_code: str
    result_desc: str
    transaction_id: str | None
    source: str  # push | callback | query


async def create_reversal(session: AsyncSession, *, payment: Payment, reason: str) -> Reversal:
    """Claim the whole payment and reserve what the collection credited, or raise."""
    await claim_reversal(session, payment=payment)
    collection = await ledger.collection_entry(session, payment_id=payment.id)
    if collection is None:  # a wallet payment is always credited when it completes
        raise NotFound(f"Payment {payment.id} has no collection in the ledger")
    # What the collection really credited, whatever the tariff says today.
    fee = payment.amount - await ledger.wallet_credit(session, entry_id=collection.id)
    assert payment.mpesa_receipt is not None
    reversal_id = new_id("rv")
    reversal = Reversal(
        id=reversal_id, account_id=payment.account_id, payment_id=payment.id,
        amount=payment.amount, wallet_amount=payment.amount - fee, fee=fee,
        receipt=payment.mpesa_receipt, shortcode=ledger_policy_of(session).gateway_shortcode,
        reason=reason, status=ReturnStatus.PENDING.value,
        originator_conversation_id=reversal_id, callback_token=new_token(24),
    )  # fmt: skip
    session.add(reversal)
    await session.flush()
    await ledger.reserve_reversal(
        session, reversal_id=reversal_id, account_id=payment.account_id,
        wallet_amount=reversal.wallet_amount,
    )  # fmt: skip
    return reversal


async def reload(session: AsyncSession, reversal_id: str) -> Reversal:
    reversal = await session.get(Reversal, reversal_id, populate_existing=True)
    assert reversal is not None
    return reversal


async def get_reversal(session: AsyncSession, *, account_id: str, reversal_id: str) -> Reversal:
    reversal = await session.scalar(
        select(Reversal).where(Reversal.id == reversal_id, Reversal.account_id == account_id)
    )
    if reversal is None:
        raise NotFound(f"No reversal {reversal_id}")
    return reversal


async def find_by_token(session: AsyncSession, *, token: str) -> Reversal | None:
    found: Reversal | None = await session.scalar(
        select(Reversal).where(Reversal.callback_token == token)
    )
    return found


async def mark_accepted(
    session: AsyncSession, *, reversal_id: str, accepted: B2CAccepted, query_after: float
) -> Reversal:
    """Daraja took it. Its OriginatorConversationID (Daraja's own, for a reversal) is what
    Transaction Status finds the reversal by."""
    now = utcnow()
    await session.execute(
        update(Reversal)
        .where(Reversal.id == reversal_id, Reversal.status == ReturnStatus.PENDING.value)
        .values(
            status=ReturnStatus.PROCESSING.value,
            conversation_id=accepted.conversation_id,
            originator_conversation_id=accepted.originator_conversation_id or reversal_id,
            next_query_at=now + timedelta(seconds=query_after),
            updated_at=now,
        )
    )
    return await reload(session, reversal_id)


async def mark_unknown(session: AsyncSession, *, reversal_id: str) -> Reversal:
    """No acknowledgement: the reversal may run, and without Daraja's ids Transaction
    Status cannot find it. It stays pending (funds held) for the operator to check in
    the M-Pesa portal; it is never sent again, never guessed failed."""
    await session.execute(
        update(Reversal)
        .where(Reversal.id == reversal_id, Reversal.status.in_(OPEN_STATUSES))
        .values(next_query_at=None, updated_at=utcnow())
    )
    log.warning("reversals.unacknowledged", reversal_id=reversal_id)
    return await reload(session, reversal_id)


async def query_soon(session: AsyncSession, *, reversal_id: str) -> None:
    await session.execute(
        update(Reversal)
        .where(
            Reversal.id == reversal_id,
            Reversal.status == ReturnStatus.PROCESSING.value,
        )
        .values(next_query_at=utcnow())
    )


async def finish(session: AsyncSession, *, reversal: Reversal, outcome: Finish) -> bool:
    """Settle (or release) once; False when the reversal was already final."""
    now = utcnow()
    status = ReturnStatus.COMPLETED if outcome.succeeded else ReturnStatus.FAILED
    done = await session.execute(
        update(Reversal)
        .where(Reversal.id == reversal.id, Reversal.status.in_(OPEN_STATUSES))
        .values(
            status=status.value, result_code=outcome.result_code,
            result_desc=outcome.result_desc[:500], transaction_id=outcome.transaction_id,
            settled_by=outcome.source, next_query_at=None, finalized_at=now, updated_at=now,
        )
    )  # fmt: skip
    if getattr(done, "rowcount", 0) != 1:
        return False
    if outcome.succeeded:
        await ledger.settle_reversal(
            session, reversal_id=reversal.id, payment_id=reversal.payment_id,
            account_id=reversal.account_id, wallet_amount=reversal.wallet_amount,
        )  # fmt: skip
    else:
        await ledger.release_reversal(
            session, reversal_id=reversal.id, account_id=reversal.account_id,
            wallet_amount=reversal.wallet_amount,
        )  # fmt: skip
        await release_claim(session, payment_id=reversal.payment_id, reversed_=reversal.amount)
    current = await reload(session, reversal.id)
    await record_event(
        session, account_id=reversal.account_id,
        event_type=EventType.PAYMENT_REVERSED if outcome.succeeded else EventType.REVERSAL_FAILED,
        object_id=reversal.id, data=ReversalOut.render(current).model_dump(mode="json"),
    )  # fmt: skip
    log.info("reversals.settled", reversal_id=reversal.id, status=status.value)
    return True


async def store_callback(
    session: AsyncSession, *, reversal_id: str, kind: str, body: str, outcome: str
) -> None:
    session.add(ReversalCallback(reversal_id=reversal_id, kind=kind, body=body, outcome=outcome))
    await session.flush()
