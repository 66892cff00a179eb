"""Prompts that end the way a test needs, by the simulator's test numbers."""

from __future__ import annotations

import itertools
from typing import Any

import httpx
from sqlalchemy import func, select

from pesaswitch.kit.clock import utcnow
from pesaswitch.payments.models import Payment
from pesaswitch.protection import admin
from pesaswitch.protection.stk import StkPolicy
from tests.conftest import Gateway, Merchant, problem

FAILED = "254711000001"  # ResultCode 1: insufficient balance
CANCELLED = "254711001032"
EXPIRED = "254711001037"
LOCKED = "254711990001"  # Daraja refuses the push: "Unable to lock subscriber"
# More failing numbers, for spreading failures without blocking any one of them.
FAILING = (FAILED, CANCELLED, EXPIRED, "254711002001", "254711000017", "254711001019")
FINAL_FAILURES = {"failed", "cancelled", "expired"}

# Daraja fails the same amount to the same number within 2 minutes (ResultCode 17);
# a fresh amount per prompt keeps the outcome to the number's own.
_amounts = itertools.count(10)


def next_amount() -> int:
    return next(_amounts)


async def prompt(
    gateway: Gateway,
    merchant: Merchant,
    phone: str,
    *,
    amount: int | None = None,
    key: str | None = None,
) -> httpx.Response:
    headers = dict(merchant.auth)
    if key is not None:
        headers["Idempotency-Key"] = key
    body = {"amount": amount if amount is not None else next_amount(), "phone": phone}
    return await gateway.client.post("/v1/payments", headers=headers, json=body)


async def settle(
    gateway: Gateway, merchant: Merchant, phone: str, *, amount: int | None = None
) -> dict[str, Any]:
    """One prompt, answered; returns the payment in its final status."""
    response = await prompt(gateway, merchant, phone, amount=amount)
    assert response.status_code == 201, response.text
    final = await gateway.wait_for_status(merchant, response.json()["id"])
    assert final["status"] != "pending", final
    return final


async def fail(
    gateway: Gateway, merchant: Merchant, phone: str, times: int, *, amount: int | None = None
) -> None:
    for _ in range(times):
        final = await settle(gateway, merchant, phone, amount=amount)
        assert final["status"] in FINAL_FAILURES, final


async def count_payments(gateway: Gateway, merchant: Merchant, phone: str | None = None) -> int:
    query = (
        select(func.count()).select_from(Payment).where(Payment.account_id == merchant.account_id)
    )
    if phone is not None:
        query = query.where(Payment.phone == phone)
    async with gateway.app.state.runtime.sessionmaker() as session:
        return int(await session.scalar(query) or 0)


def refusal(response: httpx.Response, code: str) -> int:
    """Assert a 429 with ``code``; returns its Retry-After in seconds."""
    assert response.status_code == 429, response.text
    body = problem(response)
    assert body["code"] == code
    retry_after = int(response.headers["retry-after"])
    assert body["retry_after"] == retry_after
    assert body["blocked_until"].endswith("Z")
    return retry_after


async def status(gateway: Gateway, merchant: Merchant, phone: str | None = None) -> dict[str, Any]:
    async with gateway.app.state.runtime.sessionmaker() as session:
        return await admin.stk_status(
            session,
            policy=StkPolicy.from_settings(gateway.settings),
            account_id=merchant.account_id,
            phone=phone,
            now=utcnow(),
        )
