"""Date-time filters take ISO 8601 only: a bare number is refused, not read as Unix
seconds (``created_after=2020`` used to mean 1970; found by schemathesis)."""

from __future__ import annotations

import pytest

from tests.conftest import Gateway, Merchant, problem


@pytest.mark.parametrize("value", ["2020", "-138253", "1700000000.5", " 12 "])
async def test_numbers_are_refused(gateway: Gateway, merchant: Merchant, value: str) -> None:
    for name in ("created_after", "created_before"):
        response = await gateway.client.get(
            "/v1/payments", params={name: value}, headers=merchant.auth
        )
        assert response.status_code == 422, response.text
        assert problem(response)["code"] == "validation_error"


async def test_iso_dates_filter(gateway: Gateway, merchant: Merchant) -> None:
    paid = await gateway.client.post(
        "/v1/payments", json={"amount": 10, "phone": "0708374149"}, headers=merchant.auth
    )
    assert paid.status_code == 201
    for params, found in (
        ({"created_after": "2020-01-01T00:00:00Z"}, True),
        ({"created_before": "2020-01-01"}, False),
        ({"created_after": "2999-01-01T00:00:00+03:00"}, False),
    ):
        listed = await gateway.client.get("/v1/payments", params=params, headers=merchant.auth)
        assert listed.status_code == 200, listed.text
        assert (paid.json()["id"] in listed.text) is found, params
