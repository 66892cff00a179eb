"""The merchant's own validation URL: asked (signed) within Daraja's budget; a late or
unreadable answer falls back to the channel's default action."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from pesaswitch.webhooks.signing import verify
from tests.c2b.helpers import c2b_payments, pay, set_up_channel
from tests.conftest import Gateway, create_merchant


@dataclass
class Checker:
    """A merchant's validation endpoint on 127.0.0.1 answering ``reply`` after ``delay``."""

    url: str
    reply: bytes = b'{"accept": true}'
    delay: float = 0.0
    asked: list[tuple[dict[str, str], bytes]] = field(default_factory=list)


@contextmanager
def running_checker() -> Iterator[Checker]:
    checker: Checker

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            checker.asked.append(({k.lower(): v for k, v in self.headers.items()}, body))
            time.sleep(checker.delay)
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(checker.reply)))
            self.end_headers()
            self.wfile.write(checker.reply)

        def log_message(self, format: str, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    checker = Checker(url=f"http://127.0.0.1:{server.server_address[1]}/c2b-check")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield checker
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def checker() -> Iterator[Checker]:
    with running_checker() as running:
        yield running


async def _gateway(gateway_factory: Any) -> Gateway:
    gateway: Gateway = await gateway_factory(
        sandbox_allow_private_urls=True, c2b_validation_timeout=0.5
    )
    return gateway


async def test_merchant_accepts_and_rejects(gateway_factory: Any, checker: Checker) -> None:
    gateway = await _gateway(gateway_factory)
    merchant = await create_merchant(gateway.settings)
    channel = await set_up_channel(
        gateway, merchant, validation_enabled=True, validation_url=checker.url
    )
    accepted = await pay(gateway, channel["shortcode"], bill_ref="ORDER-1")
    assert (accepted["status"], accepted["validation_result_code"]) == ("completed", "0")
    checker.reply = b'{"accept": false, "reason": "account"}'
    rejected = await pay(gateway, channel["shortcode"], bill_ref="ORDER-2")
    assert (rejected["status"], rejected["validation_result_code"]) == ("rejected", "C2B00012")
    checker.reply = b'{"accept": false, "reason": "kyc"}'
    kyc = await pay(gateway, channel["shortcode"], bill_ref="ORDER-3")
    assert kyc["validation_result_code"] == "C2B00014"
    assert [p["reference"] for p in await c2b_payments(gateway, merchant)] == ["ORDER-1"]

    # Each ask is signed like a webhook, with the account's callback secret.
    headers, body = checker.asked[0]
    secret = (await gateway.client.get("/v1/callback-secret", headers=merchant.auth)).json()
    event = verify(body, headers, secret["secret"])
    assert event["type"] == "c2b.validation"
    assert event["data"]["bill_ref"] == "ORDER-1"
    assert event["data"]["msisdn"] == "2547 ***** 149"


async def test_rules_decide_before_the_merchant_is_asked(
    gateway_factory: Any, checker: Checker
) -> None:
    gateway = await _gateway(gateway_factory)
    merchant = await create_merchant(gateway.settings)
    channel = await set_up_channel(
        gateway, merchant, validation_enabled=True, validation_url=checker.url, max_amount=50
    )
    played = await pay(gateway, channel["shortcode"], amount=51)
    assert played["validation_result_code"] == "C2B00013"
    assert checker.asked == []


@pytest.mark.parametrize(
    ("default_action", "status", "code"),
    [("accept", "completed", "0"), ("reject", "rejected", "C2B00016")],
)
@pytest.mark.parametrize("fault", ["slow", "garbage"])
async def test_undecided_merchant_falls_back_to_the_default(
    gateway_factory: Any, checker: Checker, default_action: str, status: str, code: str,
    fault: str,
) -> None:  # fmt: skip
    gateway = await _gateway(gateway_factory)
    merchant = await create_merchant(gateway.settings)
    channel = await set_up_channel(
        gateway, merchant, validation_enabled=True, validation_url=checker.url,
        default_action=default_action,
    )  # fmt: skip
    if fault == "slow":
        # The gateway gives it 0.5 s, well inside Daraja's 8 s. Far longer than that, so
        # a loaded machine's stall (3.5 s once in `make test`) is not taken for a wait.
        checker.delay = 6.0
    else:
        checker.reply = json.dumps({"ok": "yes"}).encode()
    started = time.monotonic()
    played = await pay(gateway, channel["shortcode"])
    if fault == "slow":
        # Answered before the merchant's reply would have come: its budget ran out.
        assert time.monotonic() - started < checker.delay
    assert (played["status"], played["validation_result_code"]) == (status, code)
    assert len(await c2b_payments(gateway, merchant)) == (1 if status == "completed" else 0)
