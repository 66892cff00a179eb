"""The ledger's invariants, checked from the data alone (``pesaswitch ledger check``).

Each invariant is one SQL statement, so each is judged on one consistent snapshot even
while payments keep settling (PostgreSQL's READ COMMITTED snapshots per statement): an
entry, its postings and its balance moves commit together, so a statement never sees
half of them.
"""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from pesaswitch.ledger.models import (
    EntryKind,
    JournalEntry,
    LedgerAccount,
    LedgerAccountKind,
    Posting,
)
from pesaswitch.payments.models import Payment

# Enough to see what is wrong; a broken ledger can have millions of breaches.
MAX_PER_CHECK = 50


async def check_invariants(session: AsyncSession) -> list[str]:
    """Every breach found, as one line each; an empty list means the ledger is sound.

    1. each entry has two or more postings and they sum to zero per currency;
    2. all postings of a currency sum to zero (and so do the cached balances);
    3. each account's cached balance equals the sum of its postings;
    4. no wallet, hold or fees account is below zero;
    5. no payment (so no M-Pesa receipt) is credited by more than one collection entry.
    """
    breaches: list[str] = []

    few = await session.execute(
        select(JournalEntry.id, JournalEntry.key, func.count(Posting.id))
        .outerjoin(Posting, Posting.entry_id == JournalEntry.id)
        .group_by(JournalEntry.id, JournalEntry.key)
        .having(func.count(Posting.id) < 2)
        .limit(MAX_PER_CHECK)
    )
    breaches += [f"entry {i} ({key}) has {n} posting(s), not two or more" for i, key, n in few]

    unbalanced = await session.execute(
        select(JournalEntry.id, JournalEntry.key, LedgerAccount.currency, func.sum(Posting.amount))
        .join(Posting, Posting.entry_id == JournalEntry.id)
        .join(LedgerAccount, LedgerAccount.id == Posting.ledger_account_id)
        .group_by(JournalEntry.id, JournalEntry.key, LedgerAccount.currency)
        .having(func.sum(Posting.amount) != 0)
        .limit(MAX_PER_CHECK)
    )
    breaches += [
        f"entry {i} ({key}) postings sum to {int(total)} {currency}, not 0"
        for i, key, currency, total in unbalanced
    ]

    posted_totals = await session.execute(
        select(LedgerAccount.currency, func.sum(Posting.amount))
        .join(Posting, Posting.ledger_account_id == LedgerAccount.id)
        .group_by(LedgerAccount.currency)
        .having(func.sum(Posting.amount) != 0)
    )
    breaches += [f"all postings in {c} sum to {int(total)}, not 0" for c, total in posted_totals]
    cached_totals = await session.execute(
        select(LedgerAccount.currency, func.sum(LedgerAccount.balance))
        .group_by(LedgerAccount.currency)
        .having(func.sum(LedgerAccount.balance) != 0)
    )
    breaches += [
        f"all cached balances in {c} sum to {int(total)}, not 0" for c, total in cached_totals
    ]

    posted = (
        select(Posting.ledger_account_id, func.sum(Posting.amount).label("total"))
        .group_by(Posting.ledger_account_id)
        .subquery()
    )
    computed = func.coalesce(posted.c.total, 0)
    drifted = await session.execute(
        select(LedgerAccount.id, LedgerAccount.key, LedgerAccount.balance, computed)
        .outerjoin(posted, posted.c.ledger_account_id == LedgerAccount.id)
        .where(LedgerAccount.balance != computed)
        .limit(MAX_PER_CHECK)
    )
    breaches += [
        f"account {i} ({key}) caches balance {balance}, its postings sum to {int(total)}"
        for i, key, balance, total in drifted
    ]

    negative = await session.execute(
        select(LedgerAccount.id, LedgerAccount.key, LedgerAccount.balance, computed)
        .outerjoin(posted, posted.c.ledger_account_id == LedgerAccount.id)
        .where(
            LedgerAccount.kind != LedgerAccountKind.SETTLEMENT.value,
            (LedgerAccount.balance < 0) | (computed < 0),
        )
        .limit(MAX_PER_CHECK)
    )
    breaches += [
        f"account {i} ({key}) is below zero: cached {balance}, postings {int(total)}"
        for i, key, balance, total in negative
    ]

    # Keys make a second credit under the same key impossible; this catches one under
    # another key (e.g. once by receipt and once by payment id).
    credited = func.coalesce(Payment.mpesa_receipt, JournalEntry.reference)
    doubled = await session.execute(
        select(credited, func.min(JournalEntry.reference), func.count(JournalEntry.id))
        .outerjoin(Payment, Payment.id == JournalEntry.reference)
        .where(
            JournalEntry.kind == EntryKind.COLLECTION.value,
            JournalEntry.reference.is_not(None),
        )
        .group_by(credited)
        .having(func.count(JournalEntry.id) > 1)
        .limit(MAX_PER_CHECK)
    )
    breaches += [
        f"receipt {receipt} (payment {payment}) is credited {n} times"
        for receipt, payment, n in doubled
    ]
    return breaches


async def ledger_counts(session: AsyncSession) -> dict[str, int]:
    counts: dict[str, int] = {}
    for name, model in (
        ("accounts", LedgerAccount),
        ("entries", JournalEntry),
        ("postings", Posting),
    ):
        counts[name] = int(await session.scalar(select(func.count()).select_from(model)) or 0)
    return counts
