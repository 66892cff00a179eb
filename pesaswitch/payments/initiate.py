"""POST /v1/payments as a flow of short transactions around the Daraja call.

1. validate and claim the Idempotency-Key (naming the payment's id), create the payment
   (pending) — commit, so a callback that beats the push response can already find it
   by its token;
2. send the STK Push with no transaction open;
3. record what Daraja said and the response to replay — commit.
"""

from __future__ import annotations

from typing import Any

import structlog

from pesaswitch.accounts.models import Environment
from pesaswitch.accounts.service import AuthContext, resolve_channel
from pesaswitch.daraja.errors import DarajaBusinessError, DarajaTechnicalError
from pesaswitch.daraja.wire import StkPushRequest
from pesaswitch.db import transaction
from pesaswitch.errors import (
    AmountOutOfRange,
    DarajaOutage,
    DarajaRejected,
    PesaswitchError,
)
from pesaswitch.kit.clock import utcnow
from pesaswitch.kit.ids import is_row_id, new_id
from pesaswitch.kit.phones import normalize_mpesa_phone
from pesaswitch.payments import push, service, store_push
from pesaswitch.payments.models import Payment, PaymentStatus
from pesaswitch.payments.schemas import PaymentCreate, PaymentOut
from pesaswitch.protection import idempotency, stk
from pesaswitch.protection.idempotency import StaleClaim, StoredResponse
from pesaswitch.runtime import Runtime
from pesaswitch.webhooks.service import allow_private_urls
from pesaswitch.webhooks.ssrf import check_url

log = structlog.get_logger(__name__)

METHOD_PATH = "POST /v1/payments"


def check_amount(runtime: Runtime, amount: int) -> None:
    low, high = runtime.settings.stk_min_amount, runtime.settings.stk_max_amount
    if not low <= amount <= high:
        raise AmountOutOfRange(
            f"amount must be between {low} and {high} KES", minimum=low, maximum=high
        )


def _rejection(error: DarajaBusinessError) -> DarajaRejected:
    if error.is_subscriber_locked:
        return DarajaRejected(
            "The customer has another M-Pesa prompt open; try again in about a minute",
            status_code=409,
            code="daraja_subscriber_locked",
        )
    if error.is_throttled:
        return DarajaRejected(
            "M-Pesa is rate-limiting requests; try again shortly",
            status_code=503,
            code="daraja_throttled",
        )
    if error.is_credentials_problem:
        return DarajaRejected(
            "M-Pesa refused the shortcode credentials configured for this channel",
            status_code=502,
            code="daraja_credentials_rejected",
        )
    return DarajaRejected(
        f"M-Pesa rejected the request: {error.message}",
        status_code=422,
        code="daraja_invalid_request",
    )


async def initiate_payment(
    runtime: Runtime,
    *,
    auth: AuthContext,
    data: PaymentCreate,
    idempotency_key: str | None,
    dialect: str = "native",
    credential_id: int | None = None,
) -> StoredResponse:
    check_amount(runtime, data.amount)
    phone = normalize_mpesa_phone(data.phone)
    if data.callback_url is not None:
        # The same SSRF rules as webhook endpoints; checked again at every delivery.
        allow_private = allow_private_urls(
            auth.environment, runtime.settings.sandbox_allow_private_urls
        )
        await check_url(
            data.callback_url,
            allow_private=allow_private,
            require_https=auth.environment is Environment.LIVE,
            must_resolve=not allow_private,
        )
    key = idempotency.check_key(idempotency_key) if idempotency_key is not None else None

    # Known before the claim, so the claim row names its payment from the start (both
    # commit together) and no second UPDATE is needed to attach it.
    payment_id = new_id("pay")
    request_fingerprint = idempotency.fingerprint(METHOD_PATH, data.model_dump())
    created = await _create_in_one_statement(
        runtime, auth=auth, data=data, phone=phone, dialect=dialect, payment_id=payment_id,
        key=key, request_fingerprint=request_fingerprint, credential_id=credential_id,
    )  # fmt: skip
    if created is not None:
        payment, shortcode_auth, request = created
    else:
        prepared = await _create(
            runtime, auth=auth, data=data, phone=phone, dialect=dialect, payment_id=payment_id,
            key=key, request_fingerprint=request_fingerprint, credential_id=credential_id,
        )  # fmt: skip
        if isinstance(prepared, StoredResponse):
            return prepared
        payment, shortcode_auth, request = prepared
    return await _push(runtime, auth=auth, key=key, payment=payment,
                       shortcode_auth=shortcode_auth, request=request)  # fmt: skip


_Prepared = tuple[Payment, push.ShortcodeAuth, StkPushRequest]


async def _create_in_one_statement(
    runtime: Runtime,
    *,
    auth: AuthContext,
    data: PaymentCreate,
    phone: str,
    dialect: str,
    payment_id: str,
    key: str | None,
    request_fingerprint: str,
    credential_id: int | None,
) -> _Prepared | None:
    """The usual case (``store_push.create_payment``); None for the general path."""
    if not store_push.has_hot_path(runtime.engine) or credential_id is not None:
        return None
    if data.channel_id is not None and not is_row_id(data.channel_id):
        return None
    settings = runtime.settings
    values = service.pending_payment_values(
        account_id=auth.account_id, channel_id=None, data=data, phone=phone, dialect=dialect,
        payment_id=payment_id, orphan_after=settings.orphan_after,
    )  # fmt: skip
    created = await store_push.create_payment(
        runtime.engine, values=values, channel_id=data.channel_id,
        protection=settings.stk_protection, key=key, method_path=METHOD_PATH,
        fingerprint=request_fingerprint,
    )  # fmt: skip
    if created is None:
        return None
    if created.channel.credential_id is None:
        shortcode_auth = push.gateway_app_auth(settings, created.channel)
    else:
        # A session only for a channel with its own credential, which is read and decrypted.
        async with runtime.sessionmaker() as session:
            shortcode_auth = await push.shortcode_auth(session, settings, created.channel)
    request = push.stk_request(
        settings=settings, channel=created.channel, auth=shortcode_auth, payment=created.payment
    )
    return created.payment, shortcode_auth, request


