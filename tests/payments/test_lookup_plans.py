"""PostgreSQL picks a payment by its unique column, not by its status, before it has
statistics (migration 0013).

A new database has never been analysed. With an index led by ``status`` beside the
unique one, both estimated one row for ``callback_token = $1 AND status = 'pending'``
and the tie went to the status index: every STK callback walked all pending payments.
The plans are checked as generic plans, which is what the driver's and PL/pgSQL's cached
statements run after their fifth execution.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from pesaswitch.payments.store_settle import _READ
from tests.conftest import Gateway, Merchant, create_merchant

NO_CALLBACK = "254711990002"  # the simulator sends no callback: the payments stay pending
# The settle function's UPDATE (migration 0012), its WHERE as written there.
_SETTLE_UPDATE = """UPDATE payments SET updated_at = updated_at
    WHERE id = $1 AND xmin = $2::xid AND status = 'pending'"""

pytestmark = pytest.mark.postgres_only


async def _pending(gateway: Gateway, merchant: Merchant, count: int) -> None:
    for n in range(count):
        created = await gateway.client.post(
            "/v1/payments", headers=merchant.auth,
            json={"amount": 10 + n, "phone": NO_CALLBACK,
                  "callback_url": "http://127.0.0.1:9/callback"},
        )  # fmt: skip
        assert created.status_code == 201, created.text


async def _generic_plan(engine: AsyncEngine, types: str, statement: str, args: str) -> str:
    async with engine.connect() as connection:
        raw = await connection.get_raw_connection()
        driver: Any = raw.driver_connection
        await driver.execute("SET plan_cache_mode = force_generic_plan")
        await driver.execute(f"PREPARE probe({types}) AS {statement}")
        rows = await driver.fetch(f"EXPLAIN EXECUTE probe({args})")
        await driver.execute("DEALLOCATE probe; RESET plan_cache_mode")
    return "\n".join(row[0] for row in rows)


async def test_callback_lookups_use_the_unique_indexes(gateway_factory: Any) -> None:
    gateway: Gateway = await gateway_factory(
        reconcile_after=3600, stk_receipt_lookup=False, stk_protection=False,
        sandbox_allow_private_urls=True, simulator_rule_same_amount=False,
    )  # fmt: skip
    merchant = await create_merchant(gateway.settings)
    await _pending(gateway, merchant, 12)
    engine: AsyncEngine = gateway.app.state.runtime.engine

    read = await _generic_plan(engine, "varchar, varchar, bigint", _READ, "'t', 'c', 10")
    assert "uq_payments_callback_token" in read, read
    settle = await _generic_plan(engine, "varchar, text", _SETTLE_UPDATE, "'pay_x', '1'")
    assert "pk_payments" in settle, settle
    for plan in (read, settle):
        assert "ix_payments_due" not in plan, plan
