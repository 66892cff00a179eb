"""STK receipts by query. STK Query never returns the M-Pesa receipt (daraja.md §4), so a
payment the reconciler settled by query has none. Transaction Status can find it: asked
with the payment's CheckoutRequestID as OriginalConversationID, its Result (posted to
``/daraja/receipts/<token>``) carries ReceiptNo. The receipt is recorded once, and
``payment.updated`` goes out with it.

Which id Daraja accepts for an STK payment here is not documented (the simulator takes
the CheckoutRequestID): until it is confirmed against production, a payment whose
receipt never comes keeps none, after ``MAX_ATTEMPTS`` asks.
"""

from __future__ import annotations

import json
from datetime import timedelta

import structlog
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import and_, or_, select, update
from sqlalchemy.exc import IntegrityError

from pesaswitch.accounts.models import Channel
from pesaswitch.c2b.models import ReceiptQuery
from pesaswitch.daraja.b2c import TransactionStatusRequest
from pesaswitch.daraja.b2c_results import parse_transaction_status_result
from pesaswitch.daraja.errors import DarajaError
from pesaswitch.daraja.result_codes import Outcome
from pesaswitch.daraja.wire import MalformedCallback
from pesaswitch.db import insert_ignoring_conflict, transaction
from pesaswitch.errors import BadRequest, NotFound, PayloadTooLarge
from pesaswitch.kit.clock import utcnow
from pesaswitch.payments.models import Payment, PaymentStatus
from pesaswitch.payments.push import shortcode_auth
from pesaswitch.payments.receipts import record_late_receipt
from pesaswitch.payouts.initiate import initiator
from pesaswitch.runtime import Runtime, RuntimeDep

log = structlog.get_logger(__name__)

router = APIRouter(prefix="/daraja/receipts", include_in_schema=False)

MAX_ATTEMPTS = 6
BATCH = 20
ACCEPTED = {"ResultCode": 0, "ResultDesc": "Accepted"}


async def claim_due(runtime: Runtime) -> list[str]:
    """Completed STK payments without a receipt whose next ask is due; the claim pushes
    the next ask into the future (a lease, as the reconciler does).

    Several workers race for the same payments: each claim is an INSERT … ON CONFLICT DO
    NOTHING of the row, then an UPDATE conditional on the attempts it read, so exactly one
    worker claims each ask (a plain read-then-insert made the loser's whole batch fail on
    the primary key, found by the chaos run on PostgreSQL)."""
    now = utcnow()
    schedule = runtime.settings.reconcile_schedule
    claimed: list[str] = []
    async with transaction(runtime.sessionmaker) as session:
        rows = (
            await session.execute(
                select(Payment.id, ReceiptQuery.attempts)
                .outerjoin(ReceiptQuery, ReceiptQuery.payment_id == Payment.id)
                .where(
                    Payment.status == PaymentStatus.COMPLETED.value,
                    Payment.mpesa_receipt.is_(None),
                    Payment.duplicate_of.is_(None),  # its receipt is the other payment's
                    Payment.source == "stk",
                    Payment.checkout_request_id.is_not(None),
                    or_(
                        ReceiptQuery.payment_id.is_(None),
                        and_(ReceiptQuery.done_at.is_(None), ReceiptQuery.next_at <= now),
                    ),
                )
                .order_by(Payment.finalized_at)
                .limit(BATCH)
            )
        ).all()
        for payment_id, attempts in rows:
            seen = attempts or 0
            if attempts is None:
                await insert_ignoring_conflict(
                    session, ReceiptQuery, payment_id=payment_id, attempts=0, next_at=now
                )
            done = seen + 1
            next_at = now + timedelta(seconds=schedule[min(done - 1, len(schedule) - 1)])
            won = await session.execute(
                update(ReceiptQuery)
                .where(
                    ReceiptQuery.payment_id == payment_id,
                    ReceiptQuery.attempts == seen,
                    ReceiptQuery.done_at.is_(None),
                    ReceiptQuery.next_at <= now,
                )
                # The last ask is never claimed again.
                .values(attempts=done, next_at=next_at,
                        done_at=now if done >= MAX_ATTEMPTS else None)
                .execution_options(synchronize_session=False)
            )  # fmt: skip
            if getattr(won, "rowcount", 0) == 1:
                claimed.append(payment_id)
    return claimed


