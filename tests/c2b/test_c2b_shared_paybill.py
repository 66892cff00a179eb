"""The gateway's own paybill (where every wallet payment lands) is the operator's: a
merchant's API key cannot take its C2B (whoever holds a shortcode's registration receives
every C2B payment to it). Dashboard staff and the CLI give it to an account; that account
then manages its rules like any channel's."""

from __future__ import annotations

import asyncio
import subprocess
from typing import Any

from pesaswitch.accounts.models import ChannelKind
from pesaswitch.compat.common import basic_credentials
from tests.c2b.helpers import fresh_shortcode
from tests.conftest import TEST_SECRET_KEY, Gateway, Merchant, create_merchant, problem
from tests.dashboard.helpers import browser, make_user, post_form, sign_in
from tests.support.processes import PESASWITCH


async def _shared_gateway(gateway_factory: Any) -> Gateway:
    # A shortcode of its own: one run's database holds one registration per shortcode.
    gateway: Gateway = await gateway_factory(
        daraja_shortcode=fresh_shortcode(), daraja_b2c_shortcode=fresh_shortcode()
    )
    return gateway


async def _refused_everywhere(gateway: Gateway, merchant: Merchant, channel_id: int) -> None:
    base = f"/v1/channels/{channel_id}/c2b"
    for response in (
        await gateway.client.put(base, json={"validation_enabled": True}, headers=merchant.auth),
        await gateway.client.post(f"{base}/register", headers=merchant.auth),
    ):
        assert response.status_code == 403, response.text
        assert problem(response)["code"] == "c2b_shared_shortcode"
    # Nothing was configured, and Daraja (the simulator) was never asked.
    assert problem(await gateway.client.get(base, headers=merchant.auth))["code"] == (
        "c2b_not_configured"
    )
    registrations = gateway.app.state.runtime.simulator.c2b.registrations
    assert gateway.settings.daraja_shortcode not in registrations
    assert gateway.settings.daraja_b2c_shortcode not in registrations


async def test_a_merchant_key_cannot_take_the_gateway_paybill(gateway_factory: Any) -> None:
    gateway = await _shared_gateway(gateway_factory)
    merchant = await create_merchant(gateway.settings)
    await _refused_everywhere(gateway, merchant, merchant.channel_id)  # its wallet channel


async def test_nor_through_a_paybill_channel_naming_a_gateway_shortcode(
    gateway_factory: Any,
) -> None:
    gateway = await _shared_gateway(gateway_factory)
    merchant = await create_merchant(gateway.settings)
    payhero = {"Authorization": "Basic " + _basic(merchant)}
    for shortcode in (gateway.settings.daraja_shortcode, gateway.settings.daraja_b2c_shortcode):
        created = await gateway.client.post(
            "/api/v2/payment_channels", headers=payhero,
            json={"channel_type": "paybill", "short_code": shortcode, "description": "not mine"},
        )  # fmt: skip
        assert created.status_code == 201, created.text
        await _refused_everywhere(gateway, merchant, created.json()["id"])


async def test_staff_give_it_and_the_account_then_manages_it(gateway_factory: Any) -> None:
    gateway = await _shared_gateway(gateway_factory)
    house = await create_merchant(gateway.settings, "House account")
    email = f"staff-{house.account_id.lower()}@example.com"
    await make_user(gateway, email=email, account_id=None, staff=True)
    client = browser(gateway)
    try:
        assert (await sign_in(client, email)).status_code == 303
        chosen = await post_form(client, "/dashboard", "/dashboard/account",
                                 {"account_id": house.account_id})  # fmt: skip
        assert chosen.status_code == 303
        action = f"/dashboard/channels/{house.channel_id}/c2b/register"
        done = await post_form(client, "/dashboard/channels", action)
        assert done.status_code == 303
        assert "registered" in done.headers["location"], done.headers["location"]
    finally:
        await client.aclose()
    shortcode = gateway.settings.daraja_shortcode
    assert shortcode in gateway.app.state.runtime.simulator.c2b.registrations
    # Given: the house account's key now sets its rules and registers again.
    base = f"/v1/channels/{house.channel_id}/c2b"
    rules = await gateway.client.put(base, json={"min_amount": 10}, headers=house.auth)
    assert rules.status_code == 200, rules.text
    assert (rules.json()["shortcode"], rules.json()["min_amount"]) == (shortcode, 10)
    again = await gateway.client.post(f"{base}/register", headers=house.auth)
    assert again.status_code == 200, again.text
    # Another merchant still cannot take it (the holder's, and not theirs to give).
    other = await create_merchant(gateway.settings, "Other shop")
    response = await gateway.client.post(
        f"/v1/channels/{other.channel_id}/c2b/register", headers=other.auth
    )
    assert response.status_code == 403
    assert problem(response)["code"] == "c2b_shared_shortcode"


