"""The hosted payment page, ``/pay/{slug}``: a customer enters a phone number, gets the
STK prompt, and the page follows the payment to its end.

It works without JavaScript (plain forms, and a meta refresh while the payment is
pending); with JavaScript, a small script polls a JSON status instead of reloading.
The status page is addressed by the payment id plus an HMAC of it, so nobody can read
another customer's payment by changing the id in the URL.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response

from pesaswitch.dashboard import security
from pesaswitch.dashboard.web import anonymous_form, checked_anonymous_form, field, render
from pesaswitch.db import read_sessions
from pesaswitch.errors import NotFound, PesaswitchError
from pesaswitch.kit import crypto
from pesaswitch.kit.ids import new_token
from pesaswitch.links import service as links
from pesaswitch.links.models import PaymentLink
from pesaswitch.payments import service as payments
from pesaswitch.payments.initiate import initiate_payment
from pesaswitch.payments.models import Payment, PaymentStatus
from pesaswitch.payments.schemas import PaymentCreate
from pesaswitch.runtime import Runtime, RuntimeDep

router = APIRouter(prefix="/pay", include_in_schema=False)

# What a customer is told, by Daraja's ResultCode, when the payment did not go through.
CUSTOMER_MESSAGES = {
    "1": "Your M-Pesa balance was not enough for this payment.",
    "1032": "The payment was cancelled on the phone.",
    "1037": "The prompt timed out before a PIN was entered.",
    "2001": "The M-Pesa PIN was wrong.",
    "17": "M-Pesa refused a repeat of the same amount so soon; wait two minutes.",
}


def _status_mac(runtime: Runtime, payment_id: str) -> str:
    return security.mac(runtime.settings.secret_key, "pay-status", payment_id)[:32]


def _status_path(runtime: Runtime, slug: str, payment_id: str) -> str:
    return f"/pay/{slug}/payments/{payment_id}?t={_status_mac(runtime, payment_id)}"


def _form(request: Request, runtime: Runtime, link: PaymentLink, merchant: str, *,
          error: str | None = None, phone: str = "", amount: str = "",
          status_code: int = 200) -> Response:  # fmt: skip
    return anonymous_form(
        request, runtime, "pay.html", status_code=status_code, link=link, merchant=merchant,
        error=error, phone=phone, amount=amount, nonce=new_token(12),
    )  # fmt: skip


@router.get("/{slug}")
async def pay_page(slug: str, request: Request, runtime: RuntimeDep) -> Response:
    async with read_sessions(runtime.sessionmaker)() as session:
        link, account = await links.open_link(session, slug=slug[:32])
    return _form(request, runtime, link, account.name)


@router.post("/{slug}")
async def pay(slug: str, request: Request, runtime: RuntimeDep) -> Response:
    async with read_sessions(runtime.sessionmaker)() as session:
        link, account = await links.open_link(session, slug=slug[:32])
    form = await checked_anonymous_form(request, runtime)
    phone, raw_amount = field(form, "phone", 32), field(form, "amount", 12)
    nonce = field(form, "nonce", 32)

    def again(message: str, status_code: int = 422) -> Response:
        return _form(request, runtime, link, account.name, error=message, phone=phone,
                     amount=raw_amount, status_code=status_code)  # fmt: skip

    if link.amount is not None:
        amount = link.amount
    elif raw_amount.isdigit():
        amount = int(raw_amount)
    else:
        return again("Enter the amount in whole shillings")
    if not phone:
        return again("Enter your M-Pesa phone number")
    data = PaymentCreate(
        amount=amount, phone=phone, channel_id=link.channel_id,
        description=link.description, metadata={"payment_link": link.id},
    )  # fmt: skip
    try:
        # The form's nonce is the Idempotency-Key: a double click or a resubmitted form
        # shows the same payment instead of sending a second prompt.
        stored = await initiate_payment(
            runtime, auth=links.link_auth(link, account), data=data,
            idempotency_key=f"paylink-{link.id}-{nonce}" if nonce else None, dialect="link",
        )  # fmt: skip
    except PesaswitchError as exc:
        if exc.status_code >= 500 and exc.status_code not in (502, 503):
            raise
        return again(exc.detail, exc.status_code)
    body: dict[str, Any] = stored.body
    payment_id = body.get("id") or (body.get("payment") or {}).get("id")
    if payment_id is None:
        return again(str(body.get("detail", "The payment could not be started")))
    return RedirectResponse(_status_path(runtime, link.slug, payment_id), status_code=303)


async def _payment(runtime: Runtime, slug: str, payment_id: str, mac: str) -> Payment:
    if not crypto.secrets_equal(mac, _status_mac(runtime, payment_id)):
        raise NotFound("No such payment")
    async with read_sessions(runtime.sessionmaker)() as session:
        link, _account = await links.open_link(session, slug=slug[:32])
        payment = await payments.get_payment(
            session, account_id=link.account_id, payment_id=payment_id
        )
    return payment


def customer_message(payment: Payment) -> str:
    if payment.status == PaymentStatus.COMPLETED.value:
        return "Payment received. Thank you!"
    if payment.status == PaymentStatus.PENDING.value:
        return "Check your phone and enter your M-Pesa PIN to pay."
    return CUSTOMER_MESSAGES.get(payment.result_code or "", payment.result_desc or "Not paid.")


Mac = Annotated[str, Query(alias="t", max_length=64)]


@router.get("/{slug}/payments/{payment_id}")
async def payment_status(
    slug: str, payment_id: str, request: Request, runtime: RuntimeDep, t: Mac = ""
) -> Response:
    payment = await _payment(runtime, slug, payment_id, t)
    poll_url = f"/pay/{slug}/payments/{payment.id}/status?t={t}"
    return render(
        request, "pay_status.html", payment=payment, slug=slug,
        message=customer_message(payment), poll_url=poll_url,
    )  # fmt: skip


@router.get("/{slug}/payments/{payment_id}/status")
async def payment_status_json(
    slug: str, payment_id: str, runtime: RuntimeDep, t: Mac = ""
) -> JSONResponse:
    payment = await _payment(runtime, slug, payment_id, t)
    return JSONResponse(
        {"status": payment.status, "message": customer_message(payment)},
        headers={"Cache-Control": "no-store"},
    )
