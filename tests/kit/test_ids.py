"""kit.ids: the shapes and spread of the identifiers the gateway hands out."""

from __future__ import annotations

import re
import string

from pesaswitch.kit.ids import new_id, new_reference

ALPHABET = set(string.ascii_uppercase + string.digits)


def test_references_use_every_character_in_every_position() -> None:
    references = [new_reference() for _ in range(3000)]
    assert all(len(reference) == 10 and set(reference) <= ALPHABET for reference in references)
    for position in range(10):
        # A character missing from 3,000 uniform draws of 36 has odds of about 1e-35.
        assert {reference[position] for reference in references} == ALPHABET, position
    assert len(set(references)) == len(references)


def test_reference_length_is_the_callers() -> None:
    assert len(new_reference(4)) == 4
    assert re.fullmatch(r"[A-Z0-9]{16}", new_reference(16))


def test_ids_sort_by_the_millisecond_they_were_made() -> None:
    earlier, later = (
        new_id("pay", now_ms=1_700_000_000_000),
        new_id("pay", now_ms=1_700_000_000_001),
    )
    assert re.fullmatch(r"pay_[0-9A-HJKMNP-TV-Z]{26}", earlier)
    assert earlier < later
