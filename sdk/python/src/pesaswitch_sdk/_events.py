"""Typed events: what a webhook delivers and what ``GET /v1/events`` lists.

Every event is ``{"id": "evt_…", "type": "payment.completed", "created_at": …, "data": {…}}``
where ``data`` is the object as ``GET /v1/payments/{id}`` (or payouts) renders it. Event
types the SDK does not know yet (refunds and C2B are coming) arrive as ``UnknownEvent``
with the raw ``data``, so a receiver never fails on a new type.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from pesaswitch_sdk._models import Payment, Payout


class EventType(StrEnum):
    PAYMENT_COMPLETED = "payment.completed"
    PAYMENT_FAILED = "payment.failed"
    PAYMENT_CANCELLED = "payment.cancelled"
    PAYMENT_EXPIRED = "payment.expired"
    PAYOUT_COMPLETED = "payout.completed"
    PAYOUT_FAILED = "payout.failed"


PaymentEventType = Literal[
    "payment.completed", "payment.failed", "payment.cancelled", "payment.expired"
]
PayoutEventType = Literal["payout.completed", "payout.failed"]


class _EventBase(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    object: str = "event"
    id: str
    created_at: datetime | None = None


class PaymentEvent(_EventBase):
    type: PaymentEventType
    data: Payment


class PayoutEvent(_EventBase):
    type: PayoutEventType
    data: Payout


class UnknownEvent(_EventBase):
    type: str
    data: dict[str, Any]


Event = PaymentEvent | PayoutEvent | UnknownEvent

_PAYMENT_TYPES = frozenset(t.value for t in EventType if t.value.startswith("payment."))
_PAYOUT_TYPES = frozenset(t.value for t in EventType if t.value.startswith("payout."))


def construct_event(body: dict[str, Any]) -> Event:
    """The typed event for a parsed event body (already verified, if it came by webhook)."""
    event_type = body.get("type")
    if event_type in _PAYMENT_TYPES:
        return PaymentEvent.model_validate(body)
    if event_type in _PAYOUT_TYPES:
        return PayoutEvent.model_validate(body)
    return UnknownEvent.model_validate(body)
