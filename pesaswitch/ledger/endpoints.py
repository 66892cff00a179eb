"""Native v1 endpoints: the account's balance and its ledger entries."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from pesaswitch.accounts.dependencies import ReadAuth
from pesaswitch.db import read_sessions
from pesaswitch.kit.pagination import Page, PageParams, make_page, page_params
from pesaswitch.ledger import service
from pesaswitch.ledger.schemas import BalanceOut, LedgerEntryOut
from pesaswitch.runtime import RuntimeDep

router = APIRouter(prefix="/v1", tags=["ledger"])
PageDep = Annotated[PageParams, Depends(page_params)]


@router.get("/balance", response_model=BalanceOut, summary="The wallet's balance")
async def read_balance(runtime: RuntimeDep, auth: ReadAuth) -> BalanceOut:
    async with read_sessions(runtime.sessionmaker)() as session:
        return BalanceOut.render(await service.balances(session, account_id=auth.account_id))


@router.get(
    "/ledger/entries",
    response_model=Page[LedgerEntryOut],
    summary="Ledger entries on the account's wallet and payout hold, newest first",
)
async def list_ledger_entries(
    runtime: RuntimeDep, auth: ReadAuth, page: PageDep
) -> Page[LedgerEntryOut]:
    async with read_sessions(runtime.sessionmaker)() as session:
        rows = await service.list_entries(session, account_id=auth.account_id, page=page)
        return make_page(
            [LedgerEntryOut.render(row) for row in rows],
            limit=page.limit,
            cursor_of=lambda e: e.id,
        )
