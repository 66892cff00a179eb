"""Where Daraja posts B2C Results, queue timeouts and Transaction Status Results.

Each URL carries the payout's unguessable token; the body is stored before it is acted
on, and the answer is always a quick 200 for a body we could read.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncSession

from pesaswitch.daraja.b2c_results import (
    B2CResult,
    TransactionStatusResult,
    parse_b2c_result,
    parse_queue_timeout,
    parse_transaction_status_result,
)
from pesaswitch.daraja.result_codes import Outcome
from pesaswitch.daraja.wire import MalformedCallback
from pesaswitch.db import transaction
from pesaswitch.errors import BadRequest, NotFound, PayloadTooLarge
from pesaswitch.kit.clock import utcnow
from pesaswitch.payouts import service
from pesaswitch.payouts.models import Payout
from pesaswitch.runtime import Runtime, RuntimeDep

log = structlog.get_logger(__name__)

router = APIRouter(prefix="/daraja/b2c", include_in_schema=False)

MAX_BYTES = 32 * 1024
ACCEPTED = {"ResultCode": 0, "ResultDesc": "Accepted"}


async def _read(request: Request) -> str:
    raw = await request.body()
    if len(raw) > MAX_BYTES:
        raise PayloadTooLarge()
    return raw.decode("utf-8", errors="replace")


# Given the parsed body and the payout: what became of it (stored with the raw body).
Apply = Callable[[AsyncSession, Payout, Any], Awaitable[str]]


async def _receive(
    runtime: Runtime, token: str, text: str, kind: str,
    parse: Callable[[Any], Any], apply: Apply,
) -> JSONResponse:  # fmt: skip
    """Find the payout by its token, store the body, act on it; 400 (body kept) if unreadable."""
    async with transaction(runtime.sessionmaker) as session:
        payout = await service.find_by_token(session, token=token[:64])
        if payout is None:
            raise NotFound("Unknown callback")
        try:
            parsed = parse(json.loads(text))
        except (ValueError, MalformedCallback) as exc:
            await service.store_callback(
                session, payout_id=payout.id, kind=kind, body=text, outcome="invalid"
            )
            error = BadRequest(f"Not a valid {kind} callback: {exc}")
        else:
            outcome = await apply(session, payout, parsed)
            await service.store_callback(
                session, payout_id=payout.id, kind=kind, body=text, outcome=outcome
            )
            return JSONResponse(ACCEPTED)
    raise error  # after the transaction, so the unreadable body stays recorded


@router.post("/result/{token}")
async def b2c_result(token: str, request: Request, runtime: RuntimeDep) -> JSONResponse:
    async def apply(session: AsyncSession, payout: Payout, result: B2CResult) -> str:
        if result.originator_conversation_id not in (None, "", payout.originator_conversation_id):
            return "mismatch"
        applied = await service.finish(
            session, payout=payout, succeeded=result.outcome is Outcome.COMPLETED,
            result_code=result.result_code, result_desc=result.result_desc,
            transaction_id=result.transaction_id, source="callback",
        )  # fmt: skip
        return "applied" if applied else "duplicate"

    return await _receive(runtime, token, await _read(request), "result", parse_b2c_result, apply)


@router.post("/timeout/{token}")
async def queue_timeout(token: str, request: Request, runtime: RuntimeDep) -> JSONResponse:
    """The request expired in Daraja's queue: whether it ran is for Transaction Status."""

    async def apply(session: AsyncSession, payout: Payout, _timeout: Any) -> str:
        await service.query_soon(session, payout_id=payout.id)
        return "timeout"

    text = await _read(request)
    return await _receive(runtime, token, text, "timeout", parse_queue_timeout, apply)


@router.post("/status/{token}")
async def status_result(token: str, request: Request, runtime: RuntimeDep) -> JSONResponse:
    async def apply(session: AsyncSession, payout: Payout, result: TransactionStatusResult) -> str:
        if result.outcome is Outcome.PENDING:
            return "pending"
        age = (utcnow() - payout.created_at).total_seconds()
        if not result.found and age < runtime.settings.payout_not_found_grace:
            # Not heard of *yet*: failing it now would release funds a late Result may
            # still spend (found by the chaos run). The reconciler asks again.
            return "too_early"
        applied = await service.finish(
            session, payout=payout, succeeded=result.outcome is Outcome.COMPLETED,
            result_code=result.result_code, result_desc=result.result_desc,
            transaction_id=result.receipt, source="query",
        )  # fmt: skip
        return "applied" if applied else "duplicate"

    text = await _read(request)
    return await _receive(runtime, token, text, "status", parse_transaction_status_result, apply)
