"""B2C payouts from a merchant's wallet, and the operator's exchange rates."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from pesaswitch.db import Base
from pesaswitch.kit.clock import utcnow


class PayoutStatus(StrEnum):
    PENDING = "pending"  # funds reserved; Daraja has not (yet) acknowledged the request
    PROCESSING = "processing"  # Daraja accepted it; the Result is awaited
    COMPLETED = "completed"
    FAILED = "failed"  # funds released back to the wallet

    @property
    def is_final(self) -> bool:
        return self in (PayoutStatus.COMPLETED, PayoutStatus.FAILED)


OPEN_STATUSES = (PayoutStatus.PENDING.value, PayoutStatus.PROCESSING.value)


class Payout(Base):
    __tablename__ = "payouts"
    __table_args__ = (
        UniqueConstraint("account_id", "reference", name="uq_payouts_account_reference"),
        Index("ix_payouts_account_id_id", "account_id", "id"),
        Index("ix_payouts_reconcile", "status", "next_query_at"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"))
    # What the merchant asked for, in its currency (whole units)...
    amount: Mapped[int]
    currency: Mapped[str] = mapped_column(String(3))
    # ...and what M-Pesa sends, in whole KES (USD converted at the operator's rate).
    kes_amount: Mapped[int]
    fx_rate: Mapped[str | None] = mapped_column(String(20), default=None)
    fee: Mapped[int]
    phone: Mapped[str] = mapped_column(String(12))
    name: Mapped[str] = mapped_column(String(200), default="")
    reference: Mapped[str] = mapped_column(String(100))
    description: Mapped[str] = mapped_column(String(500), default="")
    dialect: Mapped[str] = mapped_column(String(20), default="native")
    callback_url: Mapped[str | None] = mapped_column(String(2000), default=None)

    status: Mapped[str] = mapped_column(String(12), default=PayoutStatus.PENDING.value)
    # Ours, sent to Daraja, unique: a retried request can never pay twice.
    originator_conversation_id: Mapped[str] = mapped_column(String(64), unique=True)
    conversation_id: Mapped[str | None] = mapped_column(String(64), default=None)
    transaction_id: Mapped[str | None] = mapped_column(String(20), default=None)
    result_code: Mapped[str | None] = mapped_column(String(40), default=None)
    result_desc: Mapped[str | None] = mapped_column(String(500), default=None)
    shortcode: Mapped[str] = mapped_column(String(10))
    callback_token: Mapped[str] = mapped_column(String(64), unique=True)
    settled_by: Mapped[str | None] = mapped_column(String(10), default=None)

    next_query_at: Mapped[datetime | None] = mapped_column(default=None)
    query_attempts: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    finalized_at: Mapped[datetime | None] = mapped_column(default=None)


class PayoutCallback(Base):
    """Every B2C Result, queue timeout and status Result, as received."""

    __tablename__ = "payout_callbacks"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    payout_id: Mapped[str] = mapped_column(ForeignKey("payouts.id"), index=True)
    kind: Mapped[str] = mapped_column(String(12))  # result | timeout | status
    body: Mapped[str] = mapped_column(Text)
    outcome: Mapped[str] = mapped_column(String(12))
    received_at: Mapped[datetime] = mapped_column(default=utcnow)


class FxRate(Base):
    """KES per one unit of ``currency``, set by the operator (``pesaswitch fx set``)."""

    __tablename__ = "fx_rates"

    currency: Mapped[str] = mapped_column(String(3), primary_key=True)
    kes_per_unit: Mapped[str] = mapped_column(String(20))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
