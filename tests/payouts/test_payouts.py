"""Native payouts in-process: reserve, B2C through the simulator, settle or release."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import delete, select

from pesaswitch.ledger.fees import Tariff
from pesaswitch.payouts.models import FxRate, PayoutCallback
from tests.conftest import problem
from tests.payouts.helpers import balance, funded, invariants, wait_payout

FEE = Tariff().payout_fee


def payout(**fields: Any) -> dict[str, Any]:
    return {"amount": 1000, "phone": "0712345678", "name": "Jane Doe", "reference": "PO-1",
            "description": "Refund", **fields}  # fmt: skip


async def test_payout_completes_and_settles(gateway_factory: Any) -> None:
    gateway, merchant = await funded(gateway_factory, 10_000)
    created = await gateway.client.post("/v1/payouts", headers=merchant.auth, json=payout())
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["id"].startswith("po_")
    assert body["status"] in ("processing", "completed")
    assert body["fee"] == FEE(1000)
    final = await wait_payout(gateway, merchant, body["id"])
    assert final["status"] == "completed"
    assert len(final["transaction_id"]) == 10
    assert await balance(gateway, merchant) == {"available": 10_000 - 1000 - FEE(1000),
                                                 "reserved": 0}  # fmt: skip
    assert await invariants(gateway) == []
    events = (await gateway.client.get("/v1/events", headers=merchant.auth)).json()["data"]
    assert [e["type"] for e in events] == ["payout.completed"]


async def test_failed_payout_releases_the_funds(gateway_factory: Any) -> None:
    gateway, merchant = await funded(gateway_factory, 5_000)
    created = await gateway.client.post(
        "/v1/payouts", headers=merchant.auth, json=payout(phone="0711002001")
    )
    final = await wait_payout(gateway, merchant, created.json()["id"])
    assert final["status"] == "failed"
    assert final["result_code"] == "2001"
    assert await balance(gateway, merchant) == {"available": 5_000, "reserved": 0}
    assert await invariants(gateway) == []


async def test_insufficient_funds_creates_nothing(gateway_factory: Any) -> None:
    gateway, merchant = await funded(gateway_factory, 500)
    refused = await gateway.client.post("/v1/payouts", headers=merchant.auth, json=payout())
    assert refused.status_code == 422
    assert problem(refused)["code"] == "insufficient_funds"
    listed = await gateway.client.get("/v1/payouts", headers=merchant.auth)
    assert listed.json()["data"] == []
    assert await balance(gateway, merchant) == {"available": 500, "reserved": 0}


async def test_200_concurrent_payouts_against_100_payable(gateway_factory: Any) -> None:
    amount = 100
    gateway, merchant = await funded(gateway_factory, 100 * (amount + FEE(amount)))
    answers = await asyncio.gather(
        *(
            gateway.client.post(
                "/v1/payouts",
                headers=merchant.auth,
                json=payout(amount=amount, reference=f"BULK-{i}", phone=f"07120{i:05d}"),
            )
            for i in range(200)
        )
    )
    codes = [a.status_code for a in answers]
    assert codes.count(201) == 100, codes
    refused = [a for a in answers if a.status_code != 201]
    assert {problem(a)["code"] for a in refused} == {"insufficient_funds"}
    for _ in range(200):
        if (await balance(gateway, merchant))["reserved"] == 0:
            break
        await asyncio.sleep(0.05)
    assert await balance(gateway, merchant) == {"available": 0, "reserved": 0}
    assert await invariants(gateway) == []


async def test_duplicate_results_settle_once(gateway_factory: Any) -> None:
    gateway, merchant = await funded(gateway_factory, 5_000)
    created = await gateway.client.post(
        "/v1/payouts", headers=merchant.auth, json=payout(phone="0711990003")
    )
    payout_id = created.json()["id"]
    assert (await wait_payout(gateway, merchant, payout_id))["status"] == "completed"
    # The second copy of the result lands after the first settled it: wait for it.
    for _ in range(200):
        async with gateway.app.state.runtime.sessionmaker() as session:
            outcomes = sorted(
                await session.scalars(
                    select(PayoutCallback.outcome).where(PayoutCallback.payout_id == payout_id)
                )
            )
        if len(outcomes) >= 2:
            break
        await asyncio.sleep(0.05)
    assert outcomes == ["applied", "duplicate"]
    assert await balance(gateway, merchant) == {"available": 5_000 - 1000 - FEE(1000),
                                                 "reserved": 0}  # fmt: skip
    assert await invariants(gateway) == []


async def test_lost_result_is_settled_by_transaction_status(gateway_factory: Any) -> None:
    gateway, merchant = await funded(gateway_factory, 5_000)
    created = await gateway.client.post(
        "/v1/payouts", headers=merchant.auth, json=payout(phone="0711990002")
    )
    final = await wait_payout(gateway, merchant, created.json()["id"])
    assert final["status"] == "completed"
    async with gateway.app.state.runtime.sessionmaker() as session:
        kinds = list(
            await session.scalars(
                select(PayoutCallback.kind).where(PayoutCallback.payout_id == final["id"])
            )
        )
    assert kinds == ["status"]
    assert await invariants(gateway) == []


async def test_usd_needs_a_rate_and_keeps_both_amounts(gateway_factory: Any) -> None:
    from pesaswitch.db import transaction
    from pesaswitch.payouts.fx import set_rate

    gateway, merchant = await funded(gateway_factory, 5_000)
    # Rates are global: another test in this database may have set one (test_pokea does).
    async with transaction(gateway.app.state.runtime.sessionmaker) as session:
        await session.execute(delete(FxRate).where(FxRate.currency == "USD"))
    no_rate = await gateway.client.post(
        "/v1/payouts", headers=merchant.auth, json=payout(amount=10, currency="USD")
    )
    assert no_rate.status_code == 422
    assert problem(no_rate)["code"] == "no_exchange_rate"
    async with transaction(gateway.app.state.runtime.sessionmaker) as session:
        await set_rate(session, currency="USD", kes_per_unit="129.50")
    created = await gateway.client.post(
        "/v1/payouts", headers=merchant.auth, json=payout(amount=10, currency="USD")
    )
    body = created.json()
    assert (body["amount"], body["currency"], body["kes_amount"], body["fx_rate"]) == (
        10, "USD", 1295, "129.50",
    )  # fmt: skip


async def test_bad_payouts_are_refused(gateway_factory: Any) -> None:
    gateway, merchant = await funded(gateway_factory, 5_000)
    for body, code in [
        (payout(amount=5), "amount_out_of_range"),
        (payout(amount=250_001), "amount_out_of_range"),
        (payout(amount=0), "amount_out_of_range"),
        (payout(phone="0733123456"), "unsupported_network"),
        (payout(currency="EUR"), "validation_error"),
        (payout(amount="100"), "validation_error"),
    ]:
        response = await gateway.client.post("/v1/payouts", headers=merchant.auth, json=body)
        assert response.status_code == 422, (body, response.text)
        assert problem(response)["code"] == code
    first = await gateway.client.post(
        "/v1/payouts", headers={**merchant.auth, "Idempotency-Key": "k1"}, json=payout()
    )
    replay = await gateway.client.post(
        "/v1/payouts", headers={**merchant.auth, "Idempotency-Key": "k1"}, json=payout()
    )
    assert first.json()["id"] == replay.json()["id"]
    duplicate = await gateway.client.post("/v1/payouts", headers=merchant.auth, json=payout())
    assert duplicate.status_code == 409
    assert problem(duplicate)["code"] == "duplicate_reference"
    read_only = await gateway.client.post(
        "/v1/payouts", headers=merchant.read_auth, json=payout(reference="PO-2")
    )
    assert read_only.status_code == 403
    listed = (await gateway.client.get("/v1/payouts", headers=merchant.auth)).json()["data"]
    assert len(listed) == 1


async def test_concurrent_identical_results_settle_once(gateway_factory: Any) -> None:
    """Two copies of the same Result, at the same moment, plus a contradicting late one."""
    import json

    from pesaswitch.payouts.models import Payout

    # No reconciliation during the test: only these callbacks may settle the payout.
    gateway, merchant = await funded(gateway_factory, 5_000, reconcile_after=60)
    # 254711990002: the simulator sends no Result, so the test is the only sender.
    created = await gateway.client.post(
        "/v1/payouts", headers=merchant.auth, json=payout(phone="0711990002")
    )
    payout_id = created.json()["id"]
    async with gateway.app.state.runtime.sessionmaker() as session:
        row = await session.get(Payout, payout_id)
        assert row is not None
        token, originator = row.callback_token, row.originator_conversation_id

    def result(code: int) -> bytes:
        parameters = [
            {"Key": "TransactionAmount", "Value": 1000},
            {"Key": "TransactionReceipt", "Value": "UKB2CRACE1"},
        ]
        body: dict[str, Any] = {
            "ResultType": 0, "ResultCode": code, "ResultDesc": "test",
            "OriginatorConversationID": originator, "ConversationID": "AG_race",
            "TransactionID": "UKB2CRACE1",
        }  # fmt: skip
        if code == 0:
            body["ResultParameters"] = {"ResultParameter": parameters}
        return json.dumps({"Result": body}).encode()

    url = f"/daraja/b2c/result/{token}"
    answers = await asyncio.gather(*(gateway.client.post(url, content=result(0)) for _ in range(2)))
    assert [a.status_code for a in answers] == [200, 200]
    late = await gateway.client.post(url, content=result(2001))
    assert late.status_code == 200
    final = (await gateway.client.get(f"/v1/payouts/{payout_id}", headers=merchant.auth)).json()
    assert final["status"] == "completed"
    assert final["transaction_id"] == "UKB2CRACE1"
    async with gateway.app.state.runtime.sessionmaker() as session:
        outcomes = sorted(
            await session.scalars(
                select(PayoutCallback.outcome).where(PayoutCallback.payout_id == payout_id)
            )
        )
    assert outcomes == ["applied", "duplicate", "duplicate"]
    assert await balance(gateway, merchant) == {"available": 5_000 - 1000 - FEE(1000),
                                                 "reserved": 0}  # fmt: skip
    assert await invariants(gateway) == []
