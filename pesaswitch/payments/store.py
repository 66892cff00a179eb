"""PostgreSQL's hot path for settling an STK callback: two statements (three when it credits
a wallet), on asyncpg directly.

The general path (``callbacks.apply_callback`` through the ORM) sends eight statements
for a settled wallet payment: the settling UPDATE, the raw body, the journal entry, its
postings, two balance UPDATEs, the event and its deliveries. Each costs a round trip and
SQLAlchemy's own work per statement, which together were most of a payment's CPU
(bench/issue-11-rounds.md, profile). Here the same rows are written by two data-modifying WITH
statements in the caller's transaction, with the balance rows locked between them:

1. the settling UPDATE, the raw body's INSERT, and a read of the channel's kind and the
   account's live webhook endpoints: what the event's deliveries need;
2. the journal entry (claimed by its key: a receipt credits once), its postings, the
   balance UPDATEs after locking the rows in the ledger's lock order, the event and its
   deliveries.

What is written is built by the same functions as the general path
(``webhooks.service.new_event`` / ``delivery_rows``, ``ledger.flows.collection_entry``),
so both paths store the same rows. Anything unusual — no pending payment with that
token, a duplicate, a mismatch — matches no row in statement 1 and is left to the
general path, which decides it on the row as read.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from pesaswitch.accounts.models import ChannelKind
from pesaswitch.daraja.wire import StkResult
from pesaswitch.db import transient
from pesaswitch.kit.clock import utcnow
from pesaswitch.kit.ids import new_id
from pesaswitch.ledger.accounts import MERCHANT_KINDS
from pesaswitch.ledger.flows import CollectionEntry, collection_entry
from pesaswitch.ledger.models import LedgerAccountKind
from pesaswitch.ledger.policy import ledger_policy_of
from pesaswitch.ledger.service import post_entry
from pesaswitch.payments.models import Payment, PaymentStatus
from pesaswitch.payments.schemas import PaymentOut
from pesaswitch.payments.service import (
    EVENT_FOR_STATUS,
    Applied,
    ApplyResult,
    ResultSource,
    final_values,
    log,
)
from pesaswitch.protection.stk import record_stk_outcome
from pesaswitch.webhooks.service import EVENT_COLUMNS, delivery_rows, event_row, new_event

# Column name → attribute name (``metadata`` is ``metadata_`` on the model).
PAYMENT_ATTRIBUTES = {prop.columns[0].name: prop.key for prop in Payment.__mapper__.column_attrs}

_SETTLE = """
WITH settled AS (
    UPDATE payments SET
        status = $2, result_code = $3, result_desc = $4, mpesa_receipt = $5,
        transaction_date = $6, settled_by = $7, next_query_at = NULL,
        finalized_at = $8, updated_at = $8,
        checkout_request_id = COALESCE($9, checkout_request_id),
        merchant_request_id = COALESCE(merchant_request_id, $10)
    WHERE callback_token = $1 AND status = 'pending'
        AND ($9::varchar IS NULL OR checkout_request_id IS NULL OR checkout_request_id = $9)
        AND ($11::bigint IS NULL OR amount = $11)
    RETURNING *
), raw AS (
    INSERT INTO daraja_callbacks (payment_id, body, source_ip, outcome, received_at)
    SELECT id, $12, $13, 'applied', $8 FROM settled
)
SELECT settled.*, channels.kind AS channel_kind,
    (SELECT json_agg(json_build_array(e.id, e.url, e.style, e.event_types))
       FROM webhook_endpoints e
      WHERE e.account_id = settled.account_id AND e.enabled AND e.deleted_at IS NULL
    ) AS endpoints
FROM settled JOIN channels ON channels.id = settled.channel_id
"""

DELIVERY_COLUMNS = (
    "id", "account_id", "event_id", "endpoint_id", "url", "body", "format", "status",
    "attempt_count", "next_attempt_at", "last_status_code", "created_at", "updated_at",
)  # fmt: skip
# Statement 2's parameters: $1 to $6 the event (EVENT_COLUMNS), $7 to $19 one array per
# delivery column (DELIVERY_COLUMNS, in order), $20 to $28 the journal entry.
_EVENT = """
event AS (
    INSERT INTO events (id, account_id, type, object_id, payload, created_at)
    VALUES ($1, $2, $3, $4, $5, $6)
)"""
_DELIVERIES = """
INSERT INTO deliveries (id, account_id, event_id, endpoint_id, url, body, format, status,
                        attempt_count, next_attempt_at, last_status_code, created_at,
                        updated_at)
