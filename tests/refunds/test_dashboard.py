"""The dashboard's payment page shows refunds and the reversal."""

from __future__ import annotations

from typing import Any

from tests.dashboard.helpers import browser, make_user, sign_in
from tests.refunds.helpers import fund, paid, shop, wait_final


async def test_payment_page_shows_refunds_and_reversal(gateway_factory: Any) -> None:
    gateway, merchant = await shop(gateway_factory)
    email = f"owner-{merchant.account_id.lower()}@example.com"
    await make_user(gateway, email=email, account_id=merchant.account_id)
    refunded = await paid(gateway, merchant, 1000)
    reversed_ = await paid(gateway, merchant, 500, phone="0712345671")
    await fund(gateway, merchant, 1000)
    refund = await gateway.client.post(
        f"/v1/payments/{refunded['id']}/refund", headers=merchant.auth, json={"amount": 250}
    )
    reversal = await gateway.client.post(
        f"/v1/payments/{reversed_['id']}/reversal", headers=merchant.auth, json={}
    )
    await wait_final(gateway, merchant, f"/v1/refunds/{refund.json()['id']}")
    await wait_final(gateway, merchant, f"/v1/reversals/{reversal.json()['id']}")
    async with browser(gateway) as client:
        assert (await sign_in(client, email)).status_code == 303
        page = (await client.get(f"/dashboard/payments/{refunded['id']}")).text
        assert f'data-refund-id="{refund.json()["id"]}"' in page
        assert "Refunded KES 250; still refundable KES 750." in page
        page = (await client.get(f"/dashboard/payments/{reversed_['id']}")).text
        assert f'data-reversal-id="{reversal.json()["id"]}"' in page
        assert "<strong>reversed</strong>" in page
        assert reversed_["mpesa_receipt"] in page
