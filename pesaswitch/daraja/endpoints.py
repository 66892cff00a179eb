"""Where Daraja calls back. Callbacks are unsigned and sent once (daraja.md §3), so:
an unguessable per-payment token in the URL, the raw body stored in the transaction that
acts on it (before the event and the ledger entry), and an answer that is quick and
always 200 for a callback we could read.
"""

from __future__ import annotations

import json

import structlog
from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import IntegrityError
from starlette.routing import Route

from pesaswitch.daraja.wire import MalformedCallback, parse_stk_callback
from pesaswitch.db import retry_on_conflict, transaction
from pesaswitch.errors import BadRequest, NotFound, PayloadTooLarge
from pesaswitch.kit.nul import nul_in_path
from pesaswitch.payments import callbacks, duplicates, service
from pesaswitch.payments.service import ApplyResult
from pesaswitch.runtime import get_runtime

log = structlog.get_logger(__name__)

MAX_CALLBACK_BYTES = 32 * 1024
ACCEPTED = {"ResultCode": 0, "ResultDesc": "Accepted"}


async def stk_callback(request: Request) -> JSONResponse:
    """POST /daraja/stk/{token}, as a plain Starlette route (``STK_CALLBACK_ROUTE``): it
    reads its own body and takes nothing FastAPI resolves, and every payment makes this
    request, so it skips FastAPI's dependency solving and the route table's scan (0.24 ms
    of the gateway's CPU per payment on average over five pairs, bench/issue-11-rounds.md,
    eighth round). It refuses a NUL in the token as the app's ``refuse_nul`` dependency
    would, in the same 422."""
    if errors := nul_in_path(request):
        raise RequestValidationError(errors)
    token: str = request.path_params["token"]
    runtime = get_runtime(request)
    raw = await request.body()
    if len(raw) > MAX_CALLBACK_BYTES:
        raise PayloadTooLarge()
    source_ip = request.client.host if request.client else None
    text = raw.decode("utf-8", errors="replace")
    try:
        result = parse_stk_callback(json.loads(text))
    except (ValueError, MalformedCallback) as exc:
        async with transaction(runtime.sessionmaker) as session:
            payment = await service.find_by_callback_token(session, token=token[:64])
            if payment is None:
                raise NotFound("Unknown callback") from exc
            await service.store_callback(
                session, payment_id=payment.id, body=text, source_ip=source_ip, outcome="invalid"
            )
        log.warning("daraja.callback.invalid", payment_id=payment.id, error=str(exc))
        # Raised after the transaction so the invalid body stays recorded.
        raise BadRequest(f"Not a valid STK callback: {exc}") from exc

    async def apply() -> ApplyResult | None:
        try:
            settled = await callbacks.settle_without_transaction(
                runtime.sessionmaker, token=token[:64], result=result, body=text,
                source_ip=source_ip,
            )  # fmt: skip
            if settled is not None:
                return settled
            async with transaction(runtime.sessionmaker) as session:
                return await callbacks.apply_callback(
                    session, token=token[:64], result=result, body=text, source_ip=source_ip
                )
        except IntegrityError:
            # Another payment holds the receipt: the C2B echo of this payment, recorded
            # first (payments/duplicates.py). Decided afresh, in a transaction of its own.
            log.info("daraja.callback.receipt_held", receipt=result.receipt)
            async with transaction(runtime.sessionmaker) as session:
                return await duplicates.apply_held_receipt(
                    session, token=token[:64], result=result, body=text, source_ip=source_ip
                )

    # Daraja sends a callback once: one that lost a deadlock (PostgreSQL rolled it back,
    # found by the chaos run) is applied again here rather than left to the reconciler.
    applied = await retry_on_conflict(apply, what="stk_callback")
    if applied is None:
        raise NotFound("Unknown callback")
    return JSONResponse(ACCEPTED)


# Outside the schema, as Daraja's other callbacks are; first in the app's routes (app.py).
STK_CALLBACK_ROUTE = Route("/daraja/stk/{token}", stk_callback, methods=["POST"])
