"""Native v1 payout endpoints."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header
from fastapi.responses import JSONResponse

from pesaswitch.accounts.dependencies import ReadAuth, WriteAuth
from pesaswitch.errors import PROBLEM_JSON
from pesaswitch.kit.openapi import problem_responses
from pesaswitch.kit.pagination import Page, PageParams, make_page, page_params
from pesaswitch.payouts import service
from pesaswitch.payouts.initiate import initiate_payout
from pesaswitch.payouts.schemas import PayoutCreate, PayoutOut
from pesaswitch.runtime import RuntimeDep

router = APIRouter(prefix="/v1", tags=["payouts"])


@router.post(
    "/payouts",
    status_code=201,
    response_model=PayoutOut,
    # The rest (auth, body, parameters) is derived: kit/openapi.py.
    responses=problem_responses(404, 409, 502, 503),
    summary="Send money from the wallet to an M-Pesa number (B2C)",
)
async def create_payout(
    data: PayoutCreate,
    runtime: RuntimeDep,
    auth: WriteAuth,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> JSONResponse:
    response = await initiate_payout(runtime, auth=auth, data=data, idempotency_key=idempotency_key)
    media_type = "application/json" if response.status_code < 400 else PROBLEM_JSON
    return JSONResponse(response.body, status_code=response.status_code, media_type=media_type)


@router.get("/payouts/{payout_id}", response_model=PayoutOut)
async def read_payout(payout_id: str, runtime: RuntimeDep, auth: ReadAuth) -> PayoutOut:
    async with runtime.sessionmaker() as session:
        payout = await service.get_payout(session, account_id=auth.account_id, payout_id=payout_id)
        return PayoutOut.render(payout)


@router.get("/payouts", response_model=Page[PayoutOut])
async def list_payouts(
    runtime: RuntimeDep, auth: ReadAuth, page: Annotated[PageParams, Depends(page_params)]
) -> Page[PayoutOut]:
    async with runtime.sessionmaker() as session:
        rows = await service.list_payouts(session, account_id=auth.account_id, page=page)
        return make_page(
            [PayoutOut.render(p) for p in rows], limit=page.limit, cursor_of=lambda p: p.id
        )
