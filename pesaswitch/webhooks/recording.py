"""What happened to each claimed attempt, written down: the attempt row and the delivery's
next state, for many attempts in one transaction.

The dispatcher records its finished sends in batches (``record_outcomes``) rather than a
transaction per send: on PostgreSQL, BEGIN, INSERT, UPDATE and COMMIT per delivery were
about a quarter of the worker's CPU (bench/issue-11-rounds.md, profile), mostly the socket writes of
four round trips. A batch is one INSERT of every attempt row and one executemany of the
delivery UPDATE. Recording later than the send changes nothing a receiver sees: the
lease keeps the delivery claimed meanwhile, and if the worker dies before recording, the
lease lapses and the attempt is sent again (at least once, same ``webhook-id``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import Table, bindparam, insert, update
from sqlalchemy.ext.asyncio import AsyncSession

from pesaswitch.kit.clock import utcnow
from pesaswitch.webhooks import service
from pesaswitch.webhooks.models import Delivery, DeliveryAttempt, DeliveryStatus

if TYPE_CHECKING:
    from pesaswitch.webhooks.sending import AttemptResult
    from pesaswitch.webhooks.store import Claim

_DELIVERIES = cast(Table, Delivery.__table__)
_INSERT_ATTEMPT = insert(cast(Table, DeliveryAttempt.__table__))
# Only the holder of this attempt may settle it; a retaken lease has a higher count.
_SETTLE = (
    update(_DELIVERIES)
    .where(
        _DELIVERIES.c.id == bindparam("d_id"),
        _DELIVERIES.c.attempt_count == bindparam("d_attempt"),
    )
    .values(
        status=bindparam("d_status"),
        next_attempt_at=bindparam("d_next"),
        last_status_code=bindparam("d_code"),
        updated_at=bindparam("d_now"),
    )
)


@dataclass(frozen=True, slots=True)
class Outcome:
    """A claimed attempt once tried; ``result`` None: not sent (endpoint disabled)."""

    claim: Claim
    result: AttemptResult | None
    attempted_at: datetime


def next_state(
    claim: Claim, result: AttemptResult | None, schedule: tuple[float, ...], now: datetime
) -> tuple[DeliveryStatus, datetime | None]:
    """Succeeded, failed for good, or pending again at the schedule's next step."""
    if result is None:
        return DeliveryStatus.FAILED, None
    if result.succeeded:
        return DeliveryStatus.SUCCEEDED, None
    if result.status_code == 410 and claim.endpoint is not None:
        return DeliveryStatus.FAILED, None
    if claim.attempt <= len(schedule):
        return DeliveryStatus.PENDING, now + timedelta(seconds=schedule[claim.attempt - 1])
    return DeliveryStatus.FAILED, None


def outcome_rows(
    outcomes: Sequence[Outcome], schedule: tuple[float, ...], now: datetime
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The attempt rows to insert and each delivery's settling values (``_SETTLE``'s
    parameters), for either database's way of writing them."""
    attempts: list[dict[str, Any]] = []
    settles: list[dict[str, Any]] = []
    for outcome in outcomes:
        claim, result = outcome.claim, outcome.result
        if result is not None:
            attempts.append(
                {"delivery_id": claim.delivery_id, "number": claim.attempt,
                 "attempted_at": outcome.attempted_at, "status_code": result.status_code,
                 "duration_ms": result.duration_ms, "response_body": result.body,
                 "error": result.error}
            )  # fmt: skip
        status, next_at = next_state(claim, result, schedule, now)
        settles.append(
            {"d_id": claim.delivery_id, "d_attempt": claim.attempt, "d_status": status.value,
             "d_next": next_at, "d_code": result.status_code if result else None, "d_now": now}
        )  # fmt: skip
    return attempts, settles


def gone(outcome: Outcome) -> bool:
    """410 Gone from an endpoint: the receiver asks us to stop (Standard Webhooks)."""
    result = outcome.result
    return result is not None and result.status_code == 410 and outcome.claim.endpoint is not None


async def record_outcomes(
    session: AsyncSession, outcomes: Sequence[Outcome], schedule: tuple[float, ...]
) -> None:
    """Write the attempts and settle their deliveries, in the caller's transaction."""
    if not outcomes:
        return
    for outcome in outcomes:
        endpoint = outcome.claim.endpoint
        if gone(outcome) and endpoint is not None:
            await service.set_enabled(
                session, account_id=outcome.claim.account_id, endpoint_id=endpoint.id,
                enabled=False, reason="receiver answered 410 Gone",
            )  # fmt: skip
    attempts, settles = outcome_rows(outcomes, schedule, utcnow())
    if attempts:
        await session.execute(_INSERT_ATTEMPT, attempts)
    await session.execute(_SETTLE, settles)
