"""A channel's C2B registration, each C2B transaction (once per TransID), and every
notification Daraja posted, kept as received with what became of it."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from pesaswitch.db import Base
from pesaswitch.kit.clock import utcnow


class DefaultAction(StrEnum):
    """What happens when validation cannot decide in time: Daraja's ResponseType."""

    ACCEPT = "accept"  # ResponseType "Completed"
    REJECT = "reject"  # ResponseType "Cancelled"


class NotificationKind(StrEnum):
    VALIDATION = "validation"
    CONFIRMATION = "confirmation"
    STATUS = "status"  # a Transaction Status Result for a receipt we asked about


class C2BRegistration(Base):
    """One per channel. The token in the URLs is what proves a notification is Daraja
    answering for this channel: the notifications are unsigned (daraja.md §8)."""

    __tablename__ = "c2b_registrations"

    channel_id: Mapped[int] = mapped_column(ForeignKey("channels.id"), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    # The shortcode Daraja reports as BusinessShortCode; one registration per shortcode.
    shortcode: Mapped[str] = mapped_column(String(10), unique=True)
    token: Mapped[str] = mapped_column(String(64), unique=True)
    validation_enabled: Mapped[bool] = mapped_column(default=False)
    account_pattern: Mapped[str | None] = mapped_column(String(200), default=None)
    min_amount: Mapped[int | None] = mapped_column(default=None)
    max_amount: Mapped[int | None] = mapped_column(default=None)
    validation_url: Mapped[str | None] = mapped_column(String(2000), default=None)
    default_action: Mapped[str] = mapped_column(String(10), default=DefaultAction.ACCEPT.value)
    registered_at: Mapped[datetime | None] = mapped_column(default=None)
    swept_until: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class C2BTransaction(Base):
    """Claimed by TransID before anything else happens: the unique key is what makes a
    duplicated, replayed or racing confirmation change nothing."""

    __tablename__ = "c2b_transactions"
    __table_args__ = (
        Index("ix_c2b_transactions_account", "account_id", "created_at"),
        # An STK payment's echo, looked up by the payment (payments/receipts.py).
        Index("ix_c2b_transactions_payment", "payment_id"),
    )

    trans_id: Mapped[str] = mapped_column(String(20), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"))
    channel_id: Mapped[int] = mapped_column(ForeignKey("channels.id"))
    payment_id: Mapped[str | None] = mapped_column(ForeignKey("payments.id"), default=None)
    shortcode: Mapped[str] = mapped_column(String(10))
    amount: Mapped[int]
    bill_ref: Mapped[str] = mapped_column(String(100), default="")
    # As Daraja sent it: v2 masks it ("2547 ***** 126"), v1 sends a SHA-256 hash.
    msisdn: Mapped[str] = mapped_column(String(64), default="")
    payer_name: Mapped[str] = mapped_column(String(200), default="")
    trans_time: Mapped[str | None] = mapped_column(String(14), default=None)
    # confirmation | sweep: how we learnt of it
    source: Mapped[str] = mapped_column(String(12))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class C2BNotification(Base):
    """Every validation and confirmation as received, including the refused ones (wrong
    token, unknown shortcode, unreadable body): those have no account."""

    __tablename__ = "c2b_notifications"
    __table_args__ = (Index("ix_c2b_notifications_account", "account_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    account_id: Mapped[str | None] = mapped_column(ForeignKey("accounts.id"), default=None)
    channel_id: Mapped[int | None] = mapped_column(ForeignKey("channels.id"), default=None)
    kind: Mapped[str] = mapped_column(String(12))
    trans_id: Mapped[str | None] = mapped_column(String(20), default=None)
    body: Mapped[str] = mapped_column(Text)
    source_ip: Mapped[str | None] = mapped_column(String(64), default=None)
    # accepted | rejected | applied | duplicate | matched_stk | invalid | unknown_token |
    # unknown_shortcode
    outcome: Mapped[str] = mapped_column(String(20))
    result_code: Mapped[str | None] = mapped_column(String(10), default=None)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)


class ReceiptQuery(Base):
    """An STK payment settled by STK Query (no receipt in that answer), asked about by
    Transaction Status until the receipt is known (``c2b/receipts.py``)."""

    __tablename__ = "stk_receipt_queries"

    payment_id: Mapped[str] = mapped_column(ForeignKey("payments.id"), primary_key=True)
    attempts: Mapped[int] = mapped_column(default=0)
    next_at: Mapped[datetime | None] = mapped_column(default=None, index=True)
    done_at: Mapped[datetime | None] = mapped_column(default=None)
