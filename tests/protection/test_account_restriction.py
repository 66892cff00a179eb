"""Rule 2: too many failures in a sliding 6-hour window restrict the account's STK prompts."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from pesaswitch.config import Settings
from pesaswitch.kit.clock import travel
from tests.conftest import Gateway, Merchant, create_merchant
from tests.protection.helpers import (
    FAILING,
    count_payments,
    fail,
    prompt,
    refusal,
    settle,
    status,
)

HOUR = 3600


async def spread_failures(gateway: Gateway, merchant: Merchant, total: int) -> None:
    """``total`` failures over several numbers, one prompt open per number at a time."""
    shares = [total // len(FAILING) + (i < total % len(FAILING)) for i in range(len(FAILING))]
    await asyncio.gather(
        *(fail(gateway, merchant, phone, n) for phone, n in zip(FAILING, shares, strict=True))
    )


async def test_51_failures_in_six_hours_restrict_the_account_for_4_hours(
    gateway_factory: Callable[..., Any],
) -> None:
    gateway = await gateway_factory()  # the real thresholds
    merchant = await create_merchant(gateway.settings)
    await spread_failures(gateway, merchant, 50)
    # 50 is not more than 50; a success does not count either way.
    assert (await settle(gateway, merchant, "0712000401"))["status"] == "completed"
    await fail(gateway, merchant, FAILING[-1], 1)  # the 51st (that number's 9th)
    created = await count_payments(gateway, merchant)
    assert created == 52

    for phone in ("0712000401", "0712000402", FAILING[0]):
        retry_after = refusal(await prompt(gateway, merchant, phone), "stk_account_restricted")
        assert 4 * HOUR - 60 <= retry_after <= 4 * HOUR
    assert await count_payments(gateway, merchant) == created
    view = await status(gateway, merchant)
    assert view["account"]["restricted"] is True
    assert view["account"]["failures_in_window"] == 51
    assert view["phones"] == []  # no single number reached its own limit

    other = await create_merchant(gateway.settings, "Other shop")
    assert (await prompt(gateway, other, "0712000401")).status_code == 201
    # The restriction lifts after 4 hours.
    with travel(timedelta(hours=4, seconds=1)):
        assert (await prompt(gateway, merchant, "0712000403")).status_code == 201


async def test_failures_older_than_the_window_do_not_count(
    gateway_factory: Callable[..., Any],
) -> None:
    gateway = await gateway_factory(stk_account_restrictions="6:14400")
    merchant = await create_merchant(gateway.settings)
    await spread_failures(gateway, merchant, 5)
    with travel(timedelta(hours=6, minutes=1)):
        await spread_failures(gateway, merchant, 5)  # 10 in all, 5 in the window
        assert (await prompt(gateway, merchant, "0712000501")).status_code == 201
        assert (await status(gateway, merchant))["account"]["failures_in_window"] == 5
        await fail(gateway, merchant, FAILING[0], 1)
        refusal(await prompt(gateway, merchant, "0712000502"), "stk_account_restricted")


async def test_failures_of_prompts_still_open_escalate_the_restriction(
    gateway_factory: Callable[..., Any],
) -> None:
    # Prompts sent before the restriction may fail after it: the longer tier wins.
    gateway = await gateway_factory(stk_account_restrictions="2:14400,5:86400", simulator_delay=0.5)
    merchant = await create_merchant(gateway.settings)
    responses = await asyncio.gather(*(prompt(gateway, merchant, phone) for phone in FAILING))
    assert all(r.status_code == 201 for r in responses)
    for response in responses:
        final = await gateway.wait_for_status(merchant, response.json()["id"])
        assert final["status"] in {"failed", "cancelled", "expired"}
    retry_after = refusal(await prompt(gateway, merchant, "0712000601"), "stk_account_restricted")
    assert 24 * HOUR - 60 <= retry_after <= 24 * HOUR
    assert (await status(gateway, merchant))["account"]["failures_in_window"] == 6


async def test_racing_settlements_do_not_miss_a_threshold(
    gateway_factory: Callable[..., Any],
) -> None:
    # Six callbacks land together; each settlement counts under the account row's lock,
    # so the last one sees all six even though none committed before the others began.
    gateway = await gateway_factory(stk_account_restrictions="6:14400", simulator_delay=0.3)
    merchant = await create_merchant(gateway.settings)
    responses = await asyncio.gather(*(prompt(gateway, merchant, phone) for phone in FAILING))
    for response in responses:
        await gateway.wait_for_status(merchant, response.json()["id"])
    refusal(await prompt(gateway, merchant, "0712000701"), "stk_account_restricted")


@pytest.mark.parametrize("tiers", ["51", "51:4h", "0:14400", "51:-1"])
def test_a_malformed_tier_list_stops_the_process_at_start(tiers: str) -> None:
    with pytest.raises(ValidationError, match="stk_account_restrictions"):
        Settings(stk_account_restrictions=tiers)
    assert Settings(stk_account_restrictions="500:86400, 51:14400").stk_restriction_tiers == (
        (51, 14400.0),
        (500, 86400.0),
    )
