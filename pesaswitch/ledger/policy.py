"""What the ledger needs from the settings, reachable from a session alone.

Collections are credited where a payment settles (Daraja callbacks, the reconciler),
which carries a session and no settings; the payments service should not need settings
to credit a wallet. So, as the STK abuse policy does (``protection/stk.py``), the runtime
binds a ``LedgerPolicy`` to every session it opens: the fee tariff and the gateway's own
shortcode (where wallet-channel money lands, i.e. the settlement account to debit), and
how many rows the busy accounts are spread over (``service.py``, "Shards").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from pesaswitch.db import bind_session_info
from pesaswitch.ledger.fees import Tariff

if TYPE_CHECKING:
    from pesaswitch.config import Settings

POLICY_KEY = "pesaswitch.ledger_policy"
# Rows per fees, settlement and wallet account. Changing it later is safe: every reader
# sums whatever shards exist, and an entry's shard only matters when it is posted.
SHARDS = 8


@dataclass(frozen=True, slots=True)
class LedgerPolicy:
    gateway_shortcode: str
    tariff: Tariff = field(default_factory=Tariff)
    shards: int = SHARDS

    @classmethod
    def from_settings(cls, settings: Settings) -> LedgerPolicy:
        return cls(
            gateway_shortcode=settings.daraja_shortcode,
            tariff=Tariff.parse(settings.collection_fee_tiers, settings.payout_fee_tiers),
        )


def bind_ledger_policy(sessionmaker: async_sessionmaker[AsyncSession], settings: Settings) -> None:
    """Attach the policy to every session ``sessionmaker`` opens."""
    bind_session_info(sessionmaker, POLICY_KEY, LedgerPolicy.from_settings(settings))


def ledger_policy_of(session: AsyncSession) -> LedgerPolicy:
    policy = session.info.get(POLICY_KEY)
    if isinstance(policy, LedgerPolicy):
        return policy
    # A session opened outside a runtime (operator commands, tests): the process's own
    # settings, from its environment, are the right ones.
    from pesaswitch.config import Settings

    return LedgerPolicy.from_settings(Settings())
