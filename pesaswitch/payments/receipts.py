"""An STK payment's M-Pesa receipt, whoever brings it.

The receipt is unique among payments (the database's constraint) and the wallet credit
is keyed by it (``ledger.flows.credit_collection``), so it decides what is the same money.
STK Query never returns it (daraja.md §4): a payment the reconciler settled has none until
a late callback, Transaction Status (``c2b/receipts.py``) or the payment's C2B echo
(``c2b/service.py``) tells it. Each of those records it with ``record_late_receipt``:
once, with one ``payment.updated``, however they race.

A C2B confirmation that is the echo of a pending STK payment is linked to it
(``c2b_transactions.payment_id``); ``echo_receipt`` gives that receipt to the STK Query
which then completes the payment, so it is credited under its receipt, the key the echo
would be credited under too.
"""

from __future__ import annotations

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from pesaswitch.c2b.models import C2BTransaction
from pesaswitch.kit.clock import utcnow
from pesaswitch.payments.models import Payment, PaymentStatus
from pesaswitch.payments.schemas import PaymentOut
from pesaswitch.webhooks.models import EventType
from pesaswitch.webhooks.service import record_event


async def receipt_holder(session: AsyncSession, *, receipt: str) -> Payment | None:
    """The payment that holds ``receipt``, of any account: the receipt is Daraja's, and
    one M-Pesa transaction is one payment whichever account it was recorded in."""
    holder: Payment | None = await session.scalar(
        select(Payment).where(Payment.mpesa_receipt == receipt)
    )
    return holder


async def record_late_receipt(
    session: AsyncSession, *, payment_id: str, receipt: str, transaction_date: str | None = None
) -> Payment | None:
    """Give a completed payment without a receipt its receipt, and send ``payment.updated``
    (to webhook endpoints and, in its dialect's shape, to the payment's callback URL).

    The UPDATE is conditional on the receipt still being NULL, so of several racing
    sources exactly one records it and sends the event; the rest get None. A payment
    settled as another's duplicate keeps none: the other holds the receipt. Raises
    IntegrityError if another payment holds ``receipt`` (the caller decides what that
    means)."""
    updated: Payment | None = await session.scalar(
        update(Payment)
        .where(
            Payment.id == payment_id,
            Payment.status == PaymentStatus.COMPLETED.value,
            Payment.mpesa_receipt.is_(None),
            Payment.duplicate_of.is_(None),
        )
        .values(
            mpesa_receipt=receipt,
            transaction_date=func.coalesce(Payment.transaction_date, transaction_date),
            updated_at=utcnow(),
        )
        .returning(Payment),
        execution_options={"populate_existing": True, "synchronize_session": False},
    )
    if updated is not None:
        await record_event(
            session, account_id=updated.account_id, event_type=EventType.PAYMENT_UPDATED,
            object_id=updated.id, data=PaymentOut.render(updated).model_dump(mode="json"),
            callback_url=updated.callback_url, callback_dialect=updated.dialect,
        )  # fmt: skip
    return updated


async def echo_receipt(session: AsyncSession, *, payment_id: str) -> tuple[str, str | None] | None:
    """The receipt and time of the C2B confirmation matched to this STK payment as its
    echo, when exactly one was and no payment holds that receipt yet; else None."""
    rows = (
        await session.execute(
            select(C2BTransaction.trans_id, C2BTransaction.trans_time)
            .where(C2BTransaction.payment_id == payment_id)
            .limit(2)
        )
    ).all()
    if len(rows) != 1:
        return None  # none, or two confirmations matched to one prompt: not ours to pick
    receipt, trans_time = rows[0]
    if await receipt_holder(session, receipt=receipt) is not None:
        return None
    return receipt, trans_time
