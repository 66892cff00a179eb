"""Daraja's C2B and STK-receipt callbacks take no account key: the unguessable token in
the URL is the credential (the BOLA battery's EXEMPT entries for them point here). A
wrong token — made up, another kind's, or the right one with more after it — is refused
and changes nothing; the same bodies to the right token do change things (the control),
so the refusals are not of harmless bodies."""

from __future__ import annotations

from typing import Any

import httpx

from pesaswitch.kit.ids import new_token
from tests.c2b.helpers import (
    c2b_payments,
    notifications,
    pay,
    payment_token,
    set_up_channel,
    status_result,
)
from tests.conftest import Gateway, Merchant, create_merchant

LOST = "254711990002"  # paid, but no callback or confirmation ever arrives
PAYER = "2547 ***** 002 - A B"  # a Transaction Status Result's DebitPartyName


def c2b_notice(shortcode: str, trans_id: str, amount: int) -> dict[str, Any]:
    return {
        "TransactionType": "Pay Bill", "TransID": trans_id, "TransTime": "20261203101010",
        "TransAmount": f"{amount}.00", "BusinessShortCode": shortcode, "BillRefNumber": "INV-1",
        "InvoiceNumber": "", "OrgAccountBalance": "", "ThirdPartyTransID": "",
        "MSISDN": "2547 ***** 002", "FirstName": "A", "MiddleName": "", "LastName": "",
    }  # fmt: skip


async def _state(gateway: Gateway, merchant: Merchant) -> Any:
    payments = await gateway.client.get("/v1/payments", headers=merchant.auth)
    return payments.json()["data"], await notifications(gateway, merchant)


async def _refused(client: httpx.AsyncClient, url: str, body: dict[str, Any]) -> None:
    response = await client.post(url, json=body)
    assert response.status_code == 404, (url, response.text)


async def test_c2b_callbacks_refuse_a_wrong_token(gateway: Gateway, merchant: Merchant) -> None:
    channel = await set_up_channel(gateway, merchant)
    shortcode = channel["shortcode"]
    registration = gateway.app.state.runtime.simulator.c2b.registrations[shortcode]
    base = registration.confirmation_url.removesuffix("/confirmation")
    token = base.rsplit("/", 1)[1]
    lost = [await pay(gateway, shortcode, amount=amount, msisdn=LOST) for amount in (60, 70)]
    stk = await gateway.client.post(
        "/v1/payments", json={"amount": 10, "phone": "0708374149"}, headers=merchant.auth
    )
    assert stk.status_code == 201, stk.text
    await gateway.wait_for_status(merchant, stk.json()["id"])
    wrong_tokens = [new_token(24), await payment_token(gateway, stk.json()["id"]), f"{token}x"]
    bodies = {
        "validation": c2b_notice(shortcode, lost[0]["trans_id"], 60),
        "confirmation": c2b_notice(shortcode, lost[0]["trans_id"], 60),
        "status": status_result(
            lost[1]["trans_id"], 70, DebitPartyName=PAYER, CreditPartyName=f"{shortcode} - Shop"
        ),
        "status-timeout": {"Result": {"ResultCode": 1, "ResultDesc": "timeout"}},
    }
    before = await _state(gateway, merchant)
    prefix = base.removesuffix(token)
    for wrong in wrong_tokens:
        for kind, body in bodies.items():
            await _refused(gateway.client, f"{prefix}{wrong}/{kind}", body)
    assert await _state(gateway, merchant) == before

    # The control: the right token, the same bodies.
    for kind, body in bodies.items():
        response = await gateway.client.post(f"{base}/{kind}", json=body)
        assert response.status_code == 200, (kind, response.text)
    receipts = {p["mpesa_receipt"] for p in await c2b_payments(gateway, merchant)}
    assert receipts == {lost[0]["trans_id"], lost[1]["trans_id"]}
    outcomes = [(n["kind"], n["outcome"]) for n in await notifications(gateway, merchant)]
    assert outcomes[:4] == [("status", "timeout"), ("status", "applied"),
                            ("confirmation", "applied"), ("validation", "accepted")]  # fmt: skip


async def test_receipt_results_refuse_a_wrong_token(gateway_factory: Any) -> None:
    gateway: Gateway = await gateway_factory(stk_receipt_lookup=False)
    merchant = await create_merchant(gateway.settings)
    other = await create_merchant(gateway.settings, "Other")
    channel = await set_up_channel(gateway, other)
    registration = gateway.app.state.runtime.simulator.c2b.registrations[channel["shortcode"]]
    c2b_token = registration.confirmation_url.rsplit("/", 2)[1]
    created = await gateway.client.post(
        "/v1/payments", json={"amount": 30, "phone": LOST}, headers=merchant.auth
    )
    assert created.status_code == 201, created.text
    payment_id = created.json()["id"]
    settled = await gateway.wait_for_status(merchant, payment_id)
    assert (settled["status"], settled["mpesa_receipt"]) == ("completed", None), settled
    token = await payment_token(gateway, payment_id)
    result = status_result("UAB1C2D3E4", 30, DebitPartyName=PAYER, CreditPartyName="174379 - Shop")
    before = await _state(gateway, merchant)
    for wrong in (new_token(24), c2b_token, f"{token}x"):
        await _refused(gateway.client, f"/daraja/receipts/{wrong}", result)
        await _refused(gateway.client, f"/daraja/receipts/{wrong}/timeout", {"Result": {}})
    assert await _state(gateway, merchant) == before

    # The control: the right token records the receipt.
    response = await gateway.client.post(f"/daraja/receipts/{token}/timeout", json={})
    assert response.status_code == 200, response.text
    response = await gateway.client.post(f"/daraja/receipts/{token}", json=result)
    assert response.status_code == 200, response.text
    paid = (await gateway.client.get(f"/v1/payments/{payment_id}", headers=merchant.auth)).json()
    assert paid["mpesa_receipt"] == "UAB1C2D3E4"
