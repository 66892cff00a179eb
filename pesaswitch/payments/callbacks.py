"""An STK callback applied by its token: the hot path of every payment's settlement.

The usual case — pending, and Daraja's CheckoutRequestID and amount agree — is one
``UPDATE … WHERE callback_token = :token AND status = 'pending' AND <they agree>
RETURNING`` the payment and its channel's kind: no SELECT of the payment before it, none
of the channel for the ledger after it. Any other case (a duplicate, a late conflicting
result, a mismatch) matches no row and is decided by ``service.apply_result`` on the row
as read, exactly as before.

The raw body is stored right after the UPDATE, before the event and the ledger entry,
so the ledger's balance rows are not also held locked across that INSERT.

The UPDATE is built once per shape (which of CheckoutRequestID, MerchantRequestID and
amount the callback carries) with bound parameters: building the statement and its cache
key on every callback cost more CPU than sending it (bench/issue-11-rounds.md, profile).
"""

from __future__ import annotations

from functools import cache
from typing import Any

from sqlalchemy import Update, bindparam, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from pesaswitch.accounts.models import Channel
from pesaswitch.daraja.wire import StkResult
from pesaswitch.db import is_postgresql
from pesaswitch.kit.clock import utcnow
from pesaswitch.payments import store, store_push, store_settle
from pesaswitch.payments.models import Payment, PaymentStatus
from pesaswitch.payments.service import (
    Applied,
    ApplyResult,
    ResultSource,
    apply_result,
    final_values,
    find_by_callback_token,
    settled,
    store_callback,
)

# The columns a final result sets (service.final_values), each bound as ``v_<column>``;
# the WHERE's values as ``w_…`` (a bound name may not be a column's).
_FINAL_COLUMNS = (
    "status", "result_code", "result_desc", "mpesa_receipt", "transaction_date",
    "settled_by", "next_query_at", "finalized_at", "updated_at",
)  # fmt: skip


@cache
def _settle_statement(checkout: bool, merchant: bool, amount: bool) -> Update:
    conditions = [
        Payment.callback_token == bindparam("w_token"),
        Payment.status == PaymentStatus.PENDING.value,
    ]
    values: dict[str, Any] = {name: bindparam(f"v_{name}") for name in _FINAL_COLUMNS}
    if checkout:
        conditions.append(
            or_(
                Payment.checkout_request_id.is_(None),
                Payment.checkout_request_id == bindparam("w_checkout"),
            )
        )
        values["checkout_request_id"] = bindparam("w_checkout")  # it was NULL or this already
    if merchant:
        values["merchant_request_id"] = func.coalesce(
            Payment.merchant_request_id, bindparam("w_merchant")
        )
    if amount:
        conditions.append(Payment.amount == bindparam("w_amount"))
    kind = select(Channel.kind).where(Channel.id == Payment.channel_id).scalar_subquery()
    return update(Payment).where(*conditions).values(values).returning(Payment, kind)


async def settle_without_transaction(
    sessionmaker: async_sessionmaker[AsyncSession],
    *,
    token: str,
    result: StkResult,
    body: str,
    source_ip: str | None,
) -> ApplyResult | None:
    """The usual callback settled and committed in two round trips outside any
    transaction (``store_settle.py``); None when it wrote nothing, and the caller then
    applies the callback in a transaction (``apply_callback``)."""
    # A session only for the policies bound to it and the identity cache's key: it never
    # opens a connection (the path runs on a connection of its own).
    session = sessionmaker()
    engine = session.bind
    assert isinstance(engine, AsyncEngine)
    if not store_push.has_hot_path(engine):
        return None
    return await store_settle.settle_callback(
        session, token=token, result=result, body=body, source_ip=source_ip
    )


async def apply_callback(
    session: AsyncSession, *, token: str, result: StkResult, body: str, source_ip: str | None
) -> ApplyResult | None:
    """Apply a parsed STK callback to the payment with ``token`` and store the raw body;
    None (nothing stored) when no payment has that token."""
    status = PaymentStatus(result.outcome.value)
    assert status.is_final, "only final results are applied"
    if is_postgresql(session):
        settled_now = await store.settle_callback(
            session, token=token, result=result, body=body, source_ip=source_ip
        )
        if settled_now is not None:
            return settled_now
        return await _apply_to_row(session, token=token, result=result, body=body,
                                   source_ip=source_ip)  # fmt: skip
    check_amount = status is PaymentStatus.COMPLETED and result.amount is not None
    statement = _settle_statement(
        result.checkout_request_id is not None, result.merchant_request_id is not None,
        check_amount,
    )  # fmt: skip
    values = final_values(result, ResultSource.CALLBACK, utcnow())
    params: dict[str, Any] = {f"v_{name}": values[name] for name in _FINAL_COLUMNS}
    params.update(w_token=token, w_checkout=result.checkout_request_id,
                  w_merchant=result.merchant_request_id, w_amount=result.amount)  # fmt: skip
    row = (
        await session.execute(
            statement, params,
            execution_options={"populate_existing": True, "synchronize_session": False},
        )
    ).first()  # fmt: skip
    if row is None:
        return await _apply_to_row(session, token=token, result=result, body=body,
                                   source_ip=source_ip)  # fmt: skip
    payment, kind = row._tuple()
    await store_callback(session, payment_id=payment.id, body=body, source_ip=source_ip,
                         outcome=Applied.APPLIED.value)  # fmt: skip
    await settled(session, payment, status, ResultSource.CALLBACK, values["finalized_at"], kind)
    return ApplyResult(Applied.APPLIED, payment)


async def _apply_to_row(
    session: AsyncSession, *, token: str, result: StkResult, body: str, source_ip: str | None
) -> ApplyResult | None:
    """A callback the settling UPDATE did not match, decided on the payment as read."""
    payment = await find_by_callback_token(session, token=token)
    if payment is None:
        return None
    applied = await apply_result(session, payment=payment, result=result,
                                 source=ResultSource.CALLBACK)  # fmt: skip
    await store_callback(session, payment_id=payment.id, body=body, source_ip=source_ip,
                         outcome=applied.outcome.value)  # fmt: skip
    return applied
