"""The ledger's core: ledger accounts, posting entries, balances, entries, invariants.

Posting (``post_entry``) is the only code that writes entries, postings or balances:

1. the postings are checked to sum to zero per currency before anything is written;
2. the entry's natural key is claimed with INSERT … ON CONFLICT DO NOTHING: no row means
   it was posted already (by a duplicate callback, a retry, a racing worker) → ``None``;
3. each account's cached balance moves by one conditional
   ``UPDATE … SET balance = balance + :delta WHERE id = :id AND (balance + :delta >= 0
   OR kind = 'settlement')``, in id order. On PostgreSQL the UPDATE waits for the row
   lock and re-checks its WHERE on the committed balance, so concurrent spenders cannot
   overdraw, and one lock order means no deadlocks; SQLite serialises writers with
   ``BEGIN IMMEDIATE``. The CHECK constraint is the backstop for any other writer;
4. the postings are inserted.

All of it runs in a SAVEPOINT: when a balance would go negative, ``InsufficientFunds``
leaves nothing behind, even if the caller catches it and carries on with its transaction.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from sqlalchemy import func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from pesaswitch.db import insert_ignoring_conflict
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
    "wallet_account",
]

MERCHANT_KINDS = (LedgerAccountKind.WALLET.value, LedgerAccountKind.PAYOUT_HOLD.value)


def _currency(currency: str) -> str:
    try:
        return Currency(currency).value
    except ValueError as exc:
        allowed = ", ".join(c.value for c in Currency)
        raise ValidationFailed(f"currency must be one of {allowed}") from exc


async def _get_or_create(
    session: AsyncSession,
    *,
    key: str,
    kind: LedgerAccountKind,
    currency: str,
    account_id: str | None = None,
    shortcode: str | None = None,
) -> LedgerAccount:
    """Race-safe: look, else insert-ignore and look again (whoever won, the row is there)."""
    found = await session.scalar(select(LedgerAccount).where(LedgerAccount.key == key))
    if found is not None:
        return found
    await insert_ignoring_conflict(
        session, LedgerAccount, id=new_id("la"), key=key, kind=kind.value,
        account_id=account_id, shortcode=shortcode, currency=currency, balance=0,
        created_at=utcnow(),
    )  # fmt: skip
    created = await session.scalar(select(LedgerAccount).where(LedgerAccount.key == key))
    assert created is not None, key
    return created


async def merchant_accounts(
    session: AsyncSession, *, account_id: str, currency: str
) -> tuple[LedgerAccount, LedgerAccount]:
    """The merchant's (wallet, payout_hold) in ``currency``, made together on first use.

    Every flow gets or creates accounts in one order (wallet, hold, fees, settlement): two
    transactions creating the same new rows then wait on each other in that order and
    never in a cycle (an uncommitted insert makes a conflicting one wait on PostgreSQL).
    """
    currency = _currency(currency)
    wallet = await _get_or_create(
        session, key=f"wallet:{account_id}:{currency}", kind=LedgerAccountKind.WALLET,
        currency=currency, account_id=account_id,
    )  # fmt: skip
    hold = await _get_or_create(
        session, key=f"payout_hold:{account_id}:{currency}",
        kind=LedgerAccountKind.PAYOUT_HOLD, currency=currency, account_id=account_id,
    )  # fmt: skip
    return wallet, hold


async def wallet_account(session: AsyncSession, *, account_id: str, currency: str) -> LedgerAccount:
    wallet, _hold = await merchant_accounts(session, account_id=account_id, currency=currency)
    return wallet


async def hold_account(session: AsyncSession, *, account_id: str, currency: str) -> LedgerAccount:
    _wallet, hold = await merchant_accounts(session, account_id=account_id, currency=currency)
    return hold


async def fees_account(session: AsyncSession, *, currency: str) -> LedgerAccount:
    currency = _currency(currency)
    return await _get_or_create(
        session, key=f"fees:{currency}", kind=LedgerAccountKind.FEES, currency=currency
    )


async def settlement_account(
    session: AsyncSession, *, shortcode: str, currency: str
) -> LedgerAccount:
    currency = _currency(currency)
    if not (shortcode.isdigit() and len(shortcode) <= 10):
        raise ValidationFailed(f"{shortcode!r} is not an M-Pesa shortcode")
    return await _get_or_create(
        session, key=f"settlement:{shortcode}:{currency}", kind=LedgerAccountKind.SETTLEMENT,
        currency=currency, shortcode=shortcode,
    )  # fmt: skip


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
        entry_id = new_id("je")
        claimed = await insert_ignoring_conflict(
            session, JournalEntry, id=entry_id, key=key, kind=kind,
            description=description[:500], reference=reference, created_at=utcnow(),
        )  # fmt: skip
        if not claimed:
            return None
        for account_id in sorted(deltas):
            account, delta = deltas[account_id]
            if delta == 0:
                continue
            new_balance = await session.scalar(
                update(LedgerAccount)
                .where(
                    LedgerAccount.id == account_id,
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
                    select(LedgerAccount.balance).where(LedgerAccount.id == account_id)
                )
                raise InsufficientFunds(
                    f"The {account.kind} has {available} {account.currency}; {-delta} is needed",
                    currency=account.currency,
                    available=available,
                )
            # Keep the caller's object in step without marking it dirty.
            set_committed_value(account, "balance", int(new_balance))
        await session.execute(
            insert(Posting),
            [
                {"entry_id": entry_id, "ledger_account_id": account.id, "amount": amount}
                for account, amount in postings
            ],
        )
    return await session.get(JournalEntry, entry_id)


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
