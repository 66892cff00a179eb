"""A payout whose API process died between committing it (funds reserved) and recording
Daraja's answer must still be settled: the gateway made its OriginatorConversationID,
so Transaction Status can be asked.

Found by the chaos run (seed 3, PostgreSQL): payouts stayed ``pending`` with their funds
reserved for ever, because nothing ever scheduled a query for them.
"""

from __future__ import annotations

from typing import Any

from pesaswitch.db import transaction
from pesaswitch.payouts import service
from pesaswitch.payouts.models import Payout
from pesaswitch.payouts.tasks import reconcile_payouts_once
from tests.payouts.helpers import balance, funded, invariants, wait_payout


async def test_a_payout_never_sent_is_found_out_and_released(gateway_factory: Any) -> None:
    gateway, merchant = await funded(gateway_factory, 5_000, payout_not_found_grace=0)
    runtime = gateway.app.state.runtime
    # What initiate_payout commits before sending the B2C request; then the process "dies".
    async with transaction(runtime.sessionmaker) as session:
        payout = await service.create_payout(
            session,
            new=service.NewPayout(
                account_id=merchant.account_id, amount=1000, currency="KES", kes_amount=1000,
                fx_rate=None, fee=50, phone="254712345678", name="Jane", reference="PO-ORPHAN",
                description="", shortcode=gateway.settings.daraja_b2c_shortcode,
                query_after=0,
            ),
        )  # fmt: skip
        payout_id = payout.id
    assert await balance(gateway, merchant) == {"available": 3_950, "reserved": 1_050}
    async with runtime.sessionmaker() as session:
        row = await session.get(Payout, payout_id)
        assert row is not None
        assert row.next_query_at is not None  # scheduled from the start
    # The embedded worker may claim it first; either way one reconciler asks.
    await reconcile_payouts_once(runtime)
    # The simulator never saw it: Transaction Status answers 2032, past the grace.
    final = await wait_payout(gateway, merchant, payout_id)
    assert final["status"] == "failed"
    assert await balance(gateway, merchant) == {"available": 5_000, "reserved": 0}
    assert await invariants(gateway) == []
