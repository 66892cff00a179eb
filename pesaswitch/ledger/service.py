"""The ledger's core: ledger accounts, posting entries, balances, entries, invariants.

Posting (``post_entry``) is the only code that writes entries, postings or balances:

1. the postings are checked to sum to zero per currency before anything is written;
2. the entry's natural key is claimed with INSERT … ON CONFLICT DO NOTHING RETURNING: no
   row means it was posted already (by a duplicate callback, a retry, a racing worker)
   → ``None``;
3. the postings are inserted (before any balance row is locked, see below);
4. each account's cached balance moves by one conditional
   ``UPDATE … SET balance = balance + :delta WHERE id = :id AND (balance + :delta >= 0
   OR kind = 'settlement')``. On PostgreSQL the UPDATE waits for the row lock and
   re-checks its WHERE on the committed balance, so concurrent spenders cannot overdraw;
   SQLite serialises writers with ``BEGIN IMMEDIATE``. The CHECK constraint is the
   backstop for any other writer.

Lock order. Every entry locks its balance rows in one global order — the operator's
accounts (fees, settlement) before merchants' (wallet, hold), by id within each — so
no two entries wait on each other in a cycle. Merchant rows last because a busy
merchant's rows are hotter than any one operator shard: the hottest lock is taken last
and held for the fewest round trips.

Shards. Every collection used to credit the same ``fees``, ``settlement`` and (for one
merchant) ``wallet`` rows, and on PostgreSQL all of them queued on those row locks
(bench/README.md). So each of these accounts is ``SHARDS`` rows, shard 0 keeping the
original key (``fees:KES``) and shard i the key ``fees:KES#i``, created on first use;
an entry picks its shard from its own key (``shard_for``). A balance is the sum of the
shards (``balances``, ``system_balance``); every shard is an ordinary account, so the
invariants (``checks.py``) hold per shard and in total unchanged. Fees only ever
receive money. A wallet is debited only by a payout reservation, which locks all of
the merchant's shards and its hold first (``lock_merchant_accounts``, in id order),
checks their total and takes from the fullest (``take_from``): no shard goes below
zero and the wallet as a whole cannot be overdrawn. The hold stays one row.

An entry that takes money from a wallet, hold or fees account runs in a SAVEPOINT: when
a balance would go negative, ``InsufficientFunds`` leaves nothing behind, even if the
caller catches it and carries on with its transaction. One that only takes from
settlement (a collection) cannot fail that way, and skips the SAVEPOINT and its
RELEASE: two round trips fewer while the rows it locked are held.
"""

from __future__ import annotations

from collections import defaultdict
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any, cast

from sqlalchemy import Integer, Table, Update, bindparam, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from pesaswitch.db import claim_row
from pesaswitch.errors import InsufficientFunds, UnbalancedEntry
from pesaswitch.kit.clock import utcnow
from pesaswitch.kit.ids import new_id
from pesaswitch.kit.pagination import PageParams
from pesaswitch.ledger.accounts import (  # re-exported
    MERCHANT_KINDS,
    cached_entry_accounts,
    entry_accounts,
    fees_account,
    hold_account,
    lock_merchant_accounts,
    merchant_accounts,
    settlement_account,
    shard_for,
    system_balance,
    take_from,
    wallet_account,
)
from pesaswitch.ledger.checks import check_invariants, ledger_counts  # re-exported
from pesaswitch.ledger.models import (
    JournalEntry,
    LedgerAccount,
    LedgerAccountKind,
    Posting,
)

__all__ = [
    "EntryLines",
    "balances",
    "cached_entry_accounts",
    "check_invariants",
    "entry_accounts",
    "fees_account",
    "hold_account",
    "ledger_counts",
    "list_entries",
    "lock_merchant_accounts",
    "merchant_accounts",
    "post_entry",
    "settlement_account",
    "shard_for",
    "system_balance",
    "take_from",
    "wallet_account",
]


