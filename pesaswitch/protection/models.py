"""Stored Idempotency-Key outcomes (reliability.md §2) and the STK abuse guards."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from pesaswitch.db import Base
from pesaswitch.kit.clock import utcnow


class IdempotencyKey(Base):
    __tablename__ = "idempotency_keys"
    __table_args__ = (UniqueConstraint("account_id", "key", name="uq_idempotency_account_key"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"))
    key: Mapped[str] = mapped_column(String(255))
    method_path: Mapped[str] = mapped_column(String(300))
    fingerprint: Mapped[str] = mapped_column(String(64))
    # in_progress until the response is known; then done with the response stored.
    state: Mapped[str] = mapped_column(String(12), default="in_progress")
    resource_id: Mapped[str | None] = mapped_column(String(40), default=None)
    response_status: Mapped[int | None] = mapped_column(default=None)
    response_body: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class StkPhoneGuard(Base):
    """One (account, phone) pair's run of failed STK prompts and its block.

    Read by primary key on every initiation to a number with history; written only when
    a prompt to that number reaches a final status (or an operator lifts the block).
    """

    __tablename__ = "stk_phone_guards"

    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), primary_key=True)
    phone: Mapped[str] = mapped_column(String(12), primary_key=True)
    # Successive failed/cancelled/expired results since the last success, block or lift.
    consecutive_failures: Mapped[int] = mapped_column(default=0)
    # Set when the run reaches the limit; an expired value means the next failure starts
    # a new run (kept rather than cleared so the check needs no write).
    blocked_until: Mapped[datetime | None] = mapped_column(default=None)
    last_failure_at: Mapped[datetime | None] = mapped_column(default=None)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class StkAccountGuard(Base):
    """An account's STK restriction, set when failures in the sliding window pile up."""

    __tablename__ = "stk_account_guards"

    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), primary_key=True)
    restricted_until: Mapped[datetime | None] = mapped_column(default=None)
    # Failures counted when the restriction was last set (for operators).
    window_failures: Mapped[int] = mapped_column(default=0)
    # An operator's lift: failures finalized before it no longer count toward the window.
    counted_since: Mapped[datetime | None] = mapped_column(default=None)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
