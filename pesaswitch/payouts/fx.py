"""Operator-set exchange rates. Money stays integer: a USD payout's KES amount is
``round_half_up(amount x rate)`` with the rate as a Decimal, and both are kept."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from pesaswitch.db import insert_ignoring_conflict
from pesaswitch.errors import ValidationFailed
from pesaswitch.kit.clock import utcnow
from pesaswitch.payouts.models import FxRate

CURRENCIES = ("KES", "USD")


class NoExchangeRate(ValidationFailed):
    code = "no_exchange_rate"
    title = "No exchange rate is set for this currency"


def parse_rate(raw: str) -> Decimal:
    try:
        rate = Decimal(raw)
    except InvalidOperation as exc:
        raise ValidationFailed(f"{raw!r} is not a number") from exc
    if not rate.is_finite() or rate <= 0:
        raise ValidationFailed("An exchange rate is a positive number")
    return rate


async def set_rate(session: AsyncSession, *, currency: str, kes_per_unit: str) -> FxRate:
    currency = currency.upper()
    if currency not in CURRENCIES or currency == "KES":
        raise ValidationFailed("Rates are set for USD (KES needs none)")
    rate = str(parse_rate(kes_per_unit))
    await insert_ignoring_conflict(session, FxRate, currency=currency, kes_per_unit=rate,
                                   updated_at=utcnow())  # fmt: skip
    row = await session.get(FxRate, currency, with_for_update=True)
    assert row is not None
    row.kes_per_unit = rate
    row.updated_at = utcnow()
    return row


async def list_rates(session: AsyncSession) -> list[FxRate]:
    return list(await session.scalars(select(FxRate).order_by(FxRate.currency)))


async def to_kes(session: AsyncSession, *, amount: int, currency: str) -> tuple[int, str | None]:
    """(KES amount, the rate used or None for KES)."""
    if currency == "KES":
        return amount, None
    row = await session.get(FxRate, currency)
    if row is None:
        raise NoExchangeRate(f"Set a {currency} rate first: pesaswitch fx set {currency} <KES>")
    kes = (Decimal(amount) * Decimal(row.kes_per_unit)).quantize(Decimal(1), ROUND_HALF_UP)
    return int(kes), row.kes_per_unit


async def rate_of(session: AsyncSession, *, currency: str) -> Decimal | None:
    row = await session.get(FxRate, currency)
    return None if row is None else Decimal(row.kes_per_unit)
