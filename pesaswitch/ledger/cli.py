"""`pesaswitch ledger …`: the operator's view of the ledger."""

from __future__ import annotations

from dataclasses import dataclass

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from pesaswitch.kit.commands import in_transaction, load_settings
from pesaswitch.ledger.service import check_invariants, ledger_counts

ledger_app = typer.Typer(no_args_is_help=True, help="The double-entry ledger.")


@dataclass(frozen=True, slots=True)
class CheckReport:
    breaches: list[str]
    counts: dict[str, int]


@ledger_app.command("check")
def check() -> None:
    """Check every ledger invariant; exit 1 and list the breaches when any fails."""
    settings = load_settings()

    async def work(session: AsyncSession) -> CheckReport:
        return CheckReport(await check_invariants(session), await ledger_counts(session))

    report = in_transaction(settings, work)
    if report.breaches:
        for breach in report.breaches:
            typer.echo(f"breach: {breach}", err=True)
        typer.echo(f"ledger broken: {len(report.breaches)} breach(es)", err=True)
        raise typer.Exit(code=1)
    counts = report.counts
    typer.echo(
        f"ledger ok: {counts['entries']} entries, {counts['postings']} postings, "
        f"{counts['accounts']} accounts"
    )
