"""``client.phone_numbers``: check a number before prompting it (``/v1/phone-numbers``)."""

from __future__ import annotations

from pesaswitch_sdk._http import ApiRequest, AsyncTransport, SyncTransport
from pesaswitch_sdk._models import PhoneValidation


def _validate(phone: str) -> ApiRequest:
    # A read: nothing is created, so sending it twice is harmless.
    return ApiRequest("POST", "/v1/phone-numbers/validate", json={"phone": phone})


class PhoneNumbers:
    def __init__(self, transport: SyncTransport) -> None:
        self._transport = transport

    def validate(self, phone: str) -> PhoneValidation:
        """Whether ``phone`` (any Kenyan form) is a valid M-Pesa number, and its 2547… form."""
        return PhoneValidation.model_validate(self._transport.send(_validate(phone)))


class AsyncPhoneNumbers:
    def __init__(self, transport: AsyncTransport) -> None:
        self._transport = transport

    async def validate(self, phone: str) -> PhoneValidation:
        return PhoneValidation.model_validate(await self._transport.send(_validate(phone)))