def _deltas(postings: list[tuple[LedgerAccount, int]]) -> dict[str, tuple[LedgerAccount, int]]:
    """Net change per account, after checking the postings balance per currency."""
    if len(postings) < 2:
        raise UnbalancedEntry("An entry needs at least two postings")
    per_currency: dict[str, int] = defaultdict(int)
    deltas: dict[str, tuple[LedgerAccount, int]] = {}
    for account, amount in postings:
        if isinstance(amount, bool) or not isinstance(amount, int) or amount == 0:
            raise UnbalancedEntry(f"Posting amounts are non-zero integers, not {amount!r}")
        per_currency[account.currency] += amount
        previous = deltas.get(account.id, (account, 0))[1]
        deltas[account.id] = (account, previous + amount)
    unbalanced = {c: total for c, total in per_currency.items() if total != 0}
    if unbalanced:
        raise UnbalancedEntry(f"Postings do not sum to zero: {unbalanced}")
    return deltas


async def post_entry(
    session: AsyncSession,
    *,
    key: str,
    kind: str,
    description: str,
    postings: list[tuple[LedgerAccount, int]],
    reference: str | None = None,
) -> JournalEntry | None:
    """Post ``postings`` (account, signed amount) once under ``key``.

    Returns the new entry, or None when an entry with ``key`` exists (already posted;
    nothing changes). Raises ``InsufficientFunds`` when a wallet, hold or fees account
    would go below zero, ``UnbalancedEntry`` when the postings do not sum to zero.
    """
    deltas = _deltas(postings)
    can_fail = any(
        delta < 0 and account.kind != LedgerAccountKind.SETTLEMENT.value
        for account, delta in deltas.values()
    )
    async with session.begin_nested() if can_fail else nullcontext():
        entry = await _claim_entry(
            session, id=new_id("je"), key=key, kind=kind, description=description[:500],
            reference=reference, created_at=utcnow(),
        )  # fmt: skip
        if entry is None:
            return None
        # Postings first: they lock nothing that others wait for (their foreign keys take
        # KEY SHARE locks, which balance UPDATEs do not conflict with), so the balance
        # rows below are held only from their UPDATE to the commit.
        await session.execute(
            _INSERT_POSTINGS,
            [
                {"entry_id": entry.id, "ledger_account_id": account.id, "amount": amount}
                for account, amount in postings
            ],
        )
        for account, delta in sorted(deltas.values(), key=_lock_order):
            if delta != 0:
                await _move_balance(session, account, delta)
    return entry


def _lock_order(item: tuple[LedgerAccount, int]) -> tuple[bool, str]:
    account = item[0]
    return account.kind in MERCHANT_KINDS, account.id


async def _claim_entry(session: AsyncSession, **values: Any) -> JournalEntry | None:
    """INSERT … ON CONFLICT DO NOTHING (prebuilt, values bound): claim in one trip. The
    entry returned is built from the values (every column is given), not read back, and
    is not in the session, like the payments' Core INSERTs."""
    if not await claim_row(session, _ENTRIES, values):
        return None
    return JournalEntry(**values)


def _move_statement() -> Update:
    table = cast(Table, LedgerAccount.__table__)
    delta = bindparam("delta", type_=Integer)
    return (
        update(table)
        .where(
            table.c.id == bindparam("account"),
            or_(table.c.balance + delta >= 0, table.c.kind == LedgerAccountKind.SETTLEMENT.value),
        )
        .values(balance=table.c.balance + delta)
        .returning(table.c.balance)
    )


_ENTRIES = cast(Table, JournalEntry.__table__)
_INSERT_POSTINGS = insert(cast(Table, Posting.__table__))  # a Core INSERT: no ORM bulk path

# Built once: constructing the expression and its cache key on every posting cost more
# CPU than sending it (bench/README.md, profile). A Core statement on the table: no ORM.
_MOVE = _move_statement()


async def _move_balance(session: AsyncSession, account: LedgerAccount, delta: int) -> None:
    new_balance = await session.scalar(_MOVE, {"account": account.id, "delta": delta})
    if new_balance is None:
        available = await session.scalar(
            select(LedgerAccount.balance).where(LedgerAccount.id == account.id)
        )
        raise InsufficientFunds(
            f"The {account.kind} has {available} {account.currency}; {-delta} is needed",
            currency=account.currency,
            available=available,
        )
    # Keep the caller's object in step without marking it dirty.
    set_committed_value(account, "balance", int(new_balance))


