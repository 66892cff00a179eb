"""Crash safety of the reconciler, and racing callbacks, with a separate worker process."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import httpx
import pytest

from tests.e2e.conftest import Stack, launch_stack

RULES_OFF = {
    "PESASWITCH_SIMULATOR_RULE_SAME_AMOUNT": "false",
    "PESASWITCH_SIMULATOR_RULE_SUBSCRIBER_LOCK": "false",
}


@pytest.fixture(scope="module")
def stack(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    running = launch_stack(
        database_url, tmp_path_factory.mktemp("logs"), embedded_worker=False,
        simulator_env=RULES_OFF,
    )  # fmt: skip
    yield running
    running.stop_all()


async def statuses(stack: Stack, client: httpx.AsyncClient, ids: list[str]) -> list[str]:
    return [
        (await client.get(f"/v1/payments/{pid}", headers=stack.shop.auth)).json()["status"]
        for pid in ids
    ]


async def test_sigkilled_worker_restarts_and_settles_everything(stack: Stack) -> None:
    async with stack.client() as client:
        ids = []
        for i in range(12):
            phone = "0711990002" if i % 2 else "0711990005"
            response = await client.post(
                "/v1/payments", headers=stack.shop.auth, json={"amount": 100 + i, "phone": phone}
            )
            assert response.status_code == 201, response.text
            ids.append(response.json()["id"])
        # No callback will come and no worker runs: they stay pending.
        await asyncio.sleep(1.0)
        assert set(await statuses(stack, client, ids)) == {"pending"}

        worker = stack.start_worker()
        await asyncio.sleep(0.8)  # mid-way: claims taken, queries in flight
        worker.kill()
        assert worker.popen.returncode == -9
        assert "pending" in await statuses(stack, client, ids)

        restarted = stack.start_worker()
        try:
            for _ in range(300):
                if set(await statuses(stack, client, ids)) == {"completed"}:
                    break
                await asyncio.sleep(0.1)
        finally:
            restarted.stop()
        assert set(await statuses(stack, client, ids)) == {"completed"}, restarted.output()
    rows = await stack.sql(
        "SELECT settled_by, COUNT(*) AS n FROM payments WHERE id IN ("
        + ",".join(f"'{pid}'" for pid in ids)
        + ") GROUP BY settled_by"
    )
    assert [(row.settled_by, row.n) for row in rows] == [("query", 12)]


def callback_body(checkout_request_id: str, code: int, receipt: str | None, amount: int) -> bytes:
    callback: dict[str, object] = {
        "MerchantRequestID": "race-1",
        "CheckoutRequestID": checkout_request_id,
        "ResultCode": code,
        "ResultDesc": "test",
    }
    if code == 0:
        callback["CallbackMetadata"] = {
            "Item": [
                {"Name": "Amount", "Value": amount},
                {"Name": "MpesaReceiptNumber", "Value": receipt},
                {"Name": "Balance"},
                {"Name": "TransactionDate", "Value": 20261122101010},
                {"Name": "PhoneNumber", "Value": 254711990002},
            ]
        }
    return json.dumps({"Body": {"stkCallback": callback}}).encode()


async def test_concurrent_identical_callbacks_apply_once(stack: Stack) -> None:
    async with stack.client() as client:
        created = await client.post(
            "/v1/payments", headers=stack.shop.auth, json={"amount": 77, "phone": "0711990002"}
        )
        payment = created.json()
        (row,) = await stack.sql(
            "SELECT callback_token FROM payments WHERE id = :p", p=payment["id"]
        )
        url = f"/daraja/stk/{row.callback_token}"
        body = callback_body(payment["checkout_request_id"], 0, "UKRACE0001", 77)
        answers = await asyncio.gather(
            *(
                client.post(url, content=body, headers={"Content-Type": "application/json"})
                for _ in range(2)
            )
        )
        assert [a.status_code for a in answers] == [200, 200]
        assert all(a.json() == {"ResultCode": 0, "ResultDesc": "Accepted"} for a in answers)

        # A late, contradicting callback is recorded but never overwrites the final status.
        late = await client.post(
            url, content=callback_body(payment["checkout_request_id"], 1032, None, 77)
        )
        assert late.status_code == 200
        # A callback for another checkout id is not applied to this payment.
        stray = await client.post(url, content=callback_body("ws_CO_other", 0, "UKSTRAY001", 77))
        assert stray.status_code == 200
        final = (await client.get(f"/v1/payments/{payment['id']}", headers=stack.shop.auth)).json()
        unknown = await client.post("/daraja/stk/not-a-token", content=body)
        assert unknown.status_code == 404
        garbage = await client.post(url, content=b"{]")
        assert garbage.status_code == 400

    assert final["status"] == "completed"
    assert final["mpesa_receipt"] == "UKRACE0001"
    outcomes = sorted(
        r.outcome
        for r in await stack.sql(
            "SELECT outcome FROM daraja_callbacks WHERE payment_id = :p", p=payment["id"]
        )
    )
    assert outcomes == ["applied", "conflict", "duplicate", "invalid", "mismatch"]


async def test_spoofed_amount_is_not_applied(stack: Stack) -> None:
    async with stack.client() as client:
        created = await client.post(
            "/v1/payments", headers=stack.shop.auth, json={"amount": 5000, "phone": "0711990002"}
        )
        payment = created.json()
        (row,) = await stack.sql(
            "SELECT callback_token FROM payments WHERE id = :p", p=payment["id"]
        )
        body = callback_body(payment["checkout_request_id"], 0, "UKSPOOF001", 1)
        answer = await client.post(f"/daraja/stk/{row.callback_token}", content=body)
        assert answer.status_code == 200
        current = (
            await client.get(f"/v1/payments/{payment['id']}", headers=stack.shop.auth)
        ).json()
    assert current["status"] == "pending"
    assert current["mpesa_receipt"] is None
