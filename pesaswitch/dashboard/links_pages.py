"""The merchant's payment links (create, list, switch off)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

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
from pesaswitch.errors import ValidationFailed
from pesaswitch.links import service as links
from pesaswitch.links.button import button_snippet, pay_url
from pesaswitch.runtime import Runtime, RuntimeDep

router = APIRouter(prefix="/dashboard", include_in_schema=False)


async def _links_page(
    request: Request, runtime: Runtime, viewer: Viewer,
    error: ValidationFailed | None = None, status_code: int = 200,
) -> Response:  # fmt: skip
    async with read_sessions(runtime.sessionmaker)() as session:
        rows = await links.list_links(session, account_id=own_account(viewer))
        context = await chrome(session, viewer)
    public_url = runtime.settings.effective_public_url
    buttons = {
        link.id: (pay_url(public_url, link), button_snippet(public_url, link)) for link in rows
    }
    return render(
        request, "links.html", status_code=status_code, links=rows, error=error,
        buttons=buttons, **context,
    )  # fmt: skip


@router.get("/links")
async def links_page(request: Request, runtime: RuntimeDep, viewer: ViewerDep) -> Response:
    return await _links_page(request, runtime, viewer)


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
    return await _links_page(request, runtime, viewer, error=error, status_code=422)


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
