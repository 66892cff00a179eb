"""Payout state, always moved together with the ledger and the outbox.

pending (funds reserved) -> processing (Daraja accepted) -> completed (hold -> settlement
and fees) | failed (hold -> wallet). Final states are set by a conditional UPDATE, so
duplicate or racing Results settle a payout once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import structlog
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from pesaswitch.daraja.b2c import B2CAccepted
from pesaswitch.errors import Conflict, NotFound
from pesaswitch.kit.clock import utcnow
from pesaswitch.kit.ids import new_id, new_token
from pesaswitch.kit.pagination import PageParams
from pesaswitch.ledger.flows import release_payout, reserve_payout, settle_payout
from pesaswitch.payouts.models import OPEN_STATUSES, Payout, PayoutCallback, PayoutStatus
from pesaswitch.payouts.schemas import PayoutOut
from pesaswitch.refunds.models import REFUND_REFERENCE_PREFIX
from pesaswitch.webhooks.models import EventType
from pesaswitch.webhooks.service import record_event

log = structlog.get_logger(__name__)

WALLET_CURRENCY = "KES"  # M-Pesa pays out shillings; USD payouts are converted


class DuplicateReference(Conflict):
    code = "duplicate_reference"
    title = "A payout with this reference exists"


@dataclass(frozen=True, slots=True)
class NewPayout:
    account_id: str
    amount: int
    currency: str
    kes_amount: int
    fx_rate: str | None
    fee: int
    phone: str
    name: str
    reference: str
    description: str
    shortcode: str
    dialect: str = "native"
    callback_url: str | None = None
    # When to ask Transaction Status if nothing else is recorded by then: the request's
    # own outcome (accepted, refused, unknown) replaces it, so it only matters when the
    # process died between this commit and Daraja's answer.
    query_after: float | None = None


async def create_payout(session: AsyncSession, *, new: NewPayout) -> Payout:
    """Insert the payout and reserve amount + fee from the wallet, or raise (nothing kept)."""
    taken = await session.scalar(
        select(Payout.id).where(
            Payout.account_id == new.account_id, Payout.reference == new.reference
        )
    )
    if taken is not None:
        raise DuplicateReference(f"Reference {new.reference!r} was used by {taken}")
    payout_id = new_id("po")
    payout = Payout(
        id=payout_id, account_id=new.account_id, amount=new.amount, currency=new.currency,
        kes_amount=new.kes_amount, fx_rate=new.fx_rate, fee=new.fee, phone=new.phone,
        name=new.name, reference=new.reference, description=new.description,
        dialect=new.dialect, callback_url=new.callback_url, shortcode=new.shortcode,
        status=PayoutStatus.PENDING.value, originator_conversation_id=payout_id,
        callback_token=new_token(24),
        next_query_at=None if new.query_after is None
        else utcnow() + timedelta(seconds=new.query_after),
    )  # fmt: skip
    session.add(payout)
    try:
        await session.flush()
    except IntegrityError as exc:  # a racing request with the same reference
        raise DuplicateReference(f"Reference {new.reference!r} is already used") from exc
    await reserve_payout(
        session, payout_id=payout_id, account_id=new.account_id, currency=WALLET_CURRENCY,
        amount=new.kes_amount, fee=new.fee,
    )  # fmt: skip
    return payout


async def get_payout(session: AsyncSession, *, account_id: str, payout_id: str) -> Payout:
    payout = await session.scalar(
        select(Payout).where(Payout.id == payout_id, Payout.account_id == account_id)
    )
    if payout is None:
        raise NotFound(f"No payout {payout_id}")
    return payout


async def list_payouts(session: AsyncSession, *, account_id: str, page: PageParams) -> list[Payout]:
    query = select(Payout).where(Payout.account_id == account_id)
    if page.starting_after is not None:
        query = query.where(Payout.id < page.starting_after)
    return list(await session.scalars(query.order_by(Payout.id.desc()).limit(page.limit + 1)))


async def reload(session: AsyncSession, payout_id: str) -> Payout:
    payout = await session.get(Payout, payout_id, populate_existing=True)
    assert payout is not None
    return payout


async def find_by_token(session: AsyncSession, *, token: str) -> Payout | None:
    payout: Payout | None = await session.scalar(
        select(Payout).where(Payout.callback_token == token)
    )
    return payout


async def mark_accepted(
    session: AsyncSession, *, payout_id: str, accepted: B2CAccepted, query_after: float
) -> Payout:
    now = utcnow()
    await session.execute(
        update(Payout)
        .where(Payout.id == payout_id, Payout.status == PayoutStatus.PENDING.value)
        .values(
            status=PayoutStatus.PROCESSING.value,
            conversation_id=accepted.conversation_id,
            next_query_at=now + timedelta(seconds=query_after),
            updated_at=now,
        )
    )
    return await reload(session, payout_id)


async def mark_unknown(session: AsyncSession, *, payout_id: str, query_after: float) -> Payout:
    """No answer: the payout may run. Transaction Status will tell; never send it again."""
    now = utcnow()
    await session.execute(
        update(Payout)
        .where(Payout.id == payout_id, Payout.status.in_(OPEN_STATUSES))
        .values(next_query_at=now + timedelta(seconds=query_after), updated_at=now)
    )
    return await reload(session, payout_id)


async def query_soon(session: AsyncSession, *, payout_id: str) -> None:
    await session.execute(
        update(Payout)
        .where(Payout.id == payout_id, Payout.status.in_(OPEN_STATUSES))
        .values(next_query_at=utcnow())
    )


async def finish(
    session: AsyncSession,
    *,
    payout: Payout,
    succeeded: bool,
    result_code: str,
    result_desc: str,
    transaction_id: str | None,
    source: str,
) -> bool:
    """Settle (or release) once; False when the payout was already final."""
    now = utcnow()
    status = PayoutStatus.COMPLETED if succeeded else PayoutStatus.FAILED
    outcome = await session.execute(
        update(Payout)
        .where(Payout.id == payout.id, Payout.status.in_(OPEN_STATUSES))
        .values(
            status=status.value, result_code=result_code, result_desc=result_desc[:500],
            transaction_id=transaction_id, settled_by=source, next_query_at=None,
            finalized_at=now, updated_at=now,
        )
    )  # fmt: skip
    if getattr(outcome, "rowcount", 0) != 1:
        return False
    current = await reload(session, payout.id)
    if succeeded:
        await settle_payout(
            session, payout_id=payout.id, account_id=payout.account_id,
            currency=WALLET_CURRENCY, amount=payout.kes_amount, fee=payout.fee,
            shortcode=payout.shortcode,
        )  # fmt: skip
    else:
        await release_payout(
            session, payout_id=payout.id, account_id=payout.account_id,
            currency=WALLET_CURRENCY, amount=payout.kes_amount, fee=payout.fee,
        )  # fmt: skip
    await record_event(
        session,
        account_id=payout.account_id,
        event_type=EventType.PAYOUT_COMPLETED if succeeded else EventType.PAYOUT_FAILED,
        object_id=payout.id,
        data=PayoutOut.render(current).model_dump(mode="json"),
        callback_url=payout.callback_url,
        callback_dialect=payout.dialect,
    )
    if payout.reference.startswith(REFUND_REFERENCE_PREFIX):
        # The payout carries a refund: it settles with it, in this transaction.
        from pesaswitch.refunds.service import payout_finished

        await payout_finished(session, payout=current, succeeded=succeeded)
    log.info("payouts.settled", payout_id=payout.id, status=status.value, source=source)
    return True


async def store_callback(
    session: AsyncSession, *, payout_id: str, kind: str, body: str, outcome: str
) -> None:
    session.add(PayoutCallback(payout_id=payout_id, kind=kind, body=body, outcome=outcome))
    await session.flush()
