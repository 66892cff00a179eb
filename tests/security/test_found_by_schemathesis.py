"""Regressions for the defects schemathesis found: each input once made the gateway answer
wrongly (a 500, the wrong shape, or a silent misreading)."""

from __future__ import annotations

import pytest

from pesaswitch.accounts import service as accounts
from pesaswitch.errors import ChannelNotFound
from tests.conftest import Gateway, Merchant, problem
from tests.security.bola_world import basic


# A dialect answers every URL under its mount in its own shape, whatever the URL holds.
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


# Integer ids beyond the database's INTEGER range name no row: 'not found' or 'invalid',
# never a driver overflow (a 500 on PostgreSQL, found by schemathesis).
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


# Date-time filters take ISO 8601 only: a bare number is refused, not read as Unix
# seconds (``created_after=2020`` used to mean 1970; found by schemathesis).
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


# A parameter given twice is refused, not read as its last value (``?q=a&q=b`` searched
# for "b" alone; found by schemathesis on GET /api/v2/bank_paybills).
async def test_a_repeated_query_parameter_is_refused(gateway: Gateway, merchant: Merchant) -> None:
    for path in ("/v1/payments", "/v1/events", "/v1/payouts"):
        once = await gateway.client.get(f"{path}?limit=5", headers=merchant.auth)
        assert once.status_code == 200, (path, once.text)
        twice = await gateway.client.get(f"{path}?limit=5&limit=6", headers=merchant.auth)
        assert twice.status_code == 422, (path, twice.text)
        assert problem(twice)["code"] == "validation_error"
        assert problem(twice)["errors"] == [
            {
                "field": "query.limit",
                "message": "Given more than once; this parameter takes one value",
            }
        ]
    search = await gateway.client.get("/v1/bank-paybills?q=equity&q=kcb", headers=merchant.auth)
    assert search.status_code == 422, search.text
    # A parameter the route does not take is ignored, repeated or not.
    ignored = await gateway.client.get("/v1/bank-paybills?x=1&x=2", headers=merchant.auth)
    assert ignored.status_code == 200, ignored.text
    dialect = await gateway.client.get(
        "/api/v2/bank_paybills?q=equity&q=kcb", headers=basic(merchant)
    )
    assert dialect.status_code == 422, dialect.text
    assert dialect.headers["content-type"].startswith("application/json")  # PayHero's shape
    assert dialect.json()["success"] is False
    found = await gateway.client.get("/api/v2/bank_paybills?q=equity", headers=basic(merchant))
    assert found.status_code == 200, found.text
    assert found.json()["data"], found.text


# A URL or a header has no null: an optional parameter is documented as not required,
# never as "string or null" (schemathesis sent ?q=null, the text, and called its 200 a
# null accepted).
async def test_no_parameter_is_documented_as_null(gateway: Gateway) -> None:
    optional = 0
    for prefix in ("", "/api/v2", "/api", "/remittance"):
        document = (await gateway.client.get(f"{prefix}/openapi.json")).json()
        for path, operations in document["paths"].items():
            for method, operation in operations.items():
                for parameter in operation.get("parameters", []):
                    assert "null" not in str(parameter["schema"]), (method, path, parameter)
                    optional += not parameter["required"]
    assert optional > 20  # the list filters, cursors and Idempotency-Keys among them


async def test_q_null_is_the_text_null(gateway: Gateway, merchant: Merchant) -> None:
    document = (await gateway.client.get("/openapi.json")).json()
    (q,) = document["paths"]["/v1/bank-paybills"]["get"]["parameters"]
    assert q["schema"] == {"type": "string", "maxLength": 100, "title": "Q"}
    assert q["required"] is False
    listed = await gateway.client.get("/v1/bank-paybills?q=null", headers=merchant.auth)
    assert (listed.status_code, listed.json()["data"]) == (200, [])
