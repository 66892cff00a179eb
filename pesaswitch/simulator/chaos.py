"""Seeded fault injection for chaos runs (``PESASWITCH_SIMULATOR_CHAOS_SEED``).

Off unless a seed is set. Every decision is drawn from ``random.Random`` seeded with the
run's seed and what the request is about (the customer's number and how many requests
that number has made), so the same load under the same seed meets the same faults. The
faults are the ones Daraja really shows (reference/daraja.md): push refusals (Spike
Arrest, a 503 from the gateway in front, an expired token, a locked subscriber), pushes
that hang past the client's timeout, callbacks lost, duplicated, reordered, late, sent at
once or with a wrong token or amount, STK queries still "processing", B2C Results lost,
duplicated or late with a Transaction Status that has not heard of the payout yet.

What really happened is kept (``truth``, ``GET /simulator/chaos/truth``), so the harness
can compare every final status the gateway reached with the simulator's own record.
A fault never makes the truth unknowable to the gateway: a hung push still sends its
callback (without a CheckoutRequestID the gateway has nothing to query), and a lost
callback or Result is always one the gateway can look up.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any, TypeVar

from fastapi.responses import JSONResponse

from pesaswitch.simulator import wire
from pesaswitch.simulator.b2c_wire import SimulatedPayout
from pesaswitch.simulator.scenarios import SimulatedPush

Fault = TypeVar("Fault", bound=StrEnum)


class PushFault(StrEnum):
    NONE = "none"
    SPIKE_ARREST = "spike_arrest"  # HTTP 500 500.003.02: nothing sent to the phone
    UNAVAILABLE = "unavailable"  # HTTP 503 from the API gateway in front of Daraja
    # bandit B105 here and below: fault names, not passwords.
    INVALID_TOKEN = "invalid_token"  # nosec B105  # 404.001.03: the token is revoked, refresh it
    LOCKED = "locked"  # 500.001.1001 Unable to lock subscriber
    HANG = "hang"  # accepted, but the answer comes after the client's timeout


class CallbackFault(StrEnum):
    NONE = "none"
    LOST = "lost"  # only the STK Query can tell
    DUPLICATE = "duplicate"  # a second copy a little later
    CONCURRENT = "concurrent"  # two copies at the same moment
    LATE = "late"  # after the reconciler has started asking
    WRONG_TOKEN = "wrong_token"  # nosec B105  # a copy to a guessed URL first, then the real one
    WRONG_AMOUNT = "wrong_amount"  # a forged copy with another amount first
    SLOW_QUERY = "slow_query"  # lost, and the query says "still processing" a few times


class ResultFault(StrEnum):
    NONE = "none"
    LOST = "lost"  # only Transaction Status can tell
    DUPLICATE = "duplicate"
    CONCURRENT = "concurrent"
    # The Result comes late; until then Transaction Status answers 2032, "does not exist".
    LATE_UNKNOWN_TO_STATUS = "late_unknown_to_status"


@dataclass(frozen=True, slots=True)
class ChaosSettings:
    seed: int
    rate: float = 0.3  # share of requests (and of callbacks) that meet a fault
    late_seconds: float = 8.0  # LATE callbacks / Results: past the reconciler's threshold
    jitter_seconds: float = 2.0  # every callback waits 0..jitter: they arrive reordered


@dataclass(slots=True)
class Truth:
    """What the simulator did, by callback URL (STK) and OriginatorConversationID (B2C)."""

    # CallBackURL -> the accepted push (its callbacks_sent: the HTTP answers it got)
    pushes: dict[str, SimulatedPush] = field(default_factory=dict)
    # CallBackURL -> errorCodes of the pushes refused before anything reached the phone
    refused: dict[str, list[str]] = field(default_factory=dict)
    # OriginatorConversationID -> (ResultCode, TransactionID, executed, amount)
    payouts: dict[str, tuple[int, str, bool, int]] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {
            "pushes": {
                url: [p.checkout_request_id, p.result_code, p.receipt, p.amount, p.callbacks_sent]
                for url, p in self.pushes.items()
            },
            "refused": self.refused,
            "payouts": {oid: list(p) for oid, p in self.payouts.items()},
        }


class Chaos:
    def __init__(self, settings: ChaosSettings) -> None:
        self.settings = settings
        self.truth = Truth()
        self._requests: dict[str, int] = {}
        # OriginatorConversationID -> until when Transaction Status answers 2032 for it
        self.unknown_to_status_until: dict[str, float] = {}

    def _draw(self, *key: object) -> random.Random:
        # bandit B311: reproducible faults from a seed are the point; nothing secret here.
        return random.Random(  # nosec B311
            ":".join(str(k) for k in (self.settings.seed, *key))
        )

    def _nth(self, kind: str, subject: str) -> int:
        key = f"{kind}:{subject}"
        self._requests[key] = n = self._requests.get(key, 0) + 1
        return n

    def _pick(self, kind: type[Fault], rng: random.Random) -> Fault:
        members = list(kind)
        if rng.random() >= self.settings.rate:
            return members[0]  # NONE
        return rng.choice(members[1:])

    # --- STK ---------------------------------------------------------------------------

    def push_fault(self, msisdn: str) -> PushFault:
        return self._pick(PushFault, self._draw("push", msisdn, self._nth("push", msisdn)))

    def refusal(self, fault: PushFault, callback_url: str) -> JSONResponse | None:
        """The answer to a push refused by ``fault`` (recorded), or None to go on."""
        match fault:
            case PushFault.SPIKE_ARREST:
                answer = wire.error(500, "500.003.02", "Error Occurred: Spike Arrest Violation")
            case PushFault.UNAVAILABLE:
                answer = wire.error(503, "503.001.01", "Service Unavailable")
            case PushFault.INVALID_TOKEN:
                answer = wire.error(404, "404.001.03", "Invalid Access Token")
            case PushFault.LOCKED:
                answer = wire.error(
                    500, "500.001.1001",
                    "Unable to lock subscriber, a transaction is already in process for "
                    "the current subscriber",
                )  # fmt: skip
            case _:
                return None
        self.truth.refused.setdefault(callback_url, []).append(fault.value)
        return answer

    def callback_fault(self, msisdn: str, *, hung: bool) -> CallbackFault:
        rng = self._draw("callback", msisdn, self._requests.get(f"push:{msisdn}", 0))
        fault = self._pick(CallbackFault, rng)
        if hung and fault in (CallbackFault.LOST, CallbackFault.SLOW_QUERY):
            # A hung push gives the gateway no CheckoutRequestID: the callback is all it has.
            return CallbackFault.DUPLICATE
        return fault

    def callback_delay(self, msisdn: str, copy: int) -> float:
        rng = self._draw("delay", msisdn, self._requests.get(f"push:{msisdn}", 0), copy)
        return rng.uniform(0.0, self.settings.jitter_seconds)

    def record_push(self, push: SimulatedPush) -> None:
        self.truth.pushes[push.callback_url] = push

    # --- B2C ---------------------------------------------------------------------------

    def result_fault(self, party_b: str) -> ResultFault:
        return self._pick(ResultFault, self._draw("b2c", party_b, self._nth("b2c", party_b)))

    def record_payout(
        self, originator_id: str, result_code: int, transaction_id: str, *, executed: bool,
        amount: int,
    ) -> None:  # fmt: skip
        self.truth.payouts[originator_id] = (result_code, transaction_id, executed, amount)

    def unknown_to_status(self, originator_id: str) -> bool:
        until = self.unknown_to_status_until.get(originator_id)
        return until is not None and time.monotonic() < until


def tampered_url(callback_url: str) -> str:
    """The callback URL with its last path segment (the token) changed."""
    head, _, token = callback_url.rpartition("/")
    return f"{head}/{token[::-1]}x"


Deliver = Callable[[SimulatedPush], Awaitable[None]]


async def deliver_stk_callbacks(
    chaos: Chaos, push: SimulatedPush, deliver: Deliver, *, fault: CallbackFault, wait: float
) -> None:
    """Send ``push``'s callback(s) as ``fault`` says, ``wait`` seconds from now (plus jitter)."""
    settings = chaos.settings
    first = wait + chaos.callback_delay(push.msisdn, 0)
    push.final_at = time.monotonic() + first
    match fault:
        case CallbackFault.LOST:
            return
        case CallbackFault.SLOW_QUERY:
            push.pending_queries_left = 3
            return
        case CallbackFault.LATE:
            await asyncio.sleep(max(first, settings.late_seconds))
            await deliver(push)
            return
    await asyncio.sleep(first)
    match fault:
        case CallbackFault.CONCURRENT:
            await asyncio.gather(deliver(push), deliver(push))
        case CallbackFault.DUPLICATE:
            await deliver(push)
            await asyncio.sleep(chaos.callback_delay(push.msisdn, 1))
            await deliver(push)
        case CallbackFault.WRONG_TOKEN:
            await deliver(replace(push, callback_url=tampered_url(push.callback_url)))
            await deliver(push)
        case CallbackFault.WRONG_AMOUNT:
            await deliver(replace(push, amount=push.amount + 1))
            await deliver(push)
        case _:
            await deliver(push)


Send = Callable[[SimulatedPayout], Awaitable[int]]


async def deliver_b2c_results(
    chaos: Chaos, payout: SimulatedPayout, send: Send, *, fault: ResultFault, wait: float
) -> None:
    """Send ``payout``'s Result(s) as ``fault`` says."""
    first = wait + chaos.callback_delay(payout.party_b, 0)
    if fault is ResultFault.LATE_UNKNOWN_TO_STATUS:
        first = max(first, chaos.settings.late_seconds)
        chaos.unknown_to_status_until[payout.originator_conversation_id] = time.monotonic() + first
    payout.final_at = time.monotonic() + first
    if fault is ResultFault.LOST:
        return
    await asyncio.sleep(first)
    copies = 2 if fault in (ResultFault.DUPLICATE, ResultFault.CONCURRENT) else 1
    if fault is ResultFault.DUPLICATE:
        payout.results_sent.append(await send(payout))
        await asyncio.sleep(chaos.callback_delay(payout.party_b, 1))
        copies = 1
    payout.results_sent.extend(await asyncio.gather(*(send(payout) for _ in range(copies))))
