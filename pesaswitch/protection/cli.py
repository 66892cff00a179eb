"""`pesaswitch protection …`: see and lift the STK abuse blocks of an account."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from pesaswitch.accounts.service import get_account
from pesaswitch.kit.clock import utcnow
from pesaswitch.kit.commands import echo_json, in_transaction, load_settings
from pesaswitch.kit.phones import normalize_mpesa_phone
from pesaswitch.protection import admin
from pesaswitch.protection.stk import StkPolicy

protection_app = typer.Typer(no_args_is_help=True, help="STK abuse protection: blocks, lifts.")

AccountOpt = Annotated[str, typer.Option(help="Account id (acct_…).")]
PhoneOpt = Annotated[str | None, typer.Option(help="One phone number, in any Kenyan form.")]


@protection_app.command("status")
def status(account: AccountOpt, phone: PhoneOpt = None) -> None:
    """The account's restriction and its blocked numbers (or one number) with their runs."""
    settings = load_settings()
    policy = StkPolicy.from_settings(settings)

    async def work(session: AsyncSession) -> dict[str, Any]:
        await get_account(session, account_id=account)
        number = normalize_mpesa_phone(phone) if phone is not None else None
        return await admin.stk_status(
            session, policy=policy, account_id=account, phone=number, now=utcnow()
        )

    echo_json(in_transaction(settings, work))


@protection_app.command("lift")
def lift(account: AccountOpt, phone: PhoneOpt = None) -> None:
    """With --phone, unblock that number and restart its run; otherwise lift the account's
    restriction (failures before now stop counting toward the window)."""
    settings = load_settings()
    policy = StkPolicy.from_settings(settings)

    async def work(session: AsyncSession) -> dict[str, Any]:
        await get_account(session, account_id=account)
        now = utcnow()
        if phone is not None:
            number = normalize_mpesa_phone(phone)
            await admin.lift_phone_block(session, account_id=account, phone=number, now=now)
        else:
            number = None
            await admin.lift_account_restriction(session, account_id=account, now=now)
        return await admin.stk_status(
            session, policy=policy, account_id=account, phone=number, now=now
        )

    echo_json(in_transaction(settings, work))
