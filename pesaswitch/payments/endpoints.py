"""Native v1 payment endpoints. Reads use read-only sessions (``db.read_sessions``): on
SQLite they no longer queue for the write lock behind payments being created."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query
from fastapi.responses import JSONResponse

from pesaswitch.accounts.dependencies import ReadAuth, WriteAuth
from pesaswitch.db import read_sessions
from pesaswitch.errors import PROBLEM_JSON
from pesaswitch.kit.clock import IsoDateTime
from pesaswitch.kit.openapi import problem_responses
from pesaswitch.kit.pagination import Page, PageParams, make_page, page_params
from pesaswitch.kit.phones import check_phone
from pesaswitch.payments import service
from pesaswitch.payments.initiate import initiate_payment
from pesaswitch.payments.schemas import (
    PaymentCreate,
    PaymentFilters,
    PaymentOut,
    PhoneValidateIn,
    PhoneValidateOut,
)
from pesaswitch.protection.idempotency import StoredResponse
from pesaswitch.refunds import service as refunds
from pesaswitch.refunds.schemas import PaymentDetailOut
from pesaswitch.runtime import RuntimeDep

router = APIRouter(prefix="/v1", tags=["payments"])


@router.post(
    "/payments",
    status_code=201,
    response_model=PaymentOut,
    # The rest (auth, body, parameters) is derived: kit/openapi.py.
    responses=problem_responses(404, 409, 429, 502, 503),
    summary="Send an STK Push prompt to the customer's phone",
)
async def create_payment(
    data: PaymentCreate,
    runtime: RuntimeDep,
    auth: WriteAuth,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> JSONResponse:
    response = await initiate_payment(
        runtime, auth=auth, data=data, idempotency_key=idempotency_key
    )
    return initiation_answer(response)


def initiation_answer(response: StoredResponse) -> JSONResponse:
    """The initiation's response (or the one stored for its Idempotency-Key) as sent."""
    media_type = "application/json" if response.status_code < 400 else PROBLEM_JSON
    return JSONResponse(response.body, status_code=response.status_code, media_type=media_type)


@router.get("/payments/{payment_id}", response_model=PaymentDetailOut)
async def read_payment(payment_id: str, runtime: RuntimeDep, auth: ReadAuth) -> PaymentDetailOut:
    async with read_sessions(runtime.sessionmaker)() as session:
        payment = await service.get_payment(
            session, account_id=auth.account_id, payment_id=payment_id
        )
        # With its refunds and reversal (refunds/service.py).
        return await refunds.payment_detail(session, payment=payment)


@router.get("/payments", response_model=Page[PaymentOut])
async def list_payments(
    runtime: RuntimeDep,
    auth: ReadAuth,
    page: Annotated[PageParams, Depends(page_params)],
    status: Annotated[str | None, Query(max_length=20)] = None,
    phone: Annotated[str | None, Query(max_length=32)] = None,
    reference: Annotated[str | None, Query(max_length=100)] = None,
    created_after: IsoDateTime | None = None,
    created_before: IsoDateTime | None = None,
) -> Page[PaymentOut]:
    filters = PaymentFilters(
        status=status,
        phone=phone,
        reference=reference,
        created_after=created_after,
        created_before=created_before,
    )
    async with read_sessions(runtime.sessionmaker)() as session:
        rows = await service.list_payments(
            session, account_id=auth.account_id, filters=filters, page=page
        )
        return make_page(
            [PaymentOut.render(p) for p in rows], limit=page.limit, cursor_of=lambda p: p.id
        )


@router.post("/phone-numbers/validate", response_model=PhoneValidateOut, tags=["phones"])
async def validate_phone(data: PhoneValidateIn, _auth: ReadAuth) -> PhoneValidateOut:
    result = check_phone(data.phone)
    return PhoneValidateOut(
        original=result.original,
        normalized=result.normalized,
        valid=result.valid,
        network=result.network,
    )
