"""The simulator's ids and receipts have Daraja's shapes (daraja.md §3) and do not repeat."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from pesaswitch.simulator import b2c_wire, wire

MOMENT = datetime(2026, 12, 6, 9, 30, tzinfo=UTC)


def test_merchant_request_ids_are_hex_groups_then_digits() -> None:
    ids = {wire.request_id() for _ in range(2000)}
    assert len(ids) == 2000
    for value in ids:
        assert re.fullmatch(r"[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\d{1,7}", value)


def test_receipts_carry_the_year_letter_and_nine_characters() -> None:
    receipts = {wire.receipt_number(MOMENT) for _ in range(2000)}
    assert len(receipts) == 2000
    assert all(re.fullmatch(r"U[A-Z0-9]{9}", receipt) for receipt in receipts)
    # Every character of the alphabet turns up somewhere after the first: a draw that
    # only ever gave digits, or only letters, would fail here.
    assert set("".join(r[1:] for r in receipts)) == set("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")


def test_b2c_conversation_ids() -> None:
    value = b2c_wire.conversation_id(MOMENT)
    assert re.fullmatch(r"AG_20261206_[0-9a-f]{20}", value)
