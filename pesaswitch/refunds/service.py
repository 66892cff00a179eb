"""Refund and reversal state, moved together with the ledger and the outbox.

A payment's refunds and its reversal share one claim row (``PaymentReturn``): a refund
claims its amount, a reversal the whole payment, each by one conditional UPDATE whose
WHERE says there is room. Two racing refunds of 600 against a payment of 1,000 both run
that UPDATE; the database serialises them on the row and the second finds no room, on
SQLite and PostgreSQL alike. A failed refund or reversal gives its claim back.
"""

from __future__ import annotations

from dataclasses import dataclass

import structlog
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from pesaswitch.accounts.models import Channel, ChannelKind
from pesaswitch.db import insert_ignoring_conflict
from pesaswitch.errors import Conflict, NotFound, ValidationFailed
from pesaswitch.kit.clock import utcnow
from pesaswitch.payments.models import Payment, PaymentStatus
from pesaswitch.payouts.models import Payout
from pesaswitch.refunds.models import (
    OPEN_STATUSES,
    PaymentReturn,
    Refund,
    ReturnStatus,
    Reversal,
)
from pesaswitch.refunds.schemas import PaymentDetailOut, RefundOut, ReversalOut
from pesaswitch.webhooks.models import EventType
from pesaswitch.webhooks.service import record_event

log = structlog.get_logger(__name__)


class PaymentNotRefundable(Conflict):
    code = "payment_not_refundable"
    title = "This payment cannot be refunded"


class RefundExceedsPayment(ValidationFailed):
    code = "refund_exceeds_payment"
    title = "The refund is more than what is left to refund"


class PaymentNotReversible(Conflict):
    code = "payment_not_reversible"
    title = "This payment cannot be reversed"


class PaymentAlreadyReversed(Conflict):
    code = "payment_already_reversed"
    title = "This payment is reversed, or its reversal is in progress"


@dataclass(frozen=True, slots=True)
class Claims:
    refunded: int
    reversed: int


async def get_payment(session: AsyncSession, *, account_id: str, payment_id: str) -> Payment:
    payment = await session.scalar(
        select(Payment).where(Payment.id == payment_id, Payment.account_id == account_id)
    )
    if payment is None:
        raise NotFound(f"No payment {payment_id}")
    return payment


async def _is_wallet_payment(session: AsyncSession, payment: Payment) -> bool:
    kind = await session.scalar(select(Channel.kind).where(Channel.id == payment.channel_id))
    return kind == ChannelKind.WALLET.value


async def claims_of(session: AsyncSession, *, payment_id: str) -> Claims:
    row = await session.get(PaymentReturn, payment_id, populate_existing=True)
    return Claims(row.refunded, row.reversed) if row is not None else Claims(0, 0)


async def _ensure_claim_row(session: AsyncSession, payment: Payment) -> None:
    await insert_ignoring_conflict(
        session, PaymentReturn, payment_id=payment.id, account_id=payment.account_id,
        amount=payment.amount, refunded=0, reversed=0,
    )  # fmt: skip


async def check_refundable(session: AsyncSession, *, payment: Payment) -> None:
    if payment.status != PaymentStatus.COMPLETED.value:
        raise PaymentNotRefundable(f"Payment {payment.id} is {payment.status}, not completed")
    if payment.duplicate_of is not None:
        # Its money is the other payment's (one credit): returning both would return twice.
        raise PaymentNotRefundable(
            f"Payment {payment.id} is the same M-Pesa transaction as {payment.duplicate_of}, "
            "which holds its receipt and credit: return that one",
            reason="duplicate",
        )
    if not await _is_wallet_payment(session, payment):
        raise PaymentNotRefundable(
            f"Payment {payment.id} was paid to your own till, paybill or bank, not to the "
            "wallet: refund it from there",
            reason="not_a_wallet_payment",
        )
    if not (payment.phone.isdigit() and len(payment.phone) == 12):
        # A C2B payment carries the payer's number masked or hashed, as Daraja sent it:
        # there is no number to pay back by B2C (a reversal needs none).
        raise PaymentNotRefundable(
            f"Payment {payment.id} came by C2B with a masked number: reverse it instead",
            reason="no_payer_number",
        )


