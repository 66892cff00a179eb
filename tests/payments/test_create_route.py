"""payments.create_route: the common POST /v1/payments is answered without FastAPI's
request handling, and every other one is handed to FastAPI's route with its body intact."""

from __future__ import annotations

import json
from typing import Any

import pytest
from starlette.routing import Match

from pesaswitch.payments.create_route import CreatePaymentRoute
from tests.conftest import Gateway, Merchant

BODY = {"amount": 10, "phone": "0712000001", "reference": "INV-9"}
HANDED_BACK = 299


class Exchange:
    """One request sent straight to the route's app, with a router that records what it
    is handed and answers 299."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self.handed: list[bytes] = []

    async def post(
        self, headers: dict[str, str], body: bytes, query: bytes = b""
    ) -> tuple[int, dict[str, str], bytes]:
        async def router(scope: dict[str, Any], receive: Any, send: Any) -> None:
            message = await receive()
            self.handed.append(message["body"])
            await send({"type": "http.response.start", "status": HANDED_BACK, "headers": []})
            await send({"type": "http.response.body", "body": b""})

        scope = {
            "type": "http", "method": "POST", "path": "/v1/payments", "query_string": query,
            "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
            "app": self.gateway.app, "router": router, "client": ("127.0.0.1", 5000),
            "scheme": "http", "server": ("gateway.test", 80), "root_path": "",
            "http_version": "1.1",
        }  # fmt: skip
        chunks = [{"type": "http.request", "body": body, "more_body": False}]

        async def receive() -> dict[str, Any]:
            return chunks.pop() if chunks else {"type": "http.disconnect"}

        sent: list[dict[str, Any]] = []

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        await CreatePaymentRoute().app(scope, receive, send)
        start = sent[0]
        answer_headers = {k.decode(): v.decode() for k, v in start.get("headers", [])}
        return start["status"], answer_headers, b"".join(m.get("body", b"") for m in sent[1:])


def json_headers(merchant: Merchant, body: bytes, **extra: str) -> dict[str, str]:
    headers = {**merchant.auth, "content-type": "application/json",
               "content-length": str(len(body)), **extra}  # fmt: skip
    return {name.lower(): value for name, value in headers.items()}


async def cached_merchant(gateway: Gateway, merchant: Merchant) -> Merchant:
    # The first request with a key is FastAPI's, which verifies and caches the key.
    first = await gateway.client.post("/v1/payments", headers=merchant.auth, json=BODY)
    assert first.status_code == 201, first.text
    return merchant


async def test_the_common_request_is_answered_here(gateway: Gateway, merchant: Merchant) -> None:
    await cached_merchant(gateway, merchant)
    exchange = Exchange(gateway)
    body = json.dumps({**BODY, "amount": 11}).encode()
    status, headers, answer = await exchange.post(json_headers(merchant, body), body)
    assert status == 201, answer
    assert exchange.handed == []
    assert headers["content-type"] == "application/json"
    created = json.loads(answer)
    assert created["amount"] == 11
    assert created["status"] == "pending"
    stored = await gateway.client.get(f"/v1/payments/{created['id']}", headers=merchant.auth)
    assert stored.status_code == 200
    assert stored.json()["reference"] == "INV-9"


@pytest.mark.parametrize(
    "case",
    ["query string", "text body", "invalid amount", "not json", "nul", "public key",
     "no length"],
)  # fmt: skip
async def test_anything_else_is_handed_back_with_its_body(
    gateway: Gateway, merchant: Merchant, case: str
) -> None:
    await cached_merchant(gateway, merchant)
    exchange = Exchange(gateway)
    body = json.dumps({**BODY, "amount": 12}).encode()
    headers = json_headers(merchant, body)
    query = b""
    if case == "query string":
        query = b"x=1"
    elif case == "text body":
        headers["content-type"] = "text/plain"
    elif case == "invalid amount":
        body = json.dumps({**BODY, "amount": "twelve"}).encode()
    elif case == "not json":
        body = b'{"amount": 12,'
    elif case == "nul":
        body = json.dumps({**BODY, "description": "a\x00b"}).encode()
    elif case == "public key":
        headers["authorization"] = merchant.read_auth["Authorization"]
    elif case == "no length":
        del headers["content-length"]
    if case != "no length":
        headers["content-length"] = str(len(body))
    status, _, _ = await exchange.post(headers, body, query)
    assert status == HANDED_BACK
    # The body the router got is the request's, whether this route read it or not.
    assert exchange.handed == [body]


async def test_a_key_not_in_the_cache_is_handed_back_unverified(
    gateway: Gateway, merchant: Merchant
) -> None:
    exchange = Exchange(gateway)
    body = json.dumps(BODY).encode()
    status, _, _ = await exchange.post(json_headers(merchant, body), body)
    assert status == HANDED_BACK
    assert exchange.handed == [body]
    wrong = {**json_headers(merchant, body), "authorization": "Bearer sk_test_not_a_key"}
    status, _, _ = await exchange.post(wrong, body)
    assert status == HANDED_BACK


async def test_both_ways_answer_alike(gateway: Gateway, merchant: Merchant) -> None:
    await cached_merchant(gateway, merchant)
    key = {"Idempotency-Key": "same-shape-1"}
    direct = await gateway.client.post(
        "/v1/payments", headers={**merchant.auth, **key}, json={**BODY, "amount": 13}
    )
    # A query parameter the route does not take: FastAPI's route, which ignores it.
    through_fastapi = await gateway.client.post(
        "/v1/payments?unused=1", headers={**merchant.auth, "Idempotency-Key": "same-shape-2"},
        json={**BODY, "amount": 13},
    )  # fmt: skip
    assert direct.status_code == through_fastapi.status_code == 201
    assert direct.headers["content-type"] == through_fastapi.headers["content-type"]
    one, other = direct.json(), through_fastapi.json()
    assert one.keys() == other.keys()
    changing = {"id", "gateway_reference", "checkout_request_id", "merchant_request_id",
                "created_at", "updated_at"}  # fmt: skip
    assert {k: v for k, v in one.items() if k not in changing} == {
        k: v for k, v in other.items() if k not in changing
    }
    replay = await gateway.client.post(
        "/v1/payments", headers={**merchant.auth, **key}, json={**BODY, "amount": 13}
    )
    assert replay.status_code == 201
    assert replay.json() == one


def test_it_matches_only_the_post_and_never_a_request_it_handed_back() -> None:
    route = CreatePaymentRoute()
    post = {"type": "http", "method": "POST", "path": "/v1/payments"}
    assert route.matches(post)[0] is Match.FULL
    assert route.matches({**post, "method": "GET"})[0] is Match.NONE
    assert route.matches({**post, "path": "/v1/payments/pay_1"})[0] is Match.NONE
    assert route.matches({**post, "pesaswitch.create_route.declined": True})[0] is Match.NONE
