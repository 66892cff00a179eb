"""A short in-process cache of verified API keys, so most requests skip the key lookup.

Every authenticated request used to open a session and join ``api_keys`` to ``accounts``
before doing its own work: a second transaction per request, and on SQLite one more trip
through the write lock. A verified key rarely changes; only revocation matters, and:

- a revocation in this process (the API, the dashboard, a test) evicts the key at once,
  again when that transaction commits, and bumps a generation counter so that a lookup
  which read the row before the revocation committed cannot put it back afterwards;
- a revocation in another process (``pesaswitch keys revoke``, another API process)
  takes effect here within ``PESASWITCH_API_KEY_CACHE_SECONDS`` (default 5; 0 disables
  the cache), as the README states.

Only successes are cached: an unknown or revoked key is looked up every time.
Entries are keyed by the database URL and the key's HMAC digest, never the key itself.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session, object_session

from pesaswitch.accounts.models import ApiKey
from pesaswitch.accounts.service import AuthContext

# More distinct live keys than this in one process is unusual; past it, start afresh
# rather than let an attacker's valid-key spray grow memory.
MAX_ENTRIES = 10_000


@dataclass
class KeyCache:
    _entries: dict[tuple[str, str], tuple[AuthContext, float]] = field(default_factory=dict)
    generation: int = 0  # bumped by every revocation seen in this process

    def get(self, database: str, digest: str) -> AuthContext | None:
        found = self._entries.get((database, digest))
        if found is None:
            return None
        context, expires_at = found
        if expires_at <= time.monotonic():
            del self._entries[(database, digest)]
            return None
        return context

    def put(
        self, database: str, digest: str, context: AuthContext, *, ttl: float, generation: int
    ) -> None:
        """Store a lookup made when ``generation`` was current, unless a key was revoked
        since (the row read may predate that revocation's commit)."""
        if ttl <= 0 or generation != self.generation:
            return
        if len(self._entries) >= MAX_ENTRIES:
            self._entries.clear()
        self._entries[(database, digest)] = (context, time.monotonic() + ttl)

    def forget(self, key_id: str) -> None:
        self.generation += 1
        for cache_key in [k for k, (ctx, _) in self._entries.items() if ctx.key_id == key_id]:
            del self._entries[cache_key]

    def clear(self) -> None:
        self.generation += 1
        self._entries.clear()


cache = KeyCache()


@event.listens_for(ApiKey.revoked_at, "set")
def _on_revoke(target: ApiKey, value: Any, _old: Any, _initiator: Any) -> None:
    """Whoever revokes a key through the ORM evicts it now and again at commit (a
    lookup running between the two could otherwise cache the not-yet-committed row)."""
    if value is None:
        return
    key_id = target.id
    cache.forget(key_id)
    session = object_session(target)
    if session is not None:

        def after_commit(_session: Session) -> None:
            cache.forget(key_id)

        event.listen(session, "after_commit", after_commit, once=True)
