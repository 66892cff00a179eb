"""A dialect answers every URL under its mount in its own shape, whatever the URL holds."""

from __future__ import annotations

import pytest

from tests.conftest import Gateway, Merchant


@pytest.mark.parametrize("reference", ["a%0Ab", "%0A", "x%0D%0Ay"])
async def test_a_newline_in_an_id_stays_in_the_dialect(
    gateway: Gateway, merchant: Merchant, reference: str
) -> None:
    response = await gateway.client.get(
        f"/api/payments/{reference}", headers={"X-API-Key": merchant.secret_key}
    )
    assert response.status_code == 404
    # PayNexus' shape ({success: false, ...}), never the native problem+json.
    assert response.headers["content-type"].startswith("application/json"), response.text
    assert response.json()["success"] is False
