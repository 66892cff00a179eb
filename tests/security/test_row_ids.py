"""Integer ids beyond the database's INTEGER range name no row: 'not found' or 'invalid',
never a driver overflow (a 500 on PostgreSQL, found by schemathesis)."""

from __future__ import annotations

import pytest

from pesaswitch.accounts import service as accounts
from pesaswitch.errors import ChannelNotFound
from tests.conftest import Gateway, Merchant
from tests.security.bola_world import basic

HUGE = [2**31, 2**63, 127040261620249312916799920062435688448]


@pytest.mark.parametrize("channel_id", HUGE)
async def test_huge_channel_ids_are_refused(
    gateway: Gateway, merchant: Merchant, channel_id: int
) -> None:
    read = await gateway.client.get(
        f"/api/v2/payment_channels/{channel_id}", headers=basic(merchant)
    )
    assert read.status_code in (404, 422), read.text
    for path, body in (
        ("/v1/payments", {"amount": 10, "phone": "0708374149", "channel_id": channel_id}),
        ("/api/v2/payments", {"amount": 10, "phone_number": "0708374149",
                              "channel_id": channel_id, "provider": "m-pesa"}),
        ("/api/v2/payments", {"amount": 10, "phone_number": "0708374149",
                              "credential_id": channel_id, "provider": "m-pesa"}),
    ):  # fmt: skip
        headers = merchant.auth if path.startswith("/v1") else basic(merchant)
        response = await gateway.client.post(path, headers=headers, json=body)
        assert response.status_code in (404, 422), (path, body, response.text)
    listed = await gateway.client.get("/v1/payments", headers=merchant.auth)
    assert listed.json()["data"] == []


async def test_the_service_guards_every_caller(gateway: Gateway, merchant: Merchant) -> None:
    async with gateway.app.state.runtime.sessionmaker() as session:
        with pytest.raises(ChannelNotFound):
            await accounts.resolve_channel(
                session, account_id=merchant.account_id, channel_id=2**40
            )
