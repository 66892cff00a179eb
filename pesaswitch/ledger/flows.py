"""Money movements: collections into wallets, and the two-phase payout (reserve, then
settle or release), each one journal entry under a natural key.

    collection        settlement -amount   wallet +(amount - fee)   fees +fee
    payout reserve    wallet -(amount + fee)          hold +(amount + fee)
    payout settle     hold -(amount + fee)   settlement +amount      fees +fee
    payout release    hold -(amount + fee)   wallet +(amount + fee)

Fees, settlement and wallets are spread over shards (``service.py``, "Shards"): a
credit goes to the shard its entry's key picks; a reservation takes from all of the
merchant's wallet shards, fullest first. The payout hold is one row.

Keys: ``collection:<M-Pesa receipt, else payment id>``, ``payout:<id>:reserve``,
``payout:<id>:settle``, ``payout:<id>:release``. Repeating a step with the same key and
amounts changes nothing and returns None. A payout settles or releases only what it
reserved, and only once: settling a released payout (or the reverse), settling one never
reserved, or repeating a step with other amounts raises ``LedgerConflict``.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from pesaswitch.accounts.models import Channel, ChannelKind
from pesaswitch.errors import InsufficientFunds, LedgerConflict, ValidationFailed
from pesaswitch.ledger.models import EntryKind, JournalEntry, LedgerAccount
from pesaswitch.ledger.policy import ledger_policy_of
from pesaswitch.ledger.service import (
    cached_entry_accounts,
    entry_accounts,
    entry_amounts,
    entry_by_key,
    entry_totals,
    lock_merchant_accounts,
    merchant_accounts,
    post_entry,
    shard_for,
    take_from,
)
from pesaswitch.payments.models import Payment


def _nonzero(postings: list[tuple[LedgerAccount, int]]) -> list[tuple[LedgerAccount, int]]:
    return [(account, amount) for account, amount in postings if amount != 0]


@dataclass(frozen=True, slots=True)
class CollectionEntry:
    """A wallet collection's journal entry, ready to post: its natural key and postings."""

    key: str
    description: str
    postings: list[tuple[LedgerAccount, int]]
    reference: str
    kind: str = EntryKind.COLLECTION.value


async def collection_entry(
    session: AsyncSession,
    *,
    payment_id: str,
    account_id: str,
    amount: int,
    receipt: str | None,
    shortcode: str,
    currency: str = "KES",
) -> CollectionEntry:
    """What crediting a completed wallet collection posts, less the operator's fee."""
    key, shard = _collection_key(session, payment_id=payment_id, amount=amount, receipt=receipt)
    accounts = await entry_accounts(
        session, account_id=account_id, currency=currency, shortcode=shortcode, shard=shard
    )
    return _collection(session, key, payment_id, amount, accounts)


def cached_collection_entry(
    session: AsyncSession,
    *,
    payment_id: str,
    account_id: str,
    amount: int,
    receipt: str | None,
    shortcode: str,
    currency: str = "KES",
) -> CollectionEntry | None:
    """``collection_entry`` when its accounts are in the identity cache, without touching
    the database; None when they are not (or not yet) cached."""
    key, shard = _collection_key(session, payment_id=payment_id, amount=amount, receipt=receipt)
    accounts = cached_entry_accounts(
        session, account_id=account_id, currency=currency, shortcode=shortcode, shard=shard
    )
    return None if accounts is None else _collection(session, key, payment_id, amount, accounts)


def _collection_key(
    session: AsyncSession, *, payment_id: str, amount: int, receipt: str | None
) -> tuple[str, int]:
    """A collection's natural key (once per receipt) and the shard that key picks."""
    if amount <= 0:
        raise ValidationFailed("A collection amount is positive")
    key = f"collection:{receipt or payment_id}"
    return key, shard_for(key, ledger_policy_of(session).shards)


