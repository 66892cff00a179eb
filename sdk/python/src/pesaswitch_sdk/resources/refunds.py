"""``client.refunds``, ``client.reversals`` and ``client.bank_paybills``: money back to a
payment's payer (``/v1/payments/{id}/refund|reversal``) and the banks' paybills."""

from __future__ import annotations

from pesaswitch_sdk._http import ApiRequest, AsyncTransport, SyncTransport, create_request
from pesaswitch_sdk._models import BankPaybillList, Refund, Reversal


def _refund(
    payment_id: str, *, amount: int | None, reason: str, idempotency_key: str | None
) -> ApiRequest:
    body = {"amount": amount, "reason": reason}
    path = f"/v1/payments/{payment_id}/refund"
    return create_request(path, body, idempotency_key=idempotency_key)


def _reversal(payment_id: str, *, reason: str, idempotency_key: str | None) -> ApiRequest:
    path = f"/v1/payments/{payment_id}/reversal"
    return create_request(path, {"reason": reason}, idempotency_key=idempotency_key)


def _paybills(q: str | None) -> ApiRequest:
    return ApiRequest("GET", "/v1/bank-paybills", params={"q": q} if q else None)


class Refunds:
    def __init__(self, transport: SyncTransport) -> None:
        self._transport = transport

    def create(
        self,
        payment_id: str,
        *,
        amount: int | None = None,
        reason: str = "",
        idempotency_key: str | None = None,
    ) -> Refund:
        """Pay ``amount`` (all that is left, if None) of a wallet payment back to its payer.
        The wallet pays the amount plus the payout fee."""
        request = _refund(payment_id, amount=amount, reason=reason, idempotency_key=idempotency_key)
        return Refund.model_validate(self._transport.send(request))

    def get(self, refund_id: str) -> Refund:
        return Refund.model_validate(
            self._transport.send(ApiRequest("GET", f"/v1/refunds/{refund_id}"))
        )


class AsyncRefunds:
    def __init__(self, transport: AsyncTransport) -> None:
        self._transport = transport

    async def create(
        self,
        payment_id: str,
        *,
        amount: int | None = None,
        reason: str = "",
        idempotency_key: str | None = None,
    ) -> Refund:
        """See ``Refunds.create``."""
        request = _refund(payment_id, amount=amount, reason=reason, idempotency_key=idempotency_key)
        return Refund.model_validate(await self._transport.send(request))

    async def get(self, refund_id: str) -> Refund:
        return Refund.model_validate(
            await self._transport.send(ApiRequest("GET", f"/v1/refunds/{refund_id}"))
        )


class Reversals:
    def __init__(self, transport: SyncTransport) -> None:
        self._transport = transport

    def create(
        self, payment_id: str, *, reason: str = "", idempotency_key: str | None = None
    ) -> Reversal:
        """Ask M-Pesa to reverse the whole payment (Transaction Reversal)."""
        request = _reversal(payment_id, reason=reason, idempotency_key=idempotency_key)
        return Reversal.model_validate(self._transport.send(request))

    def get(self, reversal_id: str) -> Reversal:
        return Reversal.model_validate(
            self._transport.send(ApiRequest("GET", f"/v1/reversals/{reversal_id}"))
        )


class AsyncReversals:
    def __init__(self, transport: AsyncTransport) -> None:
        self._transport = transport

    async def create(
        self, payment_id: str, *, reason: str = "", idempotency_key: str | None = None
    ) -> Reversal:
        """See ``Reversals.create``."""
        request = _reversal(payment_id, reason=reason, idempotency_key=idempotency_key)
        return Reversal.model_validate(await self._transport.send(request))

    async def get(self, reversal_id: str) -> Reversal:
        return Reversal.model_validate(
            await self._transport.send(ApiRequest("GET", f"/v1/reversals/{reversal_id}"))
        )


class BankPaybills:
    def __init__(self, transport: SyncTransport) -> None:
        self._transport = transport

    def list(self, q: str | None = None) -> BankPaybillList:
        """Kenya's banks' paybills, searched by name, former name or number."""
        return BankPaybillList.model_validate(self._transport.send(_paybills(q)))


class AsyncBankPaybills:
    def __init__(self, transport: AsyncTransport) -> None:
        self._transport = transport

    async def list(self, q: str | None = None) -> BankPaybillList:
        return BankPaybillList.model_validate(await self._transport.send(_paybills(q)))
