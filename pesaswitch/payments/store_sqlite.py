"""SQLite's hot path for a payment: the twins of PostgreSQL's hot statements, each run as
one transaction in one trip to ``sqlite_direct``'s thread.

PostgreSQL's hot path (``store_push.py``, ``store_settle.py``) is a few statements that
decide and write in the database. Each function here takes the same parameters as its
PostgreSQL twin, does the same in a few plain statements under SQLite's write lock
(``BEGIN IMMEDIATE``: no row locks to order), and returns what the twin returns, so the
Python around them is one for both databases:

- ``create``: ``store_push._CREATE`` (the key's claim and the pending payment);
- ``accept``: ``store_push._ACCEPTED`` / ``_REPLAY`` (the acceptance and the replay);
- ``read_pending`` and ``settle``: ``store_settle._READ`` and ``settle_stk_callback()``
  (migration 0012).

Values are stored and read in the ORM's formats (``sqlite_direct.Codec``).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

from pesaswitch.payments.store import DELIVERY_COLUMNS
from pesaswitch.sqlite_direct import codec
from pesaswitch.webhooks.service import EVENT_COLUMNS

_PAYMENTS = codec("payments")
_CHANNELS = codec("channels")


def _stored_time(value: Any) -> Any:
    return _PAYMENTS.store("created_at", value)


def _first(cursor: sqlite3.Cursor) -> Any:
    """A query's first row, the statement run to its end (none left in progress)."""
    rows = cursor.fetchall()
    return rows[0] if rows else None


_CHANNEL = """
SELECT * FROM channels
 WHERE account_id = ? AND is_active
   AND CASE WHEN ? IS NULL THEN is_default ELSE id = ? END"""
_GUARDED = """
SELECT EXISTS (SELECT 1 FROM stk_account_guards g
                WHERE g.account_id = ? AND g.restricted_until > ?)
    OR EXISTS (SELECT 1 FROM stk_phone_guards p
                WHERE p.account_id = ? AND p.phone = ?
                  AND (p.blocked_until > ?
                       OR (p.blocked_until IS NULL AND p.consecutive_failures > 0)))"""
_CLAIM = """
INSERT INTO idempotency_keys (account_id, key, method_path, fingerprint, state, resource_id,
                              created_at)
VALUES (?, ?, ?, ?, 'in_progress', ?, ?)
ON CONFLICT DO NOTHING"""


def create(
    connection: sqlite3.Connection, params: Sequence[Any], payment_columns: Sequence[str]
) -> dict[str, Any] | None:
    """``store_push._CREATE``: the channel's row with ``created_payment`` (whether the
    payment was inserted), or None when the account has no such channel. ``params`` as
    the twin binds them: account, channel id, protection, now, phone, key, method and
    path, fingerprint, payment id, then the payment's ``payment_columns``."""
    account_id, channel_id, protection, now, phone, key, method_path, fingerprint = params[:8]
    payment_id = params[8]
    channel = _first(connection.execute(_CHANNEL, (account_id, channel_id, channel_id)))
    if channel is None:
        return None
    found = _CHANNELS.load_row(channel)
    stored_now = _stored_time(now)
    guarded = (account_id, stored_now, account_id, phone, stored_now)
    if protection and _first(connection.execute(_GUARDED, guarded))[0]:
        return {**found, "created_payment": False}
    if key is not None:
        claimed = connection.execute(
            _CLAIM, (account_id, key, method_path, fingerprint, payment_id, stored_now)
        )
        if claimed.rowcount != 1:
            return {**found, "created_payment": False}
    values = dict(zip(payment_columns, params[9:], strict=True))
    _PAYMENTS.insert(connection, [{**values, "channel_id": found["id"]}])
    return {**found, "created_payment": True}


_ACCEPT = """
UPDATE payments SET
    checkout_request_id = ?, merchant_request_id = ?, push_state = 'accepted',
    -- A callback may have settled it already (it can beat the push response).
    next_query_at = CASE WHEN status = 'pending' THEN ? END,
    updated_at = ?
WHERE id = ?
RETURNING *"""
_REPLAY = """
UPDATE idempotency_keys SET state = 'done', response_status = ?, response_body = ?
 WHERE account_id = ? AND key = ?"""


def accept(connection: sqlite3.Connection, params: Sequence[Any]) -> dict[str, Any] | None:
    """``store_push._ACCEPTED`` (and ``_REPLAY`` when ``params`` carry a replay): the
    payment as stored after it, the replay stored only if the payment is still pending."""
    payment_id, checkout, merchant, next_query_at, now = params[:5]
    stored = _first(
        connection.execute(
            _ACCEPT,
            (checkout, merchant, _stored_time(next_query_at), _stored_time(now), payment_id),
        )
    )
    if stored is None:
        return None
    row = _PAYMENTS.load_row(stored)
    if len(params) > 5 and row["status"] == "pending":
        connection.execute(_REPLAY, params[5:9])
    return row


