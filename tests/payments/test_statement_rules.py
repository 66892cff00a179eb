"""The statement's evidence rules (payments/statement.py): what counts as an orphan's
payment, what proves there was none, and what is left for a person."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

import pytest

from pesaswitch.config import Settings
from pesaswitch.daraja.c2b import PulledTransaction
from pesaswitch.payments.orphans import MAX_MERGED, Orphan, merged_windows
from pesaswitch.payments.statement import Verdict, Window, decide, payer_matches, window_for

PHONE = "254712345678"
WINDOW = Window(datetime(2026, 12, 5, 10, 0, 0), datetime(2026, 12, 5, 10, 10, 0))


def row(
    trans_id: str = "UAB1C2D3E4", *, bill_ref: str = "K7Q2M9X4PA", amount: int = 100,
    msisdn: str = PHONE, when: str | None = "20261205100500",
) -> PulledTransaction:  # fmt: skip
    return PulledTransaction(trans_id, when, msisdn, amount, bill_ref, "")


def verdict(*rows: PulledTransaction, taken: frozenset[str] = frozenset()) -> Verdict:
    return decide(
        account_reference="K7Q2M9X4PA", amount=100, phone=PHONE, window=WINDOW, rows=rows,
        taken=set(taken),
    ).verdict  # fmt: skip


def test_one_matching_row_is_the_payment() -> None:
    decision = decide(
        account_reference=" k7q2m9x4pa ", amount=100, phone=PHONE, window=WINDOW,
        rows=[row("UOTHER0001", bill_ref="SOMETHING"), row()], taken=set(),
    )  # fmt: skip
    assert decision.verdict is Verdict.PAID
    assert decision.row is not None
    assert decision.row.trans_id == "UAB1C2D3E4"


def test_no_row_carrying_the_reference_is_no_payment() -> None:
    assert verdict() is Verdict.UNPAID
    assert verdict(row(bill_ref="ANOTHERREF")) is Verdict.UNPAID
    # Outside the payment's own window (a merged pull covers others' windows too).
    assert verdict(row(when="20261205095959"), row(when="20261205101001")) is Verdict.UNPAID


@pytest.mark.parametrize(
    "rows",
    [
        (row(amount=99),),  # someone paid that account another amount
        (row(msisdn="254799999999"),),  # from another number
        (row(), row("UAB1C2D3E5")),  # two payments: which one was the prompt's?
        (row(when=None, amount=101),),  # no time given: inside the pulled window
    ],
)
def test_evidence_that_does_not_fit_decides_nothing(rows: tuple[PulledTransaction, ...]) -> None:
    assert verdict(*rows) is Verdict.UNDECIDED


def test_a_receipt_another_payment_holds_is_not_this_one() -> None:
    # Recorded already (say, as a C2B payment): money was paid under this reference, so
    # "not paid" would be false, and the receipt cannot be given twice.
    assert verdict(row(), taken=frozenset({"UAB1C2D3E4"})) is Verdict.UNDECIDED


def test_the_payer_as_daraja_shows_it() -> None:
    assert payer_matches("254712345678", PHONE)
    assert payer_matches("0712345678", PHONE)
    assert payer_matches("2547 ***** 678", PHONE)
    assert not payer_matches("2547 ***** 679", PHONE)
    assert payer_matches(hashlib.sha256(PHONE.encode()).hexdigest(), PHONE)
    assert not payer_matches(hashlib.sha256(b"254700000000").hexdigest(), PHONE)
    assert payer_matches("", PHONE)  # not shown: nothing contradicts
    assert not payer_matches("254712345679", PHONE)


def test_the_window_covers_the_prompt_and_the_margins() -> None:
    settings = Settings(daraja_timeout=30, stk_prompt_lifetime=60, stk_statement_margin=300)
    created = datetime(2026, 12, 5, 7, 0, 0, 500_000)  # UTC, naive as stored
    window = window_for(settings, created)
    # Nairobi is UTC+3; the end is widened to the next whole second.
    assert window.start == datetime(2026, 12, 5, 9, 55, 0)
    assert window.end == datetime(2026, 12, 5, 10, 6, 31)
    assert settings.orphan_after == timedelta(seconds=390)


def _orphan(start_minute: int) -> Orphan:
    start = datetime(2026, 12, 5, 10, 0) + timedelta(minutes=start_minute)
    window = Window(start, start + timedelta(minutes=5))
    return Orphan(f"pay_{start_minute}", 1, PHONE, "REF", window, ("174379", None))


def test_overlapping_windows_are_pulled_once_and_each_orphan_gets_a_whole_one() -> None:
    merged = merged_windows([_orphan(4), _orphan(0), _orphan(20)])
    assert [(w.start.minute, w.end.minute, [o.payment_id for o in members])
            for w, members in merged] == [
        (0, 9, ["pay_0", "pay_4"]), (20, 25, ["pay_20"]),
    ]  # fmt: skip
    # A chain of overlaps is cut before it grows past MAX_MERGED; each orphan's own
    # window stays inside the one it is pulled with.
    chain = [_orphan(m) for m in range(0, 120, 4)]
    for window, members in merged_windows(chain):
        assert window.end - window.start <= MAX_MERGED
        assert all(window.start <= o.window.start and o.window.end <= window.end for o in members)
