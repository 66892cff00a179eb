"""Operator views and actions on the STK guards (``pesaswitch protection status|lift``)."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from pesaswitch.db import insert_ignoring_conflict
from pesaswitch.kit.clock import isoformat
from pesaswitch.protection.models import StkAccountGuard, StkPhoneGuard
from pesaswitch.protection.stk import StkPolicy, count_pending, count_window_failures


def _retry_after(until: datetime | None, now: datetime) -> int | None:
    if until is None or until <= now:
        return None
    return max(1, math.ceil((until - now).total_seconds()))


async def _phone_view(
    session: AsyncSession,
    policy: StkPolicy,
    *,
    account_id: str,
    phone: str,
    guard: StkPhoneGuard | None,
    now: datetime,
) -> dict[str, Any]:
    run, blocked_until, last_failure_at = 0, None, None
    if guard is not None:
        run, blocked_until = guard.consecutive_failures, guard.blocked_until
        last_failure_at = guard.last_failure_at
        if blocked_until is not None and blocked_until <= now:
            run, blocked_until = 0, None  # served: the next failure starts a new run
    return {
        "phone": phone,
        "consecutive_failures": run,
        "pending": await count_pending(
            session, account_id=account_id, phone=phone, since=now - policy.phone_block
        ),
        "blocked": blocked_until is not None,
        "blocked_until": isoformat(blocked_until),
        "retry_after": _retry_after(blocked_until, now),
        "last_failure_at": isoformat(last_failure_at),
    }


async def stk_status(
    session: AsyncSession,
    *,
    policy: StkPolicy,
    account_id: str,
    phone: str | None,
    now: datetime,
) -> dict[str, Any]:
    """The account's restriction and either one number or every blocked number."""
    account = await session.get(StkAccountGuard, account_id)
    since = now - policy.window
    if account is not None and account.counted_since is not None:
        since = max(since, account.counted_since)
    restricted_until = account.restricted_until if account is not None else None
    retry_after = _retry_after(restricted_until, now)
    if phone is not None:
        guards = [(phone, await session.get(StkPhoneGuard, (account_id, phone)))]
    else:
        rows = await session.scalars(
            select(StkPhoneGuard)
            .where(StkPhoneGuard.account_id == account_id, StkPhoneGuard.blocked_until > now)
            .order_by(StkPhoneGuard.blocked_until.desc(), StkPhoneGuard.phone)
        )
        guards = [(row.phone, row) for row in rows]
    return {
        "account_id": account_id,
        "protection_enabled": policy.enabled,
        "account": {
            "restricted": retry_after is not None,
            "restricted_until": isoformat(restricted_until) if retry_after is not None else None,
            "retry_after": retry_after,
            "failures_in_window": await count_window_failures(
                session, account_id=account_id, since=since
            ),
            "window_seconds": int(policy.window.total_seconds()),
            "counted_since": isoformat(account.counted_since) if account is not None else None,
        },
        "phones": [
            await _phone_view(
                session, policy, account_id=account_id, phone=number, guard=guard, now=now
            )
            for number, guard in guards
        ],
    }


async def lift_phone_block(
    session: AsyncSession, *, account_id: str, phone: str, now: datetime
) -> bool:
    """Clear the number's block and restart its run; False when there was nothing to clear."""
    result = await session.execute(
        update(StkPhoneGuard)
        .where(StkPhoneGuard.account_id == account_id, StkPhoneGuard.phone == phone)
        .values(consecutive_failures=0, blocked_until=None, updated_at=now)
    )
    return bool(getattr(result, "rowcount", 0))


async def lift_account_restriction(
    session: AsyncSession, *, account_id: str, now: datetime
) -> None:
    """Clear the restriction and stop counting the failures that caused it.

    Without ``counted_since`` the very next failure would find the same failures in the
    window and restrict the account again.
    """
    await insert_ignoring_conflict(session, StkAccountGuard, account_id=account_id, updated_at=now)
    await session.execute(
        update(StkAccountGuard)
        .where(StkAccountGuard.account_id == account_id)
        .values(restricted_until=None, window_failures=0, counted_since=now, updated_at=now)
    )