def _collection(
    session: AsyncSession,
    key: str,
    payment_id: str,
    amount: int,
    accounts: tuple[LedgerAccount, LedgerAccount, LedgerAccount, LedgerAccount],
) -> CollectionEntry:
    wallet, _hold, fees, settlement = accounts
    fee = ledger_policy_of(session).tariff.collection_fee(amount)
    source = key.removeprefix("collection:")
    return CollectionEntry(
        key=key,
        description=f"M-Pesa collection {source} for {payment_id}: {amount}, fee {fee}",
        postings=_nonzero([(settlement, -amount), (wallet, amount - fee), (fees, fee)]),
        reference=payment_id,
    )


async def credit_collection(
    session: AsyncSession,
    *,
    payment_id: str,
    account_id: str,
    amount: int,
    receipt: str | None,
    shortcode: str,
    currency: str = "KES",
) -> JournalEntry | None:
    """Credit a completed wallet collection, less the operator's fee; once per receipt."""
    entry = await collection_entry(
        session, payment_id=payment_id, account_id=account_id, amount=amount, receipt=receipt,
        shortcode=shortcode, currency=currency,
    )  # fmt: skip
    return await post_entry(
        session, key=entry.key, kind=entry.kind, description=entry.description,
        postings=entry.postings, reference=entry.reference,
    )  # fmt: skip


async def credit_payment(
    session: AsyncSession, *, payment: Payment, channel_kind: str | None = None
) -> JournalEntry | None:
    """Credit a completed payment when it came through a wallet channel (the gateway's own
    shortcode). Payments to a merchant's own till, paybill or bank move no wallet money.

    ``channel_kind``: the payment's channel's kind when the caller has it already (the
    callback reads it with its UPDATE); otherwise it is looked up.
    """
    if channel_kind is None:
        channel = await session.get(Channel, payment.channel_id)
        channel_kind = channel.kind if channel is not None else None
    if channel_kind != ChannelKind.WALLET.value:
        return None
    return await credit_collection(
        session, payment_id=payment.id, account_id=payment.account_id, amount=payment.amount,
        receipt=payment.mpesa_receipt, currency=payment.currency,
        shortcode=ledger_policy_of(session).gateway_shortcode,
    )  # fmt: skip


def _total(amount: int, fee: int) -> int:
    if amount <= 0 or fee < 0:
        raise ValidationFailed("A payout amount is positive and its fee is not negative")
    return amount + fee


async def _post_payout_step(
    session: AsyncSession,
    *,
    payout_id: str,
    step: str,
    kind: EntryKind,
    description: str,
    postings: list[tuple[LedgerAccount, int]],
) -> JournalEntry | None:
    key = f"payout:{payout_id}:{step}"
    postings = _nonzero(postings)
    entry = await post_entry(
        session, key=key, kind=kind.value, description=description, postings=postings,
        reference=payout_id,
    )  # fmt: skip
    if entry is None:
        # Already posted: fine when it is the same movement, refused when it is not
        # (a retry must never silently stand for a different amount).
        # Compared per kind of account (and its shortcode or owner), not per row: a
        # repeated reservation may split over the wallet's shards differently.
        posted = await entry_by_key(session, key=key)
        assert posted is not None
        wanted: dict[tuple[str, str], int] = {}
        for account, amount in postings:
            what = (account.kind, account.shortcode or account.account_id or "")
            wanted[what] = wanted.get(what, 0) + amount
        if await entry_totals(session, entry_id=posted.id) != wanted:
            raise LedgerConflict(f"Payout {payout_id} was already {step}d with other amounts")
    return entry


