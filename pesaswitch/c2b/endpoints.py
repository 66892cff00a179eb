"""Where Daraja posts C2B validations and confirmations, and the native API for a
channel's C2B settings, registration and sweep.

Daraja's side answers in Daraja's shape (``{"ResultCode", "ResultDesc"}``), 4xx when
the notification is refused: an unknown token (404), an unreadable body or a shortcode
the token does not own (400). Every notification is recorded, refused ones included.
"""

from __future__ import annotations

import json
from typing import Any, Literal

import structlog
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from pesaswitch.accounts import service as accounts
from pesaswitch.accounts.dependencies import ReadAuth, WriteAuth
from pesaswitch.accounts.models import Environment
from pesaswitch.c2b import confirmations, flows, service
from pesaswitch.c2b.models import NotificationKind
from pesaswitch.c2b.schemas import C2BSettingsIn, C2BSettingsOut, C2BSweepOut
from pesaswitch.c2b.validation import decide
from pesaswitch.daraja.b2c_results import parse_transaction_status_result
from pesaswitch.daraja.c2b import (
    CONFIRMATION_REPLY,
    ValidationCode,
    confirmation_refusal,
    parse_c2b_notice,
    validation_reply,
)
from pesaswitch.daraja.wire import MalformedCallback
from pesaswitch.db import read_sessions, transaction
from pesaswitch.kit.clock import isoformat
from pesaswitch.kit.openapi import problem_responses
from pesaswitch.runtime import Runtime, RuntimeDep
from pesaswitch.webhooks.service import allow_private_urls
from pesaswitch.webhooks.ssrf import check_url

log = structlog.get_logger(__name__)

daraja_router = APIRouter(prefix="/daraja/c2b", include_in_schema=False)
router = APIRouter(prefix="/v1", tags=["c2b"])

MAX_BYTES = 16 * 1024


async def _record(runtime: Runtime, **values: Any) -> None:
    async with transaction(runtime.sessionmaker) as session:
        await service.record_notification(session, **values)


async def _receive(
    runtime: Runtime, request: Request, token: str, kind: NotificationKind
) -> tuple[Any, str, str | None] | JSONResponse:
    """The registration and the body, or the refusal (already recorded)."""
    refuse = validation_reply if kind is NotificationKind.VALIDATION else confirmation_refusal
    raw = await request.body()
    source_ip = request.client.host if request.client else None
    text = raw[:MAX_BYTES].decode("utf-8", errors="replace")
    async with runtime.sessionmaker() as session:
        registration = await service.find_by_token(session, token=token)
    if registration is None:
        await _record(runtime, kind=kind, body=text, outcome="unknown_token", source_ip=source_ip)
        log.warning("c2b.unknown_token", kind=kind.value, source_ip=source_ip)
        return JSONResponse(refuse(ValidationCode.INVALID_SHORTCODE), status_code=404)
    if len(raw) > MAX_BYTES:
        await _record(runtime, kind=kind, body=text, outcome="invalid",
                      registration=registration, source_ip=source_ip)  # fmt: skip
        return JSONResponse(refuse(ValidationCode.OTHER), status_code=413)
    return registration, text, source_ip


@daraja_router.post("/{token}/validation")
async def validation(token: str, request: Request, runtime: RuntimeDep) -> JSONResponse:
    received = await _receive(runtime, request, token, NotificationKind.VALIDATION)
    if isinstance(received, JSONResponse):
        return received
    registration, text, source_ip = received
    kind = NotificationKind.VALIDATION
    try:
        notice = parse_c2b_notice(json.loads(text), confirmation=False)
    except (ValueError, MalformedCallback) as exc:
        await _record(runtime, kind=kind, body=text, outcome="invalid",
                      registration=registration, source_ip=source_ip)  # fmt: skip
        log.warning("c2b.validation.invalid", channel_id=registration.channel_id, error=str(exc))
        return JSONResponse(validation_reply(ValidationCode.OTHER), status_code=400)
    if notice.shortcode != registration.shortcode:
        code, outcome = ValidationCode.INVALID_SHORTCODE, "unknown_shortcode"
    else:
        code = await decide(runtime, registration, notice)
        outcome = "accepted" if code is ValidationCode.ACCEPTED else "rejected"
    await _record(runtime, kind=kind, body=text, outcome=outcome, registration=registration,
                  trans_id=notice.trans_id, result_code=code.value,
                  source_ip=source_ip)  # fmt: skip
    return JSONResponse(validation_reply(code))


