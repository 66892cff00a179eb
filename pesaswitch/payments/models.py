"""STK collections and the raw Daraja callbacks that settle them."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from pesaswitch.db import Base
from pesaswitch.kit.clock import utcnow


class PaymentStatus(StrEnum):
    PENDING = "pending"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    FAILED = "failed"

    @property
    def is_final(self) -> bool:
        return self is not PaymentStatus.PENDING


class PushState(StrEnum):
    """What we know about the STK Push request itself (not the customer's answer)."""

    SENDING = "sending"  # row committed, request to Daraja not answered yet
    ACCEPTED = "accepted"  # Daraja returned a CheckoutRequestID
    REJECTED = "rejected"  # Daraja said no; nothing was sent to the phone
    UNKNOWN = "unknown"  # timed out: the prompt may or may not have been sent


class Payment(Base):
    __tablename__ = "payments"
    __table_args__ = (
        Index("ix_payments_account_created", "account_id", "id"),
        # The reconciler's due payments; partial, so that no lookup of one payment by a
        # unique column and its status can tie with it (migration 0013).
        Index(
            "ix_payments_due",
            "next_query_at",
            postgresql_where=text("next_query_at IS NOT NULL"),
            sqlite_where=text("next_query_at IS NOT NULL"),
        ),
        # STK abuse protection: pending prompts to one number of an account, and an
        # account's failures in the sliding window (pesaswitch/protection/stk.py).
        Index("ix_payments_account_phone_status", "account_id", "phone", "status"),
        Index("ix_payments_account_status_finalized", "account_id", "status", "finalized_at"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"))
    channel_id: Mapped[int] = mapped_column(ForeignKey("channels.id"))
    amount: Mapped[int]
    currency: Mapped[str] = mapped_column(String(3), default="KES")
    # 2547…/2541… for STK; for C2B what Daraja sent (masked, or a SHA-256 hash).
    phone: Mapped[str] = mapped_column(String(64), index=True)
    reference: Mapped[str] = mapped_column(String(10), unique=True)
    external_reference: Mapped[str | None] = mapped_column(String(100), index=True, default=None)
    description: Mapped[str | None] = mapped_column(String(500), default=None)
    customer_name: Mapped[str | None] = mapped_column(String(200), default=None)
    callback_url: Mapped[str | None] = mapped_column(String(2000), default=None)
    metadata_: Mapped[dict[str, Any] | None] = mapped_column("metadata", default=None)
    dialect: Mapped[str] = mapped_column(String(20), default="native")
    # stk: we prompted the customer; c2b: the customer paid the till/paybill unprompted.
    source: Mapped[str] = mapped_column(String(10), default="stk")

    status: Mapped[str] = mapped_column(String(12), default=PaymentStatus.PENDING.value)
    push_state: Mapped[str] = mapped_column(String(12), default=PushState.SENDING.value)
    result_code: Mapped[str | None] = mapped_column(String(40), default=None)
    result_desc: Mapped[str | None] = mapped_column(String(500), default=None)
    mpesa_receipt: Mapped[str | None] = mapped_column(String(20), unique=True, default=None)
    transaction_date: Mapped[str | None] = mapped_column(String(14), default=None)
    merchant_request_id: Mapped[str | None] = mapped_column(String(80), default=None)
    checkout_request_id: Mapped[str | None] = mapped_column(String(80), unique=True, default=None)
    callback_token: Mapped[str] = mapped_column(String(64), unique=True)
    settled_by: Mapped[str | None] = mapped_column(String(10), default=None)
    # The payment that holds this one's M-Pesa transaction (its receipt and its wallet
    # credit): a C2B confirmation of the same money recorded first (payments/duplicates.py).
    duplicate_of: Mapped[str | None] = mapped_column(ForeignKey("payments.id"), default=None)

    # Reconciliation: when to ask Daraja next, and how often we already did.
    next_query_at: Mapped[datetime | None] = mapped_column(default=None)
    query_attempts: Mapped[int] = mapped_column(default=0)

    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    finalized_at: Mapped[datetime | None] = mapped_column(default=None)


class DarajaCallback(Base):
    """Every STK callback exactly as received, kept before it is acted on."""

    __tablename__ = "daraja_callbacks"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    payment_id: Mapped[str] = mapped_column(ForeignKey("payments.id"), index=True)
    body: Mapped[str] = mapped_column(Text)
    source_ip: Mapped[str | None] = mapped_column(String(64), default=None)
    # applied | duplicate | conflict | mismatch | invalid | merged
    outcome: Mapped[str] = mapped_column(String(12))
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
