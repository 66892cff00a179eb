"""The merchant's payment links (create, list, switch off)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from pesaswitch.dashboard.web import (
    ViewerDep,
    back_to,
    checked_form,
    chrome,
    field,
    own_account,
    render,
)
from pesaswitch.db import transaction
from pesaswitch.errors import ValidationFailed
from pesaswitch.links import service as links
from pesaswitch.runtime import RuntimeDep

router = APIRouter(prefix="/dashboard", include_in_schema=False)


@router.get("/links")
async def links_page(request: Request, runtime: RuntimeDep, viewer: ViewerDep) -> Response:
    account_id = own_account(viewer)
    async with runtime.sessionmaker() as session:
        rows = await links.list_links(session, account_id=account_id)
        context = await chrome(session, viewer)
    return render(request, "links.html", links=rows, **context)


@router.post("/links")
async def create_link(request: Request, runtime: RuntimeDep, viewer: ViewerDep) -> Response:
    form = await checked_form(request, runtime, viewer)
    account_id = own_account(viewer)
    raw_amount = field(form, "amount", 12)
    settings = runtime.settings
    error: ValidationFailed | None = None
    try:
        if raw_amount and not raw_amount.isdigit():
            raise ValidationFailed("The amount is a whole number of shillings, or empty")
        async with transaction(runtime.sessionmaker) as session:
            link = await links.create_link(
                session, account_id=account_id, description=field(form, "description", 300),
                amount=int(raw_amount) if raw_amount else None,
                min_amount=settings.stk_min_amount, max_amount=settings.stk_max_amount,
            )  # fmt: skip
    except ValidationFailed as exc:
        error = exc
    if error is None:
        return back_to("/dashboard/links", f"Link created: /pay/{link.slug}")
    async with runtime.sessionmaker() as session:
        rows = await links.list_links(session, account_id=account_id)
        context = await chrome(session, viewer)
    return render(request, "links.html", status_code=422, links=rows, error=error, **context)


@router.post("/links/{link_id}/active")
async def toggle_link(
    link_id: str, request: Request, runtime: RuntimeDep, viewer: ViewerDep
) -> Response:
    form = await checked_form(request, runtime, viewer)
    active = field(form, "active") == "true"
    async with transaction(runtime.sessionmaker) as session:
        await links.set_active(
            session, account_id=own_account(viewer), link_id=link_id, active=active
        )
    return back_to("/dashboard/links", "Link switched on" if active else "Link switched off")
