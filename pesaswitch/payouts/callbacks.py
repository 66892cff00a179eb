"""Where Daraja posts B2C Results, queue timeouts and Transaction Status Results.

Each URL carries the payout's unguessable token; the body is stored before it is acted
on, and the answer is always a quick 200 for a body we could read.
"""

from __future__ import annotations

import json

import structlog
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from pesaswitch.daraja.b2c_results import (
    parse_b2c_result,
    parse_queue_timeout,
    parse_transaction_status_result,
)
from pesaswitch.daraja.result_codes import Outcome
from pesaswitch.daraja.wire import MalformedCallback
from pesaswitch.db import transaction
from pesaswitch.errors import BadRequest, NotFound, PayloadTooLarge
from pesaswitch.payouts import service
from pesaswitch.runtime import RuntimeDep

log = structlog.get_logger(__name__)

router = APIRouter(prefix="/daraja/b2c", include_in_schema=False)

MAX_BYTES = 32 * 1024
ACCEPTED = {"ResultCode": 0, "ResultDesc": "Accepted"}


async def _read(request: Request) -> str:
    raw = await request.body()
    if len(raw) > MAX_BYTES:
        raise PayloadTooLarge()
    return raw.decode("utf-8", errors="replace")


@router.post("/result/{token}")
async def b2c_result(token: str, request: Request, runtime: RuntimeDep) -> JSONResponse:
    text = await _read(request)
    async with transaction(runtime.sessionmaker) as session:
        payout = await service.find_by_token(session, token=token[:64])
        if payout is None:
            raise NotFound("Unknown callback")
        try:
            result = parse_b2c_result(json.loads(text))
        except (ValueError, MalformedCallback) as exc:
            await service.store_callback(
                session, payout_id=payout.id, kind="result", body=text, outcome="invalid"
            )
            error = BadRequest(f"Not a valid B2C Result: {exc}")
        else:
            mismatch = result.originator_conversation_id not in (
                None, "", payout.originator_conversation_id,
            )  # fmt: skip
            applied = not mismatch and await service.finish(
                session, payout=payout, succeeded=result.outcome is Outcome.COMPLETED,
                result_code=result.result_code, result_desc=result.result_desc,
                transaction_id=result.transaction_id, source="callback",
            )  # fmt: skip
            outcome = "mismatch" if mismatch else ("applied" if applied else "duplicate")
            await service.store_callback(
                session, payout_id=payout.id, kind="result", body=text, outcome=outcome
            )
            return JSONResponse(ACCEPTED)
    raise error


@router.post("/timeout/{token}")
async def queue_timeout(token: str, request: Request, runtime: RuntimeDep) -> JSONResponse:
    """The request expired in Daraja's queue: whether it ran is for Transaction Status."""
    text = await _read(request)
    async with transaction(runtime.sessionmaker) as session:
        payout = await service.find_by_token(session, token=token[:64])
        if payout is None:
            raise NotFound("Unknown callback")
        try:
            parse_queue_timeout(json.loads(text))
            outcome = "timeout"
        except (ValueError, MalformedCallback):
            outcome = "invalid"
        await service.store_callback(
            session, payout_id=payout.id, kind="timeout", body=text, outcome=outcome
        )
        await service.query_soon(session, payout_id=payout.id)
    return JSONResponse(ACCEPTED)


@router.post("/status/{token}")
async def status_result(token: str, request: Request, runtime: RuntimeDep) -> JSONResponse:
    text = await _read(request)
    async with transaction(runtime.sessionmaker) as session:
        payout = await service.find_by_token(session, token=token[:64])
        if payout is None:
            raise NotFound("Unknown callback")
        try:
            result = parse_transaction_status_result(json.loads(text))
        except (ValueError, MalformedCallback) as exc:
            await service.store_callback(
                session, payout_id=payout.id, kind="status", body=text, outcome="invalid"
            )
            error = BadRequest(f"Not a valid Transaction Status Result: {exc}")
        else:
            outcome = "pending"
            if result.outcome is not Outcome.PENDING:
                applied = await service.finish(
                    session, payout=payout, succeeded=result.outcome is Outcome.COMPLETED,
                    result_code=result.result_code, result_desc=result.result_desc,
                    transaction_id=result.receipt, source="query",
                )  # fmt: skip
                outcome = "applied" if applied else "duplicate"
            await service.store_callback(
                session, payout_id=payout.id, kind="status", body=text, outcome=outcome
            )
            return JSONResponse(ACCEPTED)
    raise error
