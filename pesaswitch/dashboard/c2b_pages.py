"""The channels page's C2B button: register a channel's confirmation and validation URLs
with Daraja (the same as ``POST /v1/channels/{id}/c2b/register``). Another account's
channel is not found (404), as on every dashboard action; a refusal by the gateway's
rules or by Daraja comes back to the channels page as a notice."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from pesaswitch.c2b import flows
from pesaswitch.dashboard.web import ViewerDep, back_to, checked_form, own_account
from pesaswitch.errors import ChannelNotFound, PesaswitchError
from pesaswitch.runtime import RuntimeDep

router = APIRouter(prefix="/dashboard", include_in_schema=False)


@router.post("/channels/{channel_id}/c2b/register")
async def register_c2b(
    channel_id: int, request: Request, runtime: RuntimeDep, viewer: ViewerDep
) -> Response:
    await checked_form(request, runtime, viewer)
    try:
        # Staff are the operator: they may give the gateway's own paybill to an account.
        row = await flows.register_channel(
            runtime, account_id=own_account(viewer), channel_id=channel_id,
            operator=viewer.is_staff,
        )  # fmt: skip
    except ChannelNotFound:
        raise
    except PesaswitchError as exc:
        return back_to("/dashboard/channels", f"C2B registration failed: {exc.detail}")
    return back_to(
        "/dashboard/channels", f"C2B URLs registered for channel {channel_id} ({row.shortcode})"
    )
