"""A NUL character (U+0000) anywhere a client can put text: refused with a 422 in the
surface's own shape on both databases, and nothing created. PostgreSQL's text cannot
hold U+0000 (SQLite can), so each of these was a 500 on PostgreSQL only."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization

from pesaswitch.accounts.service import add_signing_key
from pesaswitch.db import transaction
from tests.conftest import Gateway, Merchant, problem
from tests.payouts.helpers import funded
from tests.payouts.test_pokea import PRIVATE, remit, sign
from tests.payouts.test_pokea import body as pokea_body
from tests.security.bola_world import basic, x_api_key

NUL = "a\x00b"  # httpx's json= writes it as the escape "\u0000"
Headers = Callable[[Merchant], dict[str, str]]


def native(merchant: Merchant) -> dict[str, str]:
    return merchant.auth


def payment(**fields: Any) -> dict[str, Any]:
    return {"amount": 10, "phone": "0708374149", **fields}


def payhero(merchant: Merchant, **fields: Any) -> dict[str, Any]:
    return {"amount": 10, "phone_number": "0798766765", "channel_id": merchant.channel_id,
            "provider": "m-pesa", "external_reference": "INV-009", **fields}  # fmt: skip


def paynexus(**fields: Any) -> dict[str, Any]:
    return {"amount": 30, "phone": "0746990866", "description": "Order #12345", **fields}


def payout(**fields: Any) -> dict[str, Any]:
    return {"amount": 1000, "phone": "0712345678", "name": "Jane Doe", "reference": "PO-1",
            "description": "Refund", **fields}  # fmt: skip


# (surface, path, body, headers): one per string field kind, keys and nested values too.
BODIES: list[tuple[str, str, Callable[[Merchant], dict[str, Any]], Headers]] = [
    ("v1", "/v1/payments", lambda m: payment(description=NUL), native),
    ("v1", "/v1/payments", lambda m: payment(reference=NUL), native),
    ("v1", "/v1/payments", lambda m: payment(metadata={"k": NUL}), native),
    ("v1", "/v1/payments", lambda m: payment(metadata={NUL: "v"}), native),
    ("v1", "/v1/webhook-endpoints", lambda m: {"url": f"https://example.com/{NUL}"}, native),
    ("v1", "/v1/webhook-endpoints",
     lambda m: {"url": "https://example.com/h", "description": NUL}, native),
    ("v1", "/v1/payouts", lambda m: payout(description=NUL), native),
    ("v1", "/v1/payouts", lambda m: payout(name=NUL), native),
    ("payhero", "/api/v2/payments", lambda m: payhero(m, external_reference=NUL), basic),
    ("payhero", "/api/v2/payments", lambda m: payhero(m, customer_name=NUL), basic),
    ("paynexus", "/api/mpesa/payment/initiate", lambda m: paynexus(description=NUL), x_api_key),
]  # fmt: skip


def refused(surface: str, response: Any) -> None:
    """A 422 with the stable code validation_error, in the surface's own shape."""
    assert response.status_code == 422, response.text
    if surface == "v1":
        body = problem(response)  # asserts application/problem+json
        assert body["code"] == "validation_error"
        assert "NUL" in body["errors"][0]["message"], body
        return
    assert response.headers["content-type"] == "application/json", response.text
    body = response.json()
    assert body["success"] is False
    key = {"payhero": "error_code", "paynexus": "error", "pokea": "error"}[surface]
    assert body[key] == "validation_error", body


async def nothing_created(gateway: Gateway, merchant: Merchant) -> None:
    for path in ("/v1/payments", "/v1/payouts", "/v1/webhook-endpoints"):
        listed = await gateway.client.get(path, headers=merchant.auth)
        assert listed.status_code == 200, listed.text
        rows = listed.json()
        assert (rows if isinstance(rows, list) else rows["data"]) == [], (path, listed.text)


@pytest.mark.parametrize(("surface", "path", "make", "headers"), BODIES)
async def test_a_nul_in_a_json_body_is_refused(
    gateway_factory: Any, surface: str, path: str,
    make: Callable[[Merchant], dict[str, Any]], headers: Headers,
) -> None:  # fmt: skip
    gateway, merchant = await funded(gateway_factory, 100_000)
    response = await gateway.client.post(path, headers=headers(merchant), json=make(merchant))
    refused(surface, response)
    await nothing_created(gateway, merchant)