async def test_a_merchant_user_of_the_dashboard_cannot_take_it(gateway_factory: Any) -> None:
    gateway = await _shared_gateway(gateway_factory)
    merchant = await create_merchant(gateway.settings)
    email = f"owner-{merchant.account_id.lower()}@example.com"
    await make_user(gateway, email=email, account_id=merchant.account_id)
    client = browser(gateway)
    try:
        assert (await sign_in(client, email)).status_code == 303
        action = f"/dashboard/channels/{merchant.channel_id}/c2b/register"
        refused = await post_form(client, "/dashboard/channels", action)
        assert refused.status_code == 303
        assert "failed" in refused.headers["location"], refused.headers["location"]
    finally:
        await client.aclose()
    assert gateway.settings.daraja_shortcode not in (
        gateway.app.state.runtime.simulator.c2b.registrations
    )


async def test_the_cli_gives_it(gateway_factory: Any) -> None:
    gateway = await _shared_gateway(gateway_factory)
    merchant = await create_merchant(gateway.settings)
    env = {
        "PESASWITCH_DATABASE_URL": gateway.settings.database_url,
        "PESASWITCH_SECRET_KEY": TEST_SECRET_KEY,
        "PESASWITCH_DARAJA_SHORTCODE": gateway.settings.daraja_shortcode,
        "PESASWITCH_LOG_LEVEL": "warning",
        "PATH": "/usr/bin:/bin",
    }
    given = await _cli(env, "c2b", "assign", str(merchant.channel_id))
    assert given.returncode == 0, given.stderr
    assert f'"shortcode": "{gateway.settings.daraja_shortcode}"' in given.stdout
    missing = await _cli(env, "c2b", "assign", "999999")
    assert (missing.returncode, "No channel" in missing.stderr) == (1, True)
    response = await gateway.client.post(
        f"/v1/channels/{merchant.channel_id}/c2b/register", headers=merchant.auth
    )
    assert response.status_code == 200, response.text
    assert gateway.settings.daraja_shortcode in (
        gateway.app.state.runtime.simulator.c2b.registrations
    )


async def test_a_merchants_own_paybill_needs_no_operator(gateway: Gateway) -> None:
    merchant = await create_merchant(gateway.settings)
    payhero = {"Authorization": "Basic " + _basic(merchant)}
    created = await gateway.client.post(
        "/api/v2/payment_channels", headers=payhero,
        json={"channel_type": ChannelKind.PAYBILL.value, "short_code": fresh_shortcode(),
              "description": "mine"},
    )  # fmt: skip
    assert created.status_code == 201, created.text
    url = f"/v1/channels/{created.json()['id']}/c2b/register"
    assert (await gateway.client.post(url, headers=merchant.auth)).status_code == 200


async def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    # In a thread: the in-process gateway's worker keeps its SQLite transactions moving.
    return await asyncio.to_thread(
        subprocess.run, [PESASWITCH, *args], env=env, capture_output=True, text=True,
        timeout=60, check=False,
    )  # fmt: skip


def _basic(merchant: Merchant) -> str:
    header = basic_credentials(merchant.secret_key_id, merchant.secret_key)["basic_auth_header"]
    return header.removeprefix("Basic ")
