"""Regressions for C2B input defects found probing the C2B routes the way schemathesis
does: each input once made the gateway answer 500 on PostgreSQL (SQLite took it)."""

from __future__ import annotations

import pytest

from tests.conftest import Gateway, Merchant, problem

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