async def test_a_nul_in_a_signed_pokea_remittance_is_refused(gateway_factory: Any) -> None:
    # Pokea's set-up without its USD rate: fx rates are global, and KES needs none.
    gateway, merchant = await funded(gateway_factory, 100_000)
    pem = PRIVATE.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    async with transaction(gateway.app.state.runtime.sessionmaker) as session:
        await add_signing_key(session, account_id=merchant.account_id, public_key_pem=pem.decode())
    for field in ("description", "reference"):
        data = pokea_body("https://example.com/result")
        data["transfer"][field] = NUL
        refused("pokea", await remit(gateway, merchant, data, sign(data)))
    await nothing_created(gateway, merchant)


# An escaped backslash before "u0000" is the six characters \u0000, not a NUL: taken.
@pytest.mark.parametrize(
    ("path", "make", "headers"),
    [("/v1/payments", lambda m: payment(description="a\\u0000b"), native),
     ("/api/v2/payments", lambda m: payhero(m, customer_name="\\u0000"), basic),
     ("/api/mpesa/payment/initiate", lambda m: paynexus(description="\\\\\\u0000"), x_api_key)],
)  # fmt: skip
async def test_an_escaped_backslash_is_no_nul(
    gateway: Gateway, merchant: Merchant, path: str,
    make: Callable[[Merchant], dict[str, Any]], headers: Headers,
) -> None:  # fmt: skip
    response = await gateway.client.post(path, headers=headers(merchant), json=make(merchant))
    assert response.status_code in (200, 201), response.text
    listed = (await gateway.client.get("/v1/payments", headers=merchant.auth)).json()["data"]
    assert len(listed) == 1


# JSON in UTF-16 (which json.loads reads) has no "\u0000" bytes to find: still refused.
async def test_a_nul_in_utf16_json_is_refused(gateway: Gateway, merchant: Merchant) -> None:
    content = '{"amount": 10, "phone": "0708374149", "description": "a\\u0000b"}'
    response = await gateway.client.post(
        "/v1/payments", content=content.encode("utf-16"),
        headers={**merchant.auth, "Content-Type": "application/json"},
    )  # fmt: skip
    assert response.status_code == 422, response.text
    assert problem(response)["code"] == "validation_error"
    await nothing_created(gateway, merchant)


# %00 in a query parameter or a path parameter, on each surface.
URLS: list[tuple[str, str, Headers]] = [
    ("v1", "/v1/payments?reference=%00", native),
    ("v1", "/v1/payments?reference=a%00b", native),
    ("v1", "/v1/payments/pay_%00", native),
    ("v1", "/v1/payouts/po_a%00b", native),
    ("v1", "/v1/webhook-endpoints/we_%00/disable", native),
    ("payhero", "/api/v2/transaction-status?reference=a%00b", basic),
    ("payhero", "/api/v2/bank_paybills?q=%00", basic),
    ("paynexus", "/api/payments/a%00b", x_api_key),
]


# A parameter the route does not take is ignored, NUL or not (as a repeated one is).
async def test_a_nul_in_an_unknown_query_parameter_is_ignored(
    gateway: Gateway, merchant: Merchant
) -> None:
    response = await gateway.client.get("/v1/payments?nosuch=%00", headers=merchant.auth)
    assert response.status_code == 200, response.text
    assert response.json()["data"] == []


@pytest.mark.parametrize(("surface", "url", "headers"), URLS)
async def test_a_nul_in_the_url_is_refused(
    gateway: Gateway, merchant: Merchant, surface: str, url: str, headers: Headers
) -> None:
    method = "POST" if url.endswith("/disable") else "GET"
    response = await gateway.client.request(method, url, headers=headers(merchant))
    refused(surface, response)


# Daraja's STK callback is a plain Starlette route (daraja/endpoints.py), outside FastAPI's
# dependencies: it refuses a NUL in its token itself, in the same 422, and answers the
# app's problem+json for a wrong method or an unknown token.
async def test_the_stk_callback_route_answers_as_the_app_does(gateway: Gateway) -> None:
    body = {"Body": {"stkCallback": {"MerchantRequestID": "m", "CheckoutRequestID": "c",
                                     "ResultCode": 1032, "ResultDesc": "Cancelled"}}}  # fmt: skip
    with_nul = await gateway.client.post("/daraja/stk/a%00b", json=body)
    assert with_nul.status_code == 422, with_nul.text
    assert problem(with_nul)["code"] == "validation_error"
    unknown = await gateway.client.post("/daraja/stk/no-such-token", json=body)
    assert unknown.status_code == 404, unknown.text
    assert unknown.headers["content-type"].startswith("application/problem+json")
    wrong_method = await gateway.client.get("/daraja/stk/no-such-token")
    assert wrong_method.status_code == 405, wrong_method.text
    assert wrong_method.headers["content-type"].startswith("application/problem+json")
