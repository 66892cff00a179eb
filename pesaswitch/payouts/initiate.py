"""POST /v1/payouts: reserve (commit), send B2C with no transaction open, record.

The payout row and its reserve commit before Daraja is called, so a Result can never
arrive for a payout we do not know, and funds are held however the call ends.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from pesaswitch.accounts.models import Environment
from pesaswitch.accounts.service import AuthContext
from pesaswitch.config import Settings
from pesaswitch.daraja.b2c import B2CCommand, B2CPaymentRequest, Initiator, security_credential
from pesaswitch.daraja.errors import DarajaBusinessError, DarajaTechnicalError
from pesaswitch.db import transaction
from pesaswitch.errors import AmountOutOfRange, DarajaOutage, DarajaRejected, PesaswitchError
from pesaswitch.kit.phones import normalize_mpesa_phone
from pesaswitch.ledger.policy import ledger_policy_of
from pesaswitch.payouts import fx, service
from pesaswitch.payouts.models import Payout
from pesaswitch.payouts.schemas import PayoutCreate, PayoutOut
from pesaswitch.protection import idempotency
from pesaswitch.protection.idempotency import StaleClaim, StoredResponse
from pesaswitch.runtime import Runtime
from pesaswitch.webhooks.service import allow_private_urls
from pesaswitch.webhooks.ssrf import check_url

METHOD_PATH = "POST /v1/payouts"

# Daraja's B2C limits (daraja.md §10): 10 to 250,000 KES a transaction.
B2C_MIN_KES = 10
B2C_MAX_KES = 250_000

_certificates: dict[str, bytes] = {}


async def _certificate(runtime: Runtime) -> bytes:
    """Daraja's certificate: the operator's file, or the simulator's own."""
    settings = runtime.settings
    if runtime.simulator is not None and not settings.daraja_certificate_path:
        return runtime.simulator.certificate_pem
    source = settings.daraja_certificate_path or settings.effective_daraja_base_url
    if source not in _certificates:
        if settings.daraja_certificate_path:
            path = Path(settings.daraja_certificate_path)
            _certificates[source] = await asyncio.to_thread(path.read_bytes)
        else:  # a standalone simulator publishes its certificate
            response = await runtime.daraja.http.get("/simulator/certificate")
            response.raise_for_status()
            _certificates[source] = response.content
    return _certificates[source]


async def initiator(runtime: Runtime) -> Initiator:
    settings = runtime.settings
    try:
        pem = await _certificate(runtime)
    except (OSError, httpx.HTTPError) as exc:
        raise DarajaTechnicalError(f"no Daraja certificate: {exc!r}", maybe_sent=False) from exc
    return Initiator(
        settings.daraja_initiator_name,
        security_credential(settings.daraja_initiator_password, pem),
    )


def b2c_request(settings: Settings, payout: Payout, who: Initiator) -> B2CPaymentRequest:
    base = f"{settings.effective_public_url}/daraja/b2c"
    remarks = (payout.description or payout.reference or "Payout")[:100]
    return B2CPaymentRequest(
        originator_conversation_id=payout.originator_conversation_id, initiator=who,
        command=B2CCommand.BUSINESS_PAYMENT, amount=payout.kes_amount,
        party_a=payout.shortcode, party_b=payout.phone,
        remarks=remarks if len(remarks) >= 2 else "Payout",
        result_url=f"{base}/result/{payout.callback_token}",
        queue_timeout_url=f"{base}/timeout/{payout.callback_token}",
        occasion=payout.reference[:100],
    )  # fmt: skip


def _refusal(error: DarajaBusinessError) -> PesaswitchError:
    if error.is_throttled:
        return DarajaRejected(
            "M-Pesa is rate-limiting requests", status_code=503, code="daraja_throttled"
        )
    if error.is_credentials_problem:
        return DarajaRejected(
            "M-Pesa refused the B2C credentials", status_code=502,
            code="daraja_credentials_rejected",
        )  # fmt: skip
    return DarajaRejected(
        f"M-Pesa rejected the payout: {error.message}", status_code=422,
        code="daraja_invalid_request",
    )  # fmt: skip


