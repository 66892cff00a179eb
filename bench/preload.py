"""``--preload N``: N historical completed payments in the database before the scenarios,
written in bulk (INSERT … SELECT over a generated series, ``BATCH`` rows a statement and
a transaction), never through the API.

Each historical payment comes with what the gateway itself would have written for it: its
``payment.completed`` event, one delivered webhook, and a collection entry with two
postings (settlement → wallet, no fee) whose amounts also move the two cached balances,
so ``pesaswitch ledger check`` still holds. They belong to the benchmark's account, so
its own lookups (``GET /v1/payments/{id}``, the outbox, the reconciler, the ledger) run
against tables that size. Ids are ``pay_00<24 digits>``: below every real (time-ordered)
id, so lists newest-first still start with the benchmark's own payments. Unique
columns (reference, receipt, CheckoutRequestID, callback token) are numbered the same way.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from pesaswitch.config import Settings
from pesaswitch.db import create_engine, create_sessionmaker, transaction
from pesaswitch.ledger import service as ledger

BATCH = 100_000
AMOUNT = 100  # KES per historical payment


@dataclass(frozen=True)
class Dialect:
    series: str  # a FROM clause yielding n from :lo to :hi
    pad: str  # format string: {n} zero-padded to {w} digits
    at: str  # a timestamp n seconds after 2026-01-01

    def sql(self, template: str) -> str:
        return template.format(
            series=self.series,
            id24=self.pad.format(n="n", w=24),
            id9=self.pad.format(n="n", w=9),
            at=self.at,
        )


POSTGRES = Dialect(
    series="generate_series(CAST(:lo AS INTEGER), CAST(:hi AS INTEGER)) AS s(n)",
    pad="lpad(({n})::text, {w}, '0')",
    at="(TIMESTAMP '2026-01-01 00:00:00' + n * INTERVAL '1 second')",
)
SQLITE = Dialect(
    series="(WITH RECURSIVE r(n) AS (SELECT :lo UNION ALL SELECT n + 1 FROM r WHERE n < :hi) "
    "SELECT n FROM r) AS s",
    pad="printf('%0{w}d', {n})",
    at="strftime('%Y-%m-%d %H:%M:%f', '2026-01-01 00:00:00', '+' || n || ' seconds')",
)

PAYMENTS = """
INSERT INTO payments (id, account_id, channel_id, amount, currency, phone, reference,
  external_reference, dialect, status, push_state, result_code, result_desc, mpesa_receipt,
  transaction_date, merchant_request_id, checkout_request_id, callback_token, settled_by,
  query_attempts, created_at, updated_at, finalized_at)
SELECT 'pay_00' || {id24}, :account_id, :channel_id, :amount, 'KES',
  '2547' || substr({id9}, 2, 8), 'H' || {id9}, 'HIST-' || n, 'native', 'completed',
  'accepted', '0', 'The service request is processed successfully.', 'HST' || {id9},
  '20260101000000', 'hist-mr-' || n, 'ws_CO_HIST_' || {id9}, 'hist-token-' || {id9},
  'callback', 0, {at}, {at}, {at}
FROM {series}
"""
EVENTS = """
INSERT INTO events (id, account_id, type, object_id, payload, created_at)
SELECT 'evt_00' || {id24}, :account_id, 'payment.completed', 'pay_00' || {id24},
  '{{"type":"payment.completed","data":{{"id":"pay_00' || {id24} || '"}}}}', {at}
FROM {series}
"""
DELIVERIES = """
INSERT INTO deliveries (id, account_id, event_id, url, status, attempt_count,
  next_attempt_at, last_status_code, created_at, updated_at)
SELECT 'dlv_00' || {id24}, :account_id, 'evt_00' || {id24}, 'http://127.0.0.1:9/history',
  'succeeded', 1, NULL, 204, {at}, {at}
FROM {series}
"""
ENTRIES = """
INSERT INTO journal_entries (id, key, kind, description, reference, created_at)
SELECT 'je_00' || {id24}, 'collection:HST' || {id9}, 'collection', 'historical collection',
  'pay_00' || {id24}, {at}
FROM {series}
"""
POSTINGS = """
INSERT INTO postings (entry_id, ledger_account_id, amount)
SELECT 'je_00' || {id24}, side.account, side.amount
FROM {series} CROSS JOIN (
  SELECT CAST(:settlement AS VARCHAR(40)) AS account, -1 * CAST(:amount AS BIGINT) AS amount
  UNION ALL SELECT CAST(:wallet AS VARCHAR(40)), CAST(:amount AS BIGINT)) AS side
