"""Idempotency-Key handling (reliability.md §2; draft-ietf-httpapi-idempotency-key-header).

Same key + same request → the first response replayed. Same key + different request → 422.
Same key while the first is still running → 409. Keys are scoped to the account.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, cast

from sqlalchemy import Table, bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from pesaswitch.db import claim_row
from pesaswitch.errors import IdempotencyKeyInUse, IdempotencyKeyMismatch, ValidationFailed
from pesaswitch.kit.clock import utcnow
from pesaswitch.protection.models import IdempotencyKey

MAX_KEY_LENGTH = 255
_KEYS = cast(Table, IdempotencyKey.__table__)


@dataclass(frozen=True, slots=True)
class StoredResponse:
    status_code: int
    body: dict[str, Any]


@dataclass(frozen=True, slots=True)
class StaleClaim:
    """The first request died after creating its resource; the caller renders it afresh."""

    resource_id: str


def fingerprint(method_path: str, payload: Any) -> str:
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(f"{method_path}\n{canonical}".encode()).hexdigest()


def check_key(key: str) -> str:
    key = key.strip().strip('"')  # the draft sends it as a structured-field string
    if not key or len(key) > MAX_KEY_LENGTH:
        raise ValidationFailed(f"Idempotency-Key must be 1-{MAX_KEY_LENGTH} characters")
    return key


async def claim(
    session: AsyncSession,
    *,
    account_id: str,
    key: str,
    method_path: str,
    request_fingerprint: str,
    lock_seconds: float,
    resource_id: str | None = None,
) -> StoredResponse | StaleClaim | None:
    """None when this request now owns the key; otherwise what to answer instead.

    ``resource_id``: the id the request will create, when it is known up front and the
    resource is created in this same transaction (no later ``attach_resource`` needed).
    """
    inserted = await claim_row(
        session, _KEYS,
        {"account_id": account_id, "key": key, "method_path": method_path,
         "fingerprint": request_fingerprint, "state": "in_progress", "resource_id": resource_id,
         "created_at": utcnow()},
    )  # fmt: skip
    if inserted:
        return None
    row = await session.scalar(
        select(IdempotencyKey).where(
            IdempotencyKey.account_id == account_id, IdempotencyKey.key == key
        )
    )
    assert row is not None
    if row.fingerprint != request_fingerprint:
        raise IdempotencyKeyMismatch(
            "This Idempotency-Key was already used with a different request body or path"
        )
    if row.state == "done" and row.response_status is not None and row.response_body:
        return StoredResponse(row.response_status, json.loads(row.response_body))
    if row.resource_id and row.created_at < utcnow() - timedelta(seconds=lock_seconds):
        return StaleClaim(row.resource_id)
    raise IdempotencyKeyInUse(headers={"Retry-After": "1"})


async def attach_resource(
    session: AsyncSession, *, account_id: str, key: str, resource_id: str
) -> None:
    await session.execute(
        update(IdempotencyKey)
        .where(IdempotencyKey.account_id == account_id, IdempotencyKey.key == key)
        .values(resource_id=resource_id)
    )


# Built once, run with bound values: it runs for every POST that sends a key.
_COMPLETE = (
    update(_KEYS)
    .where(_KEYS.c.account_id == bindparam("k_account"), _KEYS.c.key == bindparam("k_key"))
    .values(state="done", response_status=bindparam("k_status"), response_body=bindparam("k_body"))
)


async def complete(
    session: AsyncSession, *, account_id: str, key: str, response: StoredResponse
) -> None:
    await session.execute(
        _COMPLETE,
        {"k_account": account_id, "k_key": key, "k_status": response.status_code,
         "k_body": json.dumps(response.body)},
    )  # fmt: skip
