"""Throttle API key guessing: a client address that presents too many unknown or revoked
keys in a window is refused (429, ``Retry-After``) before any lookup, for a while.

In-process, like the key cache: with N API processes a client gets N times the budget,
which does not matter against keys of 160+ random bits; the point is to stop the noise
and make enumeration visible (``auth.throttled`` in the log). A key this process verified
recently still works from a throttled address (it is served from the key cache), so a
guessing neighbour behind the same NAT does not lock out a working integration.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import structlog

from pesaswitch.errors import TooManyRequests

log = structlog.get_logger(__name__)

MAX_CLIENTS = 10_000  # tracked addresses; the oldest are forgotten past this


class AuthThrottled(TooManyRequests):
    code = "auth_throttled"
    title = "Too many invalid API keys from this address; try again later"


@dataclass
class _Window:
    started: float
    failures: int = 0
    blocked_until: float = 0.0


class KeyThrottle:
    def __init__(self) -> None:
        self._clients: dict[str, _Window] = {}

    def check(self, client: str | None, *, now: float | None = None) -> None:
        window = self._clients.get(client or "")
        now = time.monotonic() if now is None else now
        if window is not None and window.blocked_until > now:
            retry = max(1, int(window.blocked_until - now + 0.999))
            raise AuthThrottled(headers={"Retry-After": str(retry)})

    def failed(
        self, client: str | None, *, limit: int, window_seconds: float, block_seconds: float,
        now: float | None = None,
    ) -> None:  # fmt: skip
        key = client or ""
        now = time.monotonic() if now is None else now
        window = self._clients.get(key)
        if window is None or now - window.started > window_seconds:
            if len(self._clients) >= MAX_CLIENTS:
                self._clients.pop(next(iter(self._clients)))
            window = self._clients[key] = _Window(started=now)
        window.failures += 1
        if window.failures >= limit:
            window.blocked_until = now + block_seconds
            window.started, window.failures = now, 0
            log.warning("auth.throttled", client=key, seconds=block_seconds)