async def balances(session: AsyncSession, *, account_id: str) -> dict[str, dict[str, int]]:
    """``{currency: {"available": wallet, "reserved": payout hold}}`` for one merchant."""
    rows = await session.execute(
        select(LedgerAccount.currency, LedgerAccount.kind, LedgerAccount.balance)
        .where(LedgerAccount.account_id == account_id, LedgerAccount.kind.in_(MERCHANT_KINDS))
        .order_by(LedgerAccount.currency)
    )
    result: dict[str, dict[str, int]] = {}
    for currency, kind, balance in rows:
        slot = result.setdefault(currency, {"available": 0, "reserved": 0})
        slot["available" if kind == LedgerAccountKind.WALLET.value else "reserved"] += balance
    return result


@dataclass(frozen=True, slots=True)
class EntryLines:
    """An entry with its postings on one merchant's accounts, and the operator's side of
    it as totals by kind and currency (``balancing``): no shortcode, shard or account id,
    only enough to show that the entry sums to zero."""

    entry: JournalEntry
    lines: list[tuple[Posting, LedgerAccount]]
    balancing: list[tuple[str, str, int]] = field(default_factory=list)


async def list_entries(
    session: AsyncSession, *, account_id: str, page: PageParams
) -> list[EntryLines]:
    """Up to ``page.limit + 1`` entries touching the merchant's accounts, newest first."""
    touching = (
        select(Posting.entry_id)
        .join(LedgerAccount, LedgerAccount.id == Posting.ledger_account_id)
        .where(LedgerAccount.account_id == account_id)
    )
    query = select(JournalEntry).where(JournalEntry.id.in_(touching))
    if page.starting_after is not None:
        query = query.where(JournalEntry.id < page.starting_after)
    entries = list(
        await session.scalars(query.order_by(JournalEntry.id.desc()).limit(page.limit + 1))
    )
    lines: dict[str, list[tuple[Posting, LedgerAccount]]] = defaultdict(list)
    balancing: dict[str, list[tuple[str, str, int]]] = defaultdict(list)
    if entries:
        rows = await session.execute(
            select(Posting, LedgerAccount)
            .join(LedgerAccount, LedgerAccount.id == Posting.ledger_account_id)
            .where(
                Posting.entry_id.in_([e.id for e in entries]),
                LedgerAccount.account_id == account_id,
            )
            .order_by(Posting.id)
        )
        for posting, account in rows.tuples():
            lines[posting.entry_id].append((posting, account))
        # The operator's side (settlement, fees) of those entries, by kind only.
        totals = await session.execute(
            select(
                Posting.entry_id, LedgerAccount.kind, LedgerAccount.currency,
                func.sum(Posting.amount), func.min(Posting.id),
            )
            .join(LedgerAccount, LedgerAccount.id == Posting.ledger_account_id)
            .where(
                Posting.entry_id.in_([e.id for e in entries]),
                LedgerAccount.account_id.is_(None),
            )
            .group_by(Posting.entry_id, LedgerAccount.kind, LedgerAccount.currency)
            .order_by(func.min(Posting.id))
        )  # fmt: skip
        for entry_id, kind, currency, total, _first in totals.tuples():
            if total:
                balancing[entry_id].append((kind, currency, int(total)))
    return [EntryLines(e, lines[e.id], balancing[e.id]) for e in entries]


async def entry_by_key(session: AsyncSession, *, key: str) -> JournalEntry | None:
    entry: JournalEntry | None = await session.scalar(
        select(JournalEntry).where(JournalEntry.key == key)
    )
    return entry


async def entry_totals(session: AsyncSession, *, entry_id: str) -> dict[tuple[str, str], int]:
    """Net amount of one entry per (account kind, shortcode or owner): what a movement
    is, whichever shards it used."""
    owner = func.coalesce(LedgerAccount.shortcode, LedgerAccount.account_id, "")
    rows = await session.execute(
        select(LedgerAccount.kind, owner, func.sum(Posting.amount))
        .join(LedgerAccount, LedgerAccount.id == Posting.ledger_account_id)
        .where(Posting.entry_id == entry_id)
        .group_by(LedgerAccount.kind, owner)
    )
    return {(kind, who): int(total) for kind, who, total in rows.tuples()}


async def entry_amounts(session: AsyncSession, *, entry_id: str) -> dict[str, int]:
    """Net amount per ledger account id of one entry."""
    rows = await session.execute(
        select(Posting.ledger_account_id, func.sum(Posting.amount))
        .where(Posting.entry_id == entry_id)
        .group_by(Posting.ledger_account_id)
    )
    return {account_id: int(total) for account_id, total in rows.tuples()}
