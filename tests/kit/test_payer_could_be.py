"""Whether a C2B notice's payer can be a prompted number: how an STK payment's echo is
told from another customer's payment of the same amount (c2b/confirmations.py)."""

from __future__ import annotations

import hashlib

import pytest

from pesaswitch.kit.phones import payer_could_be

PHONE = "254708374149"


@pytest.mark.parametrize(
    ("shown", "expected"),
    [
        ("2547 ***** 149", True),  # C2B v2's mask
        ("2547*****149", True),
        ("2547 ***** 148", False),
        ("2541 ***** 149", False),
        (hashlib.sha256(PHONE.encode()).hexdigest(), True),  # C2B v1's hash
        (hashlib.sha256(PHONE.encode()).hexdigest().upper(), True),
        (hashlib.sha256(b"254708374148").hexdigest(), False),
        ("254708374149", True),  # whole (Pull Transactions may give it)
        ("254708374148", False),
        ("", True),  # left out: contradicts nothing
        ("unknown form", True),
    ],
)
def test_payer_could_be(shown: str, expected: bool) -> None:
    assert payer_could_be(shown, PHONE) is expected
