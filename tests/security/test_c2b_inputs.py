"""Regressions for C2B input defects found probing the C2B routes the way schemathesis
does: each input once made the gateway answer 500 on PostgreSQL (SQLite took it)."""

from __future__ import annotations

import pytest

from tests.c2b.helpers import c2b_payments, notifications, set_up_channel
from tests.conftest import Gateway, Merchant, problem
from tests.security.test_daraja_tokens_c2b import c2b_notice

HUGE = [2**31, 2**63]


# Integer ids beyond the database's INTEGER range name no channel: 'not found'.
@pytest.mark.parametrize("channel_id", HUGE)
async def test_huge_channel_ids_are_not_found(
    gateway: Gateway, merchant: Merchant, channel_id: int
) -> None:
    base = f"/v1/channels/{channel_id}/c2b"
    for method, path, body in (
        ("GET", base, None), ("PUT", base, {}), ("POST", f"{base}/register", None),
        ("POST", f"{base}/sweep", None), ("POST", f"{base}/recover", {"receipt": "UAB1C2D3E4"}),
    ):  # fmt: skip
        response = await gateway.client.request(method, path, json=body, headers=merchant.auth)
        assert response.status_code == 404, (method, path, response.text)
        assert problem(response)["code"] in ("channel_not_found", "c2b_not_configured")


# PostgreSQL's text cannot hold NUL (U+0000): a rule with one is refused, not stored.
@pytest.mark.parametrize(
    "rules", [{"account_pattern": "INV\x00"}, {"account_pattern": "\x00"},
              {"validation_url": "http://127.0.0.1/\x00"}],
)  # fmt: skip
async def test_nul_in_rules_is_refused(
    gateway: Gateway, merchant: Merchant, rules: dict[str, str]
) -> None:
    response = await gateway.client.put(
        f"/v1/channels/{merchant.channel_id}/c2b", json=rules, headers=merchant.auth
    )
    assert response.status_code == 422, response.text
    assert problem(response)["code"] == "validation_error"
    path = f"/v1/channels/{merchant.channel_id}/c2b"
    read = await gateway.client.get(path, headers=merchant.auth)
    assert read.status_code == 404, read.text  # nothing was configured


async def test_nul_from_daraja_is_refused_and_recorded(
    gateway: Gateway, merchant: Merchant
) -> None:
    channel = await set_up_channel(gateway, merchant)
    shortcode = channel["shortcode"]
    registration = gateway.app.state.runtime.simulator.c2b.registrations[shortcode]
    notice = c2b_notice(shortcode, "UNUL000001", 50)
    notice["BillRefNumber"] = "INV\x00"
    for url in (registration.validation_url, registration.confirmation_url):
        response = await gateway.client.post(url, json=notice)
        assert response.status_code == 400, response.text
        assert response.json()["ResultCode"] == "C2B00016"
    # A raw NUL byte in the body (not JSON): refused, still recorded.
    response = await gateway.client.post(
        registration.confirmation_url, content=b'{"TransID": "\x00"}',
        headers={"Content-Type": "application/json"},
    )  # fmt: skip
    assert response.status_code == 400, response.text
    unknown = await gateway.client.post("/daraja/c2b/no-such-token/confirmation", content=b"\x00")
    assert unknown.status_code == 404, unknown.text
    assert await c2b_payments(gateway, merchant) == []
    outcomes = [(n["kind"], n["outcome"]) for n in await notifications(gateway, merchant)]
    assert outcomes[:3] == [("confirmation", "invalid")] * 2 + [("validation", "invalid")]