_READ = """
SELECT p.*, c.kind AS channel_kind,
    (SELECT json_group_array(json_array(e.id, e.url, e.style, json(e.event_types)))
       FROM webhook_endpoints e
      WHERE e.account_id = p.account_id AND e.enabled AND e.deleted_at IS NULL
    ) AS endpoints
FROM payments p JOIN channels c ON c.id = p.channel_id
WHERE p.callback_token = ? AND p.status = 'pending'
  AND (? IS NULL OR p.checkout_request_id IS NULL OR p.checkout_request_id = ?)
  AND (? IS NULL OR p.amount = ?)"""


def read_pending(
    connection: sqlite3.Connection, token: str, checkout: str | None, amount: int | None
) -> dict[str, Any] | None:
    """``store_settle._READ``: the pending payment the callback agrees with, its channel's
    kind and the account's live endpoints (JSON); ``row_version`` None (see ``settle``)."""
    row = _first(connection.execute(_READ, (token, checkout, checkout, amount, amount)))
    if row is None:
        return None
    return {**_PAYMENTS.load_row(row), "row_version": None}


_SETTLE = """
UPDATE payments SET
    status = ?, result_code = ?, result_desc = ?, mpesa_receipt = ?, transaction_date = ?,
    settled_by = ?, next_query_at = NULL, finalized_at = ?, updated_at = ?,
    checkout_request_id = ?, merchant_request_id = ?
WHERE id = ? AND status = 'pending'
RETURNING account_id, phone"""
_RAW_BODY = """
INSERT INTO daraja_callbacks (payment_id, body, source_ip, outcome, received_at)
VALUES (?, ?, ?, 'applied', ?)"""
_ENTRY = """
INSERT INTO journal_entries (id, key, kind, description, reference, created_at)
VALUES (?, ?, ?, ?, ?, ?)
ON CONFLICT DO NOTHING"""
_POSTING = "INSERT INTO postings (entry_id, ledger_account_id, amount) VALUES (?, ?, ?)"
_MOVE = "UPDATE ledger_accounts SET balance = balance + ? WHERE id = ?"
_RESET_GUARD = """
UPDATE stk_phone_guards SET consecutive_failures = 0, updated_at = ?
 WHERE account_id = ? AND phone = ? AND consecutive_failures > 0"""
# settle_stk_callback()'s 42 parameters: 14 of the payment's, the event's 6, one array per
# delivery column (13), the journal entry's 9.
_EVENT_AT, _DELIVERIES_AT, _ENTRY_AT, _PARAMS = 14, 20, 33, 42


def settle(connection: sqlite3.Connection, params: Sequence[Any]) -> bool:
    """``settle_stk_callback()``: settle the payment if it is pending, with the raw body,
    the ledger entry, the STK guard's reset, the event and its deliveries; False (nothing
    written) otherwise. In the transaction that read it (``read_pending``): under SQLite's
    write lock the row is still the one read, so the twin's version check (``xmin``) has
    nothing to compare."""
    assert len(params) == _PARAMS, len(params)
    head = params[:_EVENT_AT]
    (payment_id, _version, status, result_code, result_desc, receipt, transaction_date,
     settled_by, now, checkout, merchant, body, source_ip, reset_guard) = head  # fmt: skip
    stored_now = _stored_time(now)
    settled = _first(connection.execute(
        _SETTLE,
        (status, result_code, result_desc, receipt, transaction_date, settled_by, stored_now,
         stored_now, checkout, merchant, payment_id),
    ))  # fmt: skip
    if settled is None:
        return False
    account_id, phone = settled
    connection.execute(_RAW_BODY, (payment_id, body, source_ip, stored_now))
    event = dict(zip(EVENT_COLUMNS, params[_EVENT_AT:_DELIVERIES_AT], strict=True))
    j_id, j_key, j_kind, j_description, j_reference, j_accounts, j_amounts, j_moved, j_deltas = (
        params[_ENTRY_AT:]
    )
    if j_key is not None:
        entry = connection.execute(
            _ENTRY,
            (j_id, j_key, j_kind, j_description, j_reference, _stored_time(event["created_at"])),
        )
        if entry.rowcount == 1:
            connection.executemany(
                _POSTING,
                [
                    (j_id, account, amount)
                    for account, amount in zip(j_accounts, j_amounts, strict=True)
                ],
            )
            connection.executemany(_MOVE, list(zip(j_deltas, j_moved, strict=True)))
    if reset_guard:
        connection.execute(_RESET_GUARD, (stored_now, account_id, phone))
    codec("events").insert(connection, [event])
    columns = params[_DELIVERIES_AT:_ENTRY_AT]
    codec("deliveries").insert(
        connection,
        [dict(zip(DELIVERY_COLUMNS, row, strict=True)) for row in zip(*columns, strict=True)],
    )
    return True
