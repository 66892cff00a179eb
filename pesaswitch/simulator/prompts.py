"""Interactive mode: STK prompts held until a person answers them on the sandbox phone.

An ordinary number's push is accepted as usual, but nothing is decided: the subscriber
stays locked and STK Query answers "still processing" until someone enters the PIN,
cancels, lets it time out, or nobody acts within the prompt timeout. Each ending sets the
result once and sends one callback, as Daraja does (daraja.md §3). Special test numbers
keep their automatic behaviour, so scripted scenarios still run in interactive mode.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import structlog

from pesaswitch.config import SimulatorMode
from pesaswitch.simulator import wire
from pesaswitch.simulator.scenarios import PromptEnd, SimulatedPush, describe

log = structlog.get_logger(__name__)

# Daraja's STK ResultCodes for each way a prompt ends (daraja.md §5).
RESULT_CODES: dict[PromptEnd, int] = {
    PromptEnd.PIN: 0,
    PromptEnd.WRONG_PIN: 2001,
    PromptEnd.CANCELLED: 1032,
    PromptEnd.TIMED_OUT: 1037,
    PromptEnd.EXPIRED: 1037,
}
RECENT_LIMIT = 10


class PromptAction(StrEnum):
    """What a person can do on the sandbox phone (the last segment of the action URLs)."""

    PIN = "pin"
    CANCEL = "cancel"
    TIMEOUT = "timeout"


class PromptError(Exception):
    code = "prompt_error"
    status_code = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class PromptNotFound(PromptError):
    code = "prompt_not_found"
    status_code = 404


class PromptAlreadyEnded(PromptError):
    code = "prompt_already_ended"
    status_code = 409

    def __init__(self, push: SimulatedPush) -> None:
        super().__init__(f"The prompt {push.checkout_request_id} has already ended")
        self.push = push


class PinRequired(PromptError):
    code = "pin_required"
    status_code = 422


@dataclass(frozen=True, slots=True)
class PromptSettings:
    mode: SimulatorMode
    pin: str
    timeout: float


class PromptDesk:
    """The prompts the simulator holds, shared with the Daraja routes by reference."""

    def __init__(
        self,
        settings: PromptSettings,
        pushes: dict[str, SimulatedPush],
        *,
        spawn: Callable[[Coroutine[Any, Any, None]], None],
        deliver: Callable[[SimulatedPush], Coroutine[Any, Any, None]],
    ) -> None:
        self.settings = settings
        self._pushes = pushes
        self._spawn = spawn
        self._deliver = deliver

    @property
    def interactive(self) -> bool:
        return self.settings.mode is SimulatorMode.INTERACTIVE

    def hold(self, push: SimulatedPush) -> None:
        """Keep ``push`` undecided until a person or the prompt timeout ends it."""
        push.interactive = True
        push.final_at = math.inf  # locks the subscriber and keeps queries "processing"
        push.receipt = None  # a receipt exists only once the PIN is entered
        self._spawn(self._expire_later(push))
        log.info("simulator.prompt.held", checkout_request_id=push.checkout_request_id)

    def act(
        self, checkout_request_id: str, action: PromptAction, pin: str | None = None
    ) -> SimulatedPush:
        push = self.get(checkout_request_id)
        if push is None:
            raise PromptNotFound(f"No prompt {checkout_request_id} on the sandbox phone")
        if push.ended_by is not None:
            raise PromptAlreadyEnded(push)
        match action:
            case PromptAction.PIN:
                if not pin:
                    raise PinRequired("Enter the M-PESA PIN")
                how = PromptEnd.PIN if pin == self.settings.pin else PromptEnd.WRONG_PIN
            case PromptAction.CANCEL:
                how = PromptEnd.CANCELLED
            case PromptAction.TIMEOUT:
                how = PromptEnd.TIMED_OUT
        self._finish(push, how)
        return push

    def _finish(self, push: SimulatedPush, how: PromptEnd) -> None:
        # No await between the ended_by check and here: the event loop makes it exactly once.
        push.ended_by = how
        push.result_code = RESULT_CODES[how]
        moment = datetime.now(UTC)
        push.receipt = wire.receipt_number(moment) if push.result_code == 0 else None
        push.transaction_date = wire.transaction_date(moment)
        push.final_at = time.monotonic()
        log.info(
            "simulator.prompt.ended",
            checkout_request_id=push.checkout_request_id,
            ended_by=how.value,
            result_code=push.result_code,
        )
        # Delivered in the background, as Daraja does: the person's answer does not wait
        # for the merchant's server.
        self._spawn(self._deliver(push))

    async def _expire_later(self, push: SimulatedPush) -> None:
        await asyncio.sleep(self.settings.timeout)
        if push.held:
            self._finish(push, PromptEnd.EXPIRED)

    # --- what the phone shows --------------------------------------------------------

    def get(self, checkout_request_id: str) -> SimulatedPush | None:
        push = self._pushes.get(checkout_request_id)
        return push if push is not None and push.interactive else None

    def held_for(self, msisdn: str) -> list[SimulatedPush]:
        """The number's waiting prompts, oldest first (the order a phone queues them)."""
        held = [p for p in self._pushes.values() if p.msisdn == msisdn and p.held]
        return sorted(held, key=lambda p: p.created_at)

    def recent_for(self, msisdn: str) -> list[SimulatedPush]:
        """The number's finished pushes, newest first, automatic ones included."""
        now = time.monotonic()
        done = [p for p in self._pushes.values() if p.msisdn == msisdn and p.is_final(now)]
        return sorted(done, key=lambda p: p.created_at, reverse=True)[:RECENT_LIMIT]

    def seconds_left(self, push: SimulatedPush) -> float:
        return max(0.0, push.created_at + self.settings.timeout - time.monotonic())


def prompt_json(push: SimulatedPush, seconds_left: float | None = None) -> dict[str, Any]:
    """The phone API's view of a push (not a Daraja shape: scripts and tests read it)."""
    ended = not push.held
    return {
        "checkout_request_id": push.checkout_request_id,
        "merchant_request_id": push.merchant_request_id,
        "msisdn": push.msisdn,
        "amount": push.amount,
        "shortcode": push.shortcode,
        "state": "ended" if ended else "waiting",
        "interactive": push.interactive,
        "ended_by": push.ended_by.value if push.ended_by else None,
        "result_code": push.result_code if ended else None,
        "result_desc": describe(push.result_code, for_query=False) if ended else None,
        "receipt": push.receipt if ended else None,
        "seconds_left": None if ended else seconds_left,
        "callbacks_sent": len(push.callbacks_sent),
    }
