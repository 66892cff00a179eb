"""PostgreSQL's outbox claim, and the recording of sent attempts, each as one statement on
asyncpg directly.

The general claim (``dispatcher.claim_due`` through SQLAlchemy) is a transaction of three
statements: the due rows ``FOR UPDATE SKIP LOCKED``, the lease's UPDATE, and a joined read
of what the sends need; five round trips with BEGIN and COMMIT. Under load the worker
claims several times a second, and that was its largest share after the sends
(bench/issue-11-rounds.md, sixth round). Here one data-modifying WITH statement does all three,
outside any transaction (a single statement commits atomically on its own), with the
per-destination cap applied in SQL by ``row_number()`` over the destination.

It claims the same rows the general path would: due and pending, oldest first, no more
than ``webhook_destination_cap`` in flight per destination counting those already busy.

Recording a batch of sends was a transaction too (BEGIN, the attempts' INSERT, an
executemany of the settling UPDATE, COMMIT); here it is one statement with the same rows,
from ``recording.outcome_rows``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from pesaswitch.accounts.models import Environment
from pesaswitch.webhooks.models import WebhookEndpoint
from pesaswitch.webhooks.recording import Outcome, outcome_rows


def destination_of(endpoint_id: str | None, url: str) -> str:
    """What the per-destination cap counts by: the endpoint, or a callback_url's URL."""
    return endpoint_id or url


@dataclass(frozen=True, slots=True)
class Claim:
    """One claimed attempt, with everything needed to send it (read in the claim itself)."""

    delivery_id: str
    attempt: int
    url: str
    event_id: str
    payload: str
    account_id: str
    environment: Environment
    callback_secret_enc: str | None
    endpoint: WebhookEndpoint | None
    format: str | None = None

    @property
    def destination(self) -> str:
        return destination_of(self.endpoint.id if self.endpoint else None, self.url)


_ENDPOINT_COLUMNS = tuple(column.name for column in WebhookEndpoint.__table__.columns)
_ENDPOINT_ATTRIBUTES = {
    prop.columns[0].name: prop.key for prop in WebhookEndpoint.__mapper__.column_attrs
}

# $1 now, $2 destinations already at the cap, $3 the candidate window, $4 and $5 the busy
# destinations and their counts, $6 the cap, $7 how many to claim, $8 the lease's end.
# The window is taken before the cap (as the general path does) so that one destination's
# backlog cannot fill it: full destinations are excluded in the window's WHERE.
_CLAIM_HEAD = """
WITH due AS (
    SELECT id, coalesce(endpoint_id, url) AS destination, next_attempt_at
      FROM deliveries
     WHERE status = 'pending' AND next_attempt_at <= $1
       AND coalesce(endpoint_id, url) <> ALL($2::varchar[])
     ORDER BY next_attempt_at
     LIMIT $3
       FOR UPDATE SKIP LOCKED
), ranked AS (
    SELECT due.id, due.next_attempt_at,
           row_number() OVER (PARTITION BY due.destination ORDER BY due.next_attempt_at)
             + coalesce(busy.n, 0) AS slot
      FROM due
      LEFT JOIN unnest($4::varchar[], $5::integer[]) AS busy (destination, n)
        ON busy.destination = due.destination
), chosen AS (
    SELECT id FROM ranked WHERE slot <= $6 ORDER BY next_attempt_at LIMIT $7
), leased AS (
    UPDATE deliveries SET attempt_count = deliveries.attempt_count + 1, next_attempt_at = $8
      FROM chosen
     WHERE deliveries.id = chosen.id
    RETURNING deliveries.id, deliveries.attempt_count, deliveries.url, deliveries.event_id,
              deliveries.body, deliveries.format, deliveries.account_id,
              deliveries.endpoint_id
)
SELECT leased.*, events.payload, accounts.environment, accounts.callback_secret_enc,
"""
_ENDPOINT_SELECT = ", ".join(
    f"webhook_endpoints.{name} AS endpoint_{name}" for name in _ENDPOINT_COLUMNS
)
_CLAIM_TAIL = """
  FROM leased
  JOIN events ON events.id = leased.event_id
  JOIN accounts ON accounts.id = leased.account_id
  LEFT JOIN webhook_endpoints ON webhook_endpoints.id = leased.endpoint_id
"""
# Joined from constants and the model's column names; every value is a bound parameter.
_CLAIM = _CLAIM_HEAD + _ENDPOINT_SELECT + _CLAIM_TAIL  # nosec B608


