"""Native v1 refund and reversal endpoints."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header
from fastapi.responses import JSONResponse

from pesaswitch.accounts.dependencies import ReadAuth, WriteAuth
from pesaswitch.db import read_sessions
from pesaswitch.errors import PROBLEM_JSON
from pesaswitch.kit.openapi import problem_responses
from pesaswitch.protection.idempotency import StoredResponse
from pesaswitch.refunds import reversals, service
from pesaswitch.refunds.initiate import initiate_refund, initiate_reversal
from pesaswitch.refunds.schemas import RefundCreate, RefundOut, ReversalCreate, ReversalOut
from pesaswitch.runtime import RuntimeDep

router = APIRouter(prefix="/v1", tags=["refunds"])
# What only these routes answer; the rest (400, 401, 403, 404, 413, 422, 429) is derived
# by kit/openapi.declare_problems. 409: already reversed, not refundable or reversible,
# an Idempotency-Key in flight; 502/503: Daraja refused or could not be reached.
ERRORS = problem_responses(409, 502, 503)


def _json(response: StoredResponse) -> JSONResponse:
    media_type = "application/json" if response.status_code < 400 else PROBLEM_JSON
    return JSONResponse(response.body, status_code=response.status_code, media_type=media_type)


@router.post(
    "/payments/{payment_id}/refund", status_code=201, response_model=RefundOut,
    responses=ERRORS, summary="Pay all or part of a wallet payment back to the payer (B2C)",
)  # fmt: skip
async def create_refund(
    payment_id: str,
    data: RefundCreate,
    runtime: RuntimeDep,
    auth: WriteAuth,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> JSONResponse:
    return _json(
        await initiate_refund(
            runtime,
            auth=auth,
            payment_id=payment_id,
            data=data,
            idempotency_key=idempotency_key,
        )
    )


@router.post(
    "/payments/{payment_id}/reversal", status_code=201, response_model=ReversalOut,
    responses=ERRORS, summary="Reverse a wallet payment with M-Pesa's Transaction Reversal",
)  # fmt: skip
async def create_reversal(
    payment_id: str,
    runtime: RuntimeDep,
    auth: WriteAuth,
    data: ReversalCreate | None = None,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> JSONResponse:
    return _json(
        await initiate_reversal(
            runtime,
            auth=auth,
            payment_id=payment_id,
            data=data or ReversalCreate(),
            idempotency_key=idempotency_key,
        )
    )


@router.get("/refunds/{refund_id}", response_model=RefundOut)
async def read_refund(refund_id: str, runtime: RuntimeDep, auth: ReadAuth) -> RefundOut:
    async with read_sessions(runtime.sessionmaker)() as session:
        refund = await service.get_refund(session, account_id=auth.account_id, refund_id=refund_id)
        return RefundOut.render(refund)


@router.get("/reversals/{reversal_id}", response_model=ReversalOut)
async def read_reversal(reversal_id: str, runtime: RuntimeDep, auth: ReadAuth) -> ReversalOut:
    async with read_sessions(runtime.sessionmaker)() as session:
        reversal = await reversals.get_reversal(
            session, account_id=auth.account_id, reversal_id=reversal_id
        )
        return ReversalOut.render(reversal)
