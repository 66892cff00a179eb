"""`pesaswitch webhooks …` and `pesaswitch events …`: webhook actions for operators."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from pesaswitch.accounts.models import Environment
from pesaswitch.accounts.service import get_account
from pesaswitch.config import Settings
from pesaswitch.kit.commands import echo_json, in_transaction, load_settings
from pesaswitch.kit.pagination import PageParams
from pesaswitch.webhooks import service
from pesaswitch.webhooks.schemas import DeliveryOut, EndpointOut, EventOut

webhooks_app = typer.Typer(no_args_is_help=True, help="Webhook endpoints and deliveries.")
events_app = typer.Typer(no_args_is_help=True, help="Events and redelivery.")

T = TypeVar("T")
AccountOpt = Annotated[str, typer.Option(help="Account id (acct_…).")]


def _run(work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    return in_transaction(load_settings(), work)


@webhooks_app.command("add")
def add(
    account: AccountOpt,
    url: Annotated[str, typer.Option(help="Where to POST events.")],
    event: Annotated[
        list[str] | None, typer.Option(help="Event type; repeat. Default all.")
    ] = None,
    description: Annotated[str, typer.Option()] = "",
) -> None:
    """Register an endpoint; prints its whsec_ secret once."""

    async def work(session: AsyncSession) -> dict[str, Any]:
        settings = Settings()
        acct = await get_account(session, account_id=account)
        environment = Environment(acct.environment)
        created = await service.create_endpoint(
            session, secret_key=settings.secret_key, account_id=account, environment=environment,
            url=url, event_types=event, description=description,
            allow_private=service.allow_private_urls(
                environment, settings.sandbox_allow_private_urls
            ),
        )  # fmt: skip
        return EndpointOut.render(created.endpoint, created.secret).model_dump()

    echo_json(_run(work))


@webhooks_app.command("list")
def list_(account: AccountOpt) -> None:
    async def work(session: AsyncSession) -> list[dict[str, Any]]:
        rows = await service.list_endpoints(session, account_id=account)
        return [EndpointOut.render(e).model_dump() for e in rows]

    echo_json(_run(work))


@webhooks_app.command("deliveries")
def deliveries(
    account: AccountOpt,
    endpoint_id: Annotated[str, typer.Argument(help="Endpoint id (we_…).")],
    limit: Annotated[int, typer.Option(min=1, max=100)] = 20,
) -> None:
    """Recent deliveries to an endpoint, with every attempt."""

    async def work(session: AsyncSession) -> list[dict[str, Any]]:
        await service.get_endpoint(session, account_id=account, endpoint_id=endpoint_id)
        rows = await service.list_deliveries(
            session, account_id=account, page=PageParams(limit=limit), endpoint_id=endpoint_id
        )
        return [DeliveryOut.render(d, a).model_dump() for d, a in rows[:limit]]

    echo_json(_run(work))


@events_app.command("list")
def events_list(
    account: AccountOpt, limit: Annotated[int, typer.Option(min=1, max=100)] = 20
) -> None:
    async def work(session: AsyncSession) -> list[dict[str, Any]]:
        rows = await service.list_events(session, account_id=account, page=PageParams(limit=limit))
        return [EventOut.render(e).model_dump() for e in rows[:limit]]

    echo_json(_run(work))


@events_app.command("redeliver")
def redeliver(
    account: AccountOpt,
    event_id: Annotated[str, typer.Argument(help="Event id (evt_…).")],
    endpoint: Annotated[str | None, typer.Option(help="Only to this endpoint (we_…).")] = None,
) -> None:
    """Queue a fresh delivery of an event (same webhook-id as the first time)."""

    async def work(session: AsyncSession) -> list[dict[str, Any]]:
        rows = await service.redeliver(
            session, account_id=account, event_id=event_id, endpoint_id=endpoint
        )
        return [DeliveryOut.render(d, []).model_dump() for d in rows]

    echo_json(_run(work))
