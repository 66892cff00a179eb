"""Native API shapes for payments. Inputs forbid unknown fields (no mass assignment)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Literal
from urllib.parse import urlparse

from pydantic import BaseModel, ConfigDict, Field, StrictInt, field_validator

from pesaswitch.kit.clock import isoformat
from pesaswitch.kit.ids import ROW_ID_MAX
from pesaswitch.payments.models import Payment

MAX_METADATA_BYTES = 4096


class PaymentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    amount: StrictInt = Field(description="Whole Kenyan shillings.")
    phone: str = Field(min_length=1, max_length=32, description="Any Kenyan form; normalised.")
    channel_id: StrictInt | None = Field(
        default=None, ge=1, le=ROW_ID_MAX, description="Defaults to the account's."
    )
    reference: str | None = Field(default=None, min_length=1, max_length=100)
    description: str | None = Field(default=None, max_length=500)
    customer_name: str | None = Field(default=None, max_length=200)
    callback_url: str | None = Field(default=None, max_length=2000)
    metadata: dict[str, Any] | None = None

    @field_validator("callback_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parsed = urlparse(value)
        if parsed.scheme not in {"http", "https"} or not parsed.hostname:
            raise ValueError("callback_url must be an http(s) URL")
        return value

    @field_validator("metadata")
    @classmethod
    def _small_metadata(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None and len(json.dumps(value)) > MAX_METADATA_BYTES:
            raise ValueError(f"metadata must serialise to at most {MAX_METADATA_BYTES} bytes")
        return value


class PaymentOut(BaseModel):
    object: Literal["payment"] = "payment"
    id: str
    status: str
    direction: Literal["inbound"] = "inbound"
    source: str = Field(default="stk", description="stk (we prompted) or c2b (paid unprompted).")
    amount: int
    currency: str
    phone: str
    channel_id: int
    reference: str = Field(description="Your reference, or the gateway reference if none.")
    gateway_reference: str = Field(description="The gateway's 10-character code.")
    description: str | None
    customer_name: str | None
    callback_url: str | None
    metadata: dict[str, Any] | None
    checkout_request_id: str | None
    merchant_request_id: str | None
    mpesa_receipt: str | None
    result_code: str | None
    result_desc: str | None
    created_at: str
    updated_at: str
    finalized_at: str | None
    duplicate_of: str | None = Field(
        default=None,
        description="Set on an STK payment whose M-Pesa transaction another payment of "
        "yours already holds (its C2B confirmation, recorded first): that payment has the "
        "receipt and the wallet credit, so count the money once.",
    )

    @classmethod
    def render(cls, payment: Payment) -> PaymentOut:
        return cls(
            id=payment.id,
            status=payment.status,
            source=payment.source or "stk",
            amount=payment.amount,
            currency=payment.currency,
            phone=payment.phone,
            channel_id=payment.channel_id,
            reference=payment.external_reference or payment.reference,
            gateway_reference=payment.reference,
            description=payment.description,
            customer_name=payment.customer_name,
            callback_url=payment.callback_url,
            metadata=payment.metadata_,
            checkout_request_id=payment.checkout_request_id,
            merchant_request_id=payment.merchant_request_id,
            mpesa_receipt=payment.mpesa_receipt,
            result_code=payment.result_code,
            result_desc=payment.result_desc,
            created_at=_iso(payment.created_at),
            updated_at=_iso(payment.updated_at),
            finalized_at=isoformat(payment.finalized_at),
            duplicate_of=payment.duplicate_of,
        )


class PaymentFilters(BaseModel):
    status: str | None = None
    phone: str | None = None
    reference: str | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None


class PhoneValidateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    phone: str = Field(max_length=64)


class PhoneValidateOut(BaseModel):
    original: str
    normalized: str | None
    valid: bool
    network: str | None


def _iso(value: datetime) -> str:
    rendered = isoformat(value)
    assert rendered is not None
    return rendered
