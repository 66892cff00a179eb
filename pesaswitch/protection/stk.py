"""STK abuse protection: UpesiPay's rules for prompts that keep failing.

1. Per account and phone: after ``phone_failure_limit`` (10) successive failed, cancelled
   or expired results, prompts to that number are refused for ``phone_block`` (24 h).
   A completed payment resets the run.
2. Per account: when the failures in the sliding ``window`` (6 h) reach a tier
   (51 / 500 / 1000), STK prompts are refused for that tier's time (4 / 24 / 72 h).

The initiation check is on the hot path, so it never counts payments for clean numbers:
it reads the ``stk_account_guards`` row and the ``stk_phone_guards`` row by primary key.
Only a number that already has a run locks its guard row (``FOR UPDATE``; SQLite's
``BEGIN IMMEDIATE`` serialises anyway) and counts its prompts still pending, which may
yet fail: racing initiations to it then queue on that lock, and each sees the payments
the previous one created. The window counting happens when a failure is recorded, at
settlement, under a lock on the account row so that racing settlements cannot both miss
a threshold; it uses ``ix_payments_account_status_finalized`` and stops at the top tier.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from pesaswitch.config import Settings
from pesaswitch.db import bind_session_info, insert_ignoring_conflict
from pesaswitch.errors import StkAccountRestricted, StkPhoneBlocked, TooManyRequests
from pesaswitch.kit.clock import isoformat
from pesaswitch.kit.phones import mask_phone
from pesaswitch.payments.models import Payment, PaymentStatus
from pesaswitch.protection.models import StkAccountGuard, StkPhoneGuard

log = structlog.get_logger(__name__)

FAILED_STATUSES = (
    PaymentStatus.FAILED.value,
    PaymentStatus.CANCELLED.value,
    PaymentStatus.EXPIRED.value,
)
# A refusal because prompts are still pending lifts once they settle: Daraja's prompt
# times out on the phone after about a minute.
PENDING_RETRY = timedelta(seconds=60)
POLICY_KEY = "pesaswitch.stk_policy"


@dataclass(frozen=True, slots=True)
class StkPolicy:
    enabled: bool = True
    phone_failure_limit: int = 10
    phone_block: timedelta = timedelta(hours=24)
    window: timedelta = timedelta(hours=6)
    restrictions: tuple[tuple[int, timedelta], ...] = (
        (51, timedelta(hours=4)),
        (500, timedelta(hours=24)),
        (1000, timedelta(hours=72)),
    )

    @classmethod
    def from_settings(cls, settings: Settings) -> StkPolicy:
        return cls(
            enabled=settings.stk_protection,
            phone_failure_limit=settings.stk_phone_failure_limit,
            phone_block=timedelta(seconds=settings.stk_phone_block_seconds),
            window=timedelta(seconds=settings.stk_account_window_seconds),
            restrictions=tuple(
                (count, timedelta(seconds=seconds))
                for count, seconds in settings.stk_restriction_tiers
            ),
        )

    def restriction_for(self, failures: int) -> timedelta | None:
        """The longest restriction whose threshold ``failures`` reaches, if any."""
        reached = [duration for count, duration in self.restrictions if failures >= count]
        return max(reached, default=None)

    @property
    def count_cap(self) -> int:
        """Counting further than the top threshold cannot change the answer."""
        return max((count for count, _ in self.restrictions), default=0)


def bind_policy(sessionmaker: async_sessionmaker[AsyncSession], settings: Settings) -> None:
    """Attach the policy to every session the runtime opens.

    Settlement (Daraja callbacks, the reconciler, push refusals) only carries a session,
    and the payments service should not need settings to record an outcome.
    """
    bind_session_info(sessionmaker, POLICY_KEY, StkPolicy.from_settings(settings))


def policy_of(session: AsyncSession) -> StkPolicy:
    # Sessions opened outside a runtime (operator commands) get the default rules.
    policy = session.info.get(POLICY_KEY)
    return policy if isinstance(policy, StkPolicy) else StkPolicy()


def _refusal(
    error: type[TooManyRequests], detail: str, *, until: datetime, now: datetime
) -> TooManyRequests:
    retry_after = max(1, math.ceil((until - now).total_seconds()))
    return error(
        detail,
        headers={"Retry-After": str(retry_after)},
        retry_after=retry_after,
        blocked_until=isoformat(until),
    )


async def count_pending(
    session: AsyncSession, *, account_id: str, phone: str, since: datetime
) -> int:
    """Prompts to this number that may still fail (older ones are stuck, not in play)."""
    total = await session.scalar(
        select(func.count())
        .select_from(Payment)
        .where(
            Payment.account_id == account_id,
            Payment.phone == phone,
            Payment.status == PaymentStatus.PENDING.value,
            Payment.created_at >= since,
        )
    )
    return int(total or 0)


async def count_window_failures(
    session: AsyncSession, *, account_id: str, since: datetime, cap: int | None = None
) -> int:
    query = select(Payment.id).where(
        Payment.account_id == account_id,
        Payment.status.in_(FAILED_STATUSES),
        Payment.finalized_at >= since,
    )
    if cap is not None:
        query = query.limit(cap)
    total = await session.scalar(select(func.count()).select_from(query.subquery()))
    return int(total or 0)


async def check_stk_allowed(
    session: AsyncSession, *, account_id: str, phone: str, now: datetime
) -> None:
    """Raise a 429 when a prompt to ``phone`` must not be sent now.

    Call it in the transaction that creates the payment, so the lock taken for a number
    with a run is held until that payment is committed.
    """
    policy = policy_of(session)
    if not policy.enabled:
        return
    account = await session.get(StkAccountGuard, account_id)
    restricted_until = account.restricted_until if account is not None else None
    if restricted_until is not None and restricted_until > now:
        raise _refusal(
            StkAccountRestricted,
            "Too many failed STK prompts from this account recently; "
            "prompts are paused until the restriction lifts",
            until=restricted_until,
            now=now,
        )
    guard = await session.get(StkPhoneGuard, (account_id, phone))
    if guard is None or (guard.blocked_until is not None and guard.blocked_until <= now):
        return  # no history, or a block that ran its course: the next run starts at 0
    if guard.blocked_until is None and guard.consecutive_failures == 0:
        return
    # A run is under way: take the row lock and decide on fresh values.
    guard = await session.get(
        StkPhoneGuard, (account_id, phone), with_for_update=True, populate_existing=True
    )
    assert guard is not None  # guard rows are never deleted; a lift resets them
    blocked_until = guard.blocked_until
    if blocked_until is None and guard.consecutive_failures >= policy.phone_failure_limit:
        # The limit was lowered since the run was recorded: block from its last failure.
        blocked_until = (guard.last_failure_at or now) + policy.phone_block
    masked = mask_phone(phone)
    if blocked_until is not None and blocked_until > now:
        raise _refusal(
            StkPhoneBlocked,
            f"{masked} did not complete the last {guard.consecutive_failures} STK prompts "
            "from this account; prompts to it are paused until the block lifts",
            until=blocked_until,
            now=now,
        )
    if blocked_until is not None:
        return
    pending = await count_pending(
        session, account_id=account_id, phone=phone, since=now - policy.phone_block
    )
    if guard.consecutive_failures + pending >= policy.phone_failure_limit:
        raise _refusal(
            StkPhoneBlocked,
            f"{masked} did not complete the last {guard.consecutive_failures} STK prompts "
            f"and {pending} more are still open; try again once they are answered",
            until=now + PENDING_RETRY,
            now=now,
        )


async def record_stk_outcome(
    session: AsyncSession, *, account_id: str, phone: str, succeeded: bool, now: datetime
) -> None:
    """Count a prompt that reached a final status, in the transaction that set it."""
    policy = policy_of(session)
    if not policy.enabled:
        return
    if succeeded:
        await session.execute(
            update(StkPhoneGuard)
            .where(
                StkPhoneGuard.account_id == account_id,
                StkPhoneGuard.phone == phone,
                StkPhoneGuard.consecutive_failures > 0,
            )
            .values(consecutive_failures=0, updated_at=now)
        )
        return
    # Lock order phone → account everywhere, so racing settlements cannot deadlock.
    await _record_phone_failure(session, policy, account_id=account_id, phone=phone, now=now)
    if policy.restrictions:
        await _record_account_failure(session, policy, account_id=account_id, now=now)


async def _record_phone_failure(
    session: AsyncSession, policy: StkPolicy, *, account_id: str, phone: str, now: datetime
) -> None:
    await insert_ignoring_conflict(
        session, StkPhoneGuard, account_id=account_id, phone=phone, updated_at=now
    )
    guard = await session.get(
        StkPhoneGuard, (account_id, phone), with_for_update=True, populate_existing=True
    )
    assert guard is not None
    if guard.blocked_until is not None and guard.blocked_until <= now:
        guard.consecutive_failures, guard.blocked_until = 0, None  # the block was served
    guard.consecutive_failures += 1
    guard.last_failure_at = guard.updated_at = now
    if guard.blocked_until is None and guard.consecutive_failures >= policy.phone_failure_limit:
        guard.blocked_until = now + policy.phone_block
        log.warning(
            "stk.phone_blocked",
            account_id=account_id,
            phone=mask_phone(phone),
            failures=guard.consecutive_failures,
            blocked_until=isoformat(guard.blocked_until),
        )
    await session.flush()


async def _record_account_failure(
    session: AsyncSession, policy: StkPolicy, *, account_id: str, now: datetime
) -> None:
    await insert_ignoring_conflict(session, StkAccountGuard, account_id=account_id, updated_at=now)
    # Held until commit: the next settlement of this account counts after this one.
    guard = await session.get(
        StkAccountGuard, account_id, with_for_update=True, populate_existing=True
    )
    assert guard is not None
    since = now - policy.window
    if guard.counted_since is not None and guard.counted_since > since:
        since = guard.counted_since
    failures = await count_window_failures(
        session, account_id=account_id, since=since, cap=policy.count_cap
    )
    duration = policy.restriction_for(failures)
    if duration is None:
        return
    until = now + duration
    if guard.restricted_until is not None and guard.restricted_until >= until:
        return  # never shorten a longer restriction
    guard.restricted_until, guard.window_failures, guard.updated_at = until, failures, now
    await session.flush()
    log.warning(
        "stk.account_restricted",
        account_id=account_id,
        failures=failures,
        restricted_until=isoformat(until),
    )
