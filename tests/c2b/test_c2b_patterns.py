"""A channel's account pattern runs under RE2 (kit/patterns.py), in time linear in the
account number: a catastrophic pattern cannot stall Daraja's validation, and a pattern
only a backtracking engine could run is refused when it is saved."""

from __future__ import annotations

import pytest

from pesaswitch.accounts.models import ChannelKind
from pesaswitch.kit.patterns import UnsafePattern, check_pattern, full_match
from tests.c2b.helpers import add_channel, c2b_payments, pay, set_up_channel
from tests.conftest import Gateway, Merchant, problem

# The classic: under a backtracking engine, each extra "a" before the "!" doubles the work.
CATASTROPHIC = "(a+)+"
HOSTILE = "a" * 64 + "!"


async def test_a_catastrophic_pattern_answers_the_validation(
    gateway: Gateway, merchant: Merchant
) -> None:
    # Under Python's re this validation never answered (2**64 steps, on the event loop).
    channel = await set_up_channel(
        gateway, merchant, validation_enabled=True, account_pattern=CATASTROPHIC
    )
    refused = await pay(gateway, channel["shortcode"], bill_ref=HOSTILE)
    assert (refused["status"], refused["validation_result_code"]) == ("rejected", "C2B00012")
    accepted = await pay(gateway, channel["shortcode"], bill_ref="a" * 64)
    assert (accepted["status"], accepted["validation_result_code"]) == ("completed", "0")
    [payment] = await c2b_payments(gateway, merchant)
    assert payment["mpesa_receipt"] == accepted["trans_id"]


@pytest.mark.parametrize(
    "pattern",
    [
        r"(INV)-\1",  # a backreference
        r"(?=INV)INV-\d+",  # lookahead
        r"INV(?!X)\d+",  # negative lookahead
        r"(a{1000}){1000}",  # beyond RE2's repetition and program size bounds
    ],
)
async def test_backtracking_patterns_are_refused_at_save(
    gateway: Gateway, merchant: Merchant, pattern: str
) -> None:
    channel_id = await add_channel(gateway.settings, merchant, ChannelKind.PAYBILL)
    url = f"/v1/channels/{channel_id}/c2b"
    response = await gateway.client.put(
        url, json={"validation_enabled": True, "account_pattern": pattern}, headers=merchant.auth
    )
    assert response.status_code == 422, response.text
    body = problem(response)
    assert body["code"] == "validation_error"
    assert "RE2" in response.text
    # Nothing was saved.
    assert problem(await gateway.client.get(url, headers=merchant.auth))["code"] == (
        "c2b_not_configured"
    )


def test_the_matcher_is_whole_string_and_linear() -> None:
    assert full_match(r"INV-\d+", "INV-42")
    assert not full_match(r"INV-\d+", "INV-42x")
    assert not full_match(r"INV-\d+", "xINV-42")
    # A million characters against the catastrophic pattern: answered, not hung.
    assert not full_match(CATASTROPHIC, "a" * 1_000_000 + "!")
    with pytest.raises(UnsafePattern, match="missing"):
        check_pattern("INV-(")
