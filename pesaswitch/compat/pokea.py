"""Pokea Pay's B2C remittance, ``POST /remittance/momo/mpesa``: the seed's body, Bearer
auth with a secret key, and the ``signature`` header (RSA-SHA256 over amount, currency,
reference and account number, base64), checked with the merchant's registered public key.

The result_url callback has Pokea's fields; its ``hash`` is HMAC-SHA256 (hex) with the
account's callback secret (``GET /v1/callback-secret``) over
``channel|reference|transaction_id|currency|amount|fees|result_code``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from datetime import date
from decimal import Decimal
from typing import Annotated, Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from fastapi import Depends, FastAPI, Header, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from pesaswitch.accounts.models import SigningKey
from pesaswitch.accounts.service import AuthContext
from pesaswitch.compat.common import api_key_auth, install_vendor_errors, require_write
from pesaswitch.errors import (
    AmountOutOfRange,
    AuthenticationFailed,
    PesaswitchError,
    ValidationFailed,
)
from pesaswitch.kit.nul import refuse_nul, refuse_nul_in_json
from pesaswitch.kit.openapi import VENDOR_ERROR_SCHEMA, declare_problems, parameters_without_null
from pesaswitch.kit.query import single_valued_query
from pesaswitch.payouts import fx
from pesaswitch.payouts.initiate import initiate_payout
from pesaswitch.payouts.schemas import PayoutCreate
from pesaswitch.runtime import Runtime
from pesaswitch.webhooks.formats import register_callback_format

DIALECT = "pokea"
MPESA_B2C_CHANNEL = "234432"
MAX_USD = 10_000
REFERENCE = re.compile(r"^\d{6,}$")
HASHED_FIELDS = ("channel", "reference", "transaction_id", "currency", "amount", "fees",
                 "result_code")  # fmt: skip


class BadSignature(AuthenticationFailed):
    code = "invalid_signature"
    title = "The request signature does not verify"


def _error(error: PesaswitchError) -> dict[str, Any]:
    return {"code": error.status_code, "success": False, "message": error.detail,
            "error": error.code}  # fmt: skip


class Source(BaseModel):
    model_config = ConfigDict(extra="ignore")
    customer_code: str = Field(min_length=1, max_length=64)
    account_no: str = Field(min_length=1, max_length=64)


class Destination(BaseModel):
    model_config = ConfigDict(extra="ignore")
    country_code: str = Field(min_length=2, max_length=3)
    name: str = Field(min_length=1, max_length=200)
    mobile_number: str = Field(min_length=1, max_length=32)


class Transfer(BaseModel):
    model_config = ConfigDict(extra="ignore")
    reference: str = Field(max_length=100)
    currency: str = Field(max_length=3)
    amount: str = Field(max_length=20)
    date: str = Field(max_length=10)
    description: str = Field(min_length=1, max_length=500)
    channel: str | int


class RemittanceIn(BaseModel):
    model_config = ConfigDict(extra="ignore")
    source: Source
    destination: Destination
    transfer: Transfer
    result_url: str = Field(min_length=1, max_length=2000)


def signed_text(body: RemittanceIn) -> str:
    t = body.transfer
    return f"{t.amount}{t.currency}{t.reference}{body.source.account_no}"


def verify_signature(public_keys: list[str], text: str, signature: str) -> None:
    try:
        raw = base64.b64decode(signature, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise BadSignature("The signature header is not base64") from exc
    for pem in public_keys:
        key = serialization.load_pem_public_key(pem.encode())
        if not isinstance(key, rsa.RSAPublicKey):
            continue
        try:
            key.verify(raw, text.encode(), padding.PKCS1v15(), hashes.SHA256())
            return
        except InvalidSignature:
            continue
    raise BadSignature("The signature does not match the request and your registered key")


def _validate(body: RemittanceIn) -> tuple[int, str]:
    t = body.transfer
    if not REFERENCE.match(t.reference):
        raise ValidationFailed("transfer.reference must be a string of at least 6 digits")
    currency = t.currency.upper()
    if currency not in ("USD", "KES"):
        raise ValidationFailed("transfer.currency must be USD or KES")
    if not t.amount.isdigit() or int(t.amount) <= 0:
        raise ValidationFailed('transfer.amount must be a whole positive number, e.g. "100"')
    try:
        date.fromisoformat(t.date)
    except ValueError as exc:
        raise ValidationFailed("transfer.date must be YYYY-MM-DD") from exc
    if len(t.date) != 10:
        raise ValidationFailed("transfer.date must be YYYY-MM-DD")
    if str(t.channel) != MPESA_B2C_CHANNEL:
        raise ValidationFailed(f"transfer.channel must be {MPESA_B2C_CHANNEL} (M-Pesa B2C)")
    return int(t.amount), currency


def finalize_callback(secret: str, body: str) -> str:
    data = json.loads(body)
    canonical = "|".join(str(data.get(name, "")) for name in HASHED_FIELDS)
    data["hash"] = hmac.new(secret.encode(), canonical.encode(), hashlib.sha256).hexdigest()
    return json.dumps(data)


def render_callback(_event_type: str, payout: dict[str, Any]) -> str:
    code = payout["result_code"]
    body: dict[str, Any] = {
        "channel": MPESA_B2C_CHANNEL,
        "reference": payout["reference"],
        "transaction_id": payout["transaction_id"] or "",
        "currency": payout["currency"],
        "amount": str(payout["amount"]),
        "fees": str(payout["fee"]),
        "result_code": int(code) if code and code.isdigit() else code,
        "result_description": payout["result_desc"] or "",
    }
    return json.dumps(body)


register_callback_format(DIALECT, render_callback, finalize_callback)


def create_pokea_app(runtime: Runtime) -> FastAPI:
    app = FastAPI(
        title="pesaswitch: Pokea Pay dialect", docs_url=None, redoc_url=None,
        dependencies=[Depends(single_valued_query), Depends(refuse_nul)],
    )  # fmt: skip
    app.state.runtime = runtime
    parameters_without_null(app)
    install_vendor_errors(app, _error)

    @app.post("/momo/mpesa")
    async def remit(
        request: Request,
        auth: Annotated[AuthContext, Depends(api_key_auth)],
        signature: Annotated[str | None, Header()] = None,
    ) -> JSONResponse:
        require_write(auth)
        raw = await request.body()
        refuse_nul_in_json(raw)  # read here, not by FastAPI: kit/nul.py cannot see it
        try:
            body = RemittanceIn.model_validate_json(raw)
        except ValueError as exc:
            raise ValidationFailed(f"Invalid request body: {exc}".splitlines()[0]) from exc
        if not signature:
            raise BadSignature("The signature header is required")
        async with runtime.sessionmaker() as session:
            keys = list(
                await session.scalars(
                    select(SigningKey.public_key_pem).where(
                        SigningKey.account_id == auth.account_id, SigningKey.revoked_at.is_(None)
                    )
                )
            )
            if not keys:
                raise BadSignature("Register a public key first: pesaswitch keys add-signing-key")
            verify_signature(keys, signed_text(body), signature)
            amount, currency = _validate(body)
            usd_equivalent = Decimal(amount)
            if currency == "KES":
                # Without a USD rate only M-Pesa's own KES cap applies (in the payout).
                rate = await fx.rate_of(session, currency="USD")
                usd_equivalent = Decimal(amount) / rate if rate else Decimal(0)
        if usd_equivalent > MAX_USD:
            raise AmountOutOfRange(f"At most USD {MAX_USD:,} (or its KES equivalent) a transfer")
        native = PayoutCreate(
            amount=amount, currency="USD" if currency == "USD" else "KES",
            phone=body.destination.mobile_number, name=body.destination.name,
            reference=body.transfer.reference, description=body.transfer.description,
        )  # fmt: skip
        result = await initiate_payout(
            runtime, auth=auth, data=native, idempotency_key=None, dialect=DIALECT,
            callback_url=body.result_url,
        )  # fmt: skip
        if result.status_code >= 400:
            answer = {"code": result.status_code, "success": False,
                      "message": result.body["detail"], "error": result.body["code"]}  # fmt: skip
            return JSONResponse(answer, status_code=result.status_code)
        return JSONResponse(
            {"code": 0, "success": True,
             "message": "The service request is submitted successfully."}
        )  # fmt: skip

    # Every error a route can answer, in the document, in the vendor's shape.
    declare_problems(
        app.router, auth=(api_key_auth,), write=(api_key_auth,),
        media_type="application/json", schema=VENDOR_ERROR_SCHEMA,
    )  # fmt: skip
    return app
