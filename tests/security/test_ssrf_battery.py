"""SSRF: in live mode no merchant URL (webhook endpoint or per-request callback) reaches
the gateway's own network, however the address is spelled, whatever DNS answers, and
however the receiver redirects. Names resolve through ``ssrf.use_resolver`` here."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from pesaswitch.webhooks.dispatcher import Dispatcher
from pesaswitch.webhooks.sending import post_pinned
from pesaswitch.webhooks.ssrf import UnsafeUrl, check_url, system_resolver, use_resolver
from tests.conftest import Gateway, problem
from tests.security.bola_world import basic, x_api_key
from tests.support.receiver import running_receiver
from tests.webhooks.test_ssrf import live_merchant

PUBLIC = "93.184.216.34"
DNS = {
    "public.example.com": [PUBLIC],
    "internal.example.com": ["10.0.0.5"],
    "metadata.example.com": ["169.254.169.254"],
    "loopback.example.com": ["127.0.0.1"],
    "mixed.example.com": [PUBLIC, "192.168.1.1"],  # one bad answer is enough
    "ula.example.com": ["fd00::1"],
    "mapped.example.com": ["::ffff:10.0.0.1"],
    "scoped.example.com": ["fe80::1%eth0"],
    "compat.example.com": ["::127.0.0.1"],
}


async def fake_dns(host: str, _port: int) -> Sequence[str]:
    if host not in DNS:
        raise OSError(f"no such host {host}")
    return DNS[host]


@pytest.fixture(autouse=True)
def controlled_dns() -> Iterator[None]:
    with use_resolver(fake_dns):
        yield


SPELLINGS = [
    "127.0.0.1", "127.1", "2130706433", "0177.0.0.1", "0x7f.0.0.1", "0x7f000001",
    "017700000001", "0", "0.0.0.0", "10.1.2.3", "172.16.0.1", "172.31.255.255",
    "192.168.0.1", "169.254.169.254", "169.254.1.1", "100.100.100.200", "[::1]", "[::]",
    "[::ffff:127.0.0.1]", "[::ffff:7f00:1]", "[::ffff:169.254.169.254]", "[fd00:ec2::254]",
    "[fc00::1]", "[fe80::1]", "[::127.0.0.1]", "[::ffff:0:7f00:1]", "[64:ff9b::a00:1]",
    "[2002:7f00:1::]", "[2001::1]", "[ff02::1]",
]  # fmt: skip
NAMES = [name for name, found in DNS.items() if found != [PUBLIC]]


@pytest.mark.parametrize("host", SPELLINGS + NAMES)
async def test_refused_in_live_mode(host: str) -> None:
    for scheme in ("https", "http"):
        with pytest.raises(UnsafeUrl):
            await check_url(f"{scheme}://{host}/hook", allow_private=False, require_https=True)


@pytest.mark.parametrize("host", ["localhost", "LOCALHOST", "localhost.", "ip6-localhost"])
async def test_localhost_by_the_systems_own_resolver(host: str) -> None:
    with use_resolver(system_resolver), pytest.raises(UnsafeUrl):
        await check_url(f"https://{host}/hook", allow_private=False)


async def test_a_name_that_does_not_resolve_is_refused() -> None:
    with pytest.raises(UnsafeUrl):
        await check_url("https://nowhere.invalid/hook", allow_private=False)


async def test_a_public_name_passes_and_is_pinned() -> None:
    target = await check_url("https://public.example.com/h", allow_private=False)
    assert target.addresses == (PUBLIC,)


def live_urls() -> list[str]:
    return ["https://internal.example.com/h", "https://2130706433/h", "https://[fd00::1]/h",
            "https://metadata.example.com/latest", "https://mixed.example.com/h"]  # fmt: skip


async def test_every_live_entry_point_refuses(gateway_factory: Any) -> None:
    gateway: Gateway = await gateway_factory(sandbox_allow_private_urls=True)
    live = await live_merchant(gateway)
    http = gateway.client
    for url in live_urls():
        attempts = [
            ("/v1/webhook-endpoints", live.auth, {"url": url}),
            ("/v1/payments", live.auth, {"amount": 10, "phone": "0708374149", "callback_url": url}),
            ("/api/v2/payments", basic(live), {"amount": 10, "phone_number": "0708374149",
                                               "provider": "m-pesa", "callback_url": url}),
            ("/api/v2/withdraw", basic(live), {"amount": 100, "phone_number": "0708374149",
                                               "callback_url": url}),
            ("/api/webhooks/register", x_api_key(live), {"url": url}),
        ]  # fmt: skip
        for path, headers, body in attempts:
            response = await http.post(path, headers=headers, json=body)
            assert response.status_code == 422, (path, url, response.text)
            if path.startswith("/v1"):
                assert problem(response)["code"] == "unsafe_url"
            else:
                assert "url" in response.text.lower(), response.text
    assert (await http.get("/v1/webhook-endpoints", headers=live.auth)).json() == []
    assert (await http.get("/v1/payments", headers=live.auth)).json()["data"] == []
    assert (await http.get("/v1/payouts", headers=live.auth)).json()["data"] == []


async def test_dns_changing_its_answer_is_caught_at_send() -> None:
    """Registered while the name was public; at send time it points at loopback."""
    with running_receiver() as receiver:
        port = receiver.url.split(":")[2].split("/")[0]
        DNS["rebind.example.com"] = ["127.0.0.1"]
        try:
            async with httpx.AsyncClient() as http:
                result = await post_pinned(
                    http, f"http://rebind.example.com:{port}/hooks", headers={}, body="{}",
                    allow_private=False, require_https=False,
                )  # fmt: skip
        finally:
            del DNS["rebind.example.com"]
    assert result.status_code is None
    assert result.error is not None
    assert result.error.startswith("refused:")
    assert receiver.received == []


@contextmanager
def redirecting_to(location: str) -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.send_response(307)
            self.send_header("location", location)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    finally:
        server.shutdown()
        server.server_close()


async def test_redirects_are_never_followed(gateway: Gateway) -> None:
    """A receiver's 3xx is a failed attempt; the Location is never requested."""
    dispatcher = Dispatcher(gateway.app.state.runtime)
    try:
        assert dispatcher.http.follow_redirects is False
        with running_receiver() as inner, redirecting_to(inner.url) as outer:
            # Sandbox rules (private allowed) so that the first hop itself is reachable.
            result = await post_pinned(dispatcher.http, outer, headers={}, body="{}",
                                       allow_private=True, require_https=False)  # fmt: skip
        assert result.status_code == 307
        assert inner.received == []
    finally:
        await dispatcher.http.aclose()
