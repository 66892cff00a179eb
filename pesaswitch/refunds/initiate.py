"""POST /v1/payments/{id}/refund and /reversal: claim and reserve (commit), call Daraja
with no transaction open, record the answer.

Both follow the payouts' order (``payouts/initiate.py``): the row, its claim on the
payment and its reserved funds commit before Daraja is called, so a Result can never
arrive for something we do not know and funds are held however the call ends. A refund
*is* a payout (reference ``refund:<id>``) and is sent by ``send_payout``.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from pesaswitch.accounts.service import AuthContext
from pesaswitch.daraja.b2c import Initiator
from pesaswitch.daraja.errors import DarajaBusinessError, DarajaTechnicalError
from pesaswitch.daraja.reversal import ReversalRequest
from pesaswitch.db import transaction
from pesaswitch.errors import AmountOutOfRange, DarajaOutage, DarajaRejected, PesaswitchError
from pesaswitch.kit.ids import new_id
from pesaswitch.ledger.policy import ledger_policy_of
from pesaswitch.payouts import service as payouts
from pesaswitch.payouts.initiate import (
    B2C_MAX_KES,
    B2C_MIN_KES,
    b2c_request,
    initiator,
    send_payout,
)
from pesaswitch.payouts.models import Payout, PayoutStatus
from pesaswitch.protection import idempotency
from pesaswitch.protection.idempotency import StaleClaim, StoredResponse
from pesaswitch.refunds import reversals, service
from pesaswitch.refunds.models import REFUND_REFERENCE_PREFIX, Refund, Reversal
from pesaswitch.refunds.reversals import Finish
from pesaswitch.refunds.schemas import RefundCreate, RefundOut, ReversalCreate, ReversalOut
from pesaswitch.runtime import Runtime


async def _claim_key(
    session: AsyncSession, auth: AuthContext, key: str | None, method_path: str, payload: object,
    lock_seconds: float,
) -> StoredResponse | StaleClaim | None:  # fmt: skip
    if key is None:
        return None
    return await idempotency.claim(
        session, account_id=auth.account_id, key=key, method_path=method_path,
        request_fingerprint=idempotency.fingerprint(method_path, payload),
        lock_seconds=lock_seconds,
    )  # fmt: skip


async def _complete(
    session: AsyncSession, auth: AuthContext, key: str | None, response: StoredResponse
) -> StoredResponse:
    if key is not None:
        await idempotency.complete(session, account_id=auth.account_id, key=key, response=response)
    return response


def _answer(
    rendered: dict[str, object], name: str, error: PesaswitchError | None
) -> StoredResponse:
    if error is None:
        return StoredResponse(201, rendered)
    error.extra[name] = rendered
    return StoredResponse(error.status_code, error.to_problem())


async def initiate_refund(
    runtime: Runtime, *, auth: AuthContext, payment_id: str, data: RefundCreate,
    idempotency_key: str | None,
) -> StoredResponse:  # fmt: skip
    settings = runtime.settings
    method_path = f"POST /v1/payments/{payment_id}/refund"
    key = idempotency.check_key(idempotency_key) if idempotency_key is not None else None
    who = await initiator(runtime)
    async with transaction(runtime.sessionmaker) as session:
        earlier = await _claim_key(
            session, auth, key, method_path, data.model_dump(), settings.idempotency_lock_seconds
        )
        if isinstance(earlier, StoredResponse):
            return earlier
        if isinstance(earlier, StaleClaim):
            found = await service.get_refund(
                session, account_id=auth.account_id, refund_id=earlier.resource_id
            )
            return StoredResponse(201, RefundOut.render(found).model_dump())
        payment = await service.get_payment(
            session, account_id=auth.account_id, payment_id=payment_id
        )
        amount = await service.claim_refund(session, payment=payment, amount=data.amount)
        if not B2C_MIN_KES <= amount <= B2C_MAX_KES:
            raise AmountOutOfRange(
                f"A refund is paid by B2C, which sends {B2C_MIN_KES}-{B2C_MAX_KES} KES; "
                f"this is {amount} KES",
                kes_amount=amount,
            )
        refund_id = new_id("re")
        fee = ledger_policy_of(session).tariff.payout_fee(amount)
        payout = await payouts.create_payout(
            session,
            new=payouts.NewPayout(
                account_id=auth.account_id, amount=amount, currency="KES", kes_amount=amount,
                fx_rate=None, fee=fee, phone=payment.phone, name=payment.customer_name or "",
                reference=f"{REFUND_REFERENCE_PREFIX}{refund_id}",
                description=f"Refund of {payment.id}", shortcode=settings.daraja_b2c_shortcode,
            ),
        )  # fmt: skip
        session.add(
            Refund(
                id=refund_id,
                account_id=auth.account_id,
                payment_id=payment.id,
                payout_id=payout.id,
                amount=amount,
                fee=fee,
                reason=data.reason,
            )
        )
        await session.flush()
        if key is not None:
            await idempotency.attach_resource(
                session, account_id=auth.account_id, key=key, resource_id=refund_id
            )
        request = b2c_request(settings, payout, who)

    async def respond(
        session: AsyncSession, sent: Payout, error: PesaswitchError | None
    ) -> StoredResponse:
        if sent.status == PayoutStatus.PROCESSING.value:
            await service.mark_refund_processing(session, refund_id=refund_id)
        refund = await service.reload_refund(session, refund_id)
        rendered = RefundOut.render(refund).model_dump()
        return await _complete(session, auth, key, _answer(rendered, "refund", error))

    return await send_payout(runtime, payout=payout, request=request, respond=respond)


def _refusal(error: DarajaBusinessError) -> PesaswitchError:
    if error.is_throttled:
        return DarajaRejected(
            "M-Pesa is rate-limiting requests", status_code=503, code="daraja_throttled"
        )
    if error.is_credentials_problem:
        return DarajaRejected(
            "M-Pesa refused the initiator credentials", status_code=502,
            code="daraja_credentials_rejected",
        )  # fmt: skip
    return DarajaRejected(
        f"M-Pesa rejected the reversal: {error.message}", status_code=422,
        code="daraja_invalid_request",
    )  # fmt: skip


def _reversal_request(runtime: Runtime, reversal: Reversal, who: Initiator) -> ReversalRequest:
    base = f"{runtime.settings.effective_public_url}/daraja/reversal"
    remarks = (reversal.reason or "Reversal")[:100]
    return ReversalRequest(
        initiator=who, transaction_id=reversal.receipt, amount=reversal.amount,
        receiver_party=reversal.shortcode,
        result_url=f"{base}/result/{reversal.callback_token}",
        queue_timeout_url=f"{base}/timeout/{reversal.callback_token}",
        remarks=remarks if len(remarks.strip()) >= 2 else "Reversal",
        occasion=reversal.payment_id,
    )  # fmt: skip


async def initiate_reversal(
    runtime: Runtime, *, auth: AuthContext, payment_id: str, data: ReversalCreate,
    idempotency_key: str | None,
) -> StoredResponse:  # fmt: skip
    settings = runtime.settings
    method_path = f"POST /v1/payments/{payment_id}/reversal"
    key = idempotency.check_key(idempotency_key) if idempotency_key is not None else None
    who = await initiator(runtime)
    async with transaction(runtime.sessionmaker) as session:
        earlier = await _claim_key(
            session, auth, key, method_path, data.model_dump(), settings.idempotency_lock_seconds
        )
        if isinstance(earlier, StoredResponse):
            return earlier
        if isinstance(earlier, StaleClaim):
            found = await reversals.get_reversal(
                session, account_id=auth.account_id, reversal_id=earlier.resource_id
            )
            return StoredResponse(201, ReversalOut.render(found).model_dump())
        payment = await service.get_payment(
            session, account_id=auth.account_id, payment_id=payment_id
        )
        reversal = await reversals.create_reversal(session, payment=payment, reason=data.reason)
        if key is not None:
            await idempotency.attach_resource(
                session, account_id=auth.account_id, key=key, resource_id=reversal.id
            )
        request = _reversal_request(runtime, reversal, who)

    error: PesaswitchError | None = None
    try:
        accepted = await runtime.daraja.for_app(None).transaction_reversal(request)
    except DarajaBusinessError as exc:
        error = _refusal(exc)
        outcome = Finish(False, exc.error_code, exc.message or error.detail, None, "push")
        async with transaction(runtime.sessionmaker) as session:
            await reversals.finish(session, reversal=reversal, outcome=outcome)
            return await _respond(session, auth, key, reversal.id, error)
    except DarajaTechnicalError as exc:
        async with transaction(runtime.sessionmaker) as session:
            if exc.maybe_sent:
                await reversals.mark_unknown(session, reversal_id=reversal.id)
                error = DarajaOutage(
                    "M-Pesa did not acknowledge the reversal; it stays pending (funds held) "
                    "until it is checked in the M-Pesa portal.",
                    status_code=502, code="daraja_timeout" if exc.timeout else "daraja_error",
                )  # fmt: skip
            else:
                outcome = Finish(False, "daraja_unavailable", str(exc), None, "push")
                await reversals.finish(session, reversal=reversal, outcome=outcome)
                error = DarajaOutage(
                    "M-Pesa could not be reached; nothing was sent and the funds are released.",
                    status_code=503, code="daraja_unavailable",
                )  # fmt: skip
            return await _respond(session, auth, key, reversal.id, error)
    async with transaction(runtime.sessionmaker) as session:
        await reversals.mark_accepted(
            session, reversal_id=reversal.id, accepted=accepted,
            query_after=settings.reconcile_after,
        )  # fmt: skip
        return await _respond(session, auth, key, reversal.id, None)


async def _respond(
    session: AsyncSession, auth: AuthContext, key: str | None, reversal_id: str,
    error: PesaswitchError | None,
) -> StoredResponse:  # fmt: skip
    reversal = await reversals.reload(session, reversal_id)
    rendered = ReversalOut.render(reversal).model_dump()
    return await _complete(session, auth, key, _answer(rendered, "reversal", error))
