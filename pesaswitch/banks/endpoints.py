"""GET /v1/bank-paybills: the banks a bank channel can point at."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel

from pesaswitch.accounts.dependencies import ReadAuth
from pesaswitch.banks.paybills import bank_paybills

router = APIRouter(prefix="/v1", tags=["bank paybills"])


class BankPaybillOut(BaseModel):
    object: Literal["bank_paybill"] = "bank_paybill"
    name: str
    paybill: str
    aliases: list[str]


class BankPaybillList(BaseModel):
    object: Literal["list"] = "list"
    data: list[BankPaybillOut]
    source: str
    retrieved: str


@router.get("/bank-paybills", response_model=BankPaybillList)
async def list_bank_paybills(
    _auth: ReadAuth, q: Annotated[str | None, Query(max_length=100)] = None
) -> BankPaybillList:
    """Search by name, former name or number (``?q=equity``, ``?q=522``)."""
    known = bank_paybills()
    return BankPaybillList(
        data=[
            BankPaybillOut(name=b.name, paybill=b.paybill, aliases=list(b.aliases))
            for b in known.search(q)
        ],
        source=known.source,
        retrieved=known.retrieved,
    )
