"""PayHero and UpesiPay (the same API) under ``/api/v2``: only the base URL changes.

Auth is ``Basic base64(api_username:api_password)`` (a key's id and the secret key), or
``base64(sk_…:)``. Answers and callbacks follow the vendors' documented shapes.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Header, Path, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy.ext.asyncio import AsyncSession

from pesaswitch.accounts import service as accounts
from pesaswitch.accounts.models import Channel, ChannelKind
from pesaswitch.accounts.service import AuthContext
from pesaswitch.banks.paybills import bank_paybills
from pesaswitch.compat.common import basic_auth, install_vendor_errors, require_write
from pesaswitch.db import transaction
from pesaswitch.errors import PesaswitchError, ValidationFailed
from pesaswitch.kit.clock import isoformat
from pesaswitch.kit.ids import ROW_ID_MAX, new_reference
from pesaswitch.kit.nul import refuse_nul
from pesaswitch.kit.openapi import (
    VENDOR_ERROR_SCHEMA,
    declare_problems,
    parameters_without_null,
    vendor_responses,
)
from pesaswitch.kit.query import single_valued_query
from pesaswitch.ledger import service as ledger
from pesaswitch.payments import queries
from pesaswitch.payments.initiate import initiate_payment
from pesaswitch.payments.models import Payment, PaymentStatus
from pesaswitch.payments.schemas import PaymentCreate, PaymentOut
from pesaswitch.payouts.initiate import initiate_payout
from pesaswitch.payouts.schemas import PayoutCreate
from pesaswitch.runtime import Runtime
from pesaswitch.webhooks.formats import register_callback_format

DIALECT = "payhero"
MPESA_NETWORK = "63902"
PROVIDERS = {"m-pesa", "mpesa"}

STATUS = {
    PaymentStatus.PENDING.value: "QUEUED",
    PaymentStatus.COMPLETED.value: "SUCCESS",
}
CALLBACK_STATUS = {
    PaymentStatus.COMPLETED.value: "Success",
    PaymentStatus.CANCELLED.value: "Cancelled",
}

Auth = Annotated[AuthContext, Depends(basic_auth)]


def _error_body(message: str, code: str, payment: Any = None) -> dict[str, Any]:
    body: dict[str, Any] = {"success": False, "status": "FAILED", "message": message,
                            "error_code": code}  # fmt: skip
    if isinstance(payment, dict):
        body["reference"] = payment["gateway_reference"]
        body["CheckoutRequestID"] = payment["checkout_request_id"]
    return body


def _error(error: PesaswitchError) -> dict[str, Any]:
    return _error_body(error.detail, error.code, error.extra.get("payment"))


def whole_shillings(value: int | str) -> int | str:
    # PHP and JS clients send 10 or "10"; both mean whole shillings. 10.5 does not.
    if isinstance(value, str) and not value.strip().isdigit():
        raise ValueError("amount must be a whole number of shillings")
    return value


class PaymentIn(BaseModel):
    # Vendor clients send extra fields (network_code, …); unknown ones are ignored.
    model_config = ConfigDict(extra="ignore")

    amount: int | str
    phone_number: str = Field(min_length=1, max_length=32)
    channel_id: int | None = Field(default=None, ge=1, le=ROW_ID_MAX)
    provider: str = "m-pesa"
    external_reference: str | None = Field(default=None, max_length=100)
    customer_name: str | None = Field(default=None, max_length=200)
    callback_url: str | None = Field(default=None, max_length=2000)
    credential_id: int | str | None = None

    @field_validator("amount")
    @classmethod
    def _whole(cls, value: int | str) -> int | str:
        return whole_shillings(value)


class WithdrawIn(BaseModel):
    model_config = ConfigDict(extra="ignore")

    amount: int | str
    phone_number: str = Field(min_length=1, max_length=32)
    network_code: str | None = None
    channel: str = "mobile"
    external_reference: str | None = Field(default=None, max_length=100)
    description: str | None = Field(default=None, max_length=500)
    callback_url: str | None = Field(default=None, max_length=2000)

    @field_validator("amount")
    @classmethod
    def _whole(cls, value: int | str) -> int | str:
        return whole_shillings(value)


class ChannelIn(BaseModel):
    model_config = ConfigDict(extra="ignore")

    channel_type: str
    short_code: str = Field(min_length=1, max_length=10)
    account_number: str | None = Field(default=None, max_length=40)
    description: str = Field(default="", max_length=200)


def _credential_id(value: int | str | None) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, int) or value.isdigit():
        return int(value)
    raise ValidationFailed("credential_id must be the numeric id of a registered credential")


def _status(payment: dict[str, Any]) -> str:
    return STATUS.get(payment["status"], "FAILED")


def _phone_plus(phone: str) -> str:
    return f"+{phone}"


def _external_reference(payment: dict[str, Any]) -> str:
    reference = str(payment["reference"])
    return "" if reference == payment["gateway_reference"] else reference


def _result_code(code: str | None) -> int | str | None:
    if code is None:
        return None
    return int(code) if code.lstrip("-").isdigit() else code


def render_callback(_event_type: str, payment: dict[str, Any]) -> str:
    """The seed's callback: ``{forward_url, response: {…}, status}``."""
    body = {
        "forward_url": "",
        "response": {
            "Amount": payment["amount"],
            "CheckoutRequestID": payment["checkout_request_id"],
            "ExternalReference": _external_reference(payment),
            "MerchantRequestID": payment["merchant_request_id"],
            "MpesaReceiptNumber": payment["mpesa_receipt"] or "",
            "Phone": _phone_plus(payment["phone"]),
            "ResultCode": _result_code(payment["result_code"]),
            "ResultDesc": payment["result_desc"] or "",
            "Status": CALLBACK_STATUS.get(payment["status"], "Failed"),
        },
        "status": payment["status"] == PaymentStatus.COMPLETED.value,
    }
    return json.dumps(body)


