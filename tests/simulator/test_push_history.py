"""The simulator's day of STK pushes: the prune forgets the stale ones only, and the
subscriber-lock and same-amount rules see exactly one phone number's recent pushes."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator

import httpx
import pytest

from pesaswitch.config import SANDBOX_PASSKEY
from pesaswitch.daraja.client import DarajaApp, DarajaClient
from pesaswitch.daraja.errors import DarajaBusinessError
from pesaswitch.daraja.wire import StkPushRequest
from pesaswitch.simulator.app import PUSH_HISTORY, Simulator, SimulatorConfig
from pesaswitch.simulator.scenarios import SAME_AMOUNT_WINDOW

REQUEST = StkPushRequest(
    business_shortcode="174379", passkey=SANDBOX_PASSKEY, buy_goods=False, amount=5,
    phone="254712345678", party_b="174379", callback_url="https://example.com/cb",
    account_reference="ref", description="desc",
)  # fmt: skip


async def started(**rules: bool) -> tuple[Simulator, httpx.AsyncClient, DarajaClient]:
    # A long callback delay: every push stays pending (not final) while the test runs.
    sim = Simulator(SimulatorConfig("key", "secret", callback_delay=600.0, **rules))
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=sim.app), base_url="http://d")
    return sim, http, DarajaClient(http, DarajaApp("key", "secret"))


@pytest.fixture
async def no_rules() -> AsyncIterator[tuple[Simulator, DarajaClient]]:
    sim, http, client = await started(rule_same_amount=False, rule_subscriber_lock=False)
    yield sim, client
    await http.aclose()
    await sim.aclose()


def age(sim: Simulator, checkout_request_id: str, seconds: float) -> None:
    sim.pushes[checkout_request_id].created_at -= seconds


async def test_the_prune_forgets_only_pushes_older_than_a_day(
    no_rules: tuple[Simulator, DarajaClient],
) -> None:
    sim, client = no_rules
    ids = [
        (
            await client.stk_push(dataclasses.replace(REQUEST, phone=f"25471200000{n}"))
        ).checkout_request_id
        for n in range(4)
    ]
    age(sim, ids[0], PUSH_HISTORY + 1)
    age(sim, ids[1], PUSH_HISTORY + 1)
    age(sim, ids[2], PUSH_HISTORY - 60)
    newest = (await client.stk_push(REQUEST)).checkout_request_id
    assert set(sim.pushes) == {ids[2], ids[3], newest}
    # Forgotten as Daraja forgets: the query no longer finds it.
    forgotten = await client.stk_query(
        business_shortcode="174379", passkey=SANDBOX_PASSKEY, checkout_request_id=ids[0]
    )
    assert forgotten is None
    kept = await client.stk_query(
        business_shortcode="174379", passkey=SANDBOX_PASSKEY, checkout_request_id=ids[2]
    )
    assert kept is not None


async def test_a_pending_push_locks_its_subscriber_only() -> None:
    sim, http, client = await started(rule_same_amount=False, rule_subscriber_lock=True)
    try:
        await client.stk_push(REQUEST)
        with pytest.raises(DarajaBusinessError, match="lock subscriber"):
            await client.stk_push(dataclasses.replace(REQUEST, amount=6))
        other = await client.stk_push(dataclasses.replace(REQUEST, phone="254712345679"))
        assert other.checkout_request_id in sim.pushes
    finally:
        await http.aclose()
        await sim.aclose()


async def test_the_same_amount_fails_with_17_within_the_window_only() -> None:
    sim, http, client = await started(rule_same_amount=True, rule_subscriber_lock=False)
    try:
        first = (await client.stk_push(REQUEST)).checkout_request_id
        other_amount = await client.stk_push(dataclasses.replace(REQUEST, amount=7))
        again = (await client.stk_push(REQUEST)).checkout_request_id
        other_phone = await client.stk_push(dataclasses.replace(REQUEST, phone="254712345679"))
        assert sim.pushes[first].result_code == 0
        assert sim.pushes[other_amount.checkout_request_id].result_code == 0
        assert sim.pushes[again].result_code == 17
        assert sim.pushes[other_phone.checkout_request_id].result_code == 0
        for checkout_request_id in list(sim.pushes):
            age(sim, checkout_request_id, SAME_AMOUNT_WINDOW + 1)
        later = (await client.stk_push(REQUEST)).checkout_request_id
        assert sim.pushes[later].result_code == 0
    finally:
        await http.aclose()
        await sim.aclose()


async def test_past_its_cap_the_oldest_pushes_are_forgotten_first() -> None:
    config = SimulatorConfig(
        "key", "secret", callback_delay=600.0, max_pushes=3,
        rule_same_amount=False, rule_subscriber_lock=False,
    )  # fmt: skip
    sim = Simulator(config)
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=sim.app), base_url="http://d")
    client = DarajaClient(http, DarajaApp("key", "secret"))
    try:
        ids = [
            (
                await client.stk_push(dataclasses.replace(REQUEST, phone=f"25471200001{n}"))
            ).checkout_request_id
            for n in range(5)
        ]
        assert list(sim.pushes) == ids[2:]
    finally:
        await http.aclose()
        await sim.aclose()
