"""An STK callback whose M-Pesa receipt another payment already holds.

That happens when the payment's C2B echo (the confirmation Daraja also sends for an STK
payment to a shortcode with registered URLs) was recorded first and could not be matched
to the push (c2b/confirmations.py): it became a C2B payment, with the receipt and the
wallet credit. The callback's UPDATE then fails on the receipt's unique constraint; the
callback endpoint rolls that transaction back and calls ``apply_held_receipt`` in a new
one. (The usual callback pays nothing for this: no extra statement on its hot path.)

What it does, with the holder read again in the new transaction:

- the holder is a completed C2B payment of the same account and amount (the echo): the
  STK payment is completed with ``duplicate_of`` the holder, keeps no receipt (the holder
  has it) and credits nothing (the holder's credit is that money). ``payment.completed``
  tells the merchant both: paid, and counted on the other payment.
- anything else (another STK payment, another account, another amount) is not the same
  money by any rule here: the callback is kept as a conflict, and a pending payment is
  taken off the reconciler's schedule, so that no STK Query completes it with a second
  credit for the receipt. It stays pending and visible for the operator.
- no holder any more (it was rolled back): the callback is applied as usual.
"""

from __future__ import annotations

import structlog
from sqlalchemy import func, update
from sqlalchemy.ext.asyncio import AsyncSession

from pesaswitch.daraja.wire import StkResult
from pesaswitch.kit.clock import utcnow
from pesaswitch.payments.models import Payment, PaymentStatus
from pesaswitch.payments.receipts import receipt_holder
from pesaswitch.payments.schemas import PaymentOut
from pesaswitch.payments.service import (
    Applied,
    ApplyResult,
    ResultSource,
    apply_result,
    find_by_callback_token,
    store_callback,
)
from pesaswitch.protection.stk import record_stk_outcome
from pesaswitch.webhooks.models import EventType
from pesaswitch.webhooks.service import record_event

log = structlog.get_logger(__name__)


def is_its_echo(payment: Payment, holder: Payment, result: StkResult) -> bool:
    """Whether ``holder`` is the C2B record of this STK payment's money: the receipt is
    the same (that is why we are here), and so must be the account and the amount."""
    return (
        holder.source == "c2b"
        and holder.status == PaymentStatus.COMPLETED.value
        and holder.account_id == payment.account_id
        and holder.amount == payment.amount
        and result.amount in (None, payment.amount)
    )


async def apply_held_receipt(
    session: AsyncSession, *, token: str, result: StkResult, body: str, source_ip: str | None
) -> ApplyResult | None:
    """Apply a callback after its receipt collided; None when no payment has ``token``."""
    payment = await find_by_callback_token(session, token=token)
    if payment is None:
        return None
    holder = await receipt_holder(session, receipt=result.receipt) if result.receipt else None
    if holder is None or holder.id == payment.id:
        applied = await apply_result(
            session, payment=payment, result=result, source=ResultSource.CALLBACK
        )
    elif is_its_echo(payment, holder, result):
        applied = await settle_as_duplicate(
            session, payment=payment, holder=holder, result=result, source=ResultSource.CALLBACK
        )
    else:
        applied = await _conflict(session, payment, holder)
    await store_callback(session, payment_id=payment.id, body=body, source_ip=source_ip,
                         outcome=applied.outcome.value)  # fmt: skip
    return applied


async def settle_as_duplicate(
    session: AsyncSession,
    *,
    payment: Payment,
    holder: Payment,
    result: StkResult,
    source: ResultSource,
) -> ApplyResult:
    """Complete a pending STK payment as the duplicate of ``holder``, with its event and
    its STK outcome, and no ledger entry."""
    now = utcnow()
    values = {
        "status": PaymentStatus.COMPLETED.value, "result_code": result.result_code,
        "result_desc": result.result_desc[:500], "transaction_date": result.transaction_date,
        "checkout_request_id": func.coalesce(
            Payment.checkout_request_id, result.checkout_request_id
        ),
        "merchant_request_id": func.coalesce(
            Payment.merchant_request_id, result.merchant_request_id
        ),
        "duplicate_of": holder.id, "settled_by": source.value, "next_query_at": None,
        "finalized_at": now, "updated_at": now,
    }  # fmt: skip
    updated: Payment | None = await session.scalar(
        update(Payment)
        .where(Payment.id == payment.id, Payment.status == PaymentStatus.PENDING.value)
        .values(values)
        .returning(Payment),
        execution_options={"populate_existing": True, "synchronize_session": False},
    )
    if updated is None:
        current = await session.get(Payment, payment.id, populate_existing=True)
        assert current is not None
        if current.duplicate_of == holder.id:
            return ApplyResult(Applied.DUPLICATE, current)
        if current.status == PaymentStatus.COMPLETED.value and current.mpesa_receipt is None:
            # Completed by an STK Query before this callback, credited under its own id,
            # while the echo holds the receipt and its own credit: the one case where the
            # money was counted twice. Not undone here (the wallet may be spent already).
            log.error("payments.receipt.counted_twice", payment_id=current.id,
                      holder_id=holder.id)  # fmt: skip
        return ApplyResult(Applied.CONFLICT, current)
    log.info("payments.settled_as_duplicate", payment_id=updated.id, holder_id=holder.id)
    await record_event(
        session, account_id=updated.account_id, event_type=EventType.PAYMENT_COMPLETED,
        object_id=updated.id, data=PaymentOut.render(updated).model_dump(mode="json"),
        callback_url=updated.callback_url, callback_dialect=updated.dialect,
    )  # fmt: skip
    await record_stk_outcome(
        session, account_id=updated.account_id, phone=updated.phone, succeeded=True, now=now
    )
    return ApplyResult(Applied.MERGED, updated)


async def _conflict(session: AsyncSession, payment: Payment, holder: Payment) -> ApplyResult:
    log.error("payments.receipt.held_elsewhere", payment_id=payment.id, holder_id=holder.id)
    await session.execute(
        update(Payment)
        .where(Payment.id == payment.id, Payment.status == PaymentStatus.PENDING.value)
        .values(next_query_at=None, updated_at=utcnow())
    )
    current = await session.get(Payment, payment.id, populate_existing=True)
    assert current is not None
    return ApplyResult(Applied.CONFLICT, current)
