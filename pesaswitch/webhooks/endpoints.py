"""Native v1 endpoints for webhook endpoints, events and deliveries."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response

from pesaswitch.accounts.dependencies import ReadAuth, WriteAuth
from pesaswitch.db import transaction
from pesaswitch.kit.pagination import Page, PageParams, make_page, page_params
from pesaswitch.runtime import RuntimeDep
from pesaswitch.webhooks import service
from pesaswitch.webhooks.schemas import (
    CallbackSecretOut,
    DeliveryOut,
    EndpointCreate,
    EndpointOut,
    EventOut,
    RedeliverIn,
)

router = APIRouter(prefix="/v1", tags=["webhooks"])
PageDep = Annotated[PageParams, Depends(page_params)]


@router.post("/webhook-endpoints", status_code=201, response_model=EndpointOut)
async def create_endpoint(
    data: EndpointCreate, runtime: RuntimeDep, auth: WriteAuth
) -> EndpointOut:
    settings = runtime.settings
    async with transaction(runtime.sessionmaker) as session:
        created = await service.create_endpoint(
            session, secret_key=settings.secret_key, account_id=auth.account_id,
            environment=auth.environment, url=data.url, event_types=data.events,
            description=data.description,
            allow_private=service.allow_private_urls(
                auth.environment, settings.sandbox_allow_private_urls
            ),
        )  # fmt: skip
        return EndpointOut.render(created.endpoint, created.secret)


@router.get("/webhook-endpoints", response_model=list[EndpointOut])
async def list_endpoints(runtime: RuntimeDep, auth: ReadAuth) -> list[EndpointOut]:
    async with runtime.sessionmaker() as session:
        rows = await service.list_endpoints(session, account_id=auth.account_id)
        return [EndpointOut.render(e) for e in rows]


@router.get("/webhook-endpoints/{endpoint_id}", response_model=EndpointOut)
async def read_endpoint(endpoint_id: str, runtime: RuntimeDep, auth: ReadAuth) -> EndpointOut:
    async with runtime.sessionmaker() as session:
        endpoint = await service.get_endpoint(
            session, account_id=auth.account_id, endpoint_id=endpoint_id
        )
        return EndpointOut.render(endpoint)


@router.delete("/webhook-endpoints/{endpoint_id}", status_code=204)
async def delete_endpoint(endpoint_id: str, runtime: RuntimeDep, auth: WriteAuth) -> Response:
    async with transaction(runtime.sessionmaker) as session:
        await service.delete_endpoint(session, account_id=auth.account_id, endpoint_id=endpoint_id)
    return Response(status_code=204)


@router.post("/webhook-endpoints/{endpoint_id}/disable", response_model=EndpointOut)
async def disable_endpoint(endpoint_id: str, runtime: RuntimeDep, auth: WriteAuth) -> EndpointOut:
    async with transaction(runtime.sessionmaker) as session:
        endpoint = await service.set_enabled(
            session, account_id=auth.account_id, endpoint_id=endpoint_id, enabled=False
        )
        return EndpointOut.render(endpoint)


@router.post("/webhook-endpoints/{endpoint_id}/enable", response_model=EndpointOut)
async def enable_endpoint(endpoint_id: str, runtime: RuntimeDep, auth: WriteAuth) -> EndpointOut:
    async with transaction(runtime.sessionmaker) as session:
        endpoint = await service.set_enabled(
            session, account_id=auth.account_id, endpoint_id=endpoint_id, enabled=True
        )
        return EndpointOut.render(endpoint)


@router.post("/webhook-endpoints/{endpoint_id}/rotate-secret", response_model=EndpointOut)
async def rotate_secret(endpoint_id: str, runtime: RuntimeDep, auth: WriteAuth) -> EndpointOut:
    async with transaction(runtime.sessionmaker) as session:
        rotated = await service.rotate_secret(
            session, secret_key=runtime.settings.secret_key, account_id=auth.account_id,
            endpoint_id=endpoint_id,
        )  # fmt: skip
        return EndpointOut.render(rotated.endpoint, rotated.secret)


@router.get("/webhook-endpoints/{endpoint_id}/deliveries", response_model=Page[DeliveryOut])
async def list_endpoint_deliveries(
    endpoint_id: str, runtime: RuntimeDep, auth: ReadAuth, page: PageDep
) -> Page[DeliveryOut]:
    async with runtime.sessionmaker() as session:
        await service.get_endpoint(session, account_id=auth.account_id, endpoint_id=endpoint_id)
        rows = await service.list_deliveries(
            session, account_id=auth.account_id, page=page, endpoint_id=endpoint_id
        )
        return make_page(
            [DeliveryOut.render(d, a) for d, a in rows], limit=page.limit, cursor_of=lambda d: d.id
        )


@router.get("/events", response_model=Page[EventOut])
async def list_events(
    runtime: RuntimeDep,
    auth: ReadAuth,
    page: PageDep,
    type: Annotated[str | None, Query(max_length=40)] = None,
) -> Page[EventOut]:
    async with runtime.sessionmaker() as session:
        rows = await service.list_events(
            session, account_id=auth.account_id, page=page, event_type=type
        )
        return make_page(
            [EventOut.render(e) for e in rows], limit=page.limit, cursor_of=lambda e: e.id
        )


@router.get("/events/{event_id}", response_model=EventOut)
async def read_event(event_id: str, runtime: RuntimeDep, auth: ReadAuth) -> EventOut:
    async with runtime.sessionmaker() as session:
        event = await service.get_event(session, account_id=auth.account_id, event_id=event_id)
        return EventOut.render(event)


@router.get("/events/{event_id}/deliveries", response_model=Page[DeliveryOut])
async def list_event_deliveries(
    event_id: str, runtime: RuntimeDep, auth: ReadAuth, page: PageDep
) -> Page[DeliveryOut]:
    async with runtime.sessionmaker() as session:
        await service.get_event(session, account_id=auth.account_id, event_id=event_id)
        rows = await service.list_deliveries(
            session, account_id=auth.account_id, page=page, event_id=event_id
        )
        return make_page(
            [DeliveryOut.render(d, a) for d, a in rows], limit=page.limit, cursor_of=lambda d: d.id
        )


@router.post("/events/{event_id}/redeliver", status_code=202, response_model=list[DeliveryOut])
async def redeliver_event(
    event_id: str, runtime: RuntimeDep, auth: WriteAuth, data: RedeliverIn | None = None
) -> list[DeliveryOut]:
    async with transaction(runtime.sessionmaker) as session:
        deliveries = await service.redeliver(
            session, account_id=auth.account_id, event_id=event_id,
            endpoint_id=data.endpoint_id if data else None,
        )  # fmt: skip
        return [DeliveryOut.render(d, []) for d in deliveries]


@router.get("/callback-secret", response_model=CallbackSecretOut)
async def read_callback_secret(runtime: RuntimeDep, auth: WriteAuth) -> CallbackSecretOut:
    """The whsec_ secret that signs notifications sent to a payment's callback_url."""
    async with transaction(runtime.sessionmaker) as session:
        secret = await service.callback_secret(
            session, secret_key=runtime.settings.secret_key, account_id=auth.account_id
        )
        return CallbackSecretOut(secret=secret)
