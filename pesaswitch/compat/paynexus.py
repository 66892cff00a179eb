"""PayNexus under ``/api``: ``X-API-Key`` auth with read-only ``pk_`` keys, its payment
shapes and statuses, its amount caps and rate-limit headers, and its signed webhooks."""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import time
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StrictInt

from pesaswitch.accounts.models import Environment
from pesaswitch.accounts.service import AuthContext
from pesaswitch.compat.common import api_key_auth, install_vendor_errors, require_write
from pesaswitch.db import transaction
from pesaswitch.errors import AmountOutOfRange, PesaswitchError, TooManyRequests
from pesaswitch.kit.clock import isoformat
from pesaswitch.kit.nul import refuse_nul
from pesaswitch.kit.openapi import (
    VENDOR_ERROR_SCHEMA,
    declare_problems,
    parameters_without_null,
    vendor_responses,
)
from pesaswitch.kit.phones import check_phone
from pesaswitch.kit.query import single_valued_query
from pesaswitch.payments import queries
from pesaswitch.payments.initiate import initiate_payment
from pesaswitch.payments.models import Payment, PaymentStatus
from pesaswitch.payments.schemas import PaymentCreate
from pesaswitch.runtime import Runtime
from pesaswitch.webhooks import service as webhooks
from pesaswitch.webhooks.formats import register_endpoint_format

DIALECT = "paynexus"
SIGNATURE_HEADER = "X-PayNexus-Signature"


def _error(error: PesaswitchError) -> dict[str, Any]:
    body: dict[str, Any] = {"success": False, "message": error.detail, "error": error.code}
    if "retry_after" in error.extra:
        body["retry_after"] = error.extra["retry_after"]
    return body


