"""``pesaswitch channels register-c2b CHANNEL``, ``pesaswitch c2b sweep`` and
``pesaswitch c2b assign CHANNEL``.

The first two talk to Daraja (or a standalone simulator). The embedded simulator lives
inside the server process, so against it use the dashboard's button or the API instead.
``assign`` only writes the database. All of them act as the operator: they may give
the gateway's own paybill to an account (``service.configure``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

import typer
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from pesaswitch.accounts.models import Channel
from pesaswitch.c2b import flows, service
from pesaswitch.c2b.schemas import C2BSettingsIn, C2BSettingsOut
from pesaswitch.errors import ChannelNotFound, PesaswitchError
from pesaswitch.kit.commands import echo_json, in_transaction, load_settings
from pesaswitch.kit.ids import is_row_id
from pesaswitch.runtime import Runtime

c2b_app = typer.Typer(no_args_is_help=True, help="C2B: customers paying a till or paybill.")

T = TypeVar("T")


def _with_runtime(work: Callable[[Runtime, str], Awaitable[T]], channel_id: int) -> T:
    from pesaswitch.app import build_runtime  # the app imports this package

    settings = load_settings()
    if settings.embedded_simulator:
        typer.echo(
            "The embedded simulator lives in the server process: use the dashboard's "
            "“Register C2B URLs” button or POST /v1/channels/{id}/c2b/register, or run "
            "`pesaswitch simulator` and set PESASWITCH_DARAJA_BASE_URL to it.",
            err=True,
        )
        raise typer.Exit(code=2)

    async def main() -> T:
        runtime = build_runtime(settings)
        try:
            async with runtime.sessionmaker() as session:
                account_id = await session.scalar(
                    select(Channel.account_id).where(Channel.id == channel_id)
                )
            if account_id is None:
                raise ChannelNotFound(f"No channel {channel_id}")
            return await work(runtime, account_id)
        finally:
            await runtime.aclose()

    try:
        return asyncio.run(main())
    except PesaswitchError as exc:
        typer.echo(f"error: {exc.detail}", err=True)
        raise typer.Exit(code=1) from exc


def register_c2b(channel: Annotated[int, typer.Argument(help="Channel id.")]) -> None:
    """Register the channel's C2B confirmation and validation URLs with Daraja."""

    async def work(runtime: Runtime, account_id: str) -> dict[str, Any]:
        row = await flows.register_channel(
            runtime, account_id=account_id, channel_id=channel, operator=True
        )
        return C2BSettingsOut.render(row).model_dump()

    echo_json(_with_runtime(work, channel))


@c2b_app.command("sweep")
def sweep(channel: Annotated[int, typer.Argument(help="Channel id.")]) -> None:
    """Find the channel's C2B payments whose confirmation never arrived (Pull Transactions,
    the last 48 hours) and record them."""

    async def work(runtime: Runtime, account_id: str) -> dict[str, Any]:
        result = await flows.sweep_channel(runtime, account_id=account_id, channel_id=channel)
        return {"channel_id": result.channel_id, "seen": result.seen,
                "recovered": result.recovered}  # fmt: skip

    echo_json(_with_runtime(work, channel))


@c2b_app.command("assign")
def assign(channel: Annotated[int, typer.Argument(help="Channel id.")]) -> None:
    """Give the channel C2B settings (the defaults), as the operator: the way to give the
    gateway's own paybill to an account's wallet channel. Its account then sets the rules
    and registers the URLs (the API, the dashboard) like for any channel. Talks to no one."""
    settings = load_settings()

    async def work(session: AsyncSession) -> dict[str, Any]:
        found = await session.get(Channel, channel) if is_row_id(channel) else None
        if found is None or not found.is_active:
            raise ChannelNotFound(f"No channel {channel}")
        row = await service.configure(
            session, channel=found, data=C2BSettingsIn(),
            gateway_shortcode=settings.daraja_shortcode,
            reserved=(settings.daraja_b2c_shortcode,), operator=True,
        )  # fmt: skip
        return C2BSettingsOut.render(row).model_dump()

    echo_json(in_transaction(settings, work))