register_callback_format(DIALECT, render_callback)


def _transaction(payment: Payment) -> dict[str, Any]:
    rendered = PaymentOut.render(payment).model_dump()
    return {
        "id": payment.id,
        "reference": payment.reference,
        "transaction_type": "payment",
        "amount": payment.amount,
        "cost": 0,
        "status": _status(rendered),
        "phone_number": payment.phone,
        "external_reference": payment.external_reference,
        "provider_reference": payment.mpesa_receipt or "",
        "created_at": isoformat(payment.created_at),
    }


def _channel(channel: Channel, balance: int | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": channel.id,
        "channel_type": channel.kind,
        "account_id": channel.account_id,
        "short_code": channel.shortcode,
        "account_number": channel.account_number,
        "description": channel.description,
        "is_active": channel.is_active,
        "is_default": channel.is_default,
        "transaction_type": (
            "CustomerBuyGoodsOnline" if channel.kind == ChannelKind.TILL.value
            else "CustomerPayBillOnline"
        ),
        "created_at": isoformat(channel.created_at),
    }  # fmt: skip
    if balance is not None:
        body["balance_plain"] = balance
    return body


async def _wallet_balance(session: AsyncSession, account_id: str) -> int:
    """The KES wallet's available balance, from the ledger."""
    return (
        (await ledger.balances(session, account_id=account_id)).get("KES", {}).get("available", 0)
    )


