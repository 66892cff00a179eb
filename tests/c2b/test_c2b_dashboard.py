"""The channels page's C2B button registers the channel's URLs with Daraja; another
account's channel is not found (404, like every dashboard action); a form without the
CSRF token is refused."""

from __future__ import annotations

from typing import Any

from pesaswitch.accounts.models import ChannelKind
from tests.c2b.helpers import add_channel, pay
from tests.conftest import Gateway, create_merchant
from tests.dashboard.helpers import browser, make_user, post_form, sign_in


async def test_register_button(gateway_factory: Any) -> None:
    gateway: Gateway = await gateway_factory()
    merchant = await create_merchant(gateway.settings)
    other = await create_merchant(gateway.settings, "Other")
    till = await add_channel(gateway.settings, merchant, ChannelKind.TILL)
    bank = await add_channel(gateway.settings, merchant, ChannelKind.BANK)
    foreign = await add_channel(gateway.settings, other, ChannelKind.PAYBILL)
    email = f"c2b-{merchant.account_id.lower()}@example.com"
    await make_user(gateway, email=email, account_id=merchant.account_id)
    client = browser(gateway)
    try:
        assert (await sign_in(client, email)).status_code == 303
        page = await client.get("/dashboard/channels")
        assert f'id="register-c2b-{till}"' in page.text
        assert f'id="register-c2b-{bank}"' not in page.text

        done = await post_form(
            client, "/dashboard/channels", f"/dashboard/channels/{till}/c2b/register"
        )
        assert done.status_code == 303
        assert "registered" in done.headers["location"]
        page = await client.get(done.headers["location"])
        assert "c2b-registered" in page.text
        shortcode = (
            await gateway.client.get(f"/v1/channels/{till}/c2b", headers=merchant.auth)
        ).json()["shortcode"]
        assert shortcode in gateway.app.state.runtime.simulator.c2b.registrations
        played = await pay(gateway, shortcode, kind="till")
        assert played["confirmations_sent"] == [200]

        refused = await post_form(
            client, "/dashboard/channels", f"/dashboard/channels/{foreign}/c2b/register"
        )
        assert refused.status_code == 404, refused.text
        assert (
            await gateway.client.get(f"/v1/channels/{foreign}/c2b", headers=other.auth)
        ).status_code == 404
        no_token = await client.post(f"/dashboard/channels/{till}/c2b/register", data={})
        assert no_token.status_code == 403
    finally:
        await client.aclose()
