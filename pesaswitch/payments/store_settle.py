"""The hot path for an STK callback: two round trips outside any transaction on
PostgreSQL; on SQLite one trip to ``sqlite_direct``'s thread that runs the twins of both
statements (``store_sqlite.read_pending`` and ``settle``) in one ``BEGIN IMMEDIATE``.

``store.settle_callback`` settles a callback in a transaction of five round trips (BEGIN,
the settling UPDATE, the balance rows' lock, the event with its deliveries and entry,
COMMIT), through the session. Here the same rows are written in two, on asyncpg directly:

1. a read of the pending payment the callback agrees with, its channel's kind, the
   account's live webhook endpoints and the row's version (``xmin``);
2. one call of ``settle_stk_callback()`` (migration 0012), which settles that version
   of the row and writes the raw body, the ledger entry, the STK guard's reset, the event
   and its deliveries, as a single statement that commits on its own.

Python builds what is written from the row as read plus the callback's final values,
with the same functions as the other paths, so all of them store the same rows. The
function settles the row only if it is still that version and pending; when it is not
(a push response or another result landed in between), nothing is written, and the row
is read and tried once more.

Anything this path does not take — no pending payment that agrees, a row changed again
after the second read, a ledger account not in the identity cache yet, a fee that takes
from the wallet, a failure to count under STK protection, a receipt another payment
holds — returns None, and the caller takes the transactional path, which decides it as
before. A deadlock rolls the call back and raises, and the caller runs it again
(``db.retry_on_conflict``), as it does a transaction.

The function's SQL lives in its migration, not here: a later migration that changes the
columns of the tables it writes replaces it too (the PostgreSQL tests of this path fail
until it does).
"""

from __future__ import annotations

import sqlite3
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from pesaswitch.accounts.models import ChannelKind
from pesaswitch.daraja.wire import StkResult
from pesaswitch.db import transient
from pesaswitch.kit.clock import utcnow
from pesaswitch.ledger.flows import cached_collection_entry
from pesaswitch.ledger.policy import ledger_policy_of
from pesaswitch.payments import store_sqlite
from pesaswitch.payments.models import Payment, PaymentStatus
from pesaswitch.payments.service import (
    Applied,
    ApplyResult,
    ResultSource,
    final_values,
    log,
)
from pesaswitch.payments.store import (
    PAYMENT_ATTRIBUTES,
    entry_params,
    event_params,
    json_value,
    may_fail,
)
from pesaswitch.protection.stk import policy_of
from pesaswitch.sqlite_direct import direct_of

# $1 the token, $2 Daraja's CheckoutRequestID, $3 the amount to agree with (NULL: any).
_READ = """
SELECT p.*, p.xmin::text AS row_version, c.kind AS channel_kind,
    (SELECT json_agg(json_build_array(e.id, e.url, e.style, e.event_types))
       FROM webhook_endpoints e
      WHERE e.account_id = p.account_id AND e.enabled AND e.deleted_at IS NULL
    ) AS endpoints
FROM payments p JOIN channels c ON c.id = p.channel_id
WHERE p.callback_token = $1 AND p.status = 'pending'
  AND ($2::varchar IS NULL OR p.checkout_request_id IS NULL OR p.checkout_request_id = $2)
  AND ($3::bigint IS NULL OR p.amount = $3)
"""
_SETTLE = "SELECT settle_stk_callback(" + ", ".join(f"${n}" for n in range(1, 43)) + ")"
UNIQUE_VIOLATION = "23505"
_READS = 2  # the read and one more when the row changed before the call (below)
# No entry: NULL for each of the function's nine ledger parameters.
_NO_ENTRY: tuple[None, ...] = (None,) * 9