async def claim_refund(session: AsyncSession, *, payment: Payment, amount: int | None) -> int:
    """Claim ``amount`` (or everything left) of a completed wallet payment; the amount."""
    await check_refundable(session, payment=payment)
    await _ensure_claim_row(session, payment)
    claims = await claims_of(session, payment_id=payment.id)
    if claims.reversed:
        raise PaymentAlreadyReversed(f"Payment {payment.id} is reversed")
    if amount is not None and amount <= 0:
        raise ValidationFailed("A refund amount is a positive number of shillings")
    wanted = payment.amount - claims.refunded if amount is None else amount
    if wanted <= 0:
        raise RefundExceedsPayment(f"Payment {payment.id} has nothing left to refund", refundable=0)
    done = await session.execute(
        update(PaymentReturn)
        .where(
            PaymentReturn.payment_id == payment.id,
            PaymentReturn.reversed == 0,
            PaymentReturn.refunded + wanted <= PaymentReturn.amount,
        )
        .values(refunded=PaymentReturn.refunded + wanted)
    )
    if getattr(done, "rowcount", 0) != 1:
        now = await claims_of(session, payment_id=payment.id)
        if now.reversed:
            raise PaymentAlreadyReversed(f"Payment {payment.id} is reversed")
        left = payment.amount - now.refunded
        raise RefundExceedsPayment(
            f"Payment {payment.id} of {payment.amount} KES has {left} KES left to refund; "
            f"{wanted} KES asked",
            refundable=left,
        )
    return wanted


async def claim_reversal(session: AsyncSession, *, payment: Payment) -> None:
    if payment.status != PaymentStatus.COMPLETED.value:
        raise PaymentNotReversible(f"Payment {payment.id} is {payment.status}, not completed")
    if payment.duplicate_of is not None:
        raise PaymentNotReversible(
            f"Payment {payment.id} is the same M-Pesa transaction as {payment.duplicate_of}, "
            "which holds its receipt and credit: reverse that one",
            reason="duplicate",
        )
    if not payment.mpesa_receipt:
        raise PaymentNotReversible(
            f"Payment {payment.id} has no M-Pesa receipt to reverse", reason="no_receipt"
        )
    if not await _is_wallet_payment(session, payment):
        raise PaymentNotReversible(
            f"Payment {payment.id} was paid to your own till, paybill or bank, not to the "
            "wallet: reverse it with your own Daraja app",
            reason="not_a_wallet_payment",
        )
    await _ensure_claim_row(session, payment)
    done = await session.execute(
        update(PaymentReturn)
        .where(
            PaymentReturn.payment_id == payment.id,
            PaymentReturn.reversed == 0,
            PaymentReturn.refunded == 0,
        )
        .values(reversed=PaymentReturn.amount)
    )
    if getattr(done, "rowcount", 0) != 1:
        claims = await claims_of(session, payment_id=payment.id)
        if claims.reversed:
            raise PaymentAlreadyReversed(f"Payment {payment.id} is reversed or being reversed")
        raise PaymentNotReversible(
            f"Payment {payment.id} has refunds ({claims.refunded} KES); a reversal undoes "
            "the whole payment, so refund the rest instead",
            reason="has_refunds",
        )


async def release_claim(
    session: AsyncSession, *, payment_id: str, refunded: int = 0, reversed_: int = 0
) -> None:
    await session.execute(
        update(PaymentReturn)
        .where(PaymentReturn.payment_id == payment_id)
        .values(
            refunded=PaymentReturn.refunded - refunded,
            reversed=PaymentReturn.reversed - reversed_,
        )
    )


# --- refunds -------------------------------------------------------------------------


