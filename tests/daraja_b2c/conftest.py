"""The simulator in-process, a receiver for its Result callbacks, and a Daraja client."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request

from pesaswitch.daraja.b2c import (
    AccountBalanceRequest,
    B2CCommand,
    B2CPaymentRequest,
    Initiator,
    TransactionStatusRequest,
    security_credential,
)
from pesaswitch.daraja.client import DarajaApp, DarajaClient
from pesaswitch.simulator.app import Simulator, SimulatorConfig

KEY, SECRET = "b2c-key", "b2c-secret"
SHORTCODE = "600000"
PASSWORD = "Safaricom999!*!"
RECEIVER = "http://receiver.test"
RESULT_URL = f"{RECEIVER}/b2c/result"
TIMEOUT_URL = f"{RECEIVER}/b2c/timeout"
STATUS_URL = f"{RECEIVER}/status/result"
BALANCE_URL = f"{RECEIVER}/balance/result"

_ids = itertools.count(1)


@dataclass
class Posted:
    path: str
    body: Any


@dataclass
class Receiver:
    """Collects what the simulator POSTs to ResultURL / QueueTimeOutURL."""

    posts: list[Posted] = field(default_factory=list)

    def at(self, url: str) -> list[Any]:
        path = url.removeprefix(RECEIVER)
        return [p.body for p in self.posts if p.path == path]

    async def wait(self, url: str, count: int = 1, timeout: float = 3.0) -> list[Any]:
        async with asyncio.timeout(timeout):
            while len(self.at(url)) < count:
                await asyncio.sleep(0.01)
        return self.at(url)


@dataclass
class B2C:
    simulator: Simulator
    client: DarajaClient
    receiver: Receiver
    http: httpx.AsyncClient
    callbacks: httpx.AsyncClient

    def initiator(self, password: str = PASSWORD, name: str = "testapi") -> Initiator:
        return Initiator(name, security_credential(password, self.simulator.certificate_pem))

    def payout(
        self, phone: str = "254712345678", amount: int = 1500, **kw: Any
    ) -> B2CPaymentRequest:
        values: dict[str, Any] = {
            "originator_conversation_id": f"po-{next(_ids)}",
            "initiator": self.initiator(),
            "command": B2CCommand.BUSINESS_PAYMENT,
            "amount": amount,
            "party_a": SHORTCODE,
            "party_b": phone,
            "remarks": "payout",
            "result_url": RESULT_URL,
            "queue_timeout_url": TIMEOUT_URL,
            "occasion": "test",
        }
        values.update(kw)
        return B2CPaymentRequest(**values)

    def status(self, **kw: Any) -> TransactionStatusRequest:
        values: dict[str, Any] = {
            "initiator": self.initiator(),
            "party_a": SHORTCODE,
            "result_url": STATUS_URL,
            "queue_timeout_url": TIMEOUT_URL,
        }
        values.update(kw)
        return TransactionStatusRequest(**values)

    def balance(self, **kw: Any) -> AccountBalanceRequest:
        values: dict[str, Any] = {
            "initiator": self.initiator(),
            "party_a": SHORTCODE,
            "result_url": BALANCE_URL,
            "queue_timeout_url": TIMEOUT_URL,
        }
        values.update(kw)
        return AccountBalanceRequest(**values)


class TimeoutTransport(httpx.AsyncBaseTransport):
    """ASGITransport ignores httpx timeouts; this gives up like a real socket would."""

    def __init__(self, inner: httpx.AsyncBaseTransport, seconds: float) -> None:
        self.inner = inner
        self.seconds = seconds

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            async with asyncio.timeout(self.seconds):
                return await self.inner.handle_async_request(request)
        except TimeoutError as exc:
            raise httpx.ReadTimeout("timed out", request=request) from exc


@pytest.fixture
async def make_b2c() -> AsyncIterator[Callable[..., Any]]:
    opened: list[B2C] = []

    async def start(*, client_timeout: float | None = None, **config: Any) -> B2C:
        config.setdefault("callback_delay", 0.0)
        sim = Simulator(SimulatorConfig(KEY, SECRET, accept_any_app=False, **config))
        receiver = Receiver()
        receiver_app = FastAPI()

        @receiver_app.post("/{path:path}")
        async def collect(path: str, request: Request) -> dict[str, Any]:
            receiver.posts.append(Posted("/" + path, await request.json()))
            return {"ResultCode": 0, "ResultDesc": "Accepted"}

        callbacks = httpx.AsyncClient(transport=httpx.ASGITransport(app=receiver_app))
        sim.use_callback_client(callbacks)
        transport: httpx.AsyncBaseTransport = httpx.ASGITransport(app=sim.app)
        if client_timeout is not None:
            transport = TimeoutTransport(transport, client_timeout)
        http = httpx.AsyncClient(transport=transport, base_url="http://daraja.test")
        env = B2C(sim, DarajaClient(http, DarajaApp(KEY, SECRET)), receiver, http, callbacks)
        opened.append(env)
        return env

    yield start
    for env in opened:
        await env.simulator.aclose()
        await env.http.aclose()
        await env.callbacks.aclose()


@pytest.fixture
async def b2c(make_b2c: Callable[..., Any]) -> B2C:
    env: B2C = await make_b2c()
    return env