@daraja_router.post("/{token}/confirmation")
async def confirmation(token: str, request: Request, runtime: RuntimeDep) -> JSONResponse:
    received = await _receive(runtime, request, token, NotificationKind.CONFIRMATION)
    if isinstance(received, JSONResponse):
        return received
    registration, text, source_ip = received
    kind = NotificationKind.CONFIRMATION
    try:
        notice = parse_c2b_notice(json.loads(text), confirmation=True)
    except (ValueError, MalformedCallback) as exc:
        await _record(runtime, kind=kind, body=text, outcome="invalid",
                      registration=registration, source_ip=source_ip)  # fmt: skip
        log.warning("c2b.confirmation.invalid", channel_id=registration.channel_id,
                    error=str(exc))  # fmt: skip
        return JSONResponse(confirmation_refusal(ValidationCode.OTHER), status_code=400)
    if notice.shortcode != registration.shortcode:
        await _record(runtime, kind=kind, body=text, outcome="unknown_shortcode",
                      registration=registration, trans_id=notice.trans_id,
                      source_ip=source_ip)  # fmt: skip
        return JSONResponse(confirmation_refusal(ValidationCode.INVALID_SHORTCODE), 400)
    async with transaction(runtime.sessionmaker) as session:
        outcome = await confirmations.record_confirmation(
            session, registration=registration, notice=notice, source="confirmation"
        )
        await service.record_notification(
            session, kind=kind, body=text, outcome=outcome, registration=registration,
            trans_id=notice.trans_id, source_ip=source_ip,
        )  # fmt: skip
    return JSONResponse(CONFIRMATION_REPLY)


@daraja_router.post("/{token}/status")
async def status_result(token: str, request: Request, runtime: RuntimeDep) -> JSONResponse:
    """Transaction Status of a receipt asked about by ``POST …/c2b/recover``."""
    received = await _receive(runtime, request, token, NotificationKind.STATUS)
    if isinstance(received, JSONResponse):
        return received
    registration, text, source_ip = received
    kind = NotificationKind.STATUS
    try:
        result = parse_transaction_status_result(json.loads(text))
    except (ValueError, MalformedCallback):
        await _record(runtime, kind=kind, body=text, outcome="invalid",
                      registration=registration, source_ip=source_ip)  # fmt: skip
        return JSONResponse(confirmation_refusal(ValidationCode.OTHER), status_code=400)
    notice = flows.notice_from_status(registration, result)
    async with transaction(runtime.sessionmaker) as session:
        outcome = "not_found"
        if notice is not None:
            outcome = await confirmations.record_confirmation(
                session, registration=registration, notice=notice, source="status"
            )
        await service.record_notification(
            session, kind=kind, body=text, outcome=outcome, registration=registration,
            trans_id=result.receipt, result_code=result.result_code[:10], source_ip=source_ip,
        )  # fmt: skip
    return JSONResponse(CONFIRMATION_REPLY)


@daraja_router.post("/{token}/status-timeout")
async def status_timeout(token: str, request: Request, runtime: RuntimeDep) -> JSONResponse:
    received = await _receive(runtime, request, token, NotificationKind.STATUS)
    if isinstance(received, JSONResponse):
        return received
    registration, text, source_ip = received
    await _record(runtime, kind=NotificationKind.STATUS, body=text, outcome="timeout",
                  registration=registration, source_ip=source_ip)  # fmt: skip
    return JSONResponse(CONFIRMATION_REPLY)


# --- native API --------------------------------------------------------------------


@router.get("/channels/{channel_id}/c2b", response_model=C2BSettingsOut)
async def read_settings(channel_id: int, runtime: RuntimeDep, auth: ReadAuth) -> C2BSettingsOut:
    async with read_sessions(runtime.sessionmaker)() as session:
        row = await service.get_registration(
            session, account_id=auth.account_id, channel_id=channel_id
        )
        return C2BSettingsOut.render(row)


