"""The README's receiver example, run as printed, receives and verifies a real event."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path

from tests.e2e.conftest import Stack
from tests.support.processes import Process, free_port


async def test_example_receiver_verifies_a_payment_event(
    stack: Stack, repo_root: Path, tmp_path: Path
) -> None:
    port = free_port()
    async with stack.client() as client:
        endpoint = await client.post(
            "/v1/webhook-endpoints",
            headers=stack.shop.auth,
            json={"url": f"http://127.0.0.1:{port}/pesaswitch", "events": ["payment.completed"]},
        )
        assert endpoint.status_code == 201, endpoint.text
        receiver = Process(
            [sys.executable, str(repo_root / "examples" / "webhook_receiver.py"), str(port)],
            {"PESASWITCH_WEBHOOK_SECRET": endpoint.json()["secret"]},
            tmp_path / "receiver.log",
        )
        try:
            created = await client.post(
                "/v1/payments", headers=stack.shop.auth,
                json={"amount": 25, "phone": "0712345678", "reference": "README-1"},
            )  # fmt: skip
            payment_id = created.json()["id"]
            deadline = time.monotonic() + 20
            while payment_id not in receiver.output() and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
            printed = receiver.output()
        finally:
            receiver.stop()
    line = next(json.loads(x) for x in printed.splitlines() if payment_id in x)
    assert line == {"type": "payment.completed", "payment": payment_id, "status": "completed"}
