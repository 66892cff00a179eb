"""Daraja also confirms STK payments through C2B when the shortcode has registered URLs.
That echo is the same money: it never becomes a second payment or a second credit."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.c2b.helpers import c2b_payments, fresh_shortcode, give_gateway_paybill, notifications
from tests.conftest import Gateway, Merchant, create_merchant


async def _wallet_gateway(gateway_factory: Any, **overrides: Any) -> tuple[Gateway, Merchant]:
    gateway: Gateway = await gateway_factory(
        daraja_shortcode=fresh_shortcode(), stk_receipt_lookup=False, **overrides
    )
    merchant = await create_merchant(gateway.settings)
    await give_gateway_paybill(gateway, merchant)
    return gateway, merchant


def _echo(gateway: Gateway, bill_ref: str, amount: int, trans_id: str) -> dict[str, Any]:
    shortcode = gateway.settings.daraja_shortcode
    return {
        "TransactionType": "Pay Bill", "TransID": trans_id, "TransTime": "20261203101010",
        "TransAmount": f"{amount}.00", "BusinessShortCode": shortcode,
        "BillRefNumber": bill_ref, "InvoiceNumber": "", "OrgAccountBalance": "",
        "ThirdPartyTransID": "", "MSISDN": "2547 ***** 002", "FirstName": "A",
        "MiddleName": "", "LastName": "",
    }  # fmt: skip


async def _balance(gateway: Gateway, merchant: Merchant) -> int:
    body = (await gateway.client.get("/v1/balance", headers=merchant.auth)).json()
    return int(next(a["amount"] for a in body["available"] if a["currency"] == "KES"))


async def test_echo_of_a_pending_stk_payment(gateway_factory: Any) -> None:
    # No reconciliation within the test: the STK payment stays pending.
    gateway, merchant = await _wallet_gateway(gateway_factory, reconcile_after=3600)
    created = await gateway.client.post(
        "/v1/payments", json={"amount": 45, "phone": "254711990002"}, headers=merchant.auth
    )
    payment = created.json()
    assert payment["status"] == "pending"
    url = gateway.app.state.runtime.simulator.c2b.registrations[
        gateway.settings.daraja_shortcode
    ].confirmation_url
    response = await gateway.client.post(
        url, json=_echo(gateway, payment["gateway_reference"], 45, "UECHO00001")
    )
    assert response.status_code == 200
    assert await c2b_payments(gateway, merchant) == []
    outcomes = [n["outcome"] for n in await notifications(gateway, merchant)]
    assert outcomes == ["matched_stk"]
    assert await _balance(gateway, merchant) == 0


async def test_echo_gives_a_query_settled_payment_its_receipt(gateway_factory: Any) -> None:
    gateway, merchant = await _wallet_gateway(gateway_factory)
    created = await gateway.client.post(
        "/v1/payments", json={"amount": 55, "phone": "254711990002"}, headers=merchant.auth
    )
    payment = await gateway.wait_for_status(merchant, created.json()["id"])
    assert (payment["status"], payment["mpesa_receipt"]) == ("completed", None)
    credited = await _balance(gateway, merchant)
    assert credited > 0
    url = gateway.app.state.runtime.simulator.c2b.registrations[
        gateway.settings.daraja_shortcode
    ].confirmation_url
    echo = _echo(gateway, payment["gateway_reference"], 55, "UECHO00002")
    for _ in range(2):
        response = await gateway.client.post(url, json=echo)
        assert response.status_code == 200
    after = await gateway.client.get(f"/v1/payments/{payment['id']}", headers=merchant.auth)
    assert after.json()["mpesa_receipt"] == "UECHO00002"
    assert await c2b_payments(gateway, merchant) == []
    assert await _balance(gateway, merchant) == credited
    await asyncio.sleep(0)
    events = (await gateway.client.get("/v1/events", headers=merchant.auth)).json()["data"]
    assert [e["type"] for e in events].count("payment.updated") == 1
