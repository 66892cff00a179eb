"""``client.webhook_endpoints``: where the gateway sends signed events
(``/v1/webhook-endpoints``)."""

from __future__ import annotations

from pydantic import TypeAdapter

from pesaswitch_sdk._http import ApiRequest, AsyncTransport, SyncTransport, create_request
from pesaswitch_sdk._models import Delivery, WebhookEndpoint
from pesaswitch_sdk._pagination import AsyncPage, SyncPage, page_params

_ENDPOINTS = TypeAdapter(list[WebhookEndpoint])
_PATH = "/v1/webhook-endpoints"


def _create(
    url: str, events: list[str] | None, description: str | None, idempotency_key: str | None
) -> ApiRequest:
    # The gateway keeps no idempotency record for endpoints, so a retry after the request
    # may have arrived could register the URL twice: only never-sent failures are retried.
    body = {"url": url, "events": events, "description": description}
    return create_request(_PATH, body, idempotency_key=idempotency_key, idempotent=False)


def _action(endpoint_id: str, action: str, *, replay_safe: bool) -> ApiRequest:
    return ApiRequest("POST", f"{_PATH}/{endpoint_id}/{action}", replay_safe=replay_safe)


def _deliveries(endpoint_id: str, limit: int | None) -> ApiRequest:
    return ApiRequest("GET", f"{_PATH}/{endpoint_id}/deliveries", params=page_params(limit))


class WebhookEndpoints:
    def __init__(self, transport: SyncTransport) -> None:
        self._transport = transport

    def create(
        self,
        *,
        url: str,
        events: list[str] | None = None,
        description: str | None = None,
        idempotency_key: str | None = None,
    ) -> WebhookEndpoint:
        """Register ``url`` for ``events`` (all when None). Keep ``.secret``: it is shown
        only now and when rotated, and ``webhooks.verify`` needs it."""
        request = _create(url, events, description, idempotency_key)
        return WebhookEndpoint.model_validate(self._transport.send(request))

    def get(self, endpoint_id: str) -> WebhookEndpoint:
        request = ApiRequest("GET", f"{_PATH}/{endpoint_id}")
        return WebhookEndpoint.model_validate(self._transport.send(request))

    def list(self) -> list[WebhookEndpoint]:
        return _ENDPOINTS.validate_python(self._transport.send(ApiRequest("GET", _PATH)))

    def delete(self, endpoint_id: str) -> None:
        self._transport.send(ApiRequest("DELETE", f"{_PATH}/{endpoint_id}"))

    def disable(self, endpoint_id: str) -> WebhookEndpoint:
        request = _action(endpoint_id, "disable", replay_safe=True)
        return WebhookEndpoint.model_validate(self._transport.send(request))

    def enable(self, endpoint_id: str) -> WebhookEndpoint:
        request = _action(endpoint_id, "enable", replay_safe=True)
        return WebhookEndpoint.model_validate(self._transport.send(request))

    def rotate_secret(self, endpoint_id: str) -> WebhookEndpoint:
        """A new ``.secret``; the old one keeps signing alongside it for 24 hours."""
        request = _action(endpoint_id, "rotate-secret", replay_safe=False)
        return WebhookEndpoint.model_validate(self._transport.send(request))

    def deliveries(self, endpoint_id: str, *, limit: int | None = None) -> SyncPage[Delivery]:
        request = _deliveries(endpoint_id, limit)
        send = self._transport.send
        return SyncPage(send(request), request=request, parse=Delivery.model_validate, send=send)


class AsyncWebhookEndpoints:
    def __init__(self, transport: AsyncTransport) -> None:
        self._transport = transport

    async def create(
        self,
        *,
        url: str,
        events: list[str] | None = None,
        description: str | None = None,
        idempotency_key: str | None = None,
    ) -> WebhookEndpoint:
        """Register ``url``; see ``WebhookEndpoints.create``."""
        request = _create(url, events, description, idempotency_key)
        return WebhookEndpoint.model_validate(await self._transport.send(request))

    async def get(self, endpoint_id: str) -> WebhookEndpoint:
        request = ApiRequest("GET", f"{_PATH}/{endpoint_id}")
        return WebhookEndpoint.model_validate(await self._transport.send(request))

    async def list(self) -> list[WebhookEndpoint]:
        return _ENDPOINTS.validate_python(await self._transport.send(ApiRequest("GET", _PATH)))

    async def delete(self, endpoint_id: str) -> None:
        await self._transport.send(ApiRequest("DELETE", f"{_PATH}/{endpoint_id}"))

    async def disable(self, endpoint_id: str) -> WebhookEndpoint:
        request = _action(endpoint_id, "disable", replay_safe=True)
        return WebhookEndpoint.model_validate(await self._transport.send(request))

    async def enable(self, endpoint_id: str) -> WebhookEndpoint:
        request = _action(endpoint_id, "enable", replay_safe=True)
        return WebhookEndpoint.model_validate(await self._transport.send(request))

    async def rotate_secret(self, endpoint_id: str) -> WebhookEndpoint:
        request = _action(endpoint_id, "rotate-secret", replay_safe=False)
        return WebhookEndpoint.model_validate(await self._transport.send(request))

    async def deliveries(
        self, endpoint_id: str, *, limit: int | None = None
    ) -> AsyncPage[Delivery]:
        request = _deliveries(endpoint_id, limit)
        send = self._transport.send
        return AsyncPage(
            await send(request), request=request, parse=Delivery.model_validate, send=send
        )
