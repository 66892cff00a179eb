"""payments.read_route: the common GET /v1/payments/{id} is answered without FastAPI's
request handling, with FastAPI's answer, and every other one is handed to FastAPI's route."""

from __future__ import annotations

import json
from typing import Any

import pytest
from starlette.routing import Match

from pesaswitch.payments.read_route import ReadPaymentRoute
from tests.conftest import Gateway, Merchant, create_merchant
from tests.refunds.helpers import fund, paid, shop

HANDED_BACK = 299
FAILS_1032 = "254711001032"  # the simulator: result 1032, a cancelled prompt (scenarios.py)


async def read_here(
    gateway: Gateway, headers: dict[str, str], payment_id: str, query: bytes = b""
) -> tuple[int, Any]:
    """GET sent straight to the route's app, with a router that answers 299: the status
    and JSON answer, or (299, None) when it was handed back."""

    async def router(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": HANDED_BACK, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    scope = {
        "type": "http", "method": "GET", "path": f"/v1/payments/{payment_id}",
        "query_string": query, "path_params": {"payment_id": payment_id},
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "app": gateway.app, "router": router, "client": ("127.0.0.1", 5000),
        "scheme": "http", "server": ("gateway.test", 80), "root_path": "",
        "http_version": "1.1",
    }  # fmt: skip

    async def receive() -> dict[str, Any]:
        return {"type": "http.disconnect"}

    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await ReadPaymentRoute().app(scope, receive, send)
    status = sent[0]["status"]
    body = b"".join(m.get("body", b"") for m in sent[1:])
    return status, (json.loads(body) if status != HANDED_BACK else None)


async def fastapi_answer(gateway: Gateway, merchant: Merchant, payment_id: str) -> Any:
    """The general path's answer: a query string is always handed back to it."""
    response = await gateway.client.get(
        f"/v1/payments/{payment_id}?via=fastapi", headers=merchant.auth
    )
    assert response.status_code == 200, response.text
    return response.json()


async def created(gateway: Gateway, merchant: Merchant, phone: str, amount: int = 10) -> str:
    answer = await gateway.client.post(
        "/v1/payments", headers=merchant.auth, json={"amount": amount, "phone": phone}
    )
    assert answer.status_code == 201, answer.text
    payment_id: str = answer.json()["id"]
    return payment_id


@pytest.mark.postgres_only  # SQLite reads through FastAPI's route (below)
async def test_reads_are_answered_here_as_fastapi_answers_them(gateway_factory: Any) -> None:
    gateway, merchant = await shop(gateway_factory)
    completed = (await paid(gateway, merchant, 1000))["id"]
    failed = await created(gateway, merchant, FAILS_1032)
    assert (await gateway.wait_for_status(merchant, failed))["status"] == "cancelled"
    pending = await created(gateway, merchant, "254711990002")  # no callback: stays pending

    for payment_id in (completed, failed, pending):
        for key in (merchant.auth, merchant.read_auth):
            await gateway.client.get(f"/v1/payments/{payment_id}", headers=key)  # cached
            status, answer = await read_here(gateway, key, payment_id)
            assert status == 200, answer
            assert answer == await fastapi_answer(gateway, merchant, payment_id)
    _, shown = await read_here(gateway, merchant.auth, completed)
    assert (shown["status"], shown["amount_refundable"], shown["refunds"]) == (
        "completed", 1000, [],
    )  # fmt: skip


@pytest.mark.postgres_only
async def test_everything_else_is_handed_to_fastapi(gateway_factory: Any) -> None:
    gateway, merchant = await shop(gateway_factory)
    pay = await paid(gateway, merchant, 1000)
    await gateway.client.get(f"/v1/payments/{pay['id']}", headers=merchant.auth)
    assert (await read_here(gateway, merchant.auth, pay["id"]))[0] == 200

    stranger = await create_merchant(gateway.settings, name="Another shop")
    await gateway.client.get("/v1/balance", headers=stranger.auth)  # its key cached
    never_used = await create_merchant(gateway.settings, name="A third shop")
    refunded = (await paid(gateway, merchant, 500))["id"]
    await fund(gateway, merchant, 1000)
    answer = await gateway.client.post(
        f"/v1/payments/{refunded}/refund", headers=merchant.auth, json={"amount": 100}
    )
    assert answer.status_code == 201, answer.text

    handed = [
        (merchant.auth, pay["id"], b"expand=1"),  # a query string
        (never_used.auth, pay["id"], b""),  # a key this process has not verified
        ({"Authorization": "Basic abc"}, pay["id"], b""),  # no bearer key
        (stranger.auth, pay["id"], b""),  # another account's payment: FastAPI's 404
        (merchant.auth, "pay_missing", b""),  # none such
        (merchant.auth, "pay_\x00", b""),  # a NUL: FastAPI's 422
        (merchant.auth, refunded, b""),  # refunds: FastAPI's route reads them
    ]
    for headers, payment_id, query in handed:
        assert await read_here(gateway, headers, payment_id, query) == (HANDED_BACK, None)
    # And the router's second pass skips the route.
    route = ReadPaymentRoute()
    scope = {"type": "http", "method": "GET", "path": f"/v1/payments/{pay['id']}"}
    assert route.matches(scope)[0] is Match.FULL
    assert route.matches({**scope, "pesaswitch.read_route.declined": True})[0] is Match.NONE
    assert route.matches({**scope, "method": "HEAD"})[0] is Match.NONE


async def test_through_the_app_the_answers_are_unchanged(gateway_factory: Any) -> None:
    """On both databases, the app's own answers: 200 twice (FastAPI's route, then this
    one's where it takes it), the 404 and the read-only key's refusal to write."""
    gateway, merchant = await shop(gateway_factory)
    pay = await paid(gateway, merchant, 700)
    first = await gateway.client.get(f"/v1/payments/{pay['id']}", headers=merchant.auth)
    second = await gateway.client.get(f"/v1/payments/{pay['id']}", headers=merchant.auth)
    assert first.status_code == second.status_code == 200
    assert first.json() == second.json()
    assert first.headers["content-type"] == second.headers["content-type"] == "application/json"
    missing = await gateway.client.get("/v1/payments/pay_missing", headers=merchant.auth)
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("application/problem+json")


async def test_the_database_decides_who_answers(gateway: Gateway, merchant: Merchant) -> None:
    payment_id = await created(gateway, merchant, "254711990002")
    await gateway.client.get(f"/v1/payments/{payment_id}", headers=merchant.auth)  # cached
    status, _ = await read_here(gateway, merchant.auth, payment_id)
    postgres = gateway.app.state.runtime.engine.dialect.name == "postgresql"
    assert status == (200 if postgres else HANDED_BACK)