async def settle_callback(
    session: AsyncSession,
    *,
    token: str,
    result: StkResult,
    body: str,
    source_ip: str | None,
) -> ApplyResult | None:
    """Settle the pending payment with ``token`` by this callback, committed; None (nothing
    written) when this path does not take it. ``session`` carries the policies and the
    engine; nothing is run through it."""
    status = PaymentStatus(result.outcome.value)
    completed = status is PaymentStatus.COMPLETED
    protection = policy_of(session).enabled
    if protection and not completed:
        return None  # a failure counts under row locks (protection/stk.py): not here
    engine = session.bind
    assert isinstance(engine, AsyncEngine)
    check_amount = completed and result.amount is not None
    amount = result.amount if check_amount else None
    direct = direct_of(engine)
    if direct is not None:
        # One trip: the read, the build and the writes under SQLite's write lock, so the
        # row cannot change between them (a push acceptance that lands first is read).
        def settle_here(sqlite: sqlite3.Connection) -> Payment | None:
            found = store_sqlite.read_pending(sqlite, token, result.checkout_request_id, amount)
            if found is None:
                return None
            settled, writes = _writes(session, found, result, status, body, source_ip, protection)
            if writes is None or not store_sqlite.settle(sqlite, writes):
                return None
            return settled

        try:
            payment_or_none = await direct.write(settle_here)
        except sqlite3.IntegrityError:
            return None  # another payment holds the receipt, as below
        if payment_or_none is None:
            return None
        payment, written = payment_or_none, True
    else:
        async with engine.connect() as connection:
            raw = await connection.get_raw_connection()
            driver: Any = raw.driver_connection
            # A row changed between the read and the call is read once more: nearly
            # always it is the push's acceptance, recorded while its callback was on the
            # way (a callback can beat the push's answer), and the payment is still
            # pending. The transactional path would hold the balance rows' locks over
            # five round trips for what two do here.
            for _ in range(_READS):
                row = await driver.fetchrow(_READ, token, result.checkout_request_id, amount)
                if row is None:
                    return None
                payment, params = _writes(session, row, result, status, body, source_ip, protection)
                if params is None:
                    return None
                try:
                    written = await driver.fetchval(_SETTLE, *params)
                except Exception as exc:
                    # Another payment holds the receipt (the C2B echo of this one): the
                    # transactional path meets the same and has the answer
                    # (daraja/endpoints.py). A deadlock is retried by the caller, as any
                    # transaction's is.
                    if getattr(exc, "sqlstate", None) == UNIQUE_VIOLATION:
                        return None
                    raise
                if written:
                    break
    if not written:
        return None
    log.info("payments.settled", payment_id=payment.id, status=status.value,
             source=ResultSource.CALLBACK)  # fmt: skip
    return ApplyResult(Applied.APPLIED, payment)


def _writes(
    session: AsyncSession,
    row: Any,
    result: StkResult,
    status: PaymentStatus,
    body: str,
    source_ip: str | None,
    protection: bool,
) -> tuple[Payment, list[Any] | None]:
    """The payment as settled, and the function's parameters (None: not this path's)."""
    now = utcnow()
    values: dict[str, Any] = {attr: row[column] for column, attr in PAYMENT_ATTRIBUTES.items()}
    values["metadata_"] = json_value(values["metadata_"])
    values.update(final_values(result, ResultSource.CALLBACK, now))
    # As the transactional path's UPDATE sets them: Daraja's id where the row had none,
    # the row's MerchantRequestID where it had one.
    values["checkout_request_id"] = result.checkout_request_id or values["checkout_request_id"]
    values["merchant_request_id"] = values["merchant_request_id"] or result.merchant_request_id
    payment = transient(Payment, values)
    entry = _NO_ENTRY
    if status is PaymentStatus.COMPLETED and row["channel_kind"] == ChannelKind.WALLET.value:
        credit = cached_collection_entry(
            session, payment_id=payment.id, account_id=payment.account_id,
            amount=payment.amount, receipt=payment.mpesa_receipt, currency=payment.currency,
            shortcode=ledger_policy_of(session).gateway_shortcode,
        )  # fmt: skip
        if credit is None or may_fail(credit):
            return payment, None
        entry = entry_params(credit)
    params: list[Any] = [
        payment.id, row["row_version"], payment.status, payment.result_code,
        payment.result_desc, payment.mpesa_receipt, payment.transaction_date,
        payment.settled_by, now, payment.checkout_request_id, payment.merchant_request_id,
        body, source_ip,
        # Under STK protection a completed prompt clears the phone's failure streak.
        protection,
        *event_params(payment, row["endpoints"]),
        *entry,
    ]  # fmt: skip
    return payment, params
