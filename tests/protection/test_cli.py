"""`pesaswitch protection status|lift`, run as an operator would, on the suite's database."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

from typer.testing import CliRunner

from pesaswitch.cli import app
from tests.conftest import TEST_SECRET_KEY, Gateway, create_merchant
from tests.protection.helpers import FAILED, FAILING, fail, prompt, refusal


async def run_cli(gateway: Gateway, *args: str) -> dict[str, Any]:
    env = {
        "PESASWITCH_DATABASE_URL": gateway.settings.database_url,
        "PESASWITCH_SECRET_KEY": TEST_SECRET_KEY,
        "PESASWITCH_LOG_LEVEL": "warning",
        "PESASWITCH_STK_ACCOUNT_RESTRICTIONS": gateway.settings.stk_account_restrictions,
    }
    # In a thread: the command runs its own event loop, as it does from a shell.
    result = await asyncio.to_thread(
        CliRunner().invoke, app, ["protection", *args], env=env, catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    shown: dict[str, Any] = json.loads(result.stdout)
    return shown


async def test_status_and_lift_of_a_blocked_number(gateway_factory: Callable[..., Any]) -> None:
    gateway = await gateway_factory()
    merchant = await create_merchant(gateway.settings)
    await fail(gateway, merchant, FAILED, 10)
    await fail(gateway, merchant, FAILING[1], 3)

    shown = await run_cli(gateway, "status", "--account", merchant.account_id)
    assert shown["account"]["restricted"] is False
    assert shown["account"]["failures_in_window"] == 13
    [blocked] = shown["phones"]  # only blocked numbers are listed
    assert blocked["phone"] == FAILED
    assert blocked["consecutive_failures"] == 10
    assert blocked["blocked"] is True
    assert blocked["retry_after"] > 86_000

    one = await run_cli(
        gateway, "status", "--account", merchant.account_id, "--phone", "0711001032"
    )
    assert one["phones"][0]["consecutive_failures"] == 3
    assert one["phones"][0]["blocked"] is False

    lifted = await run_cli(
        gateway, "lift", "--account", merchant.account_id, "--phone", "+254 711 000 001"
    )
    assert lifted["phones"][0]["blocked"] is False
    assert lifted["phones"][0]["consecutive_failures"] == 0
    # Lifted: the number may be prompted again, with a whole new run of ten.
    await fail(gateway, merchant, FAILED, 10)
    refusal(await prompt(gateway, merchant, FAILED), "stk_phone_blocked")


async def test_lifting_an_account_restriction_forgets_its_failures(
    gateway_factory: Callable[..., Any],
) -> None:
    gateway = await gateway_factory(stk_account_restrictions="3:14400")
    merchant = await create_merchant(gateway.settings)
    await fail(gateway, merchant, FAILED, 3)
    refusal(await prompt(gateway, merchant, "0712000901"), "stk_account_restricted")
    shown = await run_cli(gateway, "status", "--account", merchant.account_id)
    assert shown["account"]["restricted"] is True
    assert shown["account"]["retry_after"] > 14_000

    lifted = await run_cli(gateway, "lift", "--account", merchant.account_id)
    assert lifted["account"]["restricted"] is False
    assert lifted["account"]["failures_in_window"] == 0
    # The three failures that caused it no longer count: one more does not restrict again.
    await fail(gateway, merchant, FAILED, 1)
    assert (await prompt(gateway, merchant, "0712000902")).status_code == 201


async def test_an_unknown_account_is_an_error(gateway_factory: Callable[..., Any]) -> None:
    gateway = await gateway_factory()
    env = {
        "PESASWITCH_DATABASE_URL": gateway.settings.database_url,
        "PESASWITCH_SECRET_KEY": TEST_SECRET_KEY,
    }
    result = await asyncio.to_thread(
        CliRunner().invoke, app, ["protection", "status", "--account", "acct_nope"], env=env
    )
    assert result.exit_code == 1
    assert "No account acct_nope" in result.output
