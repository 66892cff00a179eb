"""How the simulator decides an outcome: test numbers first, then Daraja's own rules.

The same numbers drive STK Push (the payer) and B2C (the recipient, PartyB):

| MSISDN            | behaviour                                                       |
|-------------------|-----------------------------------------------------------------|
| 25471100XXXX      | final ResultCode XXXX (0000 is success)                         |
| 254711990001      | STK Push answered with HTTP 500 500.001.1001 "Unable to lock…"  |
|                   | (B2C: success)                                                  |
| 254711990002      | no callback / Result; only a status query reveals the success   |
| 254711990003      | callback / Result sent twice, at the same moment                |
| 254711990004      | callback / Result delivered before the HTTP response            |
| 254711990005      | no callback; query answers "still processing" a few times first |
|                   | (B2C: success)                                                  |
| 254711990006      | request hangs past the client's timeout; it is still paid       |
| 254711990007      | B2C: a QueueTimeOutURL post instead of a Result; nothing is     |
|                   | paid and Transaction Status answers 2032 (STK: success)         |
| anything else     | success                                                         |

Daraja's rules come after the numbers: STK's same-amount and locked-subscriber rules
(``simulator/app.py``), B2C's initiator check, amount limits and Utility balance
(``simulator/b2c.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

LOCKED_SUBSCRIBER = "254711990001"
LOST_CALLBACK = "254711990002"
DUPLICATE_CALLBACK = "254711990003"
EARLY_CALLBACK = "254711990004"
SLOW_QUERY = "254711990005"
HANGING_PUSH = "254711990006"
QUEUE_TIMEOUT = "254711990007"
RESULT_CODE_PREFIX = "25471100"

# Daraja's rule windows (daraja.md §5, §8).
SAME_AMOUNT_WINDOW = 120.0
MAX_STK_AMOUNT = 250_000


class Behaviour(StrEnum):
    NORMAL = "normal"
    LOCKED = "locked"
    LOST_CALLBACK = "lost_callback"
    DUPLICATE_CALLBACK = "duplicate_callback"
    EARLY_CALLBACK = "early_callback"
    SLOW_QUERY = "slow_query"
    HANGING_PUSH = "hanging_push"
    QUEUE_TIMEOUT = "queue_timeout"  # B2C only


_SPECIAL = {
    LOCKED_SUBSCRIBER: Behaviour.LOCKED,
    LOST_CALLBACK: Behaviour.LOST_CALLBACK,
    DUPLICATE_CALLBACK: Behaviour.DUPLICATE_CALLBACK,
    EARLY_CALLBACK: Behaviour.EARLY_CALLBACK,
    SLOW_QUERY: Behaviour.SLOW_QUERY,
    HANGING_PUSH: Behaviour.HANGING_PUSH,
    QUEUE_TIMEOUT: Behaviour.QUEUE_TIMEOUT,
}


class PromptEnd(StrEnum):
    """How a person (or the clock) ended a held prompt on the sandbox phone."""

    PIN = "pin"  # the correct PIN: paid
    WRONG_PIN = "wrong_pin"
    CANCELLED = "cancelled"
    TIMED_OUT = "timed_out"  # the "let it time out" button
    EXPIRED = "expired"  # nobody acted within the prompt timeout


@dataclass(frozen=True, slots=True)
class Scenario:
    behaviour: Behaviour
    result_code: int


def scenario_for(msisdn: str) -> Scenario:
    behaviour = _SPECIAL.get(msisdn)
    if behaviour is not None:
        return Scenario(behaviour, 0)
    if msisdn.startswith(RESULT_CODE_PREFIX) and len(msisdn) == 12:
        return Scenario(Behaviour.NORMAL, int(msisdn[-4:]))
    return Scenario(Behaviour.NORMAL, 0)


# Descriptions differ by channel on purpose: clients must branch on codes (daraja.md §11).
CALLBACK_DESCRIPTIONS = {
    0: "The service request is processed successfully.",
    1: "The balance is insufficient for the transaction.",
    3: "Declined due to limit rule: greater than the maximum transaction amount.",
    17: "Rule limited.",
    1032: "Request cancelled by user",
    1037: "No response from user.",
    2001: "The initiator information is invalid.",
}
QUERY_DESCRIPTIONS = {
    0: "The service request is processed successfully.",
    1032: "Request Cancelled by user.",
    1037: "DS timeout user cannot be reached",
    2001: "The initiator information is invalid.",
}


def describe(code: int, *, for_query: bool) -> str:
    table = QUERY_DESCRIPTIONS if for_query else CALLBACK_DESCRIPTIONS
    return table.get(code) or CALLBACK_DESCRIPTIONS.get(code) or f"Transaction failed ({code})."


@dataclass(slots=True)
class SimulatedPush:
    checkout_request_id: str
    merchant_request_id: str
    msisdn: str
    amount: int
    shortcode: str
    callback_url: str
    result_code: int
    behaviour: Behaviour
    created_at: float
    final_at: float
    receipt: str | None
    transaction_date: int
    pending_queries_left: int = 0
    callbacks_sent: list[int] = field(default_factory=list)
    # Interactive mode: the prompt waits on the sandbox phone until ``ended_by`` is set.
    interactive: bool = False
    ended_by: PromptEnd | None = None
    # Where the money lands and under what account (the shortcode's statement lists a
    # paid push, c2b_wire.stk_statement), and the wall-clock moment ``created_at`` marks.
    party_b: str = ""
    account_reference: str = ""
    buy_goods: bool = False
    accepted_at: datetime | None = None

    @property
    def held(self) -> bool:
        return self.interactive and self.ended_by is None

    def is_final(self, now: float) -> bool:
        return now >= self.final_at and self.pending_queries_left <= 0

    def paid_at(self, now: float) -> datetime | None:
        """When the customer paid (wall clock), if the push is paid by ``now``."""
        if self.result_code != 0 or self.receipt is None or self.accepted_at is None:
            return None
        if now < self.final_at:  # still on the phone (or held: final_at is infinite)
            return None
        return self.accepted_at + timedelta(seconds=self.final_at - self.created_at)
