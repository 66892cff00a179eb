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
no two entries wait on each other in a cycle. Operator accounts first because they are
sharded (below) while a busy merchant's wallet is one row: the hottest lock is taken
last and held for the fewest round trips.

Shards. Every collection and payout settlement used to credit the same ``fees`` and
``settlement`` rows, and on PostgreSQL all of them queued on those two row locks (bench/
README.md). So each operator account is ``SYSTEM_SHARDS`` rows, shard 0 keeping the
original key (``fees:KES``) and shard i the key ``fees:KES#i``, created on first use;
an entry picks its shard from its own key (``shard_for``). The operator's balance is the
sum of the shards (``system_balance``); every shard is an ordinary account, so the
invariants (``checks.py``) hold per shard and in total unchanged. Fees only ever
receive money, so no shard can be asked to go below zero.

All of it runs in a SAVEPOINT: when a balance would go negative, ``InsufficientFunds``
leaves nothing behind, even if the caller catches it and carries on with its transaction.
"""

from __future__ import annotations

import zlib
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from pesaswitch.db import insert_ignoring_conflict, is_sqlite
from pesaswitch.errors import InsufficientFunds, UnbalancedEntry, ValidationFailed
from pesaswitch.kit.clock import utcnow
from pesaswitch.kit.ids import new_id
from pesaswitch.kit.pagination import PageParams
from pesaswitch.ledger.checks import check_invariants, ledger_counts  # re-exported
from pesaswitch.ledger.models import (
    Currency,
    JournalEntry,
    LedgerAccount,
    LedgerAccountKind,
    Posting,
)
from pesaswitch.ledger.policy import SYSTEM_SHARDS

__all__ = [
    "EntryLines",
    "balances",
    "check_invariants",
    "fees_account",
    "hold_account",
    "ledger_counts",
    "list_entries",
    "merchant_accounts",
    "post_entry",
    "settlement_account",
    "shard_for",
    "system_balance",
    "wallet_account",
]

MERCHANT_KINDS = (LedgerAccountKind.WALLET.value, LedgerAccountKind.PAYOUT_HOLD.value)


def shard_for(entry_key: str, shards: int = SYSTEM_SHARDS) -> int:
    """The operator-account shard an entry posts to: stable, spread by the entry's key."""
    return zlib.crc32(entry_key.encode()) % max(1, shards)


def _sharded(key: str, shard: int) -> str:
    return key if shard == 0 else f"{key}#{shard}"


def _currency(currency: str) -> str:
    try:
        return Currency(currency).value
    except ValueError as exc:
        allowed = ", ".join(c.value for c in Currency)
        raise ValidationFailed(f"currency must be one of {allowed}") from exc


@dataclass(frozen=True, slots=True)
class _Spec:
    key: str
    kind: LedgerAccountKind
    currency: str
    account_id: str | None = None
    shortcode: str | None = None


async def _get_or_create(session: AsyncSession, *specs: _Spec) -> list[LedgerAccount]:
    """The accounts for ``specs``, in that order: one SELECT when they all exist.

    Race-safe: missing ones are inserted (ignoring a conflict) in the order given and
    looked up again, so whoever won, the rows are there.
    """
    keys = [spec.key for spec in specs]
    rows = await session.scalars(select(LedgerAccount).where(LedgerAccount.key.in_(keys)))
    found = {row.key: row for row in rows}
    missing = [spec for spec in specs if spec.key not in found]
    for spec in missing:
        await insert_ignoring_conflict(
            session, LedgerAccount, id=new_id("la"), key=spec.key, kind=spec.kind.value,
            account_id=spec.account_id, shortcode=spec.shortcode, currency=spec.currency,
            balance=0, created_at=utcnow(),
        )  # fmt: skip
    if missing:
        rows = await session.scalars(
            select(LedgerAccount).where(LedgerAccount.key.in_([m.key for m in missing]))
        )
        found.update((row.key, row) for row in rows)
    assert all(key in found for key in keys), keys
    return [found[key] for key in keys]


def _merchant_specs(account_id: str, currency: str) -> tuple[_Spec, _Spec]:
    return (
        _Spec(f"wallet:{account_id}:{currency}", LedgerAccountKind.WALLET, currency, account_id),
        _Spec(f"payout_hold:{account_id}:{currency}", LedgerAccountKind.PAYOUT_HOLD, currency,
              account_id),
    )  # fmt: skip


def _fees_spec(currency: str, shard: int) -> _Spec:
    return _Spec(_sharded(f"fees:{currency}", shard), LedgerAccountKind.FEES, currency)


