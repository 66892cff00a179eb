"""The hot path for POST /v1/payments: its two writes as single statements on PostgreSQL,
and as one trip to ``sqlite_direct``'s thread each on SQLite (``store_sqlite.py``).

The general path (``initiate.py`` through the ORM) opens a transaction before the push
for the Idempotency-Key's claim, the channel's read, the STK protection's reads and the
payment's INSERT, and one after it for the acceptance and the replay to store. Here each
is one statement outside any transaction: a single statement commits atomically on its
own, which saves the BEGIN and COMMIT round trips as well as SQLAlchemy's work per
statement (bench/issue-11-rounds.md, profile).

Statement 1 writes only in the usual case, decided inside the statement: the channel is
the account's (active, or its default), the Idempotency-Key is new, and STK protection
has nothing to check under a lock (``protection.stk.check_stk_allowed``'s early
answers). Anything else writes nothing and the caller takes the general path, which
decides it as before (a replay, a key in use, a refusal, no such channel).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from pesaswitch.accounts.models import Channel
from pesaswitch.daraja.wire import StkPushAccepted
from pesaswitch.db import transient
from pesaswitch.kit.clock import utcnow
from pesaswitch.payments import store_sqlite
from pesaswitch.payments.models import Payment, PushState
from pesaswitch.payments.schemas import PaymentOut
from pesaswitch.payments.store import PAYMENT_ATTRIBUTES, payment_from_row
from pesaswitch.protection.idempotency import StoredResponse
from pesaswitch.sqlite_direct import direct_of

_CHANNEL_ATTRIBUTES = {prop.columns[0].name: prop.key for prop in Channel.__mapper__.column_attrs}
# The payment's columns in statement 1's order, from $10 on.
_PAYMENT_COLUMNS = (
    "id", "account_id", "amount", "currency", "phone", "reference", "external_reference",
    "description", "customer_name", "callback_url", "metadata", "dialect", "source",
    "status", "push_state", "callback_token", "query_attempts", "created_at", "updated_at",
    "next_query_at",
)  # fmt: skip

# $1 account, $2 channel id (NULL: the default), $3 STK protection on, $4 now, $5 phone,
# $6 the Idempotency-Key (NULL: none), $7 method and path, $8 fingerprint, $9 payment id,
# $10 to $29 the payment's columns (_PAYMENT_COLUMNS) but the channel, which the SELECT
# gives.
_CREATE = """
WITH channel AS (
    SELECT * FROM channels
     WHERE account_id = $1 AND is_active
       AND CASE WHEN $2::integer IS NULL THEN is_default ELSE id = $2 END
), allowed AS (
    SELECT channel.id FROM channel
     WHERE NOT $3::boolean OR (
        NOT EXISTS (SELECT 1 FROM stk_account_guards g
                     WHERE g.account_id = $1 AND g.restricted_until > $4)
        AND NOT EXISTS (SELECT 1 FROM stk_phone_guards p
                         WHERE p.account_id = $1 AND p.phone = $5
                           AND (p.blocked_until > $4
                                OR (p.blocked_until IS NULL AND p.consecutive_failures > 0))))
), claim AS (
    INSERT INTO idempotency_keys (account_id, key, method_path, fingerprint, state,
                                  resource_id, created_at)
    SELECT $1, $6, $7, $8, 'in_progress', $9, $4 FROM allowed WHERE $6::varchar IS NOT NULL
    ON CONFLICT DO NOTHING RETURNING 1
), created AS (
    INSERT INTO payments (channel_id, id, account_id, amount, currency, phone, reference,
                          external_reference, description, customer_name, callback_url,
                          metadata, dialect, source, status, push_state, callback_token,
                          query_attempts, created_at, updated_at, next_query_at)
    SELECT allowed.id, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23,
           $24, $25, $26, $27, $28, $29
      FROM allowed
     WHERE $6::varchar IS NULL OR EXISTS (SELECT 1 FROM claim)
    RETURNING 1
)
SELECT channel.*, EXISTS (SELECT 1 FROM created) AS created_payment FROM channel
"""
assert len(_PAYMENT_COLUMNS) == 20, "statement 1 binds $10 to $29"


def has_hot_path(engine: AsyncEngine) -> bool:
    """PostgreSQL, or SQLite on a file (``sqlite_direct.direct_of``)."""
    return engine.dialect.name == "postgresql" or direct_of(engine) is not None


@dataclass(frozen=True, slots=True)
class Created:
    payment: Payment
    channel: Channel


async def create_payment(
    engine: AsyncEngine,
    *,
    values: dict[str, Any],
    channel_id: int | None,
    protection: bool,
    key: str | None,
    method_path: str,
    fingerprint: str,
) -> Created | None:
    """Claim the key and insert the pending payment (``values`` by attribute, as
    ``service.pending_payment_values`` gives them, but the channel) in one statement;
    None when it wrote nothing, for the general path to decide."""
    direct = direct_of(engine)
    columns = {**values, "metadata": values["metadata_"]}
    if direct is None:
        metadata = columns["metadata"]
        columns["metadata"] = None if metadata is None else json.dumps(metadata)
    now: datetime = values["created_at"]
    params: list[Any] = [
        values["account_id"], channel_id, protection, now, values["phone"], key, method_path,
        fingerprint, values["id"], *(columns[name] for name in _PAYMENT_COLUMNS),
    ]  # fmt: skip
    row: Any
    if direct is not None:
        row = await direct.write(
            lambda sqlite: store_sqlite.create(sqlite, params, _PAYMENT_COLUMNS)
        )
    else:
        async with engine.connect() as connection:
            raw = await connection.get_raw_connection()
            driver: Any = raw.driver_connection
            row = await driver.fetchrow(_CREATE, *params)
    if row is None or not row["created_payment"]:
        return None
    channel = transient(
        Channel, {attr: row[column] for column, attr in _CHANNEL_ATTRIBUTES.items()}
    )
    payment = transient(Payment, {**values, "channel_id": channel.id})
    return Created(payment, channel)


_ACCEPTED = """
WITH accepted AS (
    UPDATE payments SET
        checkout_request_id = $2, merchant_request_id = $3, push_state = 'accepted',
        -- A callback may have settled it already (it can beat the push response).
        next_query_at = CASE WHEN status = 'pending' THEN $4::timestamp END,
        updated_at = $5
    WHERE id = $1
    RETURNING *
)"""
# The Idempotency-Key's replay is stored in the same statement when the payment is still
# pending, rendered from the payment as this process created it plus the UPDATE's values.
_REPLAY = """, replay AS (
    UPDATE idempotency_keys SET state = 'done', response_status = $6, response_body = $7
    WHERE account_id = $8 AND key = $9
      AND EXISTS (SELECT 1 FROM accepted WHERE status = 'pending')
)
SELECT * FROM accepted"""
# Constants joined (the linters flag any joined SQL); every value is a bound parameter.
_ACCEPTED_AND_REPLAY = _ACCEPTED + _REPLAY  # nosec B608
_ACCEPTED_ONLY = _ACCEPTED + "\nSELECT * FROM accepted"  # nosec B608


async def accept_push(
    engine: AsyncEngine,
    *,
    payment: Payment,
    accepted: StkPushAccepted,
    query_after: float,
    account_id: str,
    key: str | None,
) -> tuple[StoredResponse, bool]:
    """Record Daraja's acceptance of the push and (with a key) the response to replay, as
    one statement outside any transaction: a single statement commits atomically on its
    own, which saves the BEGIN and COMMIT round trips of a transaction around it.

    Returns the response (the payment as stored) and whether it is what the statement
    stored for the key. It is not when the row was not as this process expected (a
    callback settled it first): the caller then stores this response itself."""
    now = utcnow()
    expected = transient(Payment, {
        **{attr: getattr(payment, attr) for attr in PAYMENT_ATTRIBUTES.values()},
        "checkout_request_id": accepted.checkout_request_id,
        "merchant_request_id": accepted.merchant_request_id,
        "push_state": PushState.ACCEPTED.value,
        "next_query_at": now + timedelta(seconds=query_after),
        "updated_at": now,
    })  # fmt: skip
    params: list[Any] = [payment.id, accepted.checkout_request_id, accepted.merchant_request_id,
                         expected.next_query_at, now]  # fmt: skip
    replay: StoredResponse | None = None
    if key is not None:
        replay = StoredResponse(201, PaymentOut.render(expected).model_dump())
        params += [replay.status_code, json.dumps(replay.body), account_id, key]
    row: Any
    direct = direct_of(engine)
    if direct is not None:
        row = await direct.write(lambda sqlite: store_sqlite.accept(sqlite, params))
    else:
        async with engine.connect() as connection:
            raw = await connection.get_raw_connection()
            driver: Any = raw.driver_connection
            row = await driver.fetchrow(
                _ACCEPTED_ONLY if key is None else _ACCEPTED_AND_REPLAY, *params
            )
    assert row is not None, payment.id
    stored = payment_from_row(row)
    # Every column as expected (so still pending): the replay renders the stored row, and
    # is the response; anything else is rendered afresh.
    if replay is not None and all(
        getattr(stored, attr) == getattr(expected, attr) for attr in PAYMENT_ATTRIBUTES.values()
    ):
        return replay, True
    return StoredResponse(201, PaymentOut.render(stored).model_dump()), False
