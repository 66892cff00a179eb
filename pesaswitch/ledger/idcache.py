"""An in-process cache of ledger accounts' identities, so a collection's entry skips the
SELECT of its four accounts (wallet, hold, fees and settlement shards).

What is cached is only what never changes once a row exists: id, key, kind, currency,
owner and shortcode. Ledger account rows are never updated in those columns nor deleted,
so an identity read from a committed row stays true for as long as the database does.
Balances are never cached.

The one way to get it wrong is to cache a row that is then rolled back (made by this
transaction, or in a SAVEPOINT that rolls back), and later post to an id that does not
exist. So what a transaction reads is only noted on its session; it reaches the cache
when the outermost transaction commits, and any rollback — a SAVEPOINT's too — drops
everything noted so far (a later lookup simply reads again).

Entries expire after ``TTL_SECONDS`` all the same: if the database is replaced under a
running process (recreated, restored from an older copy), the cache heals by itself.
Keys are the engine's URL and the account's key.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, SessionTransaction

from pesaswitch.db import transient
from pesaswitch.ledger.models import LedgerAccount

TTL_SECONDS = 60.0
# Shards times currencies times merchants; past this, start afresh rather than grow.
MAX_ENTRIES = 50_000
_NOTED = "pesaswitch.ledger_ids_noted"


@dataclass(frozen=True, slots=True)
class Identity:
    """A ledger account's immutable columns."""

    id: str
    key: str
    kind: str
    currency: str
    account_id: str | None
    shortcode: str | None

    @classmethod
    def of(cls, account: LedgerAccount) -> Identity:
        return cls(account.id, account.key, account.kind, account.currency,
                   account.account_id, account.shortcode)  # fmt: skip

    def account(self) -> LedgerAccount:
        """A transient ``LedgerAccount`` for posting to (its balance is not loaded)."""
        return transient(LedgerAccount, {
            "id": self.id, "key": self.key, "kind": self.kind, "currency": self.currency,
            "account_id": self.account_id, "shortcode": self.shortcode,
        })  # fmt: skip


@dataclass
class IdentityCache:
    _entries: dict[tuple[URL, str], tuple[Identity, float]] = field(default_factory=dict)

    def get(self, database: URL, key: str) -> Identity | None:
        found = self._entries.get((database, key))
        if found is None:
            return None
        identity, expires_at = found
        if expires_at <= time.monotonic():
            del self._entries[(database, key)]
            return None
        return identity

    def put(self, database: URL, identities: list[Identity]) -> None:
        if len(self._entries) + len(identities) > MAX_ENTRIES:
            self._entries.clear()
        expires_at = time.monotonic() + TTL_SECONDS
        for identity in identities:
            self._entries[(database, identity.key)] = (identity, expires_at)

    def clear(self) -> None:
        self._entries.clear()


cache = IdentityCache()


def database_of(session: AsyncSession) -> URL:
    return session.get_bind().engine.url


def cached_accounts(session: AsyncSession, keys: list[str]) -> list[LedgerAccount] | None:
    """Transient accounts for ``keys`` in that order, or None unless every one is cached."""
    database = database_of(session)
    found = [cache.get(database, key) for key in keys]
    if any(identity is None for identity in found):
        return None
    return [identity.account() for identity in found if identity is not None]


def note(session: AsyncSession, accounts: list[LedgerAccount]) -> None:
    """Remember ``accounts`` (as read in this transaction) for the cache, at commit."""
    noted: list[Identity] = session.info.setdefault(_NOTED, [])
    noted.extend(Identity.of(account) for account in accounts)


@event.listens_for(Session, "after_commit")
def _on_commit(session: Session) -> None:
    # after_commit fires on a SAVEPOINT's release too; only the outermost commit makes
    # the rows durable.
    if session.in_nested_transaction() or _NOTED not in session.info:
        return
    noted: list[Identity] = session.info.pop(_NOTED)
    cache.put(session.get_bind().engine.url, noted)


@event.listens_for(Session, "after_soft_rollback")
def _on_rollback(session: Session, _transaction: SessionTransaction, *_: Any) -> None:
    session.info.pop(_NOTED, None)


@event.listens_for(Session, "after_transaction_end")
def _on_end(session: Session, transaction: SessionTransaction) -> None:
    # However the outermost transaction ended (a commit has taken its notes already), none
    # of its notes may outlive it: a session closed mid-transaction and then reused must
    # not cache, at its next commit, rows its first transaction never committed.
    if transaction.parent is None:
        session.info.pop(_NOTED, None)
