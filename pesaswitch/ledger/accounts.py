"""Ledger accounts: finding (or creating) the rows an entry posts to, their shards,
and the merchant-side locking a debit needs. ``service.py`` re-exports all of it.

Keys: ``wallet:<account>:<currency>``, ``payout_hold:<account>:<currency>``,
``fees:<currency>``, ``settlement:<shortcode>:<currency>``; shard i > 0 of a sharded
account appends ``#i`` (``service.py``, "Shards").
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from pesaswitch.db import insert_ignoring_conflict
from pesaswitch.errors import ValidationFailed
from pesaswitch.kit.clock import utcnow
from pesaswitch.kit.ids import new_id
from pesaswitch.ledger import idcache
from pesaswitch.ledger.models import Currency, LedgerAccount, LedgerAccountKind
from pesaswitch.ledger.policy import SHARDS

MERCHANT_KINDS = (LedgerAccountKind.WALLET.value, LedgerAccountKind.PAYOUT_HOLD.value)


def shard_for(entry_key: str, shards: int = SHARDS) -> int:
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


def _merchant_specs(account_id: str, currency: str, shard: int = 0) -> tuple[_Spec, _Spec]:
    wallet = _sharded(f"wallet:{account_id}:{currency}", shard)
    return (
        _Spec(wallet, LedgerAccountKind.WALLET, currency, account_id),
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
    session: AsyncSession, *, account_id: str, currency: str, shard: int = 0
) -> tuple[LedgerAccount, LedgerAccount]:
    """The merchant's (wallet shard, payout_hold) in ``currency``, made on first use.

    Every flow gets or creates accounts in one order (wallet, hold, fees, settlement): two
    transactions creating the same new rows then wait on each other in that order and
    never in a cycle (an uncommitted insert makes a conflicting one wait on PostgreSQL).
    """
    specs = _merchant_specs(account_id, _currency(currency), shard)
    wallet, hold = await _get_or_create(session, *specs)
    return wallet, hold


async def lock_merchant_accounts(
    session: AsyncSession, *, account_id: str, currency: str
) -> tuple[list[LedgerAccount], LedgerAccount]:
    """Every wallet shard and the hold of a merchant, locked in id order — the global
    lock order among merchant rows — with fresh balances.

    FOR NO KEY UPDATE (what the balance UPDATEs take anyway), not FOR UPDATE: that one
    also waits for the KEY SHARE locks a concurrent postings INSERT holds on these rows
    (its foreign key check, taken in postings order), which can close a cycle with that
    transaction's ordered balance UPDATEs.

    A debit needs the whole wallet: no credit can land on a shard between reading the
    total and taking from the shards. Call ``merchant_accounts`` first (so they exist).
    """
    rows = await session.scalars(
        select(LedgerAccount)
        .where(
            LedgerAccount.account_id == account_id,
            LedgerAccount.currency == _currency(currency),
            LedgerAccount.kind.in_(MERCHANT_KINDS),
        )
        .order_by(LedgerAccount.id)
        .with_for_update(key_share=True)
        .execution_options(populate_existing=True)
    )
    locked = list(rows)
    holds = [a for a in locked if a.kind == LedgerAccountKind.PAYOUT_HOLD.value]
    assert len(holds) == 1, (account_id, currency)
    return [a for a in locked if a.kind == LedgerAccountKind.WALLET.value], holds[0]


def take_from(shards: list[LedgerAccount], amount: int) -> list[tuple[LedgerAccount, int]]:
    """Negative postings taking ``amount`` from wallet shards, fullest first (so a debit
    touches as few rows as it can); the caller has checked that they hold enough."""
    postings: list[tuple[LedgerAccount, int]] = []
    for shard in sorted(shards, key=lambda a: (-a.balance, a.id)):
        if amount <= 0:
            break
        part = min(shard.balance, amount)
        if part > 0:
            postings.append((shard, -part))
            amount -= part
    assert amount == 0, "take_from needs a wallet that holds enough"
    return postings


async def entry_accounts(
    session: AsyncSession, *, account_id: str, currency: str, shortcode: str, shard: int
) -> tuple[LedgerAccount, LedgerAccount, LedgerAccount, LedgerAccount]:
    """(wallet, hold, fees, settlement), the wallet and operator accounts at ``shard``,
    in one round trip, or none when all four are in the identity cache (``idcache.py``;
    every collection posts here). Their balances are not for reading: cached accounts
    come back without one, and a balance is read with ``balances`` or locked first."""
    specs = _entry_specs(account_id, currency, shortcode, shard)
    accounts = idcache.cached_accounts(session, [spec.key for spec in specs])
    if accounts is None:
        accounts = await _get_or_create(session, *specs)
        idcache.note(session, accounts)
    wallet, hold, fees, settlement = accounts
    return wallet, hold, fees, settlement


def cached_entry_accounts(
    session: AsyncSession, *, account_id: str, currency: str, shortcode: str, shard: int
) -> tuple[LedgerAccount, LedgerAccount, LedgerAccount, LedgerAccount] | None:
    """``entry_accounts`` from the identity cache alone, without touching the database:
    None unless all four are cached (for a caller that has no transaction to make them in)."""
    specs = _entry_specs(account_id, currency, shortcode, shard)
    accounts = idcache.cached_accounts(session, [spec.key for spec in specs])
    if accounts is None:
        return None
    wallet, hold, fees, settlement = accounts
    return wallet, hold, fees, settlement


def _entry_specs(account_id: str, currency: str, shortcode: str, shard: int) -> tuple[_Spec, ...]:
    currency = _currency(currency)
    return (*_merchant_specs(account_id, currency, shard), _fees_spec(currency, shard),
            _settlement_spec(shortcode, currency, shard))  # fmt: skip


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