async def initiate_payout(
    runtime: Runtime,
    *,
    auth: AuthContext,
    data: PayoutCreate,
    idempotency_key: str | None,
    dialect: str = "native",
    callback_url: str | None = None,
) -> StoredResponse:
    settings = runtime.settings
    phone = normalize_mpesa_phone(data.phone)
    if data.amount <= 0:
        raise AmountOutOfRange("amount must be positive")
    if callback_url is not None:
        allow_private = allow_private_urls(auth.environment, settings.sandbox_allow_private_urls)
        await check_url(
            callback_url, allow_private=allow_private,
            require_https=auth.environment is Environment.LIVE, must_resolve=not allow_private,
        )  # fmt: skip
    key = idempotency.check_key(idempotency_key) if idempotency_key is not None else None
    who = await initiator(runtime)

    async with transaction(runtime.sessionmaker) as session:
        if key is not None:
            earlier = await idempotency.claim(
                session, account_id=auth.account_id, key=key, method_path=METHOD_PATH,
                request_fingerprint=idempotency.fingerprint(METHOD_PATH, data.model_dump()),
                lock_seconds=settings.idempotency_lock_seconds,
            )  # fmt: skip
            if isinstance(earlier, StoredResponse):
                return earlier
            if isinstance(earlier, StaleClaim):
                found = await service.get_payout(
                    session, account_id=auth.account_id, payout_id=earlier.resource_id
                )
                return StoredResponse(201, PayoutOut.render(found).model_dump())
        kes_amount, rate = await fx.to_kes(session, amount=data.amount, currency=data.currency)
        if not B2C_MIN_KES <= kes_amount <= B2C_MAX_KES:
            raise AmountOutOfRange(
                f"M-Pesa pays out {B2C_MIN_KES}-{B2C_MAX_KES} KES; this is {kes_amount} KES",
                kes_amount=kes_amount,
            )
        fee = ledger_policy_of(session).tariff.payout_fee(kes_amount)
        payout = await service.create_payout(
            session,
            new=service.NewPayout(
                account_id=auth.account_id, amount=data.amount, currency=data.currency,
                kes_amount=kes_amount, fx_rate=rate, fee=fee, phone=phone, name=data.name,
                reference=data.reference, description=data.description,
                shortcode=settings.daraja_b2c_shortcode, dialect=dialect,
                callback_url=callback_url,
                # Past the B2C request's own timeout: if this process dies before the
                # answer is recorded, the reconciler asks by OriginatorConversationID.
                query_after=settings.daraja_timeout * 2 + settings.reconcile_after,
            ),
        )  # fmt: skip
        if key is not None:
            await idempotency.attach_resource(
                session, account_id=auth.account_id, key=key, resource_id=payout.id
            )
        request = b2c_request(settings, payout, who)

    return await send_payout(
        runtime, payout=payout, request=request,
        respond=lambda session, found, error: _respond(session, auth, key, found, error),
    )  # fmt: skip


Respond = Callable[[AsyncSession, Payout, PesaswitchError | None], Awaitable[StoredResponse]]


async def send_payout(
    runtime: Runtime, *, payout: Payout, request: B2CPaymentRequest, respond: Respond
) -> StoredResponse:
    """Send a reserved (committed) payout's B2C request with no transaction open, record
    what Daraja answered, and let ``respond`` render the answer in that same transaction.
    Refunds (``refunds/initiate.py``) send their payouts through here too."""
    settings = runtime.settings
    client = runtime.daraja.for_app(None)
    error: PesaswitchError | None = None
    try:
        accepted = await client.b2c_payment(request)
    except DarajaBusinessError as exc:
        async with transaction(runtime.sessionmaker) as session:
            if exc.is_duplicate_request:
                # The first request with this id may have paid: ask, never resend.
                payout = await service.mark_unknown(session, payout_id=payout.id, query_after=0)
            else:
                error = _refusal(exc)
                await service.finish(
                    session, payout=payout, succeeded=False, result_code=exc.error_code,
                    result_desc=exc.message or error.detail, transaction_id=None, source="push",
                )  # fmt: skip
                payout = await service.reload(session, payout.id)
            return await respond(session, payout, error)
    except DarajaTechnicalError as exc:
        async with transaction(runtime.sessionmaker) as session:
            if exc.maybe_sent:
                payout = await service.mark_unknown(
                    session, payout_id=payout.id, query_after=settings.reconcile_after
                )
                error = DarajaOutage(
                    "M-Pesa did not answer; the payout stays pending until Transaction Status "
                    "tells whether it ran.",
                    status_code=502, code="daraja_timeout" if exc.timeout else "daraja_error",
                )  # fmt: skip
            else:
                await service.finish(
                    session, payout=payout, succeeded=False, result_code="daraja_unavailable",
                    result_desc=str(exc), transaction_id=None, source="push",
                )  # fmt: skip
                payout = await service.reload(session, payout.id)
                error = DarajaOutage(
                    "M-Pesa could not be reached; nothing was sent and the funds are released.",
                    status_code=503, code="daraja_unavailable",
                )  # fmt: skip
            return await respond(session, payout, error)

    async with transaction(runtime.sessionmaker) as session:
        payout = await service.mark_accepted(
            session, payout_id=payout.id, accepted=accepted, query_after=settings.reconcile_after
        )
        return await respond(session, payout, None)


async def _respond(
    session: AsyncSession,
    auth: AuthContext,
    key: str | None,
    payout: Payout,
    error: PesaswitchError | None,
) -> StoredResponse:
    rendered = PayoutOut.render(payout).model_dump()
    if error is None:
        response = StoredResponse(201, rendered)
    else:
        error.extra["payout"] = rendered
        response = StoredResponse(error.status_code, error.to_problem())
    if key is not None:
        await idempotency.complete(session, account_id=auth.account_id, key=key, response=response)
    return response
