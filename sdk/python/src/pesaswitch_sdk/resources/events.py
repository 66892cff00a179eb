"""``client.events``: every event the account produced, to catch up or redeliver
(``/v1/events``), and ``client.callback_secret``, which signs per-payment callbacks."""

from __future__ import annotations

from typing import Any

from pydantic import TypeAdapter

from pesaswitch_sdk._events import Event, construct_event
from pesaswitch_sdk._http import ApiRequest, AsyncTransport, SyncTransport
from pesaswitch_sdk._models import CallbackSecret, Delivery
from pesaswitch_sdk._pagination import AsyncPage, SyncPage, page_params


def _event(body: Any) -> Event:
    if not isinstance(body, dict):
        raise TypeError(f"An event is a JSON object, not {type(body).__name__}")
    return construct_event(body)


# At module level: inside the classes below, ``list`` names their own method.
Deliveries = list[Delivery]
_DELIVERIES = TypeAdapter(Deliveries)
_CALLBACK_SECRET = ApiRequest("GET", "/v1/callback-secret")


def _list(event_type: str | None, limit: int | None) -> ApiRequest:
    return ApiRequest("GET", "/v1/events", params=page_params(limit, type=event_type))


def _deliveries(event_id: str, limit: int | None) -> ApiRequest:
    return ApiRequest("GET", f"/v1/events/{event_id}/deliveries", params=page_params(limit))


def _redeliver(event_id: str, endpoint_id: str | None) -> ApiRequest:
    # Each call queues one more delivery; a blind retry would queue two.
    body = {"endpoint_id": endpoint_id} if endpoint_id is not None else None
    return ApiRequest("POST", f"/v1/events/{event_id}/redeliver", json=body, replay_safe=False)


class Events:
    def __init__(self, transport: SyncTransport) -> None:
        self._transport = transport

    def list(self, *, type: str | None = None, limit: int | None = None) -> SyncPage[Event]:
        """Typed events (``PaymentEvent``, ``PayoutEvent``, ``UnknownEvent``), newest first."""
        request = _list(type, limit)
        send = self._transport.send
        return SyncPage(send(request), request=request, parse=_event, send=send)

    def get(self, event_id: str) -> Event:
        return _event(self._transport.send(ApiRequest("GET", f"/v1/events/{event_id}")))

    def deliveries(self, event_id: str, *, limit: int | None = None) -> SyncPage[Delivery]:
        request = _deliveries(event_id, limit)
        send = self._transport.send
        return SyncPage(send(request), request=request, parse=Delivery.model_validate, send=send)

    def redeliver(self, event_id: str, *, endpoint_id: str | None = None) -> Deliveries:
        """Queue the event again, to one endpoint or to all that took it."""
        return _DELIVERIES.validate_python(self._transport.send(_redeliver(event_id, endpoint_id)))


class AsyncEvents:
    def __init__(self, transport: AsyncTransport) -> None:
        self._transport = transport

    async def list(self, *, type: str | None = None, limit: int | None = None) -> AsyncPage[Event]:
        request = _list(type, limit)
        send = self._transport.send
        return AsyncPage(await send(request), request=request, parse=_event, send=send)

    async def get(self, event_id: str) -> Event:
        return _event(await self._transport.send(ApiRequest("GET", f"/v1/events/{event_id}")))

    async def deliveries(self, event_id: str, *, limit: int | None = None) -> AsyncPage[Delivery]:
        request = _deliveries(event_id, limit)
        send = self._transport.send
        body = await send(request)
        return AsyncPage(body, request=request, parse=Delivery.model_validate, send=send)

    async def redeliver(self, event_id: str, *, endpoint_id: str | None = None) -> Deliveries:
        return _DELIVERIES.validate_python(
            await self._transport.send(_redeliver(event_id, endpoint_id))
        )


class CallbackSecretResource:
    def __init__(self, transport: SyncTransport) -> None:
        self._transport = transport

    def get(self) -> CallbackSecret:
        """The ``whsec_`` secret that signs events sent to a payment's ``callback_url``."""
        return CallbackSecret.model_validate(self._transport.send(_CALLBACK_SECRET))


class AsyncCallbackSecretResource:
    def __init__(self, transport: AsyncTransport) -> None:
        self._transport = transport

    async def get(self) -> CallbackSecret:
        return CallbackSecret.model_validate(await self._transport.send(_CALLBACK_SECRET))
