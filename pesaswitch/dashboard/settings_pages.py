"""API keys, channels and webhook endpoints (with their deliveries and redelivery)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from pesaswitch.accounts import service as accounts
from pesaswitch.accounts.models import Environment, KeyKind
from pesaswitch.accounts.service import IssuedKey
from pesaswitch.c2b import service as c2b_service
from pesaswitch.dashboard.security import Viewer
from pesaswitch.dashboard.web import (
    ViewerDep,
    back_to,
    checked_form,
    chrome,
    field,
    own_account,
    render,
)
from pesaswitch.db import read_sessions, transaction
from pesaswitch.errors import PesaswitchError
from pesaswitch.kit.pagination import PageParams
from pesaswitch.runtime import Runtime, RuntimeDep
from pesaswitch.webhooks import service as webhooks

router = APIRouter(prefix="/dashboard", include_in_schema=False)


async def _keys_page(
    request: Request, runtime: Runtime, viewer: Viewer, issued: IssuedKey | None = None
) -> Response:
    async with read_sessions(runtime.sessionmaker)() as session:
        rows = await accounts.list_api_keys(session, account_id=own_account(viewer))
        context = await chrome(session, viewer)
    return render(request, "keys.html", keys=rows, issued=issued, **context)


@router.get("/keys")
async def keys_page(request: Request, runtime: RuntimeDep, viewer: ViewerDep) -> Response:
    return await _keys_page(request, runtime, viewer)


@router.post("/keys")
async def create_key(request: Request, runtime: RuntimeDep, viewer: ViewerDep) -> Response:
    form = await checked_form(request, runtime, viewer)
    account_id = own_account(viewer)
    kind = KeyKind.PUBLIC if field(form, "kind") == "public" else KeyKind.SECRET
    async with transaction(runtime.sessionmaker) as session:
        account = await accounts.get_account(session, account_id=account_id)
        issued = await accounts.create_api_key(
            session, secret_key=runtime.settings.secret_key, account=account, kind=kind
        )
    # Shown in this response only (never stored, never redirected through a URL).
    return await _keys_page(request, runtime, viewer, issued)


@router.post("/keys/{key_id}/revoke")
async def revoke_key(
    key_id: str, request: Request, runtime: RuntimeDep, viewer: ViewerDep
) -> Response:
    await checked_form(request, runtime, viewer)
    account_id = own_account(viewer)
    async with transaction(runtime.sessionmaker) as session:
        row = await accounts.revoke_api_key(session, key_id=key_id, account_id=account_id)
    return back_to("/dashboard/keys", f"The key ending {row.last4} is revoked")


@router.get("/channels")
async def channels_page(request: Request, runtime: RuntimeDep, viewer: ViewerDep) -> Response:
    account_id = own_account(viewer)
    async with read_sessions(runtime.sessionmaker)() as session:
        rows = await accounts.list_channels(session, account_id=account_id)
        c2b = await c2b_service.registrations_by_channel(session, account_id=account_id)
        context = await chrome(session, viewer)
    return render(request, "channels.html", channels=rows, c2b=c2b, **context)


async def _webhooks_page(
    request: Request, runtime: Runtime, viewer: Viewer, status_code: int = 200, **extra: Any
) -> Response:
    async with read_sessions(runtime.sessionmaker)() as session:
        endpoints = await webhooks.list_endpoints(session, account_id=own_account(viewer))
        context = await chrome(session, viewer)
    extra.setdefault("created", None)
    return render(
        request, "webhooks.html", status_code=status_code, endpoints=endpoints,
        **extra, **context,
    )  # fmt: skip


@router.get("/webhooks")
async def webhooks_page(request: Request, runtime: RuntimeDep, viewer: ViewerDep) -> Response:
    return await _webhooks_page(request, runtime, viewer)


@router.post("/webhooks")
async def create_endpoint(request: Request, runtime: RuntimeDep, viewer: ViewerDep) -> Response:
    form = await checked_form(request, runtime, viewer)
    account_id = own_account(viewer)
    error: PesaswitchError | None = None
    created = None
    try:
        async with transaction(runtime.sessionmaker) as session:
            account = await accounts.get_account(session, account_id=account_id)
            environment = Environment(account.environment)
            created = await webhooks.create_endpoint(
                session, secret_key=runtime.settings.secret_key, account_id=account_id,
                environment=environment, url=field(form, "url", 2000), event_types=None,
                description=field(form, "description", 500),
                allow_private=webhooks.allow_private_urls(
                    environment, runtime.settings.sandbox_allow_private_urls
                ),
            )  # fmt: skip
    except PesaswitchError as exc:
        if exc.status_code >= 500:
            raise
        error = exc
    return await _webhooks_page(
        request, runtime, viewer, status_code=error.status_code if error else 201,
        created=created, error=error, url=field(form, "url", 2000),
    )  # fmt: skip


@router.get("/webhooks/{endpoint_id}")
async def endpoint_page(
    endpoint_id: str, request: Request, runtime: RuntimeDep, viewer: ViewerDep,
    after: Annotated[str | None, Query(max_length=40)] = None,
) -> Response:  # fmt: skip
    account_id = own_account(viewer)
    async with read_sessions(runtime.sessionmaker)() as session:
        endpoint = await webhooks.get_endpoint(
            session, account_id=account_id, endpoint_id=endpoint_id
        )
        deliveries = await webhooks.list_deliveries(
            session, account_id=account_id, endpoint_id=endpoint.id,
            page=PageParams(limit=50, starting_after=after),
        )  # fmt: skip
        context = await chrome(session, viewer)
    next_after = deliveries[49][0].id if len(deliveries) > 50 else None
    return render(
        request, "webhook.html", endpoint=endpoint, deliveries=deliveries[:50],
        next_after=next_after, first_page=after is None, **context,
    )  # fmt: skip


@router.post("/webhooks/{endpoint_id}/enabled")
async def toggle_endpoint(
    endpoint_id: str, request: Request, runtime: RuntimeDep, viewer: ViewerDep
) -> Response:
    form = await checked_form(request, runtime, viewer)
    account_id = own_account(viewer)
    enable = field(form, "enabled") == "true"
    async with transaction(runtime.sessionmaker) as session:
        await webhooks.set_enabled(
            session, account_id=account_id, endpoint_id=endpoint_id, enabled=enable
        )
    return back_to(
        f"/dashboard/webhooks/{endpoint_id}", "Endpoint enabled" if enable else "Endpoint disabled"
    )


@router.post("/events/{event_id}/redeliver")
async def redeliver(
    event_id: str, request: Request, runtime: RuntimeDep, viewer: ViewerDep
) -> Response:
    """Queue a fresh delivery of an event (same webhook-id) to one endpoint or to all."""
    form = await checked_form(request, runtime, viewer)
    account_id = own_account(viewer)
    endpoint_id = field(form, "endpoint_id", 40) or None
    back = field(form, "back", 200)
    if not back.startswith("/dashboard/") or "//" in back[1:]:
        back = "/dashboard/webhooks"
    async with transaction(runtime.sessionmaker) as session:
        queued = await webhooks.redeliver(
            session, account_id=account_id, event_id=event_id, endpoint_id=endpoint_id
        )
    return back_to(back, f"Queued {len(queued)} new deliver{'y' if len(queued) == 1 else 'ies'}")
