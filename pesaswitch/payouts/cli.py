"""``pesaswitch fx set USD 129.50`` / ``fx list``: the operator's exchange rates."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from pesaswitch.kit.commands import echo_json, in_transaction, load_settings
from pesaswitch.payouts import fx

fx_app = typer.Typer(no_args_is_help=True, help="Exchange rates for USD payouts.")


@fx_app.command("set")
def set_rate(
    currency: Annotated[str, typer.Argument(help="USD")],
    kes_per_unit: Annotated[str, typer.Argument(help="KES for one unit, e.g. 129.50")],
) -> None:
    async def work(session: AsyncSession) -> dict[str, Any]:
        row = await fx.set_rate(session, currency=currency, kes_per_unit=kes_per_unit)
        return {"currency": row.currency, "kes_per_unit": row.kes_per_unit}

    echo_json(in_transaction(load_settings(), work))


@fx_app.command("list")
def list_rates() -> None:
    async def work(session: AsyncSession) -> list[dict[str, Any]]:
        rows = await fx.list_rates(session)
        return [{"currency": r.currency, "kes_per_unit": r.kes_per_unit,
                 "updated_at": str(r.updated_at)} for r in rows]  # fmt: skip

    echo_json(in_transaction(load_settings(), work))
