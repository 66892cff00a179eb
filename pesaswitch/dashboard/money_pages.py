"""Payouts, and the wallet: balances and ledger entries."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from pesaswitch.dashboard.web import ViewerDep, chrome, own_account, render
from pesaswitch.db import read_sessions
from pesaswitch.kit.pagination import PageParams
from pesaswitch.ledger import service as ledger
from pesaswitch.ledger.schemas import LedgerEntryOut
from pesaswitch.payouts import service as payouts
from pesaswitch.runtime import RuntimeDep

router = APIRouter(prefix="/dashboard", include_in_schema=False)

PAGE = 50
After = Annotated[str | None, Query(max_length=40)]


@router.get("/payouts")
async def payout_list(
    request: Request, runtime: RuntimeDep, viewer: ViewerDep, after: After = None
) -> Response:
    account_id = own_account(viewer)
    async with read_sessions(runtime.sessionmaker)() as session:
        rows = await payouts.list_payouts(
            session, account_id=account_id, page=PageParams(limit=PAGE, starting_after=after)
        )
        context = await chrome(session, viewer)
    next_after = rows[PAGE - 1].id if len(rows) > PAGE else None
    return render(
        request, "payouts.html", payouts=rows[:PAGE], next_after=next_after,
        first_page=after is None, **context,
    )  # fmt: skip


@router.get("/wallet")
async def wallet(
    request: Request, runtime: RuntimeDep, viewer: ViewerDep, after: After = None
) -> Response:
    account_id = own_account(viewer)
    async with read_sessions(runtime.sessionmaker)() as session:
        balances = await ledger.balances(session, account_id=account_id)
        entries = await ledger.list_entries(
            session, account_id=account_id, page=PageParams(limit=PAGE, starting_after=after)
        )
        context = await chrome(session, viewer)
    next_after = entries[PAGE - 1].entry.id if len(entries) > PAGE else None
    # One line per kind of account, as the API shows it (a wallet is several shards).
    lines = [(e.entry, LedgerEntryOut.render(e).postings) for e in entries[:PAGE]]
    return render(
        request, "wallet.html", balances=balances, entries=lines,
        next_after=next_after, first_page=after is None, **context,
    )  # fmt: skip
