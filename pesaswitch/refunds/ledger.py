"""The ledger side of a reversal: the collection's credit is taken back in two phases.

    reversal reserve   wallet -(amount - fee)            hold +(amount - fee)
    reversal settle    hold -(amount - fee)   fees -fee   settlement +amount
    reversal release   hold -(amount - fee)              wallet +(amount - fee)

``amount - fee`` is what the collection credited the wallet; ``fee`` is the collection's
fee, which the operator gives back (the collection is undone, so is its fee). Settle
takes the fee from the fees shard and puts the amount on the settlement shard that the
collection used, so it is the exact mirror of the collection entry.

The reserve comes first, before Daraja is asked: a wallet that no longer holds the
credited amount refuses the reversal with ``InsufficientFunds`` and nothing is sent, so
a reversal can never drive a wallet negative. Keys: ``reversal:<id>:reserve|settle|
release``; each step posts once, and settle and release exclude each other.

Refunds need nothing here: they are payouts (``ledger/flows.py``).
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from pesaswitch.errors import InsufficientFunds, LedgerConflict
from pesaswitch.ledger.models import (
    EntryKind,
    JournalEntry,
    LedgerAccount,
    LedgerAccountKind,
    Posting,
)
from pesaswitch.ledger.policy import ledger_policy_of
from pesaswitch.ledger.service import (
    entry_by_key,
    lock_merchant_accounts,
    merchant_accounts,
    post_entry,
    shard_for,
    take_from,
)

CURRENCY = "KES"


def _key(reversal_id: str, step: str) -> str:
    return f"reversal:{reversal_id}:{step}"


async def collection_entry(session: AsyncSession, *, payment_id: str) -> JournalEntry | None:
    """The entry that credited the payment (keyed by receipt, else by payment id)."""
    entry: JournalEntry | None = await session.scalar(
        select(JournalEntry).where(
            JournalEntry.reference == payment_id,
            JournalEntry.kind == EntryKind.COLLECTION.value,
        )
    )
    return entry


async def _collection_postings(
    session: AsyncSession, entry_id: str
) -> list[tuple[LedgerAccount, int]]:
    rows = await session.execute(
        select(LedgerAccount, Posting.amount)
        .join(Posting, Posting.ledger_account_id == LedgerAccount.id)
        .where(Posting.entry_id == entry_id)
    )
    return [(account, int(amount)) for account, amount in rows.tuples()]


async def wallet_credit(session: AsyncSession, *, entry_id: str) -> int:
    """What an entry put in wallets (a collection: its amount less its fee)."""
    postings = await _collection_postings(session, entry_id)
    return sum(n for a, n in postings if a.kind == LedgerAccountKind.WALLET.value)


async def reserve_reversal(
    session: AsyncSession, *, reversal_id: str, account_id: str, wallet_amount: int
) -> None:
    """Move what the collection credited from the wallet to the hold, or raise
    ``InsufficientFunds`` (nothing is written then)."""
    await merchant_accounts(session, account_id=account_id, currency=CURRENCY)
    shards, hold = await lock_merchant_accounts(session, account_id=account_id, currency=CURRENCY)
    available = sum(shard.balance for shard in shards)
    if available < wallet_amount:
        raise InsufficientFunds(
            f"The wallet has {available} {CURRENCY}; the reversal takes back {wallet_amount}",
            currency=CURRENCY,
            available=available,
        )
    postings = [*take_from(shards, wallet_amount), (hold, wallet_amount)]
    await post_entry(
        session, key=_key(reversal_id, "reserve"), kind=EntryKind.REVERSAL_RESERVE.value,
        description=f"Reversal {reversal_id}: reserve {wallet_amount} {CURRENCY}",
        postings=[(a, n) for a, n in postings if n != 0], reference=reversal_id,
    )  # fmt: skip


async def _reserved_hold(
    session: AsyncSession, *, reversal_id: str, account_id: str, other: str
) -> LedgerAccount:
    """The hold, once the reservation is checked. The reserve entry's row is locked (a
    lock, not an update; the merchant's balance rows are not, keeping the global lock
    order of ``post_entry``) so a settle and a release racing queue here."""
    reserve = await session.scalar(
        select(JournalEntry)
        .where(JournalEntry.key == _key(reversal_id, "reserve"))
        .with_for_update()
    )
    if reserve is None:
        raise LedgerConflict(f"Reversal {reversal_id} reserved nothing")
    if await entry_by_key(session, key=_key(reversal_id, other)) is not None:
        raise LedgerConflict(f"Reversal {reversal_id} was already {other}d")
    _wallet, hold = await merchant_accounts(session, account_id=account_id, currency=CURRENCY)
    return hold


async def settle_reversal(
    session: AsyncSession,
    *,
    reversal_id: str,
    payment_id: str,
    account_id: str,
    wallet_amount: int,
) -> None:
    """M-Pesa reversed the collection: undo its postings (the wallet's part from the hold)."""
    hold = await _reserved_hold(
        session, reversal_id=reversal_id, account_id=account_id, other="release"
    )
    collection = await collection_entry(session, payment_id=payment_id)
    if collection is None:
        raise LedgerConflict(f"Payment {payment_id} has no collection entry to reverse")
    postings: list[tuple[LedgerAccount, int]] = [(hold, -wallet_amount)]
    for account, amount in await _collection_postings(session, collection.id):
        if account.kind != LedgerAccountKind.WALLET.value:
            postings.append((account, -amount))  # fees and settlement, on the same shards
    await post_entry(
        session, key=_key(reversal_id, "settle"), kind=EntryKind.REVERSAL_SETTLE.value,
        description=f"Reversal {reversal_id} of {payment_id}: collection {collection.key} undone",
        postings=postings, reference=reversal_id,
    )  # fmt: skip


async def release_reversal(
    session: AsyncSession, *, reversal_id: str, account_id: str, wallet_amount: int
) -> None:
    """The reversal failed: the reserved amount goes back to the wallet."""
    hold = await _reserved_hold(
        session, reversal_id=reversal_id, account_id=account_id, other="settle"
    )
    shard = shard_for(_key(reversal_id, "release"), ledger_policy_of(session).shards)
    wallet, _hold = await merchant_accounts(
        session, account_id=account_id, currency=CURRENCY, shard=shard
    )
    await post_entry(
        session, key=_key(reversal_id, "release"), kind=EntryKind.REVERSAL_RELEASE.value,
        description=f"Reversal {reversal_id}: released {wallet_amount} {CURRENCY}",
        postings=[(hold, -wallet_amount), (wallet, wallet_amount)], reference=reversal_id,
    )  # fmt: skip
