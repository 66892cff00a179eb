"""The examples people copy: the README's first payment (run as a user would, in a fresh
interpreter), every block of docs/sdk.md in order, and examples/first_payment.py — all
against the real gateway."""

from __future__ import annotations

import contextlib
import io
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest

from pesaswitch_sdk import Pesaswitch

from gateway import SDK_ROOT, Gateway
from local_servers import LocalServer, webhook_receiver
from snippets import SDK_DOCS, SDK_README, pointed_at, python_blocks

DOCS_RECEIVER_URL = "http://127.0.0.1:8020/hooks"
RECEIPT = r"[A-Z0-9]{10}"


def run_as_a_user(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=90, check=False
    )


def test_the_readme_first_payment(gateway: Gateway) -> None:
    blocks = python_blocks(SDK_README)
    assert len(blocks) == 1
    first_payment = blocks[0]
    assert len(first_payment.strip().splitlines()) == 6  # the import and five lines
    code = pointed_at(first_payment, api_key=gateway.secret_key, base_url=gateway.base_url)
    result = run_as_a_user(code)
    assert result.returncode == 0, result.stderr
    assert re.fullmatch(rf"completed {RECEIPT}\n", result.stdout), result.stdout


def test_the_example_script(gateway: Gateway) -> None:
    env = {**os.environ, "PESASWITCH_API_KEY": gateway.secret_key,
           "PESASWITCH_BASE_URL": gateway.base_url}  # fmt: skip
    script = str(SDK_ROOT / "examples" / "first_payment.py")
    paid = subprocess.run(
        [sys.executable, script, "0708374149", "12"], env=env, capture_output=True, text=True,
        timeout=90, check=False,
    )  # fmt: skip
    assert paid.returncode == 0, paid.stdout + paid.stderr
    assert re.fullmatch(rf"pay_\w+ completed {RECEIPT}\n", paid.stdout), paid.stdout
    cancelled = subprocess.run(
        [sys.executable, script, "254711001032", "12"], env=env, capture_output=True,
        text=True, timeout=90, check=False,
    )  # fmt: skip
    assert cancelled.returncode == 1
    assert " cancelled " in cancelled.stdout


@pytest.fixture
def docs_receiver() -> Iterator[LocalServer]:
    with webhook_receiver() as receiver:
        yield receiver


def test_the_sdk_guide_runs_top_to_bottom(
    gateway: Gateway, client: Pesaswitch, docs_receiver: LocalServer
) -> None:
    # The payout example needs money in the wallet, whatever ran before.
    funding = client.payments.create(amount=300, phone="254708374149")
    client.payments.wait_for_final(funding.id, timeout=20)

    namespace: dict[str, Any] = {"__name__": "sdk_guide"}
    printed = io.StringIO()
    for number, block in enumerate(python_blocks(SDK_DOCS), start=1):
        code = pointed_at(block, api_key=gateway.secret_key, base_url=gateway.base_url)
        code = code.replace(DOCS_RECEIVER_URL, docs_receiver.url)
        with contextlib.redirect_stdout(printed):
            exec(compile(code, f"docs/sdk.md block {number}", "exec"), namespace)
    output = printed.getvalue()

    assert "\ncompleted\n" in output  # the async example
    assert "paid, receipt " in output
    assert "422 invalid_phone " in output
    assert re.search(r"daraja_subscriber_locked pay_\w+ failed", output), output
    assert re.search(r"^collected \d+ KES$", output, re.M), output
    assert "True 254708374149 safaricom" in output
    assert re.search(r"^\d+ True$", output, re.M), output  # C2B: registered
    assert "\nUAB1C2D3E4 asked\n" in output

    # The guide's receiver function, on a real delivery to the endpoint it registered.
    endpoint = namespace["endpoint"]
    handle_webhook = namespace["handle_webhook"]
    paid = client.payments.create(amount=31, phone="254708374149", reference="docs-hook")
    delivery = next_delivery(docs_receiver, paid.id)
    with contextlib.redirect_stdout(printed):
        assert handle_webhook(delivery.body, delivery.headers, endpoint.secret) == 200
        assert handle_webhook(delivery.body + b" ", delivery.headers, endpoint.secret) == 400
    assert re.search(rf"paid: docs-hook 31 {RECEIPT}", printed.getvalue())
    client.webhook_endpoints.delete(endpoint.id)
    namespace["client"].close()  # the guide's own client, left open as a script would


def next_delivery(receiver: LocalServer, payment_id: str) -> Any:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with receiver.lock:
            for request in receiver.requests:
                if payment_id.encode() in request.body:
                    return request
        time.sleep(0.1)
    raise AssertionError(f"no delivery for {payment_id}")
