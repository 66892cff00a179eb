"""Rule 1: ten successive failed prompts to a number block it for the account for 24 h.

Racing initiations cannot slip extra prompts past the limit, even across gateways that
share the database but nothing else (two engines, like two processes).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from pesaswitch.kit.clock import clock_offset, travel, utcnow
from tests.conftest import create_merchant
from tests.protection.helpers import (
    CANCELLED,
    EXPIRED,
    FAILED,
    LOCKED,
    count_payments,
    fail,
    prompt,
    refusal,
    settle,
    status,
)

DAY = 86_400
BURST = 20


@pytest.mark.parametrize("phone", [FAILED, CANCELLED, EXPIRED])
async def test_the_eleventh_prompt_after_ten_failures_is_refused(
    gateway_factory: Callable[..., Any], phone: str
) -> None:
    gateway = await gateway_factory()
    merchant = await create_merchant(gateway.settings)
    await fail(gateway, merchant, phone, 10)
    assert await count_payments(gateway, merchant) == 10

    refused = await prompt(gateway, merchant, phone)
    retry_after = refusal(refused, "stk_phone_blocked")
    assert DAY - 60 <= retry_after <= DAY
    assert await count_payments(gateway, merchant) == 10  # nothing was created

    # Another number of the same account is not affected…
    assert (await settle(gateway, merchant, "0712345678"))["status"] == "completed"
    # …nor is another account prompting the same number.
    other = await create_merchant(gateway.settings, "Other shop")
    assert (await prompt(gateway, other, phone)).status_code == 201
    view = await status(gateway, merchant)
    assert [(p["phone"], p["consecutive_failures"]) for p in view["phones"]] == [(phone, 10)]


async def test_pushes_daraja_refuses_count_as_failures(
    gateway_factory: Callable[..., Any],
) -> None:
    gateway = await gateway_factory()
    merchant = await create_merchant(gateway.settings)
    for _ in range(10):
        response = await prompt(gateway, merchant, LOCKED)
        assert response.status_code == 409, response.text
        assert response.json()["payment"]["status"] == "failed"
    refusal(await prompt(gateway, merchant, LOCKED), "stk_phone_blocked")
    assert await count_payments(gateway, merchant) == 10


async def test_a_completed_payment_resets_the_run(gateway_factory: Callable[..., Any]) -> None:
    gateway = await gateway_factory()
    merchant = await create_merchant(gateway.settings)
    phone = "0712000301"
    # Daraja's own rule makes a number fail: the same amount again within 2 minutes (17).
    assert (await settle(gateway, merchant, phone, amount=500))["status"] == "completed"
    await fail(gateway, merchant, phone, 9, amount=500)
    assert (await status(gateway, merchant, "254712000301"))["phones"][0][
        "consecutive_failures"
    ] == 9
    assert (await settle(gateway, merchant, phone, amount=501))["status"] == "completed"
    assert (await status(gateway, merchant, "254712000301"))["phones"][0][
        "consecutive_failures"
    ] == 0
    # A fresh run: ten more failures are still sent, the eleventh is not.
    await fail(gateway, merchant, phone, 10, amount=501)
    refusal(await prompt(gateway, merchant, phone), "stk_phone_blocked")


async def test_the_block_lifts_after_24_hours(gateway_factory: Callable[..., Any]) -> None:
    gateway = await gateway_factory()
    merchant = await create_merchant(gateway.settings)
    await fail(gateway, merchant, FAILED, 10)
    with travel(timedelta(hours=23, minutes=59)):
        retry_after = refusal(await prompt(gateway, merchant, FAILED), "stk_phone_blocked")
        assert 0 < retry_after <= 60
    with travel(timedelta(hours=24, seconds=1)):
        view = await status(gateway, merchant, FAILED)
        assert view["phones"][0]["blocked"] is False
        # The number may be prompted again, and its run starts over.
        await fail(gateway, merchant, FAILED, 1)
        phone_view = (await status(gateway, merchant, FAILED))["phones"][0]
        assert phone_view["consecutive_failures"] == 1
        assert phone_view["blocked"] is False
        await fail(gateway, merchant, FAILED, 9)
        retry_after = refusal(await prompt(gateway, merchant, FAILED), "stk_phone_blocked")
        assert DAY - 60 <= retry_after <= DAY


async def test_a_refusal_keeps_idempotent_replays_and_leaves_no_key(
    gateway_factory: Callable[..., Any],
) -> None:
    gateway = await gateway_factory()
    merchant = await create_merchant(gateway.settings)
    first = await prompt(gateway, merchant, FAILED, amount=77, key="order-1")
    assert first.status_code == 201
    await gateway.wait_for_status(merchant, first.json()["id"])
    await fail(gateway, merchant, FAILED, 9)

    # The replay of a request made before the block is still answered, not refused.
    replay = await prompt(gateway, merchant, FAILED, amount=77, key="order-1")
    assert replay.status_code == 201
    assert replay.json()["id"] == first.json()["id"]
    # A refused request claims no key: once the block is lifted the same key works.
    refusal(await prompt(gateway, merchant, FAILED, amount=78, key="order-2"), "stk_phone_blocked")
    with travel(timedelta(hours=25)):
        later = await prompt(gateway, merchant, FAILED, amount=78, key="order-2")
        assert later.status_code == 201, later.text


async def test_a_blocked_number_refuses_a_burst_of_prompts(
    gateway_factory: Callable[..., Any],
) -> None:
    setup = await gateway_factory()
    merchant = await create_merchant(setup.settings)
    await fail(setup, merchant, FAILED, 10)
    other = await gateway_factory()
    gateways = [setup, other]
    responses = await asyncio.gather(
        *(prompt(gateways[i % 2], merchant, FAILED) for i in range(BURST))
    )
    for response in responses:
        refusal(response, "stk_phone_blocked")
    assert await count_payments(setup, merchant) == 10


async def test_a_number_at_nine_failures_gets_one_more_prompt_at_most(
    gateway_factory: Callable[..., Any],
) -> None:
    setup = await gateway_factory()
    merchant = await create_merchant(setup.settings)
    await fail(setup, merchant, FAILED, 9)
    # Callbacks a second late: the prompt that gets through is still pending while the
    # rest of the burst is checked, so only counting pending prompts can stop them.
    slow = [await gateway_factory(simulator_delay=1.0) for _ in range(2)]
    responses = await asyncio.gather(*(prompt(slow[i % 2], merchant, FAILED) for i in range(BURST)))
    accepted = [r for r in responses if r.status_code == 201]
    assert len(accepted) == 1, [r.status_code for r in responses]
    for response in responses:
        if response.status_code != 201:
            assert 1 <= refusal(response, "stk_phone_blocked") <= 60
    assert await count_payments(setup, merchant) == 10

    final = await setup.wait_for_status(merchant, accepted[0].json()["id"])
    assert final["status"] == "failed"
    retry_after = refusal(await prompt(setup, merchant, FAILED), "stk_phone_blocked")
    assert retry_after > 86_000  # the tenth failure blocked the number for a day


async def test_a_burst_to_clean_numbers_all_goes_through(
    gateway_factory: Callable[..., Any],
) -> None:
    # Numbers without a run are neither locked nor counted: nothing here may be refused.
    gateway = await gateway_factory()
    merchant = await create_merchant(gateway.settings)
    responses = await asyncio.gather(
        *(prompt(gateway, merchant, f"07120008{i:02d}") for i in range(BURST))
    )
    assert [r.status_code for r in responses] == [201] * BURST


def real_now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def test_travel_moves_utcnow_and_nests() -> None:
    assert clock_offset() == timedelta(0)
    with travel(timedelta(hours=24)):
        assert abs(utcnow() - real_now() - timedelta(hours=24)) < timedelta(seconds=5)
        with travel(timedelta(hours=2)):
            assert clock_offset() == timedelta(hours=26)
        assert clock_offset() == timedelta(hours=24)
    assert abs(utcnow() - real_now()) < timedelta(seconds=5)


def test_travel_is_undone_when_the_block_raises() -> None:
    with pytest.raises(RuntimeError), travel(timedelta(days=3)):
        raise RuntimeError("boom")
    assert clock_offset() == timedelta(0)


async def test_protection_can_be_switched_off(gateway_factory: Callable[..., Any]) -> None:
    gateway = await gateway_factory(stk_protection=False)
    merchant = await create_merchant(gateway.settings)
    await fail(gateway, merchant, FAILED, 11)
    assert (await prompt(gateway, merchant, FAILED)).status_code == 201
    assert (await status(gateway, merchant, FAILED))["phones"][0]["consecutive_failures"] == 0
