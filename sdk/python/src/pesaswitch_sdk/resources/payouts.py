"""``client.payouts``: B2C disbursements from the account's wallet (``/v1/payouts``)."""

from __future__ import annotations

from typing import Literal

from pesaswitch_sdk._http import ApiRequest, AsyncTransport, SyncTransport, create_request
from pesaswitch_sdk._models import Payout
from pesaswitch_sdk._pagination import AsyncPage, SyncPage, page_params

Currency = Literal["KES", "USD"]


def _create(
    *,
    amount: int,
    phone: str,
    reference: str,
    currency: Currency,
    name: str | None,
    description: str | None,
    idempotency_key: str | None,
) -> ApiRequest:
    body = {
        "amount": amount, "phone": phone, "reference": reference, "currency": currency,
        "name": name, "description": description,
    }  # fmt: skip
    return create_request("/v1/payouts", body, idempotency_key=idempotency_key)


def _list(limit: int | None) -> ApiRequest:
    return ApiRequest("GET", "/v1/payouts", params=page_params(limit))


class Payouts:
    def __init__(self, transport: SyncTransport) -> None:
        self._transport = transport

    def create(
        self,
        *,
        amount: int,
        phone: str,
        reference: str,
        currency: Currency = "KES",
        name: str | None = None,
        description: str | None = None,
        idempotency_key: str | None = None,
    ) -> Payout:
        """Send ``amount`` (whole units of ``currency``) to ``phone``; ``reference`` is unique
        per account. The funds are reserved at once and the payout settles later."""
        request = _create(
            amount=amount, phone=phone, reference=reference, currency=currency, name=name,
            description=description, idempotency_key=idempotency_key,
        )  # fmt: skip
        return Payout.model_validate(self._transport.send(request))

    def get(self, payout_id: str) -> Payout:
        return Payout.model_validate(
            self._transport.send(ApiRequest("GET", f"/v1/payouts/{payout_id}"))
        )

    def list(self, *, limit: int | None = None) -> SyncPage[Payout]:
        request = _list(limit)
        send = self._transport.send
        return SyncPage(send(request), request=request, parse=Payout.model_validate, send=send)


class AsyncPayouts:
    def __init__(self, transport: AsyncTransport) -> None:
        self._transport = transport

    async def create(
        self,
        *,
        amount: int,
        phone: str,
        reference: str,
        currency: Currency = "KES",
        name: str | None = None,
        description: str | None = None,
        idempotency_key: str | None = None,
    ) -> Payout:
        """Send money to ``phone``; see ``Payouts.create``."""
        request = _create(
            amount=amount, phone=phone, reference=reference, currency=currency, name=name,
            description=description, idempotency_key=idempotency_key,
        )  # fmt: skip
        return Payout.model_validate(await self._transport.send(request))

    async def get(self, payout_id: str) -> Payout:
        return Payout.model_validate(
            await self._transport.send(ApiRequest("GET", f"/v1/payouts/{payout_id}"))
        )

    async def list(self, *, limit: int | None = None) -> AsyncPage[Payout]:
        request = _list(limit)
        send = self._transport.send
        return AsyncPage(
            await send(request), request=request, parse=Payout.model_validate, send=send
        )
