"""Merchant URLs cannot reach the gateway's own network (SSRF), at registration and send."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from pesaswitch.accounts import service as accounts
from pesaswitch.accounts.models import Environment
from pesaswitch.db import transaction
from pesaswitch.webhooks.ssrf import UnsafeUrl, check_url, is_blocked
from tests.conftest import Gateway, Merchant, problem
from tests.support.receiver import running_receiver
from tests.webhooks.test_delivery import FAST_WEBHOOKS, wait_until

REFUSED = [
    "https://127.0.0.1/hook",
    "https://10.0.0.1/hook",
    "https://169.254.169.254/latest/meta-data",
    "https://[::1]/hook",
    "https://[::ffff:127.0.0.1]/hook",
    "https://localhost/hook",
    "https://192.168.1.10/hook",
    "https://100.64.0.1/hook",
    "https://[fe80::1]/hook",
    "https://[fd00:ec2::254]/hook",
    "https://224.0.0.1/hook",
    "https://0.0.0.0/hook",
    "https://[64:ff9b::7f00:1]/hook",
]


@pytest.mark.parametrize("url", REFUSED)
async def test_private_addresses_are_refused(url: str) -> None:
    with pytest.raises(UnsafeUrl):
        await check_url(url, allow_private=False)


@pytest.mark.parametrize(
    "url",
    ["ftp://example.com/x", "https://user:pw@example.com/x", "http:///nohost", "javascript:1"],
)
async def test_malformed_urls_are_refused_even_in_sandbox(url: str) -> None:
    with pytest.raises(UnsafeUrl):
        await check_url(url, allow_private=True)


def test_public_addresses_pass() -> None:
    import ipaddress

    for address in ("196.201.214.200", "8.8.8.8", "2606:4700::1111"):
        assert not is_blocked(ipaddress.ip_address(address))


async def live_merchant(gateway: Gateway) -> Merchant:
    async with transaction(gateway.app.state.runtime.sessionmaker) as session:
        new = await accounts.create_account(
            session, secret_key=gateway.settings.secret_key, name="Live shop",
            environment=Environment.LIVE,
        )  # fmt: skip
    assert new.secret_key.key.startswith("sk_live_")
    return Merchant(
        new.account.id, new.secret_key.key, new.public_key.key, new.default_channel.id,
        new.secret_key.id,
    )  # fmt: skip


@pytest.mark.parametrize("url", REFUSED[:6])
async def test_live_endpoints_at_private_addresses_are_refused(
    gateway_factory: Any, url: str
) -> None:
    # Even with the sandbox allowance on, a live account never gets it.
    gateway: Gateway = await gateway_factory(sandbox_allow_private_urls=True)
    merchant = await live_merchant(gateway)
    response = await gateway.client.post(
        "/v1/webhook-endpoints", headers=merchant.auth, json={"url": url}
    )
    assert response.status_code == 422
    body = problem(response)
    assert body["code"] == "unsafe_url"
    listed = await gateway.client.get("/v1/webhook-endpoints", headers=merchant.auth)
    assert listed.json() == []


async def test_sandbox_loopback_only_with_the_setting(gateway_factory: Any) -> None:
    from tests.conftest import create_merchant

    strict: Gateway = await gateway_factory(sandbox_allow_private_urls=False)
    merchant = await create_merchant(strict.settings)
    refused = await strict.client.post(
        "/v1/webhook-endpoints", headers=merchant.auth, json={"url": "http://127.0.0.1:9/x"}
    )
    assert refused.status_code == 422
    assert problem(refused)["code"] == "unsafe_url"


async def test_every_delivery_is_checked_again(gateway_factory: Any) -> None:
    """An endpoint allowed when registered is refused at send time once the rule changes."""
    from tests.conftest import create_merchant

    with running_receiver() as receiver:
        # Registered while loopback is allowed (this gateway runs no worker)...
        lenient: Gateway = await gateway_factory(**FAST_WEBHOOKS, embedded_worker=False)
        merchant = await create_merchant(lenient.settings)
        created = await lenient.client.post(
            "/v1/webhook-endpoints", headers=merchant.auth, json={"url": receiver.url}
        )
        assert created.status_code == 201
        endpoint_id = created.json()["id"]
        # ...and delivered by a gateway whose rule no longer allows it.
        strict: Gateway = await gateway_factory(
            **{**FAST_WEBHOOKS, "sandbox_allow_private_urls": False}
        )
        payment = await strict.client.post(
            "/v1/payments", headers=merchant.auth, json={"amount": 10, "phone": "0708374149"}
        )
        assert payment.status_code == 201

        async def attempts() -> list[dict[str, Any]]:
            page = await strict.client.get(
                f"/v1/webhook-endpoints/{endpoint_id}/deliveries", headers=merchant.auth
            )
            data = page.json()["data"]
            found: list[dict[str, Any]] = data[0]["attempts"] if data else []
            return found

        for _ in range(100):
            found = await attempts()
            if found:
                break
            await asyncio.sleep(0.05)
        assert found[0]["status_code"] is None
        assert found[0]["error"].startswith("refused:")
        assert receiver.received == []


async def test_connection_is_pinned_to_the_checked_address() -> None:
    """The request goes to the resolved, checked IP while Host keeps the name."""
    import httpx

    from pesaswitch.webhooks.sending import post_pinned

    with running_receiver() as receiver:
        url = receiver.url.replace("127.0.0.1", "localhost")
        async with httpx.AsyncClient() as http:
            result = await post_pinned(
                http,
                url,
                headers={"webhook-id": "evt_1"},
                body="{}",
                allow_private=True,
                require_https=False,
            )
        await wait_until(lambda: len(receiver.received) == 1)
    assert result.status_code == 200
    port = url.split(":")[2].split("/")[0]
    assert receiver.received[0].headers["host"] == f"localhost:{port}"


async def test_live_payment_callback_url_is_guarded(gateway_factory: Any) -> None:
    from sqlalchemy import func, select

    from pesaswitch.payments.models import Payment

    gateway: Gateway = await gateway_factory(sandbox_allow_private_urls=True)
    merchant = await live_merchant(gateway)
    for url in ("https://169.254.169.254/x", "http://example.com/x"):
        response = await gateway.client.post(
            "/v1/payments",
            headers=merchant.auth,
            json={"amount": 10, "phone": "0708374149", "callback_url": url},
        )
        assert response.status_code == 422
        assert problem(response)["code"] == "unsafe_url"
    async with gateway.app.state.runtime.sessionmaker() as session:
        count = await session.scalar(
            select(func.count())
            .select_from(Payment)
            .where(Payment.account_id == merchant.account_id)
        )
    assert count == 0
