"""The one way the gateway POSTs to a URL a merchant gave it: webhook deliveries, and
the C2B validation request (``c2b/validation.py``).

The URL passes the SSRF guard (``ssrf.check_url``) and the connection goes to the address
just checked, with the name kept for the Host header and TLS (SNI), so DNS cannot
answer differently between the check and the request. Nothing here raises for what the
receiver does: a refusal, a timeout or a transport error comes back as the result.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import httpx

from pesaswitch.kit.http import aiohttp_transport_of
from pesaswitch.webhooks.ssrf import UnsafeUrl, check_url

__all__ = ["RESPONSE_KEEP_BYTES", "AttemptResult", "post_pinned"]

# What is kept of a receiver's answer (the attempt row stores it; reading on would let a
# receiver make the gateway download without end).
RESPONSE_KEEP_BYTES = 2048


@dataclass(frozen=True, slots=True)
class AttemptResult:
    status_code: int | None
    duration_ms: int
    body: str | None
    error: str | None

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


async def post_pinned(
    http: httpx.AsyncClient,
    url: str,
    *,
    headers: dict[str, str],
    body: str,
    allow_private: bool,
    require_https: bool,
) -> AttemptResult:
    """POST ``body`` to ``url`` if the guard allows it, pinned to the checked address.

    ``allow_private``/``require_https``: the account's environment decides them
    (``webhooks.service.allow_private_urls``; live accounts need HTTPS)."""
    started = time.perf_counter()

    def elapsed() -> int:
        return int((time.perf_counter() - started) * 1000)

    try:
        target = await check_url(url, allow_private=allow_private, require_https=require_https)
    except UnsafeUrl as exc:
        return AttemptResult(None, elapsed(), None, f"refused: {exc.detail}")
    address = target.addresses[0]
    pinned = httpx.URL(url).copy_with(host=address)
    host_header = target.host if target.port in (80, 443) else f"{target.host}:{target.port}"
    transport = aiohttp_transport_of(http)
    try:
        if transport is not None:
            # The worker's client: straight to aiohttp, which saves httpx's request and
            # response objects (~a sixth of the worker's CPU per webhook, by its profile).
            status, answer = await transport.post_capped(
                str(pinned), headers={**http.headers, **headers, "host": host_header},
                body=body.encode(), timeouts=http.timeout, sni_hostname=target.host,
                keep=RESPONSE_KEEP_BYTES,
            )  # fmt: skip
            text = answer.decode("utf-8", errors="replace")
            return AttemptResult(status, elapsed(), text, None)
        async with http.stream(
            "POST",
            pinned,
            content=body.encode(),
            headers={**headers, "host": host_header},
            extensions={"sni_hostname": target.host},
        ) as response:
            kept = bytearray()
            async for chunk in response.aiter_bytes():
                kept += chunk
                if len(kept) >= RESPONSE_KEEP_BYTES:
                    break
            text = bytes(kept[:RESPONSE_KEEP_BYTES]).decode("utf-8", errors="replace")
            return AttemptResult(response.status_code, elapsed(), text, None)
    except httpx.TimeoutException:
        return AttemptResult(None, elapsed(), None, "timeout")
    except httpx.HTTPError as exc:
        return AttemptResult(None, elapsed(), None, f"{type(exc).__name__}: {exc}"[:500])