def _settlement_spec(shortcode: str, currency: str, shard: int) -> _Spec:
    if not (shortcode.isdigit() and len(shortcode) <= 10):
        raise ValidationFailed(f"{shortcode!r} is not an M-Pesa shortcode")
    key = _sharded(f"settlement:{shortcode}:{currency}", shard)
    return _Spec(key, LedgerAccountKind.SETTLEMENT, currency, shortcode=shortcode)


async def merchant_accounts(
    session: AsyncSession, *, account_id: str, currency: str
) -> tuple[LedgerAccount, LedgerAccount]:
    """The merchant's (wallet, payout_hold) in ``currency``, made together on first use.

    Every flow gets or creates accounts in one order (wallet, hold, fees, settlement): two
    transactions creating the same new rows then wait on each other in that order and
    never in a cycle (an uncommitted insert makes a conflicting one wait on PostgreSQL).
    """
    wallet, hold = await _get_or_create(session, *_merchant_specs(account_id, _currency(currency)))
    return wallet, hold


async def entry_accounts(
    session: AsyncSession, *, account_id: str, currency: str, shortcode: str, shard: int
) -> tuple[LedgerAccount, LedgerAccount, LedgerAccount, LedgerAccount]:
    """(wallet, hold, fees shard, settlement shard) for one entry, in one round trip."""
    currency = _currency(currency)
    wallet, hold, fees, settlement = await _get_or_create(
        session, *_merchant_specs(account_id, currency), _fees_spec(currency, shard),
        _settlement_spec(shortcode, currency, shard),
    )  # fmt: skip
    return wallet, hold, fees, settlement


async def wallet_account(session: AsyncSession, *, account_id: str, currency: str) -> LedgerAccount:
    wallet, _hold = await merchant_accounts(session, account_id=account_id, currency=currency)
    return wallet


async def hold_account(session: AsyncSession, *, account_id: str, currency: str) -> LedgerAccount:
    _wallet, hold = await merchant_accounts(session, account_id=account_id, currency=currency)
    return hold


async def fees_account(session: AsyncSession, *, currency: str, shard: int = 0) -> LedgerAccount:
    (fees,) = await _get_or_create(session, _fees_spec(_currency(currency), shard))
    return fees


async def settlement_account(
    session: AsyncSession, *, shortcode: str, currency: str, shard: int = 0
) -> LedgerAccount:
    spec = _settlement_spec(shortcode, _currency(currency), shard)
    (settlement,) = await _get_or_create(session, spec)
    return settlement


async def system_balance(
    session: AsyncSession, *, kind: LedgerAccountKind, currency: str, shortcode: str | None = None
) -> int:
    """An operator account's balance: the sum of its shards (fees, or one shortcode's
    settlement)."""
    query = select(func.coalesce(func.sum(LedgerAccount.balance), 0)).where(
        LedgerAccount.kind == kind.value, LedgerAccount.currency == _currency(currency)
    )
    if shortcode is not None:
        query = query.where(LedgerAccount.shortcode == shortcode)
    return int(await session.scalar(query) or 0)


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
    async with session.begin_nested():
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
            insert(Posting),
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
    """INSERT … ON CONFLICT DO NOTHING RETURNING the entry: claim and read in one trip."""
    dialect: Any = sqlite if is_sqlite(session) else postgresql
    entry: JournalEntry | None = await session.scalar(
        dialect.insert(JournalEntry)
        .values(**values)
        .on_conflict_do_nothing()
        .returning(JournalEntry),
        execution_options={"populate_existing": True},
    )
    return entry


async def _move_balance(session: AsyncSession, account: LedgerAccount, delta: int) -> None:
    new_balance = await session.scalar(
        update(LedgerAccount)
        .where(
            LedgerAccount.id == account.id,
            or_(
                LedgerAccount.balance + delta >= 0,
                LedgerAccount.kind == LedgerAccountKind.SETTLEMENT.value,
            ),
        )
        .values(balance=LedgerAccount.balance + delta)
        .returning(LedgerAccount.balance)
        .execution_options(synchronize_session=False)
    )
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
    """An entry with its postings on one merchant's accounts (not the operator's side)."""

    entry: JournalEntry
    lines: list[tuple[Posting, LedgerAccount]]


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
    return [EntryLines(e, lines[e.id]) for e in entries]


async def entry_by_key(session: AsyncSession, *, key: str) -> JournalEntry | None:
    entry: JournalEntry | None = await session.scalar(
        select(JournalEntry).where(JournalEntry.key == key)
    )
    return entry


async def entry_amounts(session: AsyncSession, *, entry_id: str) -> dict[str, int]:
    """Net amount per ledger account id of one entry."""
    rows = await session.execute(
        select(Posting.ledger_account_id, func.sum(Posting.amount))
        .where(Posting.entry_id == entry_id)
        .group_by(Posting.ledger_account_id)
    )
    return {account_id: int(total) for account_id, total in rows.tuples()}
