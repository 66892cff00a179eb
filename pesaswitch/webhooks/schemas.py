"""Native API shapes for events, webhook endpoints and deliveries."""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from pesaswitch.kit.clock import isoformat
from pesaswitch.webhooks.models import Delivery, DeliveryAttempt, Event, WebhookEndpoint


class EndpointCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(min_length=1, max_length=2000)
    events: list[str] | None = Field(default=None, max_length=20)
    description: str = Field(default="", max_length=500)


class RedeliverIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    endpoint_id: str | None = Field(default=None, max_length=40)


class EndpointOut(BaseModel):
    object: Literal["webhook_endpoint"] = "webhook_endpoint"
    id: str
    url: str
    description: str
    events: list[str]
    enabled: bool
    disabled_reason: str | None
    created_at: str | None
    secret: str | None = Field(default=None, description="Only when created or rotated.")

    @classmethod
    def render(cls, endpoint: WebhookEndpoint, secret: str | None = None) -> EndpointOut:
        return cls(
            id=endpoint.id,
            url=endpoint.url,
            description=endpoint.description,
            events=endpoint.event_types or ["*"],
            enabled=endpoint.enabled,
            disabled_reason=endpoint.disabled_reason,
            created_at=isoformat(endpoint.created_at),
            secret=secret,
        )


class EventOut(BaseModel):
    object: Literal["event"] = "event"
    id: str
    type: str
    created_at: str | None
    data: dict[str, Any]

    @classmethod
    def render(cls, event: Event) -> EventOut:
        payload = json.loads(event.payload)
        return cls(
            id=event.id, type=event.type, created_at=payload["created_at"], data=payload["data"]
        )


class AttemptOut(BaseModel):
    number: int
    attempted_at: str | None
    status_code: int | None
    duration_ms: int
    response_body: str | None
    error: str | None


class DeliveryOut(BaseModel):
    object: Literal["delivery"] = "delivery"
    id: str
    event_id: str
    endpoint_id: str | None
    url: str
    status: str
    attempt_count: int
    next_attempt_at: str | None
    last_status_code: int | None
    attempts: list[AttemptOut]

    @classmethod
    def render(cls, delivery: Delivery, attempts: list[DeliveryAttempt]) -> DeliveryOut:
        return cls(
            id=delivery.id,
            event_id=delivery.event_id,
            endpoint_id=delivery.endpoint_id,
            url=delivery.url,
            status=delivery.status,
            attempt_count=delivery.attempt_count,
            next_attempt_at=isoformat(delivery.next_attempt_at),
            last_status_code=delivery.last_status_code,
            attempts=[
                AttemptOut(
                    number=a.number,
                    attempted_at=isoformat(a.attempted_at),
                    status_code=a.status_code,
                    duration_ms=a.duration_ms,
                    response_body=a.response_body,
                    error=a.error,
                )
                for a in attempts
            ],
        )


class CallbackSecretOut(BaseModel):
    object: Literal["callback_secret"] = "callback_secret"
    secret: str