@dataclass
class RateLimiter:
    """A fixed one-minute window per key, in this process (PayNexus documents per-plan
    limits of 30-300 requests a minute). Multi-process deployments get N x the limit."""

    limit: int
    windows: dict[str, tuple[int, int]] = field(default_factory=dict)

    def hit(self, key_id: str, now: float) -> tuple[int, int, int]:
        """(remaining, reset epoch, retry_after); remaining < 0 means refused."""
        window = int(now // 60)
        start, count = self.windows.get(key_id, (window, 0))
        if start != window:
            start, count = window, 0
        count += 1
        self.windows[key_id] = (start, count)
        reset = (window + 1) * 60
        return self.limit - count, reset, max(1, math.ceil(reset - now))


class InitiateIn(BaseModel):
    model_config = ConfigDict(extra="ignore")

    amount: StrictInt
    phone: str = Field(min_length=1, max_length=32)
    description: str | None = Field(default=None, max_length=500)
    reference: str | None = Field(default=None, max_length=100)
    callback_url: str | None = Field(default=None, max_length=2000)


class CheckoutIdIn(BaseModel):
    model_config = ConfigDict(extra="ignore")

    checkout_request_id: str = Field(min_length=1, max_length=80)


class PhoneIn(BaseModel):
    model_config = ConfigDict(extra="ignore")

    phone: str = Field(max_length=64)


class WebhookIn(BaseModel):
    model_config = ConfigDict(extra="ignore")

    url: str = Field(min_length=1, max_length=2000)
    events: list[str] | None = Field(default=None, max_length=20)


def _status(payment: Payment | dict[str, Any]) -> str:
    status = payment["status"] if isinstance(payment, dict) else payment.status
    checkout = (
        payment["checkout_request_id"] if isinstance(payment, dict) else payment.checkout_request_id
    )
    if status == PaymentStatus.PENDING.value:
        # "initiated": the prompt is on the phone; "processing": its fate is being established.
        return "initiated" if checkout else "processing"
    return str(status)


def _payment(payment: Payment) -> dict[str, Any]:
    return {
        "reference": payment.reference,
        "checkout_request_id": payment.checkout_request_id,
        "amount": payment.amount,
        "phone": payment.phone,
        "status": _status(payment),
        "description": payment.description,
        "mpesa_receipt_number": payment.mpesa_receipt,
        "result_code": payment.result_code,
        "result_desc": payment.result_desc,
        "created_at": isoformat(payment.created_at),
        "updated_at": isoformat(payment.updated_at),
    }


def render_webhook(event_type: str, payment: dict[str, Any]) -> str | None:
    if payment.get("object") != "payment":
        # PayNexus documents payment webhooks only; payouts, refunds and reversals go out
        # as the native event (a payout used to fail its settlement here on KeyError).
        return None
    data = {
        "reference": payment["gateway_reference"],
        "checkout_request_id": payment["checkout_request_id"],
        "amount": payment["amount"],
        "phone": payment["phone"],
        "status": _status(payment),
        "mpesa_receipt_number": payment["mpesa_receipt"],
        "result_code": payment["result_code"],
        "result_desc": payment["result_desc"],
    }
    return json.dumps({"event": event_type, "data": data}, separators=(",", ":"))


def sign(secret: str, body: str) -> dict[str, str]:
    """HMAC-SHA256 (hex) of the raw body, keyed with the secret given at registration."""
    digest = hmac.new(secret.encode(), body.encode(), hashlib.sha256).hexdigest()
    return {SIGNATURE_HEADER: digest}


register_endpoint_format(DIALECT, render_webhook, sign)


async def limited(
    auth: Annotated[AuthContext, Depends(api_key_auth)], request: Request, response: Response
) -> AuthContext:
    """Authenticate, then count the request against the key's per-minute budget."""
    limiter: RateLimiter = request.app.state.limiter
    remaining, reset, retry_after = limiter.hit(auth.key_id, time.time())
    headers = {
        "X-RateLimit-Limit": str(limiter.limit),
        "X-RateLimit-Remaining": str(max(0, remaining)),
        "X-RateLimit-Reset": str(reset),
    }
    if remaining < 0:
        raise TooManyRequests(
            "Rate limit exceeded", retry_after=retry_after,
            headers={**headers, "Retry-After": str(retry_after)},
        )  # fmt: skip
    response.headers.update(headers)
    return auth


Auth = Annotated[AuthContext, Depends(limited)]


def create_paynexus_app(runtime: Runtime) -> FastAPI:
    settings = runtime.settings
    app = FastAPI(
        title="pesaswitch: PayNexus dialect", docs_url=None, redoc_url=None,
        dependencies=[Depends(single_valued_query), Depends(refuse_nul)],
    )  # fmt: skip
    app.state.runtime = runtime
    parameters_without_null(app)
    install_vendor_errors(app, _error)
    app.state.limiter = RateLimiter(settings.paynexus_rate_limit)

    def cap(environment: Environment) -> int:
        if environment is Environment.LIVE:
            return settings.paynexus_max_amount_live
        return settings.paynexus_max_amount_sandbox

    @app.post("/mpesa/payment/initiate")
    async def initiate(data: InitiateIn, auth: Auth, response: Response) -> JSONResponse:
        require_write(auth)
        maximum = cap(auth.environment)
        if not 1 <= data.amount <= maximum:
            raise AmountOutOfRange(f"Amount must be between 1 and {maximum} KES")
        native = PaymentCreate(
            amount=data.amount, phone=data.phone, description=data.description,
            reference=data.reference, callback_url=data.callback_url,
        )  # fmt: skip
        result = await initiate_payment(
            runtime, auth=auth, data=native, idempotency_key=None, dialect=DIALECT
        )
        body = result.body
        headers = dict(response.headers)
        if result.status_code >= 400:
            answer = {"success": False, "message": body["detail"], "error": body["code"]}
            return JSONResponse(answer, status_code=result.status_code, headers=headers)
        data_out = {
            "reference": body["gateway_reference"],
            "checkout_request_id": body["checkout_request_id"],
            "amount": body["amount"],
            "phone": body["phone"],
            "status": _status(body),
        }
        return JSONResponse({"success": True, "data": data_out}, headers=headers)

    @app.get("/payments/{reference}")
    async def by_reference(reference: str, auth: Auth) -> dict[str, Any]:
        async with runtime.sessionmaker() as session:
            payment = await queries.get_by_reference(
                session, account_id=auth.account_id, reference=reference
            )
        return {"success": True, "data": _payment(payment)}

    @app.post("/payments/status-by-checkout-id", responses=vendor_responses(404))
    async def by_checkout_id(data: CheckoutIdIn, auth: Auth) -> dict[str, Any]:
        async with runtime.sessionmaker() as session:
            payment = await queries.get_by_checkout_id(
                session, account_id=auth.account_id, checkout_request_id=data.checkout_request_id
            )
        return {"success": True, "data": _payment(payment)}

    @app.post("/mpesa/validate-phone")
    async def validate_phone(data: PhoneIn, _auth: Auth) -> dict[str, Any]:
        result = check_phone(data.phone)
        provider = "mpesa" if result.valid else result.network
        checked = {
            "original": result.original,
            "normalized": result.normalized,
            "valid": result.valid,
            "provider": provider,
        }
        return {"success": True, "data": checked}

    @app.post("/webhooks/register", status_code=201)
    async def register_webhook(data: WebhookIn, auth: Auth) -> dict[str, Any]:
        require_write(auth)
        async with transaction(runtime.sessionmaker) as session:
            created = await webhooks.create_endpoint(
                session, secret_key=settings.secret_key, account_id=auth.account_id,
                environment=auth.environment, url=data.url, event_types=data.events,
                description="PayNexus webhook", style=DIALECT,
                allow_private=webhooks.allow_private_urls(
                    auth.environment, settings.sandbox_allow_private_urls
                ),
            )  # fmt: skip
        endpoint = created.endpoint
        return {"success": True, "data": {"id": endpoint.id, "url": endpoint.url,
                "events": endpoint.event_types or ["*"], "secret": created.secret,
                "signature_header": SIGNATURE_HEADER}}  # fmt: skip

    # Every error a route can answer, in the document, in the vendor's shape.
    declare_problems(
        app.router, auth=(api_key_auth,), write=(api_key_auth,),
        media_type="application/json", schema=VENDOR_ERROR_SCHEMA,
    )  # fmt: skip
    return app
