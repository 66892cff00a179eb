"""Bad refund and reversal requests: a clear 4xx problem+json with a stable code, and
nothing changed; another account's payment is not found."""

from __future__ import annotations

from typing import Any

import pytest

from pesaswitch.accounts import service as accounts
from pesaswitch.accounts.models import ChannelKind
from pesaswitch.db import transaction
from tests.conftest import create_merchant, problem
from tests.refunds.helpers import balance, fund, invariants, paid, payment, shop


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"amount": 0}, 422, "validation_error"),
        ({"amount": -5}, 422, "validation_error"),
        ({"amount": "100"}, 422, "validation_error"),
        ({"amount": 5}, 422, "amount_out_of_range"),  # B2C sends at least 10 KES
        ({"amount": 1001}, 422, "refund_exceeds_payment"),
        ({"amount": 100, "phone": "0700000000"}, 422, "validation_error"),  # no redirect
        ({"reason": "x" * 201}, 422, "validation_error"),
    ],
)
async def test_bad_refunds_change_nothing(
    gateway_factory: Any, body: dict[str, Any], status: int, code: str
) -> None:
    gateway, merchant = await shop(gateway_factory)
    pay = await paid(gateway, merchant, 1000)
    await fund(gateway, merchant, 1000)
    before = await balance(gateway, merchant)
    answer = await gateway.client.post(
        f"/v1/payments/{pay['id']}/refund", headers=merchant.auth, json=body
    )
    assert answer.status_code == status, answer.text
    assert problem(answer)["code"] == code
    assert await balance(gateway, merchant) == before
    shown = await payment(gateway, merchant, pay["id"])
    assert (shown["refunds"], shown["amount_refundable"]) == ([], 1000)
    payouts = (await gateway.client.get("/v1/payouts", headers=merchant.auth)).json()
    assert payouts["data"] == []


async def test_not_json_is_a_400(gateway_factory: Any) -> None:
    gateway, merchant = await shop(gateway_factory)
    pay = await paid(gateway, merchant, 100)
    answer = await gateway.client.post(
        f"/v1/payments/{pay['id']}/refund",
        headers={**merchant.auth, "Content-Type": "application/json"},
        content=b"{not json",
    )
    assert answer.status_code == 400
    assert problem(answer)["code"] == "invalid_json"


async def test_another_accounts_payment_is_not_found(gateway_factory: Any) -> None:
    gateway, merchant = await shop(gateway_factory)
    pay = await paid(gateway, merchant, 1000)
    other = await create_merchant(gateway.settings, "Other shop")
    await fund(gateway, other, 5000)
    for path in (f"/v1/payments/{pay['id']}/refund", f"/v1/payments/{pay['id']}/reversal"):
        answer = await gateway.client.post(path, headers=other.auth, json={})
        assert answer.status_code == 404, answer.text
        assert problem(answer)["code"] == "not_found"
    created = await gateway.client.post(
        f"/v1/payments/{pay['id']}/refund", headers=merchant.auth, json={"amount": 100}
    )
    refund_id = created.json()["id"]
    for path in (f"/v1/refunds/{refund_id}", "/v1/reversals/rv_none"):
        assert (await gateway.client.get(path, headers=other.auth)).status_code == 404
    mine = await gateway.client.get(f"/v1/refunds/{refund_id}", headers=merchant.read_auth)
    assert mine.status_code == 200
    assert await balance(gateway, other) == {"available": 5000, "reserved": 0}


async def test_read_keys_may_not_refund(gateway_factory: Any) -> None:
    gateway, merchant = await shop(gateway_factory)
    pay = await paid(gateway, merchant, 1000)
    answer = await gateway.client.post(
        f"/v1/payments/{pay['id']}/refund", headers=merchant.read_auth, json={}
    )
    assert answer.status_code == 403
    assert problem(answer)["code"] == "insufficient_permissions"


async def test_unpaid_and_own_channel_payments_are_refused(gateway_factory: Any) -> None:
    gateway, merchant = await shop(gateway_factory)
    await fund(gateway, merchant, 5000)
    cancelled = await gateway.client.post(
        "/v1/payments", headers=merchant.auth, json={"amount": 100, "phone": "0711001032"}
    )
    final = await gateway.wait_for_status(merchant, cancelled.json()["id"])
    assert final["status"] == "cancelled"
    async with transaction(gateway.app.state.runtime.sessionmaker) as session:
        till = await accounts.add_channel(
            session, account_id=merchant.account_id, kind=ChannelKind.TILL, shortcode="174379"
        )
    own = await gateway.client.post(
        "/v1/payments", headers=merchant.auth,
        json={"amount": 100, "phone": "0712345670", "channel_id": till.id},
    )  # fmt: skip
    own_final = await gateway.wait_for_status(merchant, own.json()["id"])
    assert own_final["status"] == "completed"
    for payment_id in (final["id"], own_final["id"]):
        for kind, code in (("refund", "payment_not_refundable"),
                           ("reversal", "payment_not_reversible")):  # fmt: skip
            answer = await gateway.client.post(
                f"/v1/payments/{payment_id}/{kind}", headers=merchant.auth, json={}
            )
            assert answer.status_code == 409, answer.text
            assert problem(answer)["code"] == code
    assert await balance(gateway, merchant) == {"available": 5000, "reserved": 0}
    assert await invariants(gateway) == []
