"""What the pages read. Every query is scoped to the viewer's account; ``None`` (staff
looking at all accounts) is the only way to see more than one.

Lists are keyset pages over time-ordered ids (``id < after``, newest first) through the
``(account_id, id)`` indexes: page 500 costs what page 1 costs, however many rows exist.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Select, case, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from pesaswitch.errors import NotFound
from pesaswitch.kit.clock import utcnow
from pesaswitch.kit.phones import check_phone
from pesaswitch.payments.models import DarajaCallback, Payment, PaymentStatus
from pesaswitch.webhooks.models import Delivery, DeliveryAttempt, Event

PAGE_SIZE = 50
# Kenya keeps East Africa Time all year (UTC+3, no daylight saving): days and times on
# the pages are the merchant's, not the server's.
EAT = timedelta(hours=3)


def scoped(query: Select[Any], column: Any, account_id: str | None) -> Select[Any]:
    return query if account_id is None else query.where(column == account_id)


@dataclass(frozen=True, slots=True)
class PaymentSearch:
    status: str | None = None
    q: str | None = None
    created_from: date | None = None
    created_to: date | None = None

    def apply(self, query: Select[Any]) -> Select[Any]:
        if self.status in {s.value for s in PaymentStatus}:
            query = query.where(Payment.status == self.status)
        if self.q:
            text = self.q.strip()
            phone = check_phone(text).normalized
            query = query.where(
                or_(
                    Payment.id == text,
                    Payment.reference == text,
                    Payment.external_reference == text,
                    Payment.mpesa_receipt == text.upper(),
                    Payment.phone == (phone or text),
                )
            )
        # Dates are Nairobi days; stored times are UTC.
        if self.created_from is not None:
            start = datetime.combine(self.created_from, datetime.min.time()) - EAT
            query = query.where(Payment.created_at >= start)
        if self.created_to is not None:
            end = datetime.combine(self.created_to, datetime.min.time()) + timedelta(days=1) - EAT
            query = query.where(Payment.created_at < end)
        return query


async def payments_page(
    session: AsyncSession, *, account_id: str | None, search: PaymentSearch,
    after: str | None, limit: int = PAGE_SIZE,
) -> tuple[list[Payment], str | None]:  # fmt: skip
    """One page and the cursor of the next (None on the last page)."""
    query = search.apply(scoped(select(Payment), Payment.account_id, account_id))
    if after:
        query = query.where(Payment.id < after)
    rows = list(await session.scalars(query.order_by(Payment.id.desc()).limit(limit + 1)))
    return rows[:limit], (rows[limit - 1].id if len(rows) > limit else None)


async def stream_payments(
    session: AsyncSession, *, account_id: str | None, search: PaymentSearch, batch: int = 1000
) -> AsyncIterator[list[Payment]]:
    """All matching payments in batches, for CSV export without holding them all."""
    after: str | None = None
    while True:
        rows, after = await payments_page(
            session, account_id=account_id, search=search, after=after, limit=batch
        )
        if rows:
            yield rows
        if after is None:
            return


async def get_payment(session: AsyncSession, *, account_id: str | None, payment_id: str) -> Payment:
    payment: Payment | None = await session.scalar(
        scoped(select(Payment), Payment.account_id, account_id).where(Payment.id == payment_id)
    )
    if payment is None:
        raise NotFound(f"No payment {payment_id}")
    return payment


@dataclass(slots=True)
class PaymentHistory:
    callbacks: list[DarajaCallback]
    events: list[Event]
    deliveries: list[tuple[Delivery, list[DeliveryAttempt]]] = field(default_factory=list)


async def payment_history(session: AsyncSession, *, payment: Payment) -> PaymentHistory:
    callbacks = list(
        await session.scalars(
            select(DarajaCallback)
            .where(DarajaCallback.payment_id == payment.id)
            .order_by(DarajaCallback.id)
        )
    )
    events = list(
        await session.scalars(
            select(Event)
            .where(Event.account_id == payment.account_id, Event.object_id == payment.id)
            .order_by(Event.id)
        )
    )
    history = PaymentHistory(callbacks, events)
    if events:
        deliveries = list(
            await session.scalars(
                select(Delivery)
                .where(Delivery.event_id.in_([e.id for e in events]))
                .order_by(Delivery.id)
            )
        )
        attempts: dict[str, list[DeliveryAttempt]] = {d.id: [] for d in deliveries}
        if deliveries:
            for attempt in await session.scalars(
                select(DeliveryAttempt)
                .where(DeliveryAttempt.delivery_id.in_(list(attempts)))
                .order_by(DeliveryAttempt.delivery_id, DeliveryAttempt.number)
            ):
                attempts[attempt.delivery_id].append(attempt)
        history.deliveries = [(d, attempts[d.id]) for d in deliveries]
    return history


@dataclass(frozen=True, slots=True)
class Totals:
    completed: int
    volume: int
    failed: int
    pending: int

    @property
    def success_rate(self) -> float | None:
        finished = self.completed + self.failed
        return None if finished == 0 else self.completed / finished


async def totals_since(session: AsyncSession, *, account_id: str | None, since: datetime) -> Totals:
    """Payments created since ``since``: how many completed (and for how much), failed,
    are still pending. Cancelled and expired count as failed: the customer did not pay."""
    done = Payment.status == PaymentStatus.COMPLETED.value
    pending = Payment.status == PaymentStatus.PENDING.value
    query = scoped(
        select(
            func.count().filter(done),
            func.coalesce(func.sum(case((done, Payment.amount), else_=0)), 0),
            func.count().filter(~done & ~pending),
            func.count().filter(pending),
        ).where(Payment.created_at >= since),
        Payment.account_id,
        account_id,
    )
    completed, volume, failed, waiting = (await session.execute(query)).one()
    return Totals(int(completed), int(volume), int(failed), int(waiting))


def nairobi_midnight(days_ago: int = 0) -> datetime:
    """UTC (naive) of the start of a Nairobi day."""
    local = utcnow() + EAT
    start = datetime.combine(local.date() - timedelta(days=days_ago), datetime.min.time())
    return start - EAT


def nairobi_month_start() -> datetime:
    local = utcnow() + EAT
    return datetime.combine(local.date().replace(day=1), datetime.min.time()) - EAT


@dataclass(frozen=True, slots=True)
class Day:
    day: date
    completed: int
    failed: int
    volume: int


async def daily(session: AsyncSession, *, account_id: str | None, days: int = 30) -> list[Day]:
    """Completed and failed payments per Nairobi day, oldest first, zero-filled."""
    since = nairobi_midnight(days - 1)
    dialect = session.get_bind().dialect.name
    if dialect == "sqlite":
        day_expr: Any = func.date(Payment.created_at, "+3 hours")
    else:
        day_expr = func.date(Payment.created_at + EAT)
    done = Payment.status == PaymentStatus.COMPLETED.value
    failed = ~done & (Payment.status != PaymentStatus.PENDING.value)
    query = scoped(
        select(
            day_expr,
            func.count().filter(done),
            func.count().filter(failed),
            func.coalesce(func.sum(case((done, Payment.amount), else_=0)), 0),
        )
        .where(Payment.created_at >= since)
        .group_by(day_expr),
        Payment.account_id,
        account_id,
    )
    found: dict[date, Day] = {}
    for raw_day, completed, failures, volume in await session.execute(query):
        day = raw_day if isinstance(raw_day, date) else date.fromisoformat(str(raw_day))
        found[day] = Day(day, int(completed), int(failures), int(volume))
    first = (since + EAT).date()
    return [
        found.get(first + timedelta(days=i), Day(first + timedelta(days=i), 0, 0, 0))
        for i in range(days)
    ]
