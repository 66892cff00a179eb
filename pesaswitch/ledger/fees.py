"""The fee tariff: what the operator keeps from each collection and each payout.

A tariff is a comma-separated list of tiers, ``LOW-HIGH:FEE``, over the amount in the
currency's ledger unit (whole KES for M-Pesa amounts):

- ``LOW-HIGH`` is an inclusive range; the last tier leaves ``HIGH`` empty (``20001-``)
  so that every amount has a fee. Tiers must start at 0 or 1 and follow on without gaps
  or overlaps (the next ``LOW`` is the previous ``HIGH`` + 1): a typo in a tariff is a
  start-up error, never a payment charged nothing or twice.
- ``FEE`` is a flat fee (``15``), a percentage of the amount (``1.5%``) or both
  (``15+0.5%``). Percentages may have up to four decimals.

The fee is ``flat + amount x percent / 100``, rounded half up to a whole unit, computed
with exact decimals (no float rounding surprises at the .5 boundary).

A cap is a last tier with a flat fee: "1.5% but at most KES 200" is
``1-13333:1.5%,13334-:200`` (1.5% of 13,333 rounds to 200).

Defaults, close to what Kenyan aggregators charge merchants:

- collections (``PESASWITCH_COLLECTION_FEE_TIERS``): 1.5%, at most KES 200;
- payouts (``PESASWITCH_PAYOUT_FEE_TIERS``): KES 15 up to KES 1,000, then KES 15 + 0.5%,
  at most KES 265 (reached at KES 50,000).

Collection fees come out of the amount (the wallet gets amount - fee, and never less
than 0); payout fees are charged on top (the wallet pays amount + fee).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

DEFAULT_COLLECTION_FEE_TIERS = "1-13333:1.5%,13334-:200"
DEFAULT_PAYOUT_FEE_TIERS = "1-1000:15,1001-50000:15+0.5%,50001-:265"

_TIER = re.compile(r"^(\d+)-(\d*):(.+)$")
_FEE = re.compile(r"^(?:(\d+)(?:\+(\d+(?:\.\d{1,4})?)%)?|(\d+(?:\.\d{1,4})?)%)$")
_HUNDRED = Decimal(100)


@dataclass(frozen=True, slots=True)
class FeeTier:
    low: int
    high: int | None  # None: no upper bound
    flat: int
    percent: Decimal

    def covers(self, amount: int) -> bool:
        return amount >= self.low and (self.high is None or amount <= self.high)

    def fee(self, amount: int) -> int:
        share = (Decimal(amount) * self.percent / _HUNDRED).quantize(
            Decimal(1), rounding=ROUND_HALF_UP
        )
        return self.flat + int(share)


def _parse_fee(raw: str, spec: str) -> tuple[int, Decimal]:
    match = _FEE.match(spec.replace(" ", ""))
    if match is None:
        raise ValueError(f"fee {spec!r} in {raw!r} is not N, P% or N+P%")
    flat, flat_percent, only_percent = match.groups()
    percent = Decimal(flat_percent or only_percent or "0")
    if percent >= _HUNDRED:
        raise ValueError(f"fee {spec!r} in {raw!r} takes 100% or more")
    return int(flat or 0), percent


def parse_fee_tiers(raw: str) -> tuple[FeeTier, ...]:
    """``"1-13333:1.5%,13334-:200"`` → FeeTiers, checked to cover every amount once."""
    tiers: list[FeeTier] = []
    for part in raw.split(","):
        if not part.strip():
            continue
        match = _TIER.match(part.strip())
        if match is None:
            raise ValueError(f"tier {part.strip()!r} in {raw!r} is not LOW-HIGH:FEE")
        low, high, spec = int(match[1]), int(match[2]) if match[2] else None, match[3]
        if high is not None and high < low:
            raise ValueError(f"tier {part.strip()!r} in {raw!r} ends before it starts")
        expected_low = tiers[-1].high + 1 if tiers and tiers[-1].high is not None else None
        if tiers and (tiers[-1].high is None or low != expected_low):
            raise ValueError(f"tier {part.strip()!r} in {raw!r} does not follow on")
        tiers.append(FeeTier(low, high, *_parse_fee(raw, spec)))
    if not tiers:
        raise ValueError("a fee tariff needs at least one tier")
    if tiers[0].low > 1:
        raise ValueError(f"the first tier of {raw!r} must start at 0 or 1")
    if tiers[-1].high is not None:
        raise ValueError(f"the last tier of {raw!r} must be open-ended (e.g. '20001-:50')")
    return tuple(tiers)


def fee_for(amount: int, tiers: Sequence[FeeTier]) -> int:
    if amount < 0:
        raise ValueError("amounts are never negative")
    for tier in tiers:
        if tier.covers(amount):
            return tier.fee(amount)
    return 0  # below the first tier (0 when it starts at 1): nothing to charge


DEFAULT_COLLECTION_TIERS = parse_fee_tiers(DEFAULT_COLLECTION_FEE_TIERS)
DEFAULT_PAYOUT_TIERS = parse_fee_tiers(DEFAULT_PAYOUT_FEE_TIERS)


def collection_fee(amount: int, tiers: Sequence[FeeTier] = DEFAULT_COLLECTION_TIERS) -> int:
    """The operator's fee on a collection of ``amount``, capped at the amount itself."""
    return min(fee_for(amount, tiers), amount)


def payout_fee(amount: int, tiers: Sequence[FeeTier] = DEFAULT_PAYOUT_TIERS) -> int:
    """The operator's fee on a payout of ``amount``, charged on top of it."""
    return fee_for(amount, tiers)


@dataclass(frozen=True, slots=True)
class Tariff:
    collection: tuple[FeeTier, ...] = DEFAULT_COLLECTION_TIERS
    payout: tuple[FeeTier, ...] = DEFAULT_PAYOUT_TIERS

    @classmethod
    def parse(cls, collection: str, payout: str) -> Tariff:
        return cls(parse_fee_tiers(collection), parse_fee_tiers(payout))

    def collection_fee(self, amount: int) -> int:
        return collection_fee(amount, self.collection)

    def payout_fee(self, amount: int) -> int:
        return payout_fee(amount, self.payout)
