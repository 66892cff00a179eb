"""Read-side lookups the vendor dialects need: by gateway reference, by CheckoutRequestID,
numbered pages, and the wallet total. Every query is scoped to the account."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from pesaswitch.errors import NotFound
from pesaswitch.payments.models import Payment


async def get_by_reference(session: AsyncSession, *, account_id: str, reference: str) -> Payment:
    """By the gateway's 10-character reference, or else by the merchant's own reference."""
    payment = await session.scalar(
        select(Payment).where(Payment.account_id == account_id, Payment.reference == reference)
    )
    if payment is None:
        payment = await session.scalar(
            select(Payment)
            .where(Payment.account_id == account_id, Payment.external_reference == reference)
            .order_by(Payment.id.desc())
            .limit(1)
        )
    if payment is None:
        raise NotFound(f"No payment with reference {reference}")
    return payment


async def get_by_checkout_id(
    session: AsyncSession, *, account_id: str, checkout_request_id: str
) -> Payment:
    payment = await session.scalar(
        select(Payment).where(
            Payment.account_id == account_id,
            Payment.checkout_request_id == checkout_request_id,
        )
    )
    if payment is None:
        raise NotFound(f"No payment with CheckoutRequestID {checkout_request_id}")
    return payment


async def numbered_page(
    session: AsyncSession, *, account_id: str, page: int, per: int
) -> tuple[list[Payment], int]:
    """Page ``page`` (from 1) of ``per`` payments, newest first, and the total count."""
    total = await session.scalar(
        select(func.count()).select_from(Payment).where(Payment.account_id == account_id)
    )
    rows = await session.scalars(
        select(Payment)
        .where(Payment.account_id == account_id)
        .order_by(Payment.id.desc())
        .offset((page - 1) * per)
        .limit(per)
    )
    return list(rows), int(total or 0)
