"""Every row of the simulator's test-number table, over real HTTP between processes."""

from __future__ import annotations

import asyncio

import pytest

from tests.conftest import problem
from tests.e2e.conftest import Stack

FINAL_ROWS = [
    ("254708374149", "completed", "0"),
    ("0711001032", "cancelled", "1032"),
    ("+254711001037", "expired", "1037"),
    ("254711000001", "failed", "1"),
    ("254711002001", "failed", "2001"),
    ("254711000017", "failed", "17"),
    ("254711002028", "failed", "2028"),
    ("254711001019", "expired", "1019"),
]


@pytest.mark.parametrize(("phone", "status", "code"), FINAL_ROWS)
async def test_result_code_rows(stack: Stack, phone: str, status: str, code: str) -> None:
    async with stack.client() as client:
        created = await client.post(
            "/v1/payments", headers=stack.shop.auth, json={"amount": 10, "phone": phone}
        )
        assert created.status_code == 201, created.text
        final = await stack.wait_for_status(client, created.json()["id"])
    assert final["status"] == status
    assert final["result_code"] == code
    assert (final["mpesa_receipt"] is not None) == (status == "completed")
    callbacks = await stack.sql(
        "SELECT outcome FROM daraja_callbacks WHERE payment_id = :p", p=final["id"]
    )
    assert [row.outcome for row in callbacks] == ["applied"]


async def test_locked_subscriber_row(stack: Stack) -> None:
    async with stack.client() as client:
        response = await client.post(
            "/v1/payments", headers=stack.shop.auth, json={"amount": 10, "phone": "0711990001"}
        )
    assert response.status_code == 409
    body = problem(response)
    assert body["code"] == "daraja_subscriber_locked"
    assert body["payment"]["status"] == "failed"


async def test_lost_callback_is_settled_by_query(stack: Stack) -> None:
    async with stack.client() as client:
        created = await client.post(
            "/v1/payments", headers=stack.shop.auth, json={"amount": 12, "phone": "0711990002"}
        )
        final = await stack.wait_for_status(client, created.json()["id"])
    assert final["status"] == "completed"
    assert final["result_code"] == "0"
    rows = await stack.sql(
        "SELECT settled_by, query_attempts FROM payments WHERE id = :p", p=final["id"]
    )
    assert rows[0].settled_by == "query"
    assert (
        await stack.sql("SELECT id FROM daraja_callbacks WHERE payment_id = :p", p=final["id"])
        == []
    )


async def test_duplicate_callback_changes_the_payment_once(stack: Stack) -> None:
    async with stack.client() as client:
        created = await client.post(
            "/v1/payments", headers=stack.shop.auth, json={"amount": 13, "phone": "0711990003"}
        )
        final = await stack.wait_for_status(client, created.json()["id"])
        await asyncio.sleep(0.5)  # let the second copy land
    assert final["status"] == "completed"
    outcomes = sorted(
        row.outcome
        for row in await stack.sql(
            "SELECT outcome FROM daraja_callbacks WHERE payment_id = :p", p=final["id"]
        )
    )
    assert outcomes == ["applied", "duplicate"]


async def test_callback_before_push_response(stack: Stack) -> None:
    async with stack.client() as client:
        created = await client.post(
            "/v1/payments", headers=stack.shop.auth, json={"amount": 14, "phone": "0711990004"}
        )
    assert created.status_code == 201
    body = created.json()
    # The callback was applied while the push was still waiting for its answer.
    assert body["status"] == "completed"
    assert body["mpesa_receipt"]
    assert body["checkout_request_id"].startswith("ws_CO_")
    rows = await stack.sql("SELECT settled_by FROM payments WHERE id = :p", p=body["id"])
    assert rows[0].settled_by == "callback"


async def test_slow_query_keeps_pending_then_completes(stack: Stack) -> None:
    async with stack.client() as client:
        created = await client.post(
            "/v1/payments", headers=stack.shop.auth, json={"amount": 15, "phone": "0711990005"}
        )
        payment_id = created.json()["id"]
        final = await stack.wait_for_status(client, payment_id, timeout=30)
    assert final["status"] == "completed"
    rows = await stack.sql(
        "SELECT settled_by, query_attempts FROM payments WHERE id = :p", p=payment_id
    )
    assert rows[0].settled_by == "query"
    # Three "still processing" answers (4999 and 500.001.1001) were each read as pending.
    assert rows[0].query_attempts >= 3


async def test_hanging_push_returns_502_and_is_paid_later(stack: Stack) -> None:
    async with stack.client() as client:
        response = await client.post(
            "/v1/payments", headers=stack.shop.auth, json={"amount": 16, "phone": "0711990006"}
        )
        assert response.status_code == 502
        body = problem(response)
        assert body["code"] == "daraja_timeout"
        payment = body["payment"]
        assert payment["status"] == "pending"
        assert payment["checkout_request_id"] is None
        final = await stack.wait_for_status(client, payment["id"])
    assert final["status"] == "completed"
    assert final["checkout_request_id"].startswith("ws_CO_")
    assert final["mpesa_receipt"]
