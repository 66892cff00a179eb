"""``post_pinned`` on the worker's client (``kit.http.async_client``) goes to aiohttp
directly; on any other httpx client it goes through httpx. Both must send the same
request and read the same answer, and name a failure by the same httpx error class."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import httpx
import pytest

from pesaswitch.kit.http import aiohttp_transport_of, async_client
from pesaswitch.webhooks.sending import AttemptResult, post_pinned
from tests.support.receiver import Receiver, running_receiver

# What only the client library decides (its name and version).
_LIBRARY_HEADERS = {"user-agent"}


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver() as running:
        yield running


async def _post(client: httpx.AsyncClient, url: str) -> AttemptResult:
    async with client:
        return await post_pinned(
            client, url, headers={"webhook-id": "msg_1", "content-type": "application/json"},
            body='{"ok":true}', allow_private=True, require_https=False,
        )  # fmt: skip


async def test_both_ways_send_the_same_request_and_read_the_same_answer(
    receiver: Receiver,
) -> None:
    direct = async_client(timeout=5.0)
    assert aiohttp_transport_of(direct) is not None
    through_httpx = httpx.AsyncClient(timeout=5.0)
    assert aiohttp_transport_of(through_httpx) is None
    receiver.script = [202, 202]

    first, second = await _post(direct, receiver.url), await _post(through_httpx, receiver.url)

    assert (first.status_code, first.body, first.error) == (202, "answered 202", None)
    assert (second.status_code, second.body, second.error) == (first.status_code, first.body, None)
    one, two = receiver.received
    assert one.body == two.body == b'{"ok":true}'
    assert one.path == two.path
    assert {k: v for k, v in one.headers.items() if k not in _LIBRARY_HEADERS} == {
        k: v for k, v in two.headers.items() if k not in _LIBRARY_HEADERS
    }
    assert one.headers["host"] == receiver.url.split("/")[2]


async def test_a_refused_connection_is_named_as_httpx_names_it() -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    url = f"http://127.0.0.1:{port}/hook"  # nothing listens there now
    direct = await _post(async_client(timeout=5.0), url)
    through_httpx = await _post(httpx.AsyncClient(timeout=5.0), url)
    for result in (direct, through_httpx):
        assert result.status_code is None
        assert result.error is not None
        assert result.error.startswith("ConnectError: "), result.error
