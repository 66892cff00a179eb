"""Native API shapes for the balance and the ledger entries of an account.

Amounts are integers in the currency's ledger unit (whole KES; cents for USD). In an
entry's postings, a positive amount is money into that account, a negative one money
out of it: a collection is ``settlement -1000``, ``wallet +985`` and ``fees +15``; a
payout reserve ``wallet -1015`` and ``payout_hold +1015``. Every entry's postings sum to
zero: the merchant's own lines (``wallet``, ``payout_hold``) and the operator's side by
kind only (``settlement``, ``fees``: no shortcode or internal account).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from pesaswitch.kit.clock import isoformat
from pesaswitch.ledger.models import Currency
from pesaswitch.ledger.service import EntryLines


class Amount(BaseModel):
    currency: str
    amount: int


class BalanceOut(BaseModel):
    object: Literal["balance"] = "balance"
    available: list[Amount] = Field(description="Funds in the wallet, free to pay out.")
    reserved: list[Amount] = Field(description="Funds held for payouts in flight.")

    @classmethod
    def render(cls, balances: dict[str, dict[str, int]]) -> BalanceOut:
        # KES is always shown, at 0 before the first collection.
        currencies = sorted({Currency.KES.value, *balances})
        empty = {"available": 0, "reserved": 0}
        return cls(
            available=[
                Amount(currency=c, amount=balances.get(c, empty)["available"]) for c in currencies
            ],
            reserved=[
                Amount(currency=c, amount=balances.get(c, empty)["reserved"]) for c in currencies
            ],
        )


class PostingOut(BaseModel):
    account: str = Field(
        description="wallet or payout_hold (the account's own); settlement or fees (the "
        "operator's side of the entry, by kind)"
    )
    currency: str
    amount: int = Field(description="Positive: into the account; negative: out of it.")


class LedgerEntryOut(BaseModel):
    object: Literal["ledger_entry"] = "ledger_entry"
    id: str
    kind: str
    description: str
    reference: str | None = Field(description="The payment or payout the entry is about.")
    created_at: str | None
    postings: list[PostingOut]

    @classmethod
    def render(cls, item: EntryLines) -> LedgerEntryOut:
        entry = item.entry
        # A wallet is several rows (ledger/service.py, "Shards"); the merchant sees one
        # wallet line per entry, as the movement it is.
        merged: dict[tuple[str, str], int] = {}
        for posting, account in item.lines:
            side = (account.kind, account.currency)
            merged[side] = merged.get(side, 0) + posting.amount
        for kind, currency, amount in item.balancing:
            side = (kind, currency)
            merged[side] = merged.get(side, 0) + amount
        return cls(
            id=entry.id,
            kind=entry.kind,
            description=entry.description,
            reference=entry.reference,
            created_at=isoformat(entry.created_at),
            postings=[
                PostingOut(account=kind, currency=currency, amount=amount)
                for (kind, currency), amount in merged.items()
            ],
        )
