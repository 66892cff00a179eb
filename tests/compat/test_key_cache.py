"""The dialects share the native API's key cache: a key verified once is trusted for the
cache's TTL without a lookup, and a revocation through this process evicts it at once."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from sqlalchemy import update

from pesaswitch.accounts.models import ApiKey
from pesaswitch.accounts.service import revoke_api_key
from pesaswitch.db import transaction
from pesaswitch.kit.clock import utcnow
from tests.compat.test_payhero import basic
from tests.conftest import Gateway, Merchant, create_merchant

Call = Callable[[Gateway, Merchant], Awaitable[httpx.Response]]


async def _payhero(gateway: Gateway, merchant: Merchant) -> httpx.Response:
    return await gateway.client.get("/api/v2/payment_channels", headers=basic(merchant))


async def _paynexus(gateway: Gateway, merchant: Merchant) -> httpx.Response:
    return await gateway.client.post(
        "/api/mpesa/validate-phone", headers={"X-API-Key": merchant.secret_key},
        json={"phone": "0712345678"},
    )  # fmt: skip


DIALECTS = pytest.mark.parametrize("call", [_payhero, _paynexus], ids=["payhero", "paynexus"])


@DIALECTS
async def test_a_verified_key_is_not_looked_up_again_within_the_ttl(
    gateway_factory: Callable[..., Any], call: Call
) -> None:
    gateway: Gateway = await gateway_factory(api_key_cache_seconds=300)
    merchant = await create_merchant(gateway.settings)
    assert (await call(gateway, merchant)).status_code == 200
    # Revoked by another process (a plain UPDATE this one never hears of): the cached
    # verification still answers, which a lookup per request would not.
    async with transaction(gateway.app.state.runtime.sessionmaker) as session:
        await session.execute(
            update(ApiKey).where(ApiKey.id == merchant.secret_key_id).values(revoked_at=utcnow())
        )
    assert (await call(gateway, merchant)).status_code == 200


@DIALECTS
async def test_revoking_in_this_process_is_immediate_despite_the_cache(
    gateway_factory: Callable[..., Any], call: Call
) -> None:
    gateway: Gateway = await gateway_factory(api_key_cache_seconds=300)
    merchant = await create_merchant(gateway.settings)
    assert (await call(gateway, merchant)).status_code == 200
    async with transaction(gateway.app.state.runtime.sessionmaker) as session:
        await revoke_api_key(session, key_id=merchant.secret_key_id)
    assert (await call(gateway, merchant)).status_code == 401


@DIALECTS
async def test_without_a_cache_every_request_looks_the_key_up(
    gateway_factory: Callable[..., Any], call: Call
) -> None:
    gateway: Gateway = await gateway_factory(api_key_cache_seconds=0)
    merchant = await create_merchant(gateway.settings)
    assert (await call(gateway, merchant)).status_code == 200
    async with transaction(gateway.app.state.runtime.sessionmaker) as session:
        await session.execute(
            update(ApiKey).where(ApiKey.id == merchant.secret_key_id).values(revoked_at=utcnow())
        )
    assert (await call(gateway, merchant)).status_code == 401
