"""``client.payments``: STK Push collections (``/v1/payments``)."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime
from typing import Any

from pesaswitch_sdk._errors import WaitTimeoutError
from pesaswitch_sdk._http import ApiRequest, AsyncTransport, SyncTransport, create_request
from pesaswitch_sdk._models import Payment, PaymentDetail
from pesaswitch_sdk._pagination import AsyncPage, SyncPage, page_params

DEFAULT_WAIT_TIMEOUT = 60.0
DEFAULT_POLL_INTERVAL = 0.5


def _create(
    *,
    amount: int,
    phone: str,
    reference: str | None,
    description: str | None,
    customer_name: str | None,
    channel_id: int | None,
    callback_url: str | None,
    metadata: dict[str, Any] | None,
    idempotency_key: str | None,
) -> ApiRequest:
    body = {
        "amount": amount, "phone": phone, "reference": reference, "description": description,
        "customer_name": customer_name, "channel_id": channel_id, "callback_url": callback_url,
        "metadata": metadata,
    }  # fmt: skip
    return create_request("/v1/payments", body, idempotency_key=idempotency_key)


def _list(
    *,
    status: str | None,
    phone: str | None,
    reference: str | None,
    created_after: datetime | None,
    created_before: datetime | None,
    limit: int | None,
) -> ApiRequest:
    params = page_params(
        limit, status=status, phone=phone, reference=reference,
        created_after=created_after, created_before=created_before,
    )  # fmt: skip
    return ApiRequest("GET", "/v1/payments", params=params)


def _timeout_error(payment: Payment, timeout: float) -> WaitTimeoutError:
    return WaitTimeoutError(
        f"Payment {payment.id} is still {payment.status} after {timeout:g} s", payment=payment
    )


class Payments:
    def __init__(self, transport: SyncTransport) -> None:
        self._transport = transport

    def create(
        self,
        *,
        amount: int,
        phone: str,
        reference: str | None = None,
        description: str | None = None,
        customer_name: str | None = None,
        channel_id: int | None = None,
        callback_url: str | None = None,
        metadata: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> Payment:
        """Send an STK Push prompt to ``phone`` for ``amount`` whole KES.

        The answer is the payment, usually ``pending``: the customer has not typed their PIN
        yet. Without ``idempotency_key`` a fresh one is generated (and reused by retries).
        """
        request = _create(
            amount=amount, phone=phone, reference=reference, description=description,
            customer_name=customer_name, channel_id=channel_id, callback_url=callback_url,
            metadata=metadata, idempotency_key=idempotency_key,
        )  # fmt: skip
        return Payment.model_validate(self._transport.send(request))

    def get(self, payment_id: str) -> PaymentDetail:
        """The payment, with its refunds and reversal."""
        return PaymentDetail.model_validate(
            self._transport.send(ApiRequest("GET", f"/v1/payments/{payment_id}"))
        )

    def list(
        self,
        *,
        status: str | None = None,
        phone: str | None = None,
        reference: str | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        limit: int | None = None,
    ) -> SyncPage[Payment]:
        """The newest payments first; iterate the page to go through all of them."""
        request = _list(
            status=status, phone=phone, reference=reference, created_after=created_after,
            created_before=created_before, limit=limit,
        )  # fmt: skip
        send = self._transport.send
        return SyncPage(send(request), request=request, parse=Payment.model_validate, send=send)

    def wait_for_final(
        self,
        payment_id: str,
        timeout: float = DEFAULT_WAIT_TIMEOUT,
        *,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
    ) -> Payment:
        """Poll until the payment is completed, cancelled, expired or failed.

        For scripts and tests; a server should listen for the webhook instead. Raises
        ``WaitTimeoutError`` (a ``TimeoutError``) with the last state seen on ``.payment``.
        """
        deadline = time.monotonic() + timeout
        while True:
            payment = self.get(payment_id)
            remaining = deadline - time.monotonic()
            if payment.is_final:
                return payment
            if remaining <= 0:
                raise _timeout_error(payment, timeout)
            time.sleep(min(poll_interval, remaining))


class AsyncPayments:
    def __init__(self, transport: AsyncTransport) -> None:
        self._transport = transport

    async def create(
        self,
        *,
        amount: int,
        phone: str,
        reference: str | None = None,
        description: str | None = None,
        customer_name: str | None = None,
        channel_id: int | None = None,
        callback_url: str | None = None,
        metadata: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> Payment:
        """Send an STK Push prompt; see ``Payments.create``."""
        request = _create(
            amount=amount, phone=phone, reference=reference, description=description,
            customer_name=customer_name, channel_id=channel_id, callback_url=callback_url,
            metadata=metadata, idempotency_key=idempotency_key,
        )  # fmt: skip
        return Payment.model_validate(await self._transport.send(request))

    async def get(self, payment_id: str) -> PaymentDetail:
        """The payment, with its refunds and reversal."""
        return PaymentDetail.model_validate(
            await self._transport.send(ApiRequest("GET", f"/v1/payments/{payment_id}"))
        )

    async def list(
        self,
        *,
        status: str | None = None,
        phone: str | None = None,
        reference: str | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        limit: int | None = None,
    ) -> AsyncPage[Payment]:
        """The newest payments first; ``async for`` over the page goes through all of them."""
        request = _list(
            status=status, phone=phone, reference=reference, created_after=created_after,
            created_before=created_before, limit=limit,
        )  # fmt: skip
        send = self._transport.send
        return AsyncPage(
            await send(request), request=request, parse=Payment.model_validate, send=send
        )

    async def wait_for_final(
        self,
        payment_id: str,
        timeout: float = DEFAULT_WAIT_TIMEOUT,  # noqa: ASYNC109 (the same call as the sync client's)
        *,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
    ) -> Payment:
        """Poll until the payment is final; see ``Payments.wait_for_final``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            payment = await self.get(payment_id)
            remaining = deadline - loop.time()
            if payment.is_final:
                return payment
            if remaining <= 0:
                raise _timeout_error(payment, timeout)
            await asyncio.sleep(min(poll_interval, remaining))
