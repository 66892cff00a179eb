"""The fee tariff: format, rounding, defaults and settings."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from pesaswitch.config import Settings
from pesaswitch.ledger.fees import (
    DEFAULT_PAYOUT_TIERS,
    Tariff,
    collection_fee,
    fee_for,
    parse_fee_tiers,
    payout_fee,
)


def test_default_collection_fee_is_one_and_a_half_percent_capped_at_200() -> None:
    assert collection_fee(1) == 0
    assert collection_fee(33) == 0  # 0.495 rounds down
    assert collection_fee(34) == 1  # 0.51 rounds up
    assert collection_fee(100) == 2  # 1.5 rounds half up
    assert collection_fee(1000) == 15
    assert collection_fee(13_333) == 200
    assert collection_fee(13_334) == 200
    assert collection_fee(250_000) == 200


def test_default_payout_fee() -> None:
    assert payout_fee(10) == 15
    assert payout_fee(1000) == 15
    assert payout_fee(1001) == 20  # 15 + 5.005
    assert payout_fee(10_000) == 65
    assert payout_fee(50_000) == 265
    assert payout_fee(250_000) == 265


def test_formats() -> None:
    tiers = parse_fee_tiers("0-100:0, 101-1000:1.5%, 1001-:15+0.5%")
    assert fee_for(100, tiers) == 0
    assert fee_for(101, tiers) == 2  # 1.515
    assert fee_for(1001, tiers) == 20  # 15 + 5.005
    assert fee_for(5000, parse_fee_tiers("1-:2.25%")) == 113  # 112.5 rounds half up
    assert fee_for(7, parse_fee_tiers("1-:0.0001%")) == 0


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "1-100:5",  # not open-ended
        "5-:1",  # does not start at 0 or 1
        "1-100:5,102-:1",  # gap
        "1-100:5,100-:1",  # overlap
        "1-:5,6-:1",  # after an open tier
        "1-100:x",
        "1-100:5%+1",
        "1-:100%",
        "1-:1.23456%",
        "100-1:5,2-:1",
    ],
)
def test_bad_tariffs_are_refused(raw: str) -> None:
    with pytest.raises(ValueError, match=r"."):
        parse_fee_tiers(raw)


def test_settings_check_the_tariffs() -> None:
    settings = Settings(collection_fee_tiers="1-:10", payout_fee_tiers="1-:1+1%")
    tariff = Tariff.parse(settings.collection_fee_tiers, settings.payout_fee_tiers)
    assert tariff.collection_fee(100) == 10
    assert tariff.collection_fee(5) == 5  # never more than the collection itself
    assert tariff.payout_fee(100) == 2
    with pytest.raises(ValidationError):
        Settings(payout_fee_tiers="1-100:5")


@given(st.integers(min_value=1, max_value=1_000_000))
def test_fees_are_whole_and_bounded(amount: int) -> None:
    fee = collection_fee(amount)
    assert 0 <= fee <= min(200, amount)
    assert 15 <= payout_fee(amount) <= 265
    assert payout_fee(amount, DEFAULT_PAYOUT_TIERS) == payout_fee(amount)