@router.put(
    "/channels/{channel_id}/c2b",
    response_model=C2BSettingsOut,
    responses=problem_responses(409),
    summary="Set a channel's C2B validation rules",
    description="On the gateway's own paybill (a wallet channel) only after the operator "
    "has given its C2B to this channel: else 403 `c2b_shared_shortcode`.",
)
async def put_settings(
    channel_id: int, data: C2BSettingsIn, runtime: RuntimeDep, auth: WriteAuth
) -> C2BSettingsOut:
    settings = runtime.settings
    if data.validation_url is not None:
        await check_url(
            data.validation_url,
            allow_private=allow_private_urls(auth.environment, settings.sandbox_allow_private_urls),
            require_https=auth.environment is Environment.LIVE,
        )
    async with transaction(runtime.sessionmaker) as session:
        channel = await accounts.resolve_channel(
            session, account_id=auth.account_id, channel_id=channel_id
        )
        row = await service.configure(
            session, channel=channel, data=data, gateway_shortcode=settings.daraja_shortcode,
            reserved=(settings.daraja_b2c_shortcode,),
        )  # fmt: skip
        return C2BSettingsOut.render(row)


@router.post(
    "/channels/{channel_id}/c2b/register",
    response_model=C2BSettingsOut,
    responses=problem_responses(409, 503),
    summary="Register the channel's C2B URLs with Daraja",
    description="On the gateway's own paybill (a wallet channel) only after the operator "
    "has given its C2B to this channel: else 403 `c2b_shared_shortcode`.",
)
async def register(channel_id: int, runtime: RuntimeDep, auth: WriteAuth) -> C2BSettingsOut:
    row = await flows.register_channel(runtime, account_id=auth.account_id, channel_id=channel_id)
    return C2BSettingsOut.render(row)


@router.post(
    "/channels/{channel_id}/c2b/sweep",
    response_model=C2BSweepOut,
    responses=problem_responses(503),
    summary="Find C2B payments whose confirmation never arrived (Pull Transactions)",
)
async def sweep(channel_id: int, runtime: RuntimeDep, auth: WriteAuth) -> C2BSweepOut:
    result = await flows.sweep_channel(runtime, account_id=auth.account_id, channel_id=channel_id)
    return C2BSweepOut(channel_id=result.channel_id, seen=result.seen, recovered=result.recovered)


class C2BRecoverIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    receipt: str = Field(min_length=1, max_length=20, description="The M-Pesa receipt (TransID).")


class C2BRecoveryOut(BaseModel):
    object: Literal["c2b_recovery"] = "c2b_recovery"
    receipt: str
    status: str = Field(description="known: already recorded; asked: Daraja will answer.")
    payment_id: str | None


@router.post(
    "/channels/{channel_id}/c2b/recover",
    response_model=C2BRecoveryOut,
    status_code=202,
    responses=problem_responses(503),
    summary="Look a missed C2B payment up by its receipt (Transaction Status)",
)
async def recover(
    channel_id: int, data: C2BRecoverIn, runtime: RuntimeDep, auth: WriteAuth
) -> C2BRecoveryOut:
    result = await flows.recover_by_receipt(
        runtime, account_id=auth.account_id, channel_id=channel_id, receipt=data.receipt
    )
    return C2BRecoveryOut(receipt=data.receipt.strip().upper(), status=result.status,
                      payment_id=result.payment_id)  # fmt: skip


class C2BNotificationOut(BaseModel):
    id: int
    kind: str
    channel_id: int | None
    trans_id: str | None
    outcome: str
    result_code: str | None
    received_at: str | None


@router.get("/c2b/notifications", response_model=list[C2BNotificationOut])
async def notifications(runtime: RuntimeDep, auth: ReadAuth) -> list[C2BNotificationOut]:
    async with read_sessions(runtime.sessionmaker)() as session:
        rows = await service.list_notifications(session, account_id=auth.account_id)
        return [
            C2BNotificationOut(
                id=r.id,
                kind=r.kind,
                channel_id=r.channel_id,
                trans_id=r.trans_id,
                outcome=r.outcome,
                result_code=r.result_code,
                received_at=isoformat(r.received_at),
            )
            for r in rows
        ]
