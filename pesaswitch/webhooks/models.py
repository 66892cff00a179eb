"""Events, merchant endpoints, and the outbox: one delivery per event and destination."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from pesaswitch.db import Base
from pesaswitch.kit.clock import utcnow


class EventType(StrEnum):
    PAYMENT_COMPLETED = "payment.completed"
    PAYMENT_FAILED = "payment.failed"
    PAYMENT_CANCELLED = "payment.cancelled"
    PAYMENT_EXPIRED = "payment.expired"
    PAYOUT_COMPLETED = "payout.completed"
    PAYOUT_FAILED = "payout.failed"
    # A completed payment learnt more (an STK receipt found by Transaction Status).
    PAYMENT_UPDATED = "payment.updated"
    REFUND_COMPLETED = "refund.completed"
    REFUND_FAILED = "refund.failed"
    PAYMENT_REVERSED = "payment.reversed"
    REVERSAL_FAILED = "reversal.failed"


class DeliveryStatus(StrEnum):
    PENDING = "pending"  # waiting for its next attempt (or being attempted, under a lease)
    SUCCEEDED = "succeeded"
    FAILED = "failed"  # the schedule ran out, or the endpoint went away


class Event(Base):
    __tablename__ = "events"
    __table_args__ = (Index("ix_events_account_id_id", "account_id", "id"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"))
    type: Mapped[str] = mapped_column(String(40))
    object_id: Mapped[str] = mapped_column(String(40), index=True)
    # The exact JSON that is signed and sent, so every retry sends identical bytes.
    payload: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class WebhookEndpoint(Base):
    __tablename__ = "webhook_endpoints"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    url: Mapped[str] = mapped_column(String(2000))
    description: Mapped[str] = mapped_column(String(500), default="")
    # None means every event type.
    event_types: Mapped[list[str] | None] = mapped_column(default=None)
    secret_enc: Mapped[str] = mapped_column(String(500))
    previous_secret_enc: Mapped[str | None] = mapped_column(String(500), default=None)
    previous_secret_expires_at: Mapped[datetime | None] = mapped_column(default=None)
    # "standard" (Standard Webhooks, native events) or a dialect's style, e.g. "paynexus".
    style: Mapped[str] = mapped_column(String(20), default="standard", server_default="standard")
    enabled: Mapped[bool] = mapped_column(default=True)
    disabled_reason: Mapped[str | None] = mapped_column(String(200), default=None)
    deleted_at: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    def wants(self, event_type: str) -> bool:
        return self.event_types is None or event_type in self.event_types


class Delivery(Base):
    __tablename__ = "deliveries"
    __table_args__ = (Index("ix_deliveries_due", "status", "next_attempt_at"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"))
    event_id: Mapped[str] = mapped_column(ForeignKey("events.id"), index=True)
    # An endpoint, or (endpoint_id None) the per-request callback_url of the object.
    endpoint_id: Mapped[str | None] = mapped_column(
        ForeignKey("webhook_endpoints.id"), index=True, default=None
    )
    url: Mapped[str] = mapped_column(String(2000))
    # A dialect's rendering of the event (PayHero callback, PayNexus webhook); None sends
    # the native event payload.
    body: Mapped[str | None] = mapped_column(Text, default=None)
    # The dialect whose format ``body`` is in, when it must be finished at send time.
    format: Mapped[str | None] = mapped_column(String(20), default=None)
    status: Mapped[str] = mapped_column(String(12), default=DeliveryStatus.PENDING.value)
    # Incremented when an attempt is claimed: each attempt number is claimed exactly once.
    attempt_count: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(default=utcnow)
    last_status_code: Mapped[int | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class DeliveryAttempt(Base):
    __tablename__ = "delivery_attempts"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    delivery_id: Mapped[str] = mapped_column(ForeignKey("deliveries.id"), index=True)
    number: Mapped[int]
    attempted_at: Mapped[datetime] = mapped_column(default=utcnow)
    status_code: Mapped[int | None] = mapped_column(default=None)
    duration_ms: Mapped[int] = mapped_column(default=0)
    response_body: Mapped[str | None] = mapped_column(Text, default=None)
    error: Mapped[str | None] = mapped_column(String(500), default=None)
