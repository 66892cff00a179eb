"""Payment state: creation, push outcomes, results from callbacks and queries.

Every status change is a conditional UPDATE … WHERE status = 'pending', so a final
status is set exactly once however many callbacks and queries race for it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, cast

import structlog
from sqlalchemy import (
    DateTime,
    Select,
    Table,
    Update,
    bindparam,
    case,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from pesaswitch.accounts.models import Channel
from pesaswitch.daraja.wire import StkPushAccepted, StkResult
from pesaswitch.errors import NotFound, ValidationFailed
from pesaswitch.kit.clock import utcnow
from pesaswitch.kit.ids import new_id, new_reference, new_token
from pesaswitch.kit.pagination import PageParams
from pesaswitch.kit.phones import check_phone
from pesaswitch.ledger.flows import credit_payment
from pesaswitch.payments import receipts
from pesaswitch.payments.models import DarajaCallback, Payment, PaymentStatus, PushState
from pesaswitch.payments.schemas import PaymentCreate, PaymentFilters, PaymentOut
from pesaswitch.protection.stk import record_stk_outcome
from pesaswitch.webhooks.models import EventType
from pesaswitch.webhooks.service import record_event

log = structlog.get_logger(__name__)

# Plain Core INSERTs on the tables, built once: nothing needs the ORM's unit of work, and
# building a statement per request showed in the profile (bench/README.md).
_INSERT_PAYMENT = insert(cast(Table, Payment.__table__))
_INSERT_CALLBACK = insert(cast(Table, DarajaCallback.__table__))


EVENT_FOR_STATUS = {
    PaymentStatus.COMPLETED: EventType.PAYMENT_COMPLETED,
    PaymentStatus.FAILED: EventType.PAYMENT_FAILED,
    PaymentStatus.CANCELLED: EventType.PAYMENT_CANCELLED,
    PaymentStatus.EXPIRED: EventType.PAYMENT_EXPIRED,
}


class ResultSource(StrEnum):
    CALLBACK = "callback"
    QUERY = "query"
    PUSH = "push"
    STATEMENT = "statement"  # the shortcode's statement (Pull Transactions), payments/orphans.py


class Applied(StrEnum):
    APPLIED = "applied"
    DUPLICATE = "duplicate"
    CONFLICT = "conflict"
    MISMATCH = "mismatch"
    MERGED = "merged"  # completed as the duplicate of the payment holding its receipt


@dataclass(frozen=True, slots=True)
class ApplyResult:
    outcome: Applied
    payment: Payment


def pending_payment_values(
    *,
    account_id: str,
    channel_id: int | None,
    data: PaymentCreate,
    phone: str,
    dialect: str = "native",
    payment_id: str | None = None,
    orphan_after: timedelta | None = None,
) -> dict[str, Any]:
    """Every column of a new pending payment, by attribute name (``metadata_``).

    ``orphan_after`` schedules the statement check from this first commit: if the process
    dies before the push's answer is recorded, nothing else would (the answer, accepted or
    refused, replaces the schedule)."""
    now = utcnow()
    return {
        "id": payment_id or new_id("pay"), "account_id": account_id, "channel_id": channel_id,
        "amount": data.amount, "currency": "KES", "phone": phone, "reference": new_reference(),
        "external_reference": data.reference, "description": data.description,
        "customer_name": data.customer_name, "callback_url": data.callback_url,
        "metadata_": data.metadata, "dialect": dialect, "source": "stk",
        "status": PaymentStatus.PENDING.value, "push_state": PushState.SENDING.value,
        "callback_token": new_token(24), "query_attempts": 0, "created_at": now,
        "updated_at": now, "next_query_at": None if orphan_after is None else now + orphan_after,
    }  # fmt: skip


async def create_pending_payment(
    session: AsyncSession,
    *,
    account_id: str,
    channel: Channel,
    data: PaymentCreate,
    phone: str,
    dialect: str = "native",
    payment_id: str | None = None,
    orphan_after: timedelta | None = None,
) -> Payment:
    """Insert the payment; the returned object is not in the session (nothing reads it
    back through the ORM, and a Core INSERT skips the unit of work's flush)."""
    values = pending_payment_values(
        account_id=account_id, channel_id=channel.id, data=data, phone=phone, dialect=dialect,
        payment_id=payment_id, orphan_after=orphan_after,
    )  # fmt: skip
    payment = Payment(**values)
    # The table's column is "metadata" (``metadata_`` on the entity).
    values["metadata"] = values.pop("metadata_")
    await session.execute(_INSERT_PAYMENT, values)
    return payment


async def get_payment(session: AsyncSession, *, account_id: str, payment_id: str) -> Payment:
    payment = await session.scalar(
        select(Payment).where(Payment.id == payment_id, Payment.account_id == account_id)
    )
    if payment is None:
        raise NotFound(f"No payment {payment_id}")
    return payment


async def reload(session: AsyncSession, payment_id: str) -> Payment:
    payment = await session.get(Payment, payment_id, populate_existing=True)
    assert payment is not None
    return payment


def _filtered(query: Select[tuple[Payment]], filters: PaymentFilters) -> Select[tuple[Payment]]:
    if filters.status is not None:
        try:
            query = query.where(Payment.status == PaymentStatus(filters.status).value)
        except ValueError as exc:
            allowed = ", ".join(s.value for s in PaymentStatus)
            raise ValidationFailed(f"status must be one of {allowed}") from exc
    if filters.phone is not None:
        normalized = check_phone(filters.phone).normalized
        query = query.where(Payment.phone == (normalized or filters.phone))
    if filters.reference is not None:
        query = query.where(
            or_(
                Payment.external_reference == filters.reference,
                Payment.reference == filters.reference,
            )
        )
    if filters.created_after is not None:
        query = query.where(Payment.created_at >= _naive_utc(filters.created_after))
    if filters.created_before is not None:
        query = query.where(Payment.created_at < _naive_utc(filters.created_before))
    return query


async def list_payments(
    session: AsyncSession, *, account_id: str, filters: PaymentFilters, page: PageParams
) -> list[Payment]:
    """Up to ``page.limit + 1`` payments, newest first (the extra row signals more)."""
    query = _filtered(select(Payment).where(Payment.account_id == account_id), filters)
    if page.starting_after is not None:
        query = query.where(Payment.id < page.starting_after)
    rows = await session.scalars(query.order_by(Payment.id.desc()).limit(page.limit + 1))
    return list(rows)


async def count_payments(session: AsyncSession, *, account_id: str) -> int:
    total = await session.scalar(
        select(func.count()).select_from(Payment).where(Payment.account_id == account_id)
    )
    return int(total or 0)


def _push_accepted_statement() -> Update:
    # A callback may have settled it already (it can beat the push response): then no
    # reschedule. One statement, decided on the row as locked, and the row comes back.
    return (
        update(Payment)
        .where(Payment.id == bindparam("payment_id"))
        .values(
            checkout_request_id=bindparam("v_checkout"),
            merchant_request_id=bindparam("v_merchant"),
            push_state=PushState.ACCEPTED.value,
            next_query_at=case(
                (
                    Payment.status == PaymentStatus.PENDING.value,
                    bindparam("v_next_query_at", type_=DateTime()),
                ),
                else_=None,
            ),
            updated_at=bindparam("v_now"),
        )
        .returning(Payment)
    )


# Built once, run with bound values: every accepted push runs it.
_PUSH_ACCEPTED = _push_accepted_statement()


async def record_push_accepted(
    session: AsyncSession, *, payment_id: str, accepted: StkPushAccepted, query_after: float
) -> Payment:
    now = utcnow()
    payment: Payment | None = await session.scalar(
        _PUSH_ACCEPTED,
        {"payment_id": payment_id, "v_checkout": accepted.checkout_request_id,
         "v_merchant": accepted.merchant_request_id, "v_now": now,
         "v_next_query_at": now + timedelta(seconds=query_after)},
        execution_options={"populate_existing": True, "synchronize_session": False},
    )  # fmt: skip
    assert payment is not None, payment_id
    return payment


async def _update_returning(session: AsyncSession, statement: Update) -> Payment | None:
    """Run an UPDATE of one payment and return the row as updated (None: no row matched),
    refreshing the session's copy: the write and the read in one round trip."""
    payment: Payment | None = await session.scalar(
        statement.returning(Payment),
        execution_options={"populate_existing": True, "synchronize_session": False},
    )
    return payment


async def record_push_rejected(
    session: AsyncSession, *, payment_id: str, result_code: str, result_desc: str
) -> Payment:
    """Daraja refused the push: nothing reached the phone, so the payment failed."""
    now = utcnow()
    outcome = await session.execute(
        update(Payment)
        .where(Payment.id == payment_id, Payment.status == PaymentStatus.PENDING.value)
        .values(
            status=PaymentStatus.FAILED.value,
            push_state=PushState.REJECTED.value,
            result_code=result_code,
            result_desc=result_desc[:500],
            settled_by=ResultSource.PUSH.value,
            next_query_at=None,
            finalized_at=now,
            updated_at=now,
        )
    )
    payment = await reload(session, payment_id)
    if getattr(outcome, "rowcount", 0) == 1:
        await _emit_final_event(session, payment)
        # A refusal counts against the number; an unreachable Daraja says nothing about it.
        if result_code != "daraja_unavailable":
            await record_stk_outcome(
                session, account_id=payment.account_id, phone=payment.phone,
                succeeded=False, now=now,
            )  # fmt: skip
    return payment


async def _emit_final_event(session: AsyncSession, payment: Payment) -> None:
    """The event (and its outbox rows) commit in the same transaction as the status."""
    await record_event(
        session,
        account_id=payment.account_id,
        event_type=EVENT_FOR_STATUS[PaymentStatus(payment.status)],
        object_id=payment.id,
        data=PaymentOut.render(payment).model_dump(mode="json"),
        # Each dialect renders its own callback shape; the native API sends the event.
        callback_url=payment.callback_url,
        callback_dialect=payment.dialect,
    )


async def record_push_unknown(session: AsyncSession, *, payment_id: str, reason: str) -> Payment:
    """No answer to the push: the prompt may be on the phone. Without a CheckoutRequestID
    there is nothing to query, so it stays pending until the callback comes or the
    shortcode's statement decides (payments/orphans.py, scheduled at creation)."""
    await session.execute(
        update(Payment)
        .where(Payment.id == payment_id, Payment.push_state == PushState.SENDING.value)
        .values(push_state=PushState.UNKNOWN.value, result_desc=reason[:500], updated_at=utcnow())
    )
    log.warning("payments.push.unknown", payment_id=payment_id, reason=reason)
    return await reload(session, payment_id)


async def apply_result(
    session: AsyncSession, *, payment: Payment, result: StkResult, source: ResultSource
) -> ApplyResult:
    status = PaymentStatus(result.outcome.value)
    assert status.is_final, "only final results are applied"
    if (
        payment.checkout_request_id is not None
        and result.checkout_request_id is not None
        and result.checkout_request_id != payment.checkout_request_id
    ) or (status is PaymentStatus.COMPLETED and result.amount not in (None, payment.amount)):
        log.warning("payments.result.mismatch", payment_id=payment.id, source=source.value)
        return ApplyResult(Applied.MISMATCH, payment)
    if status is PaymentStatus.COMPLETED and result.receipt is None:
        # STK Query has no receipt; the payment's C2B echo, matched earlier, has it.
        echo = await receipts.echo_receipt(session, payment_id=payment.id)
        if echo is not None:
            result = replace(result, receipt=echo[0], transaction_date=echo[1])
    now = utcnow()
    updated = await _update_returning(
        session,
        update(Payment)
        .where(Payment.id == payment.id, Payment.status == PaymentStatus.PENDING.value)
        .values(
            checkout_request_id=payment.checkout_request_id or result.checkout_request_id,
            merchant_request_id=payment.merchant_request_id or result.merchant_request_id,
            **final_values(result, source, now),
        ),
    )
    if updated is not None:
        await settled(session, updated, status, source, now)
        return ApplyResult(Applied.APPLIED, updated)
    current = await reload(session, payment.id)
    if current.status == status.value and current.result_code == result.result_code:
        if current.mpesa_receipt is None and result.receipt is not None:
            # Settled by STK Query, which gives no receipt; this later callback has it
            # (the amount agreed, above): recorded with payment.updated. Nothing else
            # moves: it is still a duplicate.
            await receipts.record_late_receipt(
                session, payment_id=payment.id, receipt=result.receipt,
                transaction_date=result.transaction_date,
            )  # fmt: skip
            current = await reload(session, payment.id)
        return ApplyResult(Applied.DUPLICATE, current)
    # A final status is never overwritten; the disagreement is kept for review.
    log.warning(
        "payments.result.conflict",
        payment_id=payment.id,
        stored=current.status,
        incoming=status.value,
        source=source.value,
    )
    return ApplyResult(Applied.CONFLICT, current)


def final_values(result: StkResult, source: ResultSource, now: datetime) -> dict[str, Any]:
    return {
        "status": result.outcome.value, "result_code": result.result_code,
        "result_desc": result.result_desc[:500], "mpesa_receipt": result.receipt,
        "transaction_date": result.transaction_date, "settled_by": source.value,
        "next_query_at": None, "finalized_at": now, "updated_at": now,
    }  # fmt: skip


async def settled(
    session: AsyncSession,
    payment: Payment,
    status: PaymentStatus,
    source: ResultSource,
    now: datetime,
    channel_kind: str | None = None,
    *,
    count_outcome: bool = True,
) -> None:
    """What follows a final status set by this transaction: the event, the STK outcome and
    (completed, wallet channel) the ledger entry, all committing with the status.

    ``count_outcome=False``: the customer's answer is not known (the statement showed no
    payment, which may mean the prompt never left), so the STK abuse rules do not count it."""
    log.info("payments.settled", payment_id=payment.id, status=status.value, source=source)
    await _emit_final_event(session, payment)
    if count_outcome:
        await record_stk_outcome(
            session, account_id=payment.account_id, phone=payment.phone,
            succeeded=status is PaymentStatus.COMPLETED, now=now,
        )  # fmt: skip
    if status is PaymentStatus.COMPLETED:
        # Wallet channels credit the wallet, once per receipt, in this transaction.
        await credit_payment(session, payment=payment, channel_kind=channel_kind)


async def find_by_callback_token(session: AsyncSession, *, token: str) -> Payment | None:
    payment: Payment | None = await session.scalar(
        select(Payment).where(Payment.callback_token == token)
    )
    return payment


async def store_callback(
    session: AsyncSession, *, payment_id: str, body: str, source_ip: str | None, outcome: str
) -> None:
    await session.execute(
        _INSERT_CALLBACK,
        {"payment_id": payment_id, "body": body, "source_ip": source_ip, "outcome": outcome,
         "received_at": utcnow()},
    )  # fmt: skip


def _naive_utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        return value
    return value.astimezone(UTC).replace(tzinfo=None)
