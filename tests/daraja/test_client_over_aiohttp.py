"""The Daraja client on the gateway's own HTTP client (``kit.http.async_client``) posts
straight through aiohttp (``DarajaClient._send``), over a real socket here: the request
Daraja gets (URL under the base URL's path, bearer token, JSON body), the token refreshed
once when Daraja rejects it, and what a refusal, a dead host and a silent one mean for
whether the prompt may be out."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from pesaswitch.daraja.client import STK_PUSH_PATH, DarajaApp, DarajaClient
from pesaswitch.daraja.errors import DarajaTechnicalError
from pesaswitch.kit.http import aiohttp_transport_of, async_client
from tests.daraja.test_client_refusals import REQUEST
from tests.support.processes import free_port

PREFIX = "/daraja-here"


@dataclass
class FakeDaraja:
    """What the server answers to pushes, in order, and what it was sent."""

    answers: list[tuple[int, dict[str, Any]] | str] = field(default_factory=list)
    pushes: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    tokens: int = 0

    async def token(self, _request: Request) -> Response:
        self.tokens += 1
        return JSONResponse({"access_token": f"token-{self.tokens}", "expires_in": "3599"})

    async def push(self, request: Request) -> Response:
        self.pushes.append((request.url.path, request.headers["authorization"],
                            json.loads(await request.body())))  # fmt: skip
        answer = self.answers.pop(0)
        if answer == "hang":
            await asyncio.sleep(2)
            return Response(status_code=200)
        assert not isinstance(answer, str)
        return JSONResponse(answer[1], status_code=answer[0])


@pytest.fixture
async def daraja() -> AsyncIterator[tuple[FakeDaraja, str]]:
    fake = FakeDaraja()
    app = Starlette(routes=[
        Route(PREFIX + "/oauth/v1/generate", fake.token),
        Route(PREFIX + STK_PUSH_PATH, fake.push, methods=["POST"]),
    ])  # fmt: skip
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)
    )
    serving = asyncio.create_task(server.serve())
    async with asyncio.timeout(15):
        while not server.started:
            if serving.done():
                serving.result()
            await asyncio.sleep(0.02)
    try:
        yield fake, f"http://127.0.0.1:{port}{PREFIX}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(serving, 15)


ACCEPTED = {"MerchantRequestID": "m-1", "CheckoutRequestID": "ws_CO_1", "ResponseCode": "0",
            "ResponseDescription": "Success", "CustomerMessage": "Success"}  # fmt: skip


@asynccontextmanager
async def _client(base_url: str, timeout: float = 5.0) -> AsyncIterator[DarajaClient]:
    async with async_client(base_url=base_url, timeout=timeout) as http:
        assert aiohttp_transport_of(http) is not None
        yield DarajaClient(http, DarajaApp("key", "secret"))


async def test_a_push_reaches_daraja_under_the_base_path_with_its_token(
    daraja: tuple[FakeDaraja, str],
) -> None:
    fake, url = daraja
    fake.answers = [(200, ACCEPTED)]
    async with _client(url) as client:
        accepted = await client.stk_push(REQUEST)
    assert (accepted.checkout_request_id, accepted.merchant_request_id) == ("ws_CO_1", "m-1")
    [(path, authorization, body)] = fake.pushes
    assert (path, authorization) == (PREFIX + STK_PUSH_PATH, "Bearer token-1")
    assert body["Amount"] == 5
    assert body["PhoneNumber"] == "254712345678"


async def test_a_rejected_token_is_refreshed_once(daraja: tuple[FakeDaraja, str]) -> None:
    fake, url = daraja
    fake.answers = [
        (401, {"errorCode": "404.001.03", "errorMessage": "Invalid Access Token"}),
        (200, ACCEPTED),
    ]  # fmt: skip
    async with _client(url) as client:
        assert (await client.stk_push(REQUEST)).checkout_request_id == "ws_CO_1"
    assert [authorization for _, authorization, _ in fake.pushes] == [
        "Bearer token-1", "Bearer token-2",
    ]  # fmt: skip


async def test_a_turned_away_push_was_not_sent(daraja: tuple[FakeDaraja, str]) -> None:
    fake, url = daraja
    fake.answers = [(503, {"errorCode": "503.001.01", "errorMessage": "Service Unavailable"})]
    async with _client(url) as client:
        with pytest.raises(DarajaTechnicalError) as err:
            await client.stk_push(REQUEST)
    assert err.value.maybe_sent is False


async def test_a_silent_daraja_may_have_sent_the_prompt(daraja: tuple[FakeDaraja, str]) -> None:
    fake, url = daraja
    fake.answers = ["hang"]
    async with _client(url, timeout=0.5) as client:
        with pytest.raises(DarajaTechnicalError) as err:
            await client.stk_push(REQUEST)
    assert (err.value.maybe_sent, err.value.timeout) == (True, True)


async def test_a_dead_host_was_not_sent() -> None:
    async with _client(f"http://127.0.0.1:{free_port()}") as client:
        with pytest.raises(DarajaTechnicalError) as err:
            await client.stk_push(REQUEST)
    assert err.value.maybe_sent is False
