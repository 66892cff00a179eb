"""Money going back to the customer of a completed payment: refunds and reversals.

- A **refund** (``re_…``) pays an amount (all or part of the payment) back to the payer's
  number by B2C from the merchant's wallet. It is carried by an ordinary payout
  (``payout_id``, reference ``refund:<refund id>``), so it has the payout's reservation,
  B2C request, Result callback and Transaction Status reconciliation; its status follows
  the payout's.
- A **reversal** (``rv_…``) asks M-Pesa to undo the original transaction itself (Daraja's
  Transaction Reversal API): always the full amount, at most one that is not failed.

``PaymentReturn`` is one row per payment that had a refund or reversal asked for: how
much of it is claimed. Claims are conditional UPDATEs on it, so racing requests can never
claim more than the payment's amount, on either database.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from pesaswitch.db import Base
from pesaswitch.kit.clock import utcnow


class ReturnStatus(StrEnum):
    PENDING = "pending"  # funds reserved; Daraja has not (yet) acknowledged the request
    PROCESSING = "processing"  # Daraja accepted it; the Result is awaited
    COMPLETED = "completed"
    FAILED = "failed"  # nothing moved; the claim and the reserved funds are released


OPEN_STATUSES = (ReturnStatus.PENDING.value, ReturnStatus.PROCESSING.value)
# The reference of the payout that carries a refund: "refund:<refund id>".
REFUND_REFERENCE_PREFIX = "refund:"


class PaymentReturn(Base):
    __tablename__ = "payment_returns"
    __table_args__ = (
        CheckConstraint("refunded >= 0 AND reversed >= 0", name="claims_non_negative"),
        CheckConstraint("refunded + reversed <= amount", name="claims_within_amount"),
    )

    payment_id: Mapped[str] = mapped_column(ForeignKey("payments.id"), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    amount: Mapped[int]  # the payment's amount
    refunded: Mapped[int] = mapped_column(default=0)  # claimed by refunds not failed
    reversed: Mapped[int] = mapped_column(default=0)  # claimed by a reversal not failed


class Refund(Base):
    __tablename__ = "refunds"
    __table_args__ = (Index("ix_refunds_account_id_id", "account_id", "id"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"))
    payment_id: Mapped[str] = mapped_column(ForeignKey("payments.id"), index=True)
    payout_id: Mapped[str] = mapped_column(ForeignKey("payouts.id"), unique=True)
    amount: Mapped[int]
    fee: Mapped[int]
    reason: Mapped[str] = mapped_column(String(200), default="")
    status: Mapped[str] = mapped_column(String(12), default=ReturnStatus.PENDING.value)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    finalized_at: Mapped[datetime | None] = mapped_column(default=None)


class Reversal(Base):
    __tablename__ = "reversals"
    __table_args__ = (
        Index("ix_reversals_account_id_id", "account_id", "id"),
        Index("ix_reversals_reconcile", "status", "next_query_at"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"))
    payment_id: Mapped[str] = mapped_column(ForeignKey("payments.id"), index=True)
    amount: Mapped[int]
    # What the wallet gives back: the amount the collection credited (amount - its fee).
    wallet_amount: Mapped[int]
    fee: Mapped[int]  # the collection's fee, returned by the operator
    receipt: Mapped[str] = mapped_column(String(20))  # the M-Pesa receipt reversed
    shortcode: Mapped[str] = mapped_column(String(10))
    reason: Mapped[str] = mapped_column(String(200), default="")
    status: Mapped[str] = mapped_column(String(12), default=ReturnStatus.PENDING.value)
    # Ours, sent to Daraja: Transaction Status finds the reversal by it.
    originator_conversation_id: Mapped[str] = mapped_column(String(64), unique=True)
    conversation_id: Mapped[str | None] = mapped_column(String(64), default=None)
    transaction_id: Mapped[str | None] = mapped_column(String(20), default=None)
    result_code: Mapped[str | None] = mapped_column(String(40), default=None)
    result_desc: Mapped[str | None] = mapped_column(String(500), default=None)
    callback_token: Mapped[str] = mapped_column(String(64), unique=True)
    settled_by: Mapped[str | None] = mapped_column(String(10), default=None)
    next_query_at: Mapped[datetime | None] = mapped_column(default=None)
    query_attempts: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    finalized_at: Mapped[datetime | None] = mapped_column(default=None)


class ReversalCallback(Base):
    """Every reversal Result, queue timeout and status Result, as received."""

    __tablename__ = "reversal_callbacks"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    reversal_id: Mapped[str] = mapped_column(ForeignKey("reversals.id"), index=True)
    kind: Mapped[str] = mapped_column(String(12))  # result | timeout | status
    body: Mapped[str] = mapped_column(Text)
    outcome: Mapped[str] = mapped_column(String(12))
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
