"""Where Daraja posts reversal Results, queue timeouts and Transaction Status Results.

Each URL carries the reversal's unguessable token; the body is stored before it is acted
on, and the answer is a quick 200 for a body we could read (as ``payouts/callbacks.py``).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncSession

from pesaswitch.daraja.b2c_results import (
    TransactionStatusResult,
    parse_queue_timeout,
    parse_transaction_status_result,
)
from pesaswitch.daraja.result_codes import Outcome
from pesaswitch.daraja.reversal import ReversalResult, parse_reversal_result
from pesaswitch.daraja.wire import MalformedCallback
from pesaswitch.db import transaction
from pesaswitch.errors import BadRequest, NotFound, PayloadTooLarge
from pesaswitch.refunds import reversals
from pesaswitch.refunds.models import Reversal
from pesaswitch.refunds.reversals import Finish
from pesaswitch.runtime import Runtime, RuntimeDep

router = APIRouter(prefix="/daraja/reversal", include_in_schema=False)

MAX_BYTES = 32 * 1024
ACCEPTED = {"ResultCode": 0, "ResultDesc": "Accepted"}

Apply = Callable[[AsyncSession, Reversal, Any], Awaitable[str]]


async def _read(request: Request) -> str:
    raw = await request.body()
    if len(raw) > MAX_BYTES:
        raise PayloadTooLarge()
    return raw.decode("utf-8", errors="replace")


async def _receive(
    runtime: Runtime, token: str, text: str, kind: str,
    parse: Callable[[Any], Any], apply: Apply,
) -> JSONResponse:  # fmt: skip
    async with transaction(runtime.sessionmaker) as session:
        reversal = await reversals.find_by_token(session, token=token[:64])
        if reversal is None:
            raise NotFound("Unknown callback")
        try:
            parsed = parse(json.loads(text))
        except (ValueError, MalformedCallback) as exc:
            await reversals.store_callback(
                session, reversal_id=reversal.id, kind=kind, body=text, outcome="invalid"
            )
            error = BadRequest(f"Not a valid {kind} callback: {exc}")
        else:
            outcome = await apply(session, reversal, parsed)
            await reversals.store_callback(
                session, reversal_id=reversal.id, kind=kind, body=text, outcome=outcome
            )
            return JSONResponse(ACCEPTED)
    raise error  # after the transaction, so the unreadable body stays recorded


@router.post("/result/{token}")
async def reversal_result(token: str, request: Request, runtime: RuntimeDep) -> JSONResponse:
    async def apply(session: AsyncSession, reversal: Reversal, result: ReversalResult) -> str:
        if reversal.conversation_id and result.conversation_id != reversal.conversation_id:
            return "mismatch"
        succeeded = result.outcome is Outcome.COMPLETED
        applied = await reversals.finish(
            session, reversal=reversal,
            outcome=Finish(succeeded, result.result_code, result.result_desc,
                           result.transaction_id if succeeded else None, "callback"),
        )  # fmt: skip
        return "applied" if applied else "duplicate"

    text = await _read(request)
    return await _receive(runtime, token, text, "result", parse_reversal_result, apply)


@router.post("/timeout/{token}")
async def queue_timeout(token: str, request: Request, runtime: RuntimeDep) -> JSONResponse:
    """Expired in Daraja's queue: whether it ran is for Transaction Status to say."""

    async def apply(session: AsyncSession, reversal: Reversal, _timeout: Any) -> str:
        await reversals.query_soon(session, reversal_id=reversal.id)
        return "timeout"

    text = await _read(request)
    return await _receive(runtime, token, text, "timeout", parse_queue_timeout, apply)


@router.post("/status/{token}")
async def status_result(token: str, request: Request, runtime: RuntimeDep) -> JSONResponse:
    async def apply(
        session: AsyncSession, reversal: Reversal, result: TransactionStatusResult
    ) -> str:
        if result.outcome is Outcome.PENDING:
            return "pending"
        succeeded = result.outcome is Outcome.COMPLETED
        applied = await reversals.finish(
            session, reversal=reversal,
            outcome=Finish(succeeded, result.result_code, result.result_desc,
                           result.receipt if succeeded else None, "query"),
        )  # fmt: skip
        return "applied" if applied else "duplicate"

    text = await _read(request)
    return await _receive(runtime, token, text, "status", parse_transaction_status_result, apply)