"""
BALANCE = "UPDATE ledger_accounts SET balance = balance + :delta WHERE id = :id"


async def _batch(
    conn: AsyncConnection, dialect: Dialect, lo: int, hi: int, ids: dict[str, object]
) -> None:
    params = {"lo": lo, "hi": hi, "amount": AMOUNT, **ids}
    for template in (PAYMENTS, EVENTS, DELIVERIES, ENTRIES, POSTINGS):
        await conn.execute(text(dialect.sql(template)), params)
    count = hi - lo + 1
    await conn.execute(text(BALANCE), {"delta": -AMOUNT * count, "id": ids["settlement"]})
    await conn.execute(text(BALANCE), {"delta": AMOUNT * count, "id": ids["wallet"]})


async def preload(settings: Settings, *, account_id: str, channel_id: int, count: int) -> float:
    """Write ``count`` historical payments (and their events, deliveries, ledger entries)
    for the account; returns the seconds it took. ANALYZE afterwards, as autovacuum would
    eventually, so the planner knows the tables' size."""
    started = time.monotonic()
    engine = create_engine(settings)
    try:
        async with transaction(create_sessionmaker(engine)) as session:
            wallet = await ledger.wallet_account(session, account_id=account_id, currency="KES")
            settlement = await ledger.settlement_account(
                session, shortcode=settings.daraja_shortcode, currency="KES"
            )
        dialect = SQLITE if engine.dialect.name == "sqlite" else POSTGRES
        ids: dict[str, object] = {
            "account_id": account_id, "channel_id": channel_id, "wallet": wallet.id,
            "settlement": settlement.id,
        }  # fmt: skip
        for lo in range(1, count + 1, BATCH):
            async with engine.begin() as conn:
                await _batch(conn, dialect, lo, min(count, lo + BATCH - 1), ids)
        async with engine.begin() as conn:
            await conn.execute(text("ANALYZE"))
    finally:
        await engine.dispose()
    return time.monotonic() - started


def run_preload(settings: Settings, *, account_id: str, channel_id: int, count: int) -> float:
    return asyncio.run(preload(settings, account_id=account_id, channel_id=channel_id, count=count))


# The hot paths' statements, as the services issue them, with the account's own values.
HOT_PATHS = {
    "status: payment by id": "SELECT * FROM payments WHERE id = :payment AND account_id = :account",
    "callback: payment by token": "SELECT * FROM payments WHERE callback_token = :token",
    "initiate: default channel": (
        "SELECT * FROM channels WHERE account_id = :account AND is_active AND is_default"
    ),
    "initiate: idempotency key": (
        "SELECT * FROM idempotency_keys WHERE account_id = :account AND key = 'k-1'"
    ),
    "callback: ledger accounts": ("SELECT * FROM ledger_accounts WHERE key IN (:fees, :wallet)"),
    "reconciler: due payments": (
        "SELECT id FROM payments WHERE status = 'pending' AND next_query_at IS NOT NULL "
        "AND next_query_at <= now() AND checkout_request_id IS NOT NULL "
        "ORDER BY next_query_at LIMIT 50 FOR UPDATE SKIP LOCKED"
    ),
    "outbox: due deliveries": (
        "SELECT id, endpoint_id, url FROM deliveries WHERE status = 'pending' "
        "AND next_attempt_at <= now() ORDER BY next_attempt_at LIMIT 128 "
        "FOR UPDATE SKIP LOCKED"
    ),
    "stk: window failures": (
        "SELECT count(*) FROM (SELECT id FROM payments WHERE account_id = :account "
        "AND status IN ('failed', 'cancelled', 'expired') "
        "AND finalized_at >= now() - interval '6 hours' LIMIT 1000) AS f"
    ),
    "list: newest completed": (
        "SELECT * FROM payments WHERE account_id = :account AND status = 'completed' "
        "ORDER BY id DESC LIMIT 101"
    ),
}


async def explain(settings: Settings, *, account_id: str) -> dict[str, str]:
    """EXPLAIN (ANALYZE) of each hot-path statement on PostgreSQL: the plan's first line
    and whether it used an index, in one string per statement."""
    engine = create_engine(settings)
    plans: dict[str, str] = {}
    try:
        async with engine.connect() as conn:
            params = {
                "account": account_id,
                "payment": "pay_00" + "500000".zfill(24),
                "token": "hist-token-" + "500000".zfill(9),
                "fees": "fees:KES",
                "wallet": f"wallet:{account_id}:KES",
            }
            for name, sql in HOT_PATHS.items():
                rows = await conn.execute(text(f"EXPLAIN (ANALYZE, BUFFERS OFF) {sql}"), params)
                lines = [str(r[0]).strip() for r in rows]
                scans = [ln for ln in lines if "Scan" in ln]
                took = next((ln for ln in lines if ln.startswith("Execution Time")), "")
                plans[name] = "; ".join([*(s.split("  (")[0] for s in scans), took])
            await conn.rollback()  # FOR UPDATE locks from EXPLAIN ANALYZE
    finally:
        await engine.dispose()
    return plans


def run_explain(settings: Settings, *, account_id: str) -> dict[str, str]:
    return asyncio.run(explain(settings, account_id=account_id))