async def ask(runtime: Runtime, payment_id: str) -> None:
    settings = runtime.settings
    async with runtime.sessionmaker() as session:
        payment = await session.get(Payment, payment_id)
        assert payment is not None
        assert payment.checkout_request_id is not None
        channel = await session.get(Channel, payment.channel_id)
        assert channel is not None
        auth = await shortcode_auth(session, settings, channel)
    base = f"{settings.effective_public_url}/daraja/receipts/{payment.callback_token}"
    try:
        request = TransactionStatusRequest(
            initiator=await initiator(runtime), party_a=auth.business_shortcode,
            result_url=base, queue_timeout_url=f"{base}/timeout",
            original_conversation_id=payment.checkout_request_id,
            remarks="Receipt of an STK payment",
        )  # fmt: skip
        await runtime.daraja.for_app(auth.app).transaction_status(request)
    except DarajaError as exc:
        log.info("receipts.ask_failed", payment_id=payment_id, error=str(exc))


async def lookup_once(runtime: Runtime) -> int:
    if not runtime.settings.stk_receipt_lookup:
        return 0
    ids = await claim_due(runtime)
    for payment_id in ids:
        await ask(runtime, payment_id)
    return len(ids)


async def _read(request: Request) -> str:
    raw = await request.body()
    if len(raw) > 32 * 1024:
        raise PayloadTooLarge()
    return raw.decode("utf-8", errors="replace")


@router.post("/{token}")
async def receipt_result(token: str, request: Request, runtime: RuntimeDep) -> JSONResponse:
    text = await _read(request)
    try:
        result = parse_transaction_status_result(json.loads(text))
    except (ValueError, MalformedCallback) as exc:
        raise BadRequest(f"Not a valid Transaction Status Result: {exc}") from exc
    async with transaction(runtime.sessionmaker) as session:
        payment = await session.scalar(select(Payment).where(Payment.callback_token == token[:64]))
        if payment is None:
            raise NotFound("Unknown callback")
        if result.outcome is not Outcome.COMPLETED or result.receipt is None:
            log.info("receipts.not_found", payment_id=payment.id, code=result.result_code)
            return JSONResponse(ACCEPTED)
        if result.amount not in (None, payment.amount):
            log.warning("receipts.mismatch", payment_id=payment.id)
            return JSONResponse(ACCEPTED)
        taken = await session.scalar(
            select(Payment.id).where(Payment.mpesa_receipt == result.receipt)
        )
        if taken is not None and taken != payment.id:
            log.warning("receipts.taken", payment_id=payment.id, other=taken)
            return JSONResponse(ACCEPTED)
        try:
            # A savepoint: another payment can take this receipt between the check above
            # and this UPDATE (on PostgreSQL; SQLite's writers are serialised). The
            # unique constraint then refuses it here, and it is the same answer as above.
            async with session.begin_nested():
                updated = await record_late_receipt(
                    session, payment_id=payment.id, receipt=result.receipt
                )
        except IntegrityError:
            log.warning("receipts.taken", payment_id=payment.id, raced=True)
            return JSONResponse(ACCEPTED)
        await session.execute(
            update(ReceiptQuery).where(ReceiptQuery.payment_id == payment.id)
            .values(done_at=utcnow())
        )  # fmt: skip
        if updated is not None:
            log.info("receipts.recorded", payment_id=updated.id)
    return JSONResponse(ACCEPTED)


@router.post("/{token}/timeout")
async def receipt_timeout(token: str, request: Request, runtime: RuntimeDep) -> JSONResponse:
    """The ask expired in Daraja's queue; the next one is already scheduled."""
    await _read(request)
    async with runtime.sessionmaker() as session:
        found = await session.scalar(select(Payment.id).where(Payment.callback_token == token[:64]))
    if found is None:
        raise NotFound("Unknown callback")
    return JSONResponse(ACCEPTED)
