"""Retries against a small real HTTP server that answers 429/503/409 (or drops the
connection) before it succeeds: what is retried, how long the client waits, and that every
attempt carries the same Idempotency-Key."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from pesaswitch_sdk import (
    NO_RETRIES,
    APIConnectionError,
    AsyncPesaswitch,
    ConflictError,
    IdempotencyError,
    MpesaUnavailableError,
    Pesaswitch,
    RateLimitError,
    RetryPolicy,
    ServerError,
)

from local_servers import DROP, LocalServer, Reply, problem, scripted_server

QUICK = RetryPolicy(max_retries=3, initial_delay=0.05, max_delay=0.1)
KEY = "sk_test_scripted"


def payment_body(**overrides: Any) -> dict[str, Any]:
    now = "2026-12-03T06:00:00Z"
    return {
        "object": "payment", "id": "pay_scripted", "status": "pending", "amount": 10,
        "currency": "KES", "phone": "254708374149", "channel_id": 1, "reference": "order-1",
        "gateway_reference": "ABCDE12345", "description": None, "customer_name": None,
        "callback_url": None, "metadata": None, "checkout_request_id": "ws_CO_1",
        "merchant_request_id": "1-1", "mpesa_receipt": None, "result_code": None,
        "result_desc": None, "created_at": now, "updated_at": now, "finalized_at": None,
        **overrides,
    }  # fmt: skip


CREATED = Reply(201, payment_body())


@contextmanager
def serving(
    *replies: Reply, retries: RetryPolicy = QUICK
) -> Iterator[tuple[LocalServer, Pesaswitch]]:
    with scripted_server(*replies) as server, Pesaswitch(KEY, server.url, retries=retries) as c:
        yield server, c


def test_429_503_409_then_success_with_one_key_throughout() -> None:
    with scripted_server(
        problem(429, "rate_limited", retry_after="1"),
        problem(503, "internal_error"),
        problem(409, "idempotency_key_in_use", retry_after="0"),
        CREATED,
    ) as server:
        started = time.monotonic()
        with Pesaswitch(KEY, server.url, retries=QUICK) as client:
            payment = client.payments.create(amount=10, phone="254708374149")
        elapsed = time.monotonic() - started

    assert payment.id == "pay_scripted"
    keys = server.header_values("idempotency-key")
    assert len(keys) == 4
    assert keys[0] is not None
    assert str(uuid.UUID(keys[0])) == keys[0]  # generated: a UUID
    assert keys == [keys[0]] * 4
    # Retry-After: 1 was honoured, though the policy's own waits are 50-100 ms.
    assert 1.0 <= elapsed < 3.0
    bodies = {r.body for r in server.requests}
    assert len(bodies) == 1  # the very same request each time
    assert json.loads(bodies.pop()) == {"amount": 10, "phone": "254708374149"}


def test_the_callers_key_is_the_one_sent() -> None:
    with serving(problem(502, "internal_error"), CREATED) as (server, client):
        client.payments.create(amount=10, phone="254708374149", idempotency_key="order-1-try")
    assert server.header_values("idempotency-key") == ["order-1-try", "order-1-try"]


def test_a_dropped_connection_is_retried_for_a_payment() -> None:
    with serving(DROP, CREATED) as (server, client):
        assert client.payments.create(amount=10, phone="254708374149").id == "pay_scripted"
    assert len(server.requests) == 2
    assert len(set(server.header_values("idempotency-key"))) == 1


def test_a_dropped_connection_is_not_retried_where_the_gateway_keeps_no_key() -> None:
    # A webhook endpoint POST may have been registered before the connection broke.
    with serving(DROP, Reply(201, {})) as (server, client), pytest.raises(APIConnectionError):
        client.webhook_endpoints.create(url="https://example.com/hooks")
    assert len(server.requests) == 1


def test_a_stored_5xx_that_carries_the_payment_is_not_retried() -> None:
    # The gateway stored this answer under the key: a retry would only replay it.
    timed_out = problem(502, "daraja_timeout", payment=payment_body())
    with (
        serving(timed_out, CREATED) as (server, client),
        pytest.raises(MpesaUnavailableError) as raised,
    ):
        client.payments.create(amount=10, phone="254708374149")
    assert len(server.requests) == 1
    assert raised.value.payment is not None
    assert raised.value.payment.status == "pending"


def test_a_long_retry_after_is_raised_not_waited_for() -> None:
    blocked = problem(429, "stk_phone_blocked", retry_after="86400")
    with serving(blocked, CREATED) as (server, client):
        started = time.monotonic()
        with pytest.raises(RateLimitError) as raised:
            client.payments.create(amount=10, phone="254708374149")
    assert time.monotonic() - started < 1.0
    assert raised.value.code == "stk_phone_blocked"
    assert raised.value.retry_after == 86400
    assert len(server.requests) == 1


def test_running_out_of_retries_while_the_first_attempt_runs() -> None:
    in_use = problem(409, "idempotency_key_in_use", retry_after="0")
    with serving(*[in_use] * 4, CREATED) as (server, client):
        with pytest.raises(IdempotencyError) as raised:
            client.payments.create(amount=10, phone="254708374149")
        key = raised.value.idempotency_key
        assert key is not None
        assert server.header_values("idempotency-key") == [key] * 4
        # Later, the same key gets the first attempt's answer.
        again = client.payments.create(amount=10, phone="254708374149", idempotency_key=key)
    assert again.id == "pay_scripted"


def test_other_conflicts_are_not_retried() -> None:
    with (
        serving(problem(409, "duplicate_reference"), CREATED) as (server, client),
        pytest.raises(ConflictError),
    ):
        client.payouts.create(amount=10, phone="254708374149", reference="r-1")
    assert len(server.requests) == 1


def test_gives_up_after_max_retries() -> None:
    failing = problem(500, "internal_error")
    with serving(*[failing] * 10) as (server, client), pytest.raises(ServerError) as raised:
        client.payments.get("pay_x")
    assert raised.value.status == 500
    assert len(server.requests) == 1 + QUICK.max_retries


def test_no_retries_means_one_attempt() -> None:
    with (
        serving(problem(503, "internal_error"), CREATED, retries=NO_RETRIES) as (server, client),
        pytest.raises(ServerError),
    ):
        client.payments.create(amount=10, phone="254708374149")
    assert len(server.requests) == 1


def test_an_html_error_from_a_proxy_is_still_an_api_error() -> None:
    html = Reply(502, None, {"content-type": "text/html"})
    with serving(html, html, html, html) as (server, client), pytest.raises(ServerError) as e:
        client.balance.get()
    assert e.value.code == "http_502"
    assert len(server.requests) == 4


def test_nothing_listening_is_a_connection_error() -> None:
    with scripted_server() as server:
        url = server.url
    with Pesaswitch(KEY, url, retries=QUICK) as client, pytest.raises(APIConnectionError):
        client.payments.get("pay_x")


async def test_the_async_client_retries_the_same_way() -> None:
    with scripted_server(
        problem(429, "rate_limited", retry_after="0"), DROP, problem(503, "internal_error"),
        CREATED,
    ) as server:  # fmt: skip
        async with AsyncPesaswitch(KEY, server.url, retries=QUICK) as client:
            payment = await client.payments.create(amount=10, phone="254708374149")
    assert payment.id == "pay_scripted"
    keys = server.header_values("idempotency-key")
    assert len(keys) == 4
    assert len(set(keys)) == 1
    assert server.requests[0].headers["authorization"] == f"Bearer {KEY}"