def create_payhero_app(runtime: Runtime) -> FastAPI:
    app = FastAPI(
        title="pesaswitch: PayHero / UpesiPay dialect", docs_url=None, redoc_url=None,
        dependencies=[Depends(single_valued_query), Depends(refuse_nul)],
    )  # fmt: skip
    app.state.runtime = runtime
    parameters_without_null(app)
    install_vendor_errors(app, _error)

    @app.post("/payments", status_code=201)
    async def create_payment(
        data: PaymentIn,
        auth: Auth,
        idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
    ) -> JSONResponse:
        require_write(auth)
        if data.provider.lower() not in PROVIDERS:
            raise ValidationFailed(f"provider '{data.provider}' is not supported; use 'm-pesa'")
        native = PaymentCreate(
            amount=int(data.amount), phone=data.phone_number, channel_id=data.channel_id,
            reference=data.external_reference, customer_name=data.customer_name,
            callback_url=data.callback_url or None,
        )  # fmt: skip
        response = await initiate_payment(
            runtime, auth=auth, data=native, idempotency_key=idempotency_key, dialect=DIALECT,
            credential_id=_credential_id(data.credential_id),
        )  # fmt: skip
        body = response.body
        if response.status_code >= 400:
            answer = _error_body(body["detail"], body["code"], body.get("payment"))
            return JSONResponse(answer, status_code=response.status_code)
        return JSONResponse(
            {"success": True, "status": "QUEUED", "reference": body["gateway_reference"],
             "CheckoutRequestID": body["checkout_request_id"]},
            status_code=201,
        )  # fmt: skip

    @app.get("/transaction-status", responses=vendor_responses(404))
    async def transaction_status(
        auth: Auth, reference: Annotated[str, Query(min_length=1, max_length=100)]
    ) -> dict[str, Any]:
        async with runtime.sessionmaker() as session:
            payment = await queries.get_by_reference(
                session, account_id=auth.account_id, reference=reference
            )
        rendered = PaymentOut.render(payment).model_dump()
        return {
            "success": True,
            "status": _status(rendered),
            "reference": payment.reference,
            "external_reference": payment.external_reference,
            "CheckoutRequestID": payment.checkout_request_id,
            "MerchantRequestID": payment.merchant_request_id,
            "provider": "m-pesa",
            "provider_reference": payment.mpesa_receipt or "",
            "third_party_reference": payment.mpesa_receipt or "",
            "amount": payment.amount,
            "phone_number": payment.phone,
            "result_code": _result_code(payment.result_code),
            "result_desc": payment.result_desc,
            "transaction_date": isoformat(payment.finalized_at or payment.created_at),
        }

    @app.get("/payment_channels")
    async def list_channels(auth: Auth) -> dict[str, Any]:
        async with runtime.sessionmaker() as session:
            rows = await accounts.list_channels(session, account_id=auth.account_id)
        data = [_channel(c) for c in rows]
        return {"success": True, "data": data,
                "pagination": {"page": 1, "per": len(data), "total": len(data)}}  # fmt: skip

    @app.get("/payment_channels/{channel_id}")
    async def read_channel(
        channel_id: Annotated[int, Path(ge=1, le=ROW_ID_MAX)], auth: Auth
    ) -> dict[str, Any]:
        async with runtime.sessionmaker() as session:
            channel = await accounts.resolve_channel(
                session, account_id=auth.account_id, channel_id=channel_id
            )
            balance = None
            if channel.kind == ChannelKind.WALLET.value:
                balance = await _wallet_balance(session, auth.account_id)
        return _channel(channel, balance)

    @app.get("/bank_paybills")
    async def bank_paybills_list(
        _auth: Auth, q: Annotated[str | None, Query(max_length=100)] = None
    ) -> dict[str, Any]:
        """UpesiPay's "Get Bank Paybills": what a bank channel's ``short_code`` may be."""
        found = bank_paybills().search(q)
        data = [{"bank_name": b.name, "short_code": b.paybill} for b in found]
        return {"success": True, "data": data,
                "pagination": {"page": 1, "per": len(data), "total": len(data)}}  # fmt: skip

    @app.post("/payment_channels", status_code=201)
    async def register_channel(data: ChannelIn, auth: Auth) -> dict[str, Any]:
        require_write(auth)
        try:
            kind = ChannelKind(data.channel_type.lower())
        except ValueError as exc:
            raise ValidationFailed("channel_type must be till, paybill or bank") from exc
        if kind is ChannelKind.WALLET:
            raise ValidationFailed("channel_type must be till, paybill or bank")
        async with transaction(runtime.sessionmaker) as session:
            channel = await accounts.add_channel(
                session, account_id=auth.account_id, kind=kind, shortcode=data.short_code,
                account_number=data.account_number, description=data.description,
            )  # fmt: skip
            return _channel(channel)

    @app.get("/wallets")
    async def wallet(
        auth: Auth, wallet_type: Annotated[str, Query(max_length=40)] = "payment_wallet"
    ) -> dict[str, Any]:
        if wallet_type != "payment_wallet":
            raise ValidationFailed("Only wallet_type=payment_wallet is available")
        async with runtime.sessionmaker() as session:
            balance = await _wallet_balance(session, auth.account_id)
            channels = await accounts.list_channels(session, account_id=auth.account_id)
        wallet_channel = next((c for c in channels if c.kind == ChannelKind.WALLET.value), None)
        return {"success": True, "id": wallet_channel.id if wallet_channel else None,
                "wallet_type": "payment_wallet", "currency": "KES",
                "available_balance": balance, "balance_plain": balance}  # fmt: skip

    @app.get("/transactions")
    async def transactions(
        auth: Auth,
        page: Annotated[int, Query(ge=1, le=100_000)] = 1,
        per: Annotated[int, Query(ge=1, le=100)] = 20,
    ) -> dict[str, Any]:
        async with runtime.sessionmaker() as session:
            rows, total = await queries.numbered_page(
                session, account_id=auth.account_id, page=page, per=per
            )
        return {"success": True, "data": [_transaction(p) for p in rows],
                "pagination": {"page": page, "per": per, "total": total,
                               "pages": (total + per - 1) // per}}  # fmt: skip

    @app.post("/withdraw", status_code=201)
    async def withdraw(
        data: WithdrawIn,
        auth: Auth,
        idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
    ) -> JSONResponse:
        """Wallet to M-Pesa (B2C). Bank withdrawals are not offered."""
        require_write(auth)
        if data.channel != "mobile" or data.network_code not in (None, "", MPESA_NETWORK):
            raise ValidationFailed(
                "Only channel 'mobile' to M-Pesa (network_code 63902) is offered"
            )
        native = PayoutCreate(
            amount=int(data.amount), currency="KES", phone=data.phone_number,
            reference=data.external_reference or f"WD-{new_reference()}",
            description=data.description or "Withdrawal",
        )  # fmt: skip
        response = await initiate_payout(
            runtime, auth=auth, data=native, idempotency_key=idempotency_key, dialect=DIALECT,
            callback_url=data.callback_url or None,
        )  # fmt: skip
        body = response.body
        if response.status_code >= 400:
            return JSONResponse(
                _error_body(body["detail"], body["code"]), status_code=response.status_code
            )
        return JSONResponse(
            {"success": True, "status": "QUEUED", "merchant_reference": body["reference"],
             "checkout_request_id": body["originator_conversation_id"], "response_code": "0",
             "conversation_id": body["conversation_id"], "payout_id": body["id"]},
            status_code=201,
        )  # fmt: skip

    # Every error a route can answer, in the document, in the vendor's shape.
    declare_problems(
        app.router, auth=(basic_auth,), write=(basic_auth,),
        media_type="application/json", schema=VENDOR_ERROR_SCHEMA,
    )  # fmt: skip
    return app