async def _check_reserved(
    session: AsyncSession, *, payout_id: str, hold: LedgerAccount, total: int, other: str
) -> None:
    """Settle and release each need the reservation, and exclude each other.

    The reserve entry's row is locked (FOR UPDATE; a lock, not an update) so a settle and
    a release racing for one payout queue here and the second sees the first's entry.
    """
    reserve = await session.scalar(
        select(JournalEntry)
        .where(JournalEntry.key == f"payout:{payout_id}:reserve")
        .with_for_update()
    )
    if reserve is None:
        raise LedgerConflict(f"Payout {payout_id} has no reserved funds")
    held = (await entry_amounts(session, entry_id=reserve.id)).get(hold.id)
    if held != total:
        raise LedgerConflict(f"Payout {payout_id} reserved {held}, not {total}")
    if await entry_by_key(session, key=f"payout:{payout_id}:{other}") is not None:
        raise LedgerConflict(f"Payout {payout_id} was already {other}d")


async def reserve_payout(
    session: AsyncSession, *, payout_id: str, account_id: str, currency: str, amount: int, fee: int
) -> JournalEntry | None:
    """Move amount + fee from the wallet to the payout hold; ``InsufficientFunds`` if the
    wallet cannot pay it (nothing is written then)."""
    total = _total(amount, fee)
    wallet, hold = await merchant_accounts(session, account_id=account_id, currency=currency)
    debits: list[tuple[LedgerAccount, int]] = [(wallet, -total)]
    if await entry_by_key(session, key=f"payout:{payout_id}:reserve") is None:
        # All shards and the hold locked before reading the total, so no credit or other
        # payout moves them between the check and the postings.
        shards, hold = await lock_merchant_accounts(
            session, account_id=account_id, currency=currency
        )
        available = sum(shard.balance for shard in shards)
        if available < total:
            raise InsufficientFunds(
                f"The wallet has {available} {currency}; {total} is needed",
                currency=currency,
                available=available,
            )
        debits = take_from(shards, total)
    # else: already reserved; the step below compares it with this request and moves nothing.
    return await _post_payout_step(
        session, payout_id=payout_id, step="reserve", kind=EntryKind.PAYOUT_RESERVE,
        description=f"Payout {payout_id}: reserve {amount} + fee {fee} {currency}",
        postings=[*debits, (hold, total)],
    )  # fmt: skip


async def settle_payout(
    session: AsyncSession,
    *,
    payout_id: str,
    account_id: str,
    currency: str,
    amount: int,
    fee: int,
    shortcode: str,
) -> JournalEntry | None:
    """The payout was paid out through ``shortcode``: the hold goes to settlement (amount)
    and to the operator's fees (fee)."""
    total = _total(amount, fee)
    shard = shard_for(f"payout:{payout_id}:settle", ledger_policy_of(session).shards)
    _wallet, hold, fees, settlement = await entry_accounts(
        session, account_id=account_id, currency=currency, shortcode=shortcode, shard=shard
    )
    await _check_reserved(session, payout_id=payout_id, hold=hold, total=total, other="release")
    return await _post_payout_step(
        session, payout_id=payout_id, step="settle", kind=EntryKind.PAYOUT_SETTLE,
        description=f"Payout {payout_id}: paid {amount} + fee {fee} {currency} via {shortcode}",
        postings=[(hold, -total), (settlement, amount), (fees, fee)],
    )  # fmt: skip


async def release_payout(
    session: AsyncSession, *, payout_id: str, account_id: str, currency: str, amount: int, fee: int
) -> JournalEntry | None:
    """The payout failed: amount + fee go back from the hold to the wallet."""
    total = _total(amount, fee)
    shard = shard_for(f"payout:{payout_id}:release", ledger_policy_of(session).shards)
    wallet, hold = await merchant_accounts(
        session, account_id=account_id, currency=currency, shard=shard
    )
    await _check_reserved(session, payout_id=payout_id, hold=hold, total=total, other="settle")
    return await _post_payout_step(
        session, payout_id=payout_id, step="release", kind=EntryKind.PAYOUT_RELEASE,
        description=f"Payout {payout_id}: released {amount} + fee {fee} {currency}",
        postings=[(hold, -total), (wallet, total)],
    )  # fmt: skip