def _endpoint_from(row: Any) -> WebhookEndpoint | None:
    if row["endpoint_id"] is None:
        return None
    values = {attr: row[f"endpoint_{column}"] for column, attr in _ENDPOINT_ATTRIBUTES.items()}
    event_types = values["event_types"]
    if isinstance(event_types, str):  # JSONB arrives as text on the raw connection
        values["event_types"] = json.loads(event_types)
    return WebhookEndpoint(**values)


async def claim_due(
    engine: AsyncEngine,
    *,
    now: datetime,
    limit: int,
    cap: int,
    busy: Mapping[str, int],
    lease_until: datetime,
) -> list[Claim]:
    """Lease up to ``limit`` due attempts in one statement and read what sending needs."""
    full = [destination for destination, n in busy.items() if n >= cap]
    params: list[Any] = [
        now, full, limit * 4, list(busy), list(busy.values()), cap, limit, lease_until,
    ]  # fmt: skip
    async with engine.connect() as connection:
        raw = await connection.get_raw_connection()
        driver: Any = raw.driver_connection
        rows = await driver.fetch(_CLAIM, *params)
    return [
        Claim(
            delivery_id=row["id"],
            attempt=row["attempt_count"],
            url=row["url"],
            event_id=row["event_id"],
            payload=row["body"] or row["payload"],
            format=row["format"],
            account_id=row["account_id"],
            environment=Environment(row["environment"]),
            callback_secret_enc=row["callback_secret_enc"],
            endpoint=_endpoint_from(row),
        )
        for row in rows
    ]


# $1 to $7 one array per attempt column; $8 to $13 one per delivery to settle. Only the
# holder of the attempt settles it (a retaken lease has a higher count), as ``_SETTLE``.
_RECORD = """
WITH attempts AS (
    INSERT INTO delivery_attempts (delivery_id, number, attempted_at, status_code,
                                   duration_ms, response_body, error)
    SELECT * FROM unnest($1::varchar[], $2::integer[], $3::timestamp[], $4::integer[],
                         $5::integer[], $6::text[], $7::varchar[])
)
UPDATE deliveries SET status = s.status, next_attempt_at = s.next_at,
                      last_status_code = s.code, updated_at = s.now
  FROM unnest($8::varchar[], $9::integer[], $10::varchar[], $11::timestamp[],
              $12::integer[], $13::timestamp[]) AS s (id, attempt, status, next_at, code, now)
 WHERE deliveries.id = s.id AND deliveries.attempt_count = s.attempt
"""
_ATTEMPT_KEYS = (
    "delivery_id", "number", "attempted_at", "status_code", "duration_ms", "response_body",
    "error",
)  # fmt: skip
_SETTLE_KEYS = ("d_id", "d_attempt", "d_status", "d_next", "d_code", "d_now")


async def record_outcomes(
    engine: AsyncEngine, outcomes: Sequence[Outcome], schedule: tuple[float, ...], now: datetime
) -> None:
    """Write the attempts and settle their deliveries in one statement. Not for a 410
    Gone, which disables its endpoint (``recording.record_outcomes`` does that)."""
    attempts, settles = outcome_rows(outcomes, schedule, now)
    params = [[row[key] for row in attempts] for key in _ATTEMPT_KEYS]
    params += [[row[key] for row in settles] for key in _SETTLE_KEYS]
    async with engine.connect() as connection:
        raw = await connection.get_raw_connection()
        driver: Any = raw.driver_connection
        await driver.execute(_RECORD, *params)
