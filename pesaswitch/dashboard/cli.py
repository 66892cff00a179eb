"""`pesaswitch users …`: people who sign in to the dashboard."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from pesaswitch.dashboard import users
from pesaswitch.dashboard.models import User
from pesaswitch.kit.commands import echo_json, in_transaction, load_settings

users_app = typer.Typer(no_args_is_help=True, help="Dashboard users.")


# bandit B107: the empty default means "ask for it" (typer prompts), never a password.
@users_app.command("create")
def create(  # nosec B107
    email: Annotated[str, typer.Option(help="Sign-in email.")],
    account: Annotated[
        str | None, typer.Option(help="The merchant account (acct_…) the user belongs to.")
    ] = None,
    staff: Annotated[
        bool, typer.Option("--staff", help="An operator who sees every account.")
    ] = False,
    password: Annotated[
        str,
        typer.Option(
            prompt=True, confirmation_prompt=True, hide_input=True,
            envvar="PESASWITCH_NEW_USER_PASSWORD",
            help="At least 10 characters; asked for when not given "
            "(or PESASWITCH_NEW_USER_PASSWORD).",
        ),
    ] = "",
) -> None:  # fmt: skip
    """Create a user who signs in at /dashboard."""
    settings = load_settings()

    async def work(session: AsyncSession) -> dict[str, Any]:
        user = await users.create_user(
            session, email=email, password=password, account_id=account, is_staff=staff
        )
        return {"id": user.id, "email": user.email, "account_id": user.account_id,
                "staff": user.is_staff}  # fmt: skip

    echo_json(in_transaction(settings, work))


@users_app.command("list")
def list_users() -> None:
    settings = load_settings()

    async def work(session: AsyncSession) -> list[dict[str, Any]]:
        rows = await session.scalars(select(User).order_by(User.created_at))
        return [
            {"id": u.id, "email": u.email, "account_id": u.account_id, "staff": u.is_staff,
             "locked_until": u.locked_until}
            for u in rows
        ]  # fmt: skip

    echo_json(in_transaction(settings, work))