SELECT * FROM unnest($7::varchar[], $8::varchar[], $9::varchar[], $10::varchar[],
                     $11::varchar[], $12::text[], $13::varchar[], $14::varchar[],
                     $15::integer[], $16::timestamp[], $17::integer[], $18::timestamp[],
                     $19::timestamp[])"""
# The journal entry is claimed by its key; postings and balances move only if it was new.
# The balance rows are already locked (``_LOCK_BALANCES``, the statement before).
_LEDGER = """
entry AS (
    INSERT INTO journal_entries (id, key, kind, description, reference, created_at)
    VALUES ($20, $21, $22, $23, $24, $6)
    ON CONFLICT DO NOTHING RETURNING id
), posted AS (
    INSERT INTO postings (entry_id, ledger_account_id, amount)
    SELECT entry.id, p.account, p.amount
      FROM entry, unnest($25::varchar[], $26::bigint[]) AS p(account, amount)
), moved AS (
    UPDATE ledger_accounts l SET balance = l.balance + m.delta
      FROM entry, unnest($27::varchar[], $28::bigint[]) AS m(account, delta)
     WHERE l.id = m.account
)"""
# The balance rows, locked before statement 2: operator accounts before the merchant's
# ('wallet', 'payout_hold': MERCHANT_KINDS), each by id, as ``ledger.service.post_entry``
# orders its UPDATEs, so racing entries cannot deadlock. FOR NO KEY UPDATE, the lock the
# balance UPDATE takes: FOR UPDATE also conflicts with the KEY SHARE every postings INSERT
# takes on its accounts (the foreign key check), before the general path's ordered
# UPDATEs (the chaos run, seed 20261207, found that deadlock). In a statement of its own:
# locked only inside statement 2, two callbacks crediting the same rows deadlocked now and
# then (12 in a chaos run): statement 2's snapshot predates the locks, so its UPDATE and
# the postings' foreign key checks (KEY SHARE, at the end of the statement) met versions
# of the rows older than the ones locked, and followed their update chains into another
# callback's transaction while that one queued for a row this one held. Statement 2 now
# starts after the locks are held: it sees the latest versions and waits for nothing.
_LOCK_BALANCES = """
SELECT id FROM ledger_accounts WHERE id = ANY($1::varchar[])
 ORDER BY kind IN ('wallet', 'payout_hold'), id
   FOR NO KEY UPDATE"""
_RECORD = "WITH" + _EVENT + _DELIVERIES
_RECORD_AND_CREDIT = "WITH" + _LEDGER + "," + _EVENT + _DELIVERIES
assert set(MERCHANT_KINDS) == {"wallet", "payout_hold"}, "the lock order above names them"
assert EVENT_COLUMNS == ("id", "account_id", "type", "object_id", "payload", "created_at")


async def settle_callback(
    session: AsyncSession, *, token: str, result: StkResult, body: str, source_ip: str | None
) -> ApplyResult | None:
    """Settle the pending payment with ``token`` by this callback and store the raw body,
    in the caller's transaction; None (nothing written) when no pending payment agrees,
    for the general path to decide."""
    status = PaymentStatus(result.outcome.value)
    values = final_values(result, ResultSource.CALLBACK, now := utcnow())
    check_amount = status is PaymentStatus.COMPLETED and result.amount is not None
    connection = await session.connection()
    # Through SQLAlchemy, so its (lazily begun) transaction is begun on this connection.
    row = (
        await connection.exec_driver_sql(
            _SETTLE,
            (
                token, values["status"], values["result_code"], values["result_desc"],
                values["mpesa_receipt"], values["transaction_date"], values["settled_by"],
                now, result.checkout_request_id, result.merchant_request_id,
                result.amount if check_amount else None, body, source_ip,
            ),
        )
    ).mappings().first()  # fmt: skip
    if row is None:
        return None
    payment = payment_from_row(row)
    log.info("payments.settled", payment_id=payment.id, status=status.value,
             source=ResultSource.CALLBACK)  # fmt: skip
    credit: CollectionEntry | None = None
    if status is PaymentStatus.COMPLETED and row["channel_kind"] == ChannelKind.WALLET.value:
        credit = await collection_entry(
            session, payment_id=payment.id, account_id=payment.account_id,
            amount=payment.amount, receipt=payment.mpesa_receipt, currency=payment.currency,
            shortcode=ledger_policy_of(session).gateway_shortcode,
        )  # fmt: skip
        if may_fail(credit):
            # A fee above the amount takes from the wallet: the general posting checks
            # the funds (and raises), so it posts this one.
            await post_entry(
                session, key=credit.key, kind=credit.kind, description=credit.description,
                postings=credit.postings, reference=credit.reference,
            )  # fmt: skip
            credit = None
    await _record(session, payment, row["endpoints"], credit)
    await record_stk_outcome(
        session, account_id=payment.account_id, phone=payment.phone,
        succeeded=status is PaymentStatus.COMPLETED, now=now,
    )  # fmt: skip
    return ApplyResult(Applied.APPLIED, payment)


async def _record(
    session: AsyncSession, payment: Payment, endpoints: Any, credit: CollectionEntry | None
) -> None:
    """Statement 2: the event, its deliveries and (a wallet collection) the ledger entry."""
    params = event_params(payment, endpoints)
    raw = await (await session.connection()).get_raw_connection()
    driver: Any = raw.driver_connection
    if credit is not None:
        entry = entry_params(credit)
        params += entry
        await driver.execute(_LOCK_BALANCES, entry[_MOVED])
    await driver.execute(_RECORD if credit is None else _RECORD_AND_CREDIT, *params)


def event_params(payment: Payment, endpoints: Any) -> list[Any]:
    """The settled payment's event and one delivery per destination (the account's live
    ``endpoints`` as statement 1 reads them, and the payment's callback URL) as
    parameters: the event's columns (EVENT_COLUMNS), then one array per delivery column
    (DELIVERY_COLUMNS)."""
    data = PaymentOut.render(payment).model_dump(mode="json")
    event = new_event(
        account_id=payment.account_id, event_type=EVENT_FOR_STATUS[PaymentStatus(payment.status)],
        object_id=payment.id, data=data,
    )  # fmt: skip
    deliveries = delivery_rows(
        event, data, json_value(endpoints) or (),
        callback_url=payment.callback_url, callback_dialect=payment.dialect,
    )  # fmt: skip
    return [
        *event_row(event).values(),
        *([delivery[name] for delivery in deliveries] for name in DELIVERY_COLUMNS),
    ]


# entry_params's order: the entry's id, key, kind, description and reference, the
# postings' accounts and amounts, the balances' accounts (_MOVED) and their deltas.
_MOVED = 7


def entry_params(credit: CollectionEntry) -> tuple[Any, ...]:
    """A collection's entry as parameters: its columns, its postings as arrays, and the
    net change per balance row as arrays (an account posted twice moves once)."""
    deltas: dict[str, int] = {}
    for account, amount in credit.postings:
        deltas[account.id] = deltas.get(account.id, 0) + amount
    return (
        new_id("je"), credit.key, credit.kind, credit.description[:500], credit.reference,
        [account.id for account, _ in credit.postings], [amount for _, amount in credit.postings],
        list(deltas), list(deltas.values()),
    )  # fmt: skip


def may_fail(credit: CollectionEntry) -> bool:
    """A collection only takes from the settlement account, which may go negative."""
    return any(
        amount < 0 and account.kind != LedgerAccountKind.SETTLEMENT.value
        for account, amount in credit.postings
    )


def payment_from_row(row: Any) -> Payment:
    """The settled payment as an object not in the session (as the ORM path's Core
    statements return it), from the UPDATE's RETURNING."""
    values = {attr: row[column] for column, attr in PAYMENT_ATTRIBUTES.items()}
    values["metadata_"] = json_value(values["metadata_"])
    return transient(Payment, values)


def json_value(value: Any) -> Any:
    """JSON as the connection gives it: decoded by SQLAlchemy's codec, or still text."""
    return json.loads(value) if isinstance(value, str | bytes) else value
