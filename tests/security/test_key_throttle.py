"""Guessing API keys is throttled per client address, on the native API and the dialects
alike; keys this process already verified keep working. (The dashboard's sign-in has its
own lockout and address throttle: tests/dashboard/test_auth.py.)"""

from __future__ import annotations

import asyncio
import base64
import secrets
from typing import Any

import pytest

from pesaswitch.accounts.throttle import KeyThrottle
from tests.conftest import Gateway, create_merchant, problem

LIMIT = 5


def guesses() -> list[tuple[str, dict[str, str]]]:
    def key() -> str:
        return f"sk_test_{secrets.token_urlsafe(24)}"

    basic = base64.b64encode(f"{key()}:".encode()).decode()
    return [
        ("/v1/balance", {"Authorization": f"Bearer {key()}"}),
        ("/api/v2/payment_channels", {"Authorization": f"Basic {basic}"}),
        ("/api/payments/ABC", {"X-API-Key": key()}),
        ("/v1/payments", {"Authorization": f"Bearer pk_test_{secrets.token_urlsafe(24)}"}),
        ("/v1/events", {"Authorization": "Bearer not-even-a-key"}),
    ]


@pytest.mark.parametrize("start", range(len(guesses())))
async def test_invalid_keys_from_one_address_are_throttled(
    gateway_factory: Any, start: int
) -> None:
    gateway: Gateway = await gateway_factory(
        auth_failure_limit=LIMIT, auth_block_seconds=0.6, api_key_cache_seconds=30
    )
    known = await create_merchant(gateway.settings)
    assert (await gateway.client.get("/v1/balance", headers=known.auth)).status_code == 200
    unverified = await create_merchant(gateway.settings, "Not yet seen")
    attempts = guesses()[start:] + guesses()[:start]  # every surface, in every order
    for path, headers in attempts[:LIMIT]:
        response = await gateway.client.get(path, headers=headers)
        assert response.status_code == 401, (path, response.text)
    for path, headers in attempts:
        refused = await gateway.client.get(path, headers=headers)
        assert refused.status_code == 429, (path, refused.text)
        assert int(refused.headers["retry-after"]) >= 1
    body = problem(await gateway.client.get("/v1/balance", headers=unverified.auth))
    assert body["code"] == "auth_throttled"
    # A key verified before the guessing still works from the same address.
    assert (await gateway.client.get("/v1/balance", headers=known.auth)).status_code == 200
    await asyncio.sleep(0.7)
    assert (await gateway.client.get("/v1/balance", headers=unverified.auth)).status_code == 200


def test_the_window_resets_and_addresses_are_separate() -> None:
    throttle = KeyThrottle()
    rules = {"limit": 3, "window_seconds": 10.0, "block_seconds": 5.0}
    for now in (0.0, 1.0):
        throttle.failed("10.0.0.1", now=now, **rules)
    throttle.failed("10.0.0.1", now=20.0, **rules)  # the window ran out: counting restarts
    throttle.check("10.0.0.1", now=20.5)
    for now in (21.0, 22.0):
        throttle.failed("10.0.0.1", now=now, **rules)
    with pytest.raises(Exception, match="Too many"):
        throttle.check("10.0.0.1", now=23.0)
    throttle.check("10.0.0.2", now=23.0)  # another address is not affected
    throttle.check("10.0.0.1", now=27.5)  # the block has lapsed