async def _create(
    runtime: Runtime,
    *,
    auth: AuthContext,
    data: PaymentCreate,
    phone: str,
    dialect: str,
    payment_id: str,
    key: str | None,
    request_fingerprint: str,
    credential_id: int | None,
) -> _Prepared | StoredResponse:
    """Step 1 through the ORM: the claim, the checks and the pending payment, committed."""
    settings = runtime.settings
    async with transaction(runtime.sessionmaker) as session:
        if key is not None:
            earlier = await idempotency.claim(
                session,
                account_id=auth.account_id,
                key=key,
                method_path=METHOD_PATH,
                request_fingerprint=request_fingerprint,
                lock_seconds=settings.idempotency_lock_seconds,
                resource_id=payment_id,
            )
            if isinstance(earlier, StoredResponse):
                return earlier
            if isinstance(earlier, StaleClaim):
                payment = await service.get_payment(
                    session, account_id=auth.account_id, payment_id=earlier.resource_id
                )
                return StoredResponse(201, PaymentOut.render(payment).model_dump())
        # After the claim, so a replay is still answered; a refusal rolls back the claim.
        await stk.check_stk_allowed(session, account_id=auth.account_id, phone=phone, now=utcnow())
        channel = await resolve_channel(
            session, account_id=auth.account_id, channel_id=data.channel_id
        )
        payment = await service.create_pending_payment(
            session, account_id=auth.account_id, channel=channel, data=data, phone=phone,
            dialect=dialect, payment_id=payment_id, orphan_after=settings.orphan_after,
        )  # fmt: skip
        shortcode_auth = await push.shortcode_auth(session, settings, channel, credential_id)
        request = push.stk_request(
            settings=settings, channel=channel, auth=shortcode_auth, payment=payment
        )
    return payment, shortcode_auth, request


async def _push(
    runtime: Runtime,
    *,
    auth: AuthContext,
    key: str | None,
    payment: Payment,
    shortcode_auth: push.ShortcodeAuth,
    request: StkPushRequest,
) -> StoredResponse:
    """Steps 2 and 3: the STK Push with no transaction open, then what Daraja said."""
    settings = runtime.settings
    client = runtime.daraja.for_app(shortcode_auth.app)
    error: PesaswitchError | None = None
    try:
        accepted = await client.stk_push(request)
    except DarajaBusinessError as exc:
        error = _rejection(exc)
        async with transaction(runtime.sessionmaker) as session:
            payment = await service.record_push_rejected(
                session, payment_id=payment.id, result_code=exc.error_code,
                result_desc=exc.message or error.detail,
            )  # fmt: skip
            return await _finish(session, auth, key, payment, error)
    except DarajaTechnicalError as exc:
        async with transaction(runtime.sessionmaker) as session:
            if exc.maybe_sent:
                payment = await service.record_push_unknown(
                    session, payment_id=payment.id, reason=str(exc)
                )
                if payment.status != PaymentStatus.PENDING.value:
                    # The callback beat the timeout: the outcome is known after all.
                    return await _finish(session, auth, key, payment, None)
                error = DarajaOutage(
                    "M-Pesa did not answer in time. The prompt may still reach the customer; "
                    "the payment stays pending until M-Pesa reports the result or, once the "
                    "prompt has expired, the shortcode's statement shows whether it was paid.",
                    status_code=502,
                    code="daraja_timeout" if exc.timeout else "daraja_error",
                )
            else:
                payment = await service.record_push_rejected(
                    session, payment_id=payment.id, result_code="daraja_unavailable",
                    result_desc=str(exc),
                )  # fmt: skip
                error = DarajaOutage(
                    "M-Pesa could not be reached; no prompt was sent.",
                    status_code=503,
                    code="daraja_unavailable",
                )
            return await _finish(session, auth, key, payment, error)

    if store_push.has_hot_path(runtime.engine):
        response, replay_stored = await store_push.accept_push(
            runtime.engine, payment=payment, accepted=accepted,
            query_after=settings.reconcile_after, account_id=auth.account_id, key=key,
        )  # fmt: skip
        if key is not None and not replay_stored:
            async with transaction(runtime.sessionmaker) as session:
                await idempotency.complete(
                    session, account_id=auth.account_id, key=key, response=response
                )
        return response
    async with transaction(runtime.sessionmaker) as session:
        payment = await service.record_push_accepted(
            session, payment_id=payment.id, accepted=accepted,
            query_after=settings.reconcile_after,
        )  # fmt: skip
        return await _finish(session, auth, key, payment, None)


async def _finish(
    session: Any,
    auth: AuthContext,
    key: str | None,
    payment: Payment,
    error: PesaswitchError | None,
) -> StoredResponse:
    rendered = PaymentOut.render(payment).model_dump()
    if error is None:
        response = StoredResponse(201, rendered)
    else:
        error.extra["payment"] = rendered
        response = StoredResponse(error.status_code, error.to_problem())
    if key is not None:
        await idempotency.complete(session, account_id=auth.account_id, key=key, response=response)
    return response
