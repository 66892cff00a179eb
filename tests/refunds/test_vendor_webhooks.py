"""A webhook endpoint registered through the PayNexus dialect for every event gets the
refund and reversal events as native events (PayNexus has no shape for them), and the
refund still settles. Before, its payment-only renderer raised KeyError inside the
settling transaction: the B2C Result was answered 500 and the payout stayed open."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select

from pesaswitch.webhooks.models import Delivery, Event
from tests.refunds.helpers import fund, paid, shop, wait_final


async def test_refund_and_payout_events_reach_a_paynexus_endpoint(gateway_factory: Any) -> None:
    gateway, merchant = await shop(gateway_factory)
    registered = await gateway.client.post(
        "/api/webhooks/register", headers={"X-API-Key": merchant.secret_key},
        json={"url": "http://127.0.0.1:9/hook"},
    )  # fmt: skip
    assert registered.status_code == 201, registered.text
    pay = await paid(gateway, merchant, 1000)
    await fund(gateway, merchant, 100)
    created = await gateway.client.post(
        f"/v1/payments/{pay['id']}/refund", headers=merchant.auth, json={}
    )
    assert created.status_code == 201, created.text
    final = await wait_final(gateway, merchant, f"/v1/refunds/{created.json()['id']}")
    assert final["status"] == "completed"
    async with gateway.app.state.runtime.sessionmaker() as session:
        rows = (
            await session.execute(
                select(Event.type, Delivery.body)
                .join(Delivery, Delivery.event_id == Event.id)
                .where(Event.account_id == merchant.account_id)
            )
        ).all()
    bodies = {kind: body for kind, body in rows}
    assert set(bodies) == {"payment.completed", "payout.completed", "refund.completed"}
    assert json.loads(bodies["payment.completed"])["event"] == "payment.completed"  # PayNexus'
    # None: the delivery sends the native event's payload.
    assert (bodies["payout.completed"], bodies["refund.completed"]) == (None, None)
