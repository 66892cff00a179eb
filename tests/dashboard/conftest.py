from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.conftest import Gateway, Merchant, create_merchant
from tests.dashboard.helpers import browser, make_user, sign_in


@dataclass
class Shop:
    merchant: Merchant
    email: str
    client: httpx.AsyncClient


@pytest.fixture
async def dashboard(gateway_factory: Callable[..., Any]) -> Gateway:
    gw: Gateway = await gateway_factory(sandbox_allow_private_urls=True)
    return gw


@pytest.fixture
async def shops(dashboard: Gateway) -> AsyncIterator[tuple[Shop, Shop]]:
    """Two merchants, each with a signed-in user in its own browser."""
    made = []
    for name in ("Shop A", "Shop B"):
        merchant = await create_merchant(dashboard.settings, name)
        email = f"owner-{merchant.account_id.lower()}@example.com"
        await make_user(dashboard, email=email, account_id=merchant.account_id)
        client = browser(dashboard)
        response = await sign_in(client, email)
        assert response.status_code == 303, response.text
        made.append(Shop(merchant, email, client))
    yield made[0], made[1]
    for shop in made:
        await shop.client.aclose()
