"""How the STK Query answer for a made-up CheckoutRequestID is read: the answers
daraja.md records (§2, §4, §12), including the ones the simulator does not give."""

from __future__ import annotations

from datetime import datetime

import pytest

from pesaswitch.daraja.diagnostics import Answer, PasswordVerdict, judge_password

MOMENT = datetime(2026, 12, 3, 6, 0, 0)


def answer(status: int, code: str | None, message: str = "") -> Answer:
    body = {"errorCode": code, "errorMessage": message} if code else {"ResultCode": "0"}
    return Answer(status, code, message, body, MOMENT, MOMENT, None)


@pytest.mark.parametrize(
    ("given", "verdict"),
    [
        (answer(500, "500.001.1001", "The transaction does not Exist"), PasswordVerdict.VALID),
        (answer(500, "500.001.1001", "Wrong credentials"), PasswordVerdict.WRONG),
        (
            answer(500, "500.001.1001", "[MerchantValidate] - Wrong credentials"),
            PasswordVerdict.WRONG,
        ),
        (
            answer(500, "500.001.1001", "The Password parameter provided is invalid"),
            PasswordVerdict.WRONG,
        ),
        # "Merchant does not exist" also says "does not exist": it must not read as VALID.
        (answer(500, "500.001.1001", "Merchant does not exist"), PasswordVerdict.UNKNOWN_SHORTCODE),
        (
            answer(400, "400.002.02", "Bad Request - Invalid BusinessShortCode"),
            PasswordVerdict.UNKNOWN_SHORTCODE,
        ),
        (answer(400, "400.003.01", "Invalid Access Token"), PasswordVerdict.REFUSED),
        # Seen in flight and after final states (daraja.md §4): proves nothing.
        (answer(500, "500.001.1001", ""), PasswordVerdict.INCONCLUSIVE),
        (answer(500, "500.003.02", "Spike Arrest Violation"), PasswordVerdict.INCONCLUSIVE),
        (answer(200, None), PasswordVerdict.INCONCLUSIVE),
    ],
)
def test_judge_password(given: Answer, verdict: PasswordVerdict) -> None:
    assert judge_password(given) is verdict