async def payout_finished(session: AsyncSession, *, payout: Payout, succeeded: bool) -> None:
    """Called by ``payouts.service.finish`` (same transaction) for a refund's payout."""
    refund = await session.scalar(select(Refund).where(Refund.payout_id == payout.id))
    if refund is None:
        return  # a merchant's own payout whose reference merely looks like a refund's
    now = utcnow()
    status = ReturnStatus.COMPLETED if succeeded else ReturnStatus.FAILED
    done = await session.execute(
        update(Refund)
        .where(Refund.id == refund.id, Refund.status.in_(OPEN_STATUSES))
        .values(status=status.value, updated_at=now, finalized_at=now)
    )
    if getattr(done, "rowcount", 0) != 1:
        return
    if not succeeded:
        await release_claim(session, payment_id=refund.payment_id, refunded=refund.amount)
    refund = await reload_refund(session, refund.id)
    await record_event(
        session, account_id=refund.account_id,
        event_type=EventType.REFUND_COMPLETED if succeeded else EventType.REFUND_FAILED,
        object_id=refund.id, data=RefundOut.render(refund).model_dump(mode="json"),
    )  # fmt: skip
    log.info("refunds.settled", refund_id=refund.id, status=status.value)


async def mark_refund_processing(session: AsyncSession, *, refund_id: str) -> None:
    await session.execute(
        update(Refund)
        .where(Refund.id == refund_id, Refund.status == ReturnStatus.PENDING.value)
        .values(status=ReturnStatus.PROCESSING.value, updated_at=utcnow())
    )


async def reload_refund(session: AsyncSession, refund_id: str) -> Refund:
    refund = await session.get(Refund, refund_id, populate_existing=True)
    assert refund is not None
    return refund


async def get_refund(session: AsyncSession, *, account_id: str, refund_id: str) -> Refund:
    refund = await session.scalar(
        select(Refund).where(Refund.id == refund_id, Refund.account_id == account_id)
    )
    if refund is None:
        raise NotFound(f"No refund {refund_id}")
    return refund


# --- reading ---------------------------------------------------------------------------


async def payment_detail(session: AsyncSession, *, payment: Payment) -> PaymentDetailOut:
    """The payment with its refunds and reversal. A payment never refunded or reversed
    (most) costs one primary-key read, plus the channel's kind when it is completed."""
    claim_row = await session.get(PaymentReturn, payment.id, populate_existing=True)
    refunds: list[Refund] = []
    reversal: Reversal | None = None
    claims = Claims(0, 0)
    if claim_row is not None:
        claims = Claims(claim_row.refunded, claim_row.reversed)
        refunds = list(
            await session.scalars(
                select(Refund).where(Refund.payment_id == payment.id).order_by(Refund.id)
            )
        )
        reversal = await session.scalar(
            select(Reversal)
            .where(Reversal.payment_id == payment.id)
            .order_by(Reversal.id.desc())
            .limit(1)
        )
    wallet_refundable = (
        payment.status == PaymentStatus.COMPLETED.value
        and not claims.reversed
        and await _is_wallet_payment(session, payment)
    )
    return render_detail(payment, refunds=refunds, reversal=reversal, claims=claims,
                         wallet_refundable=wallet_refundable)  # fmt: skip


def render_detail(
    payment: Payment,
    *,
    refunds: list[Refund],
    reversal: Reversal | None,
    claims: Claims,
    wallet_refundable: bool,
) -> PaymentDetailOut:
    """``payment_detail``'s answer from what it read (``wallet_refundable``: completed,
    not reversed, paid into a wallet channel); also ``payments/read_route.py``'s."""
    refundable = payment.amount - claims.refunded if wallet_refundable else 0
    return PaymentDetailOut(
        **{
            **PaymentDetailOut.render(payment).model_dump(),
            "amount_refunded": sum(
                r.amount for r in refunds if r.status == ReturnStatus.COMPLETED.value
            ),
            "amount_refundable": refundable,
            "reversed": reversal is not None and reversal.status == ReturnStatus.COMPLETED.value,
            "refunds": [RefundOut.render(r) for r in refunds],
            "reversal": ReversalOut.render(reversal) if reversal is not None else None,
        }
    )
