"""A fake Daraja that speaks the real HTTP API: OAuth, STK Push, STK Query, and (in
``b2c.py``) B2C, Transaction Status and Account Balance, and (in ``reversal.py``)
Transaction Reversal.

State lives in memory, as it would inside Safaricom: the gateway must learn everything
through HTTP answers and callbacks. Mount it in-process (ASGI transport) or run it
standalone with ``pesaswitch simulator``.
"""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import structlog
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from pesaswitch.config import SANDBOX_PASSKEY, SimulatorMode
from pesaswitch.daraja.wire import stk_password
from pesaswitch.kit import crypto
from pesaswitch.kit.http import async_client, post_for_status
from pesaswitch.simulator import wire
from pesaswitch.simulator.b2c import B2CSimulator
from pesaswitch.simulator.c2b import C2BSimulator
from pesaswitch.simulator.c2b_wire import stk_statement, stk_status_lookup
from pesaswitch.simulator.chaos import (
    Chaos,
    ChaosSettings,
    PushFault,
    deliver_stk_callbacks,
)
from pesaswitch.simulator.phone import create_phone_app
from pesaswitch.simulator.prompts import PromptDesk, PromptSettings
from pesaswitch.simulator.reversal import ReversalSimulator
from pesaswitch.simulator.scenarios import (
    MAX_STK_AMOUNT,
    SAME_AMOUNT_WINDOW,
    Behaviour,
    SimulatedPush,
    describe,
    scenario_for,
)

log = structlog.get_logger(__name__)

TOKEN_LIFETIME = 3599
# How long pushes are remembered for queries and statements, as Daraja keeps them (a day).
PUSH_HISTORY = 86_400.0


@dataclass(slots=True)
class SimulatorConfig:
    consumer_key: str
    consumer_secret: str
    # shortcode -> passkey; shortcodes not listed use Safaricom's public sandbox passkey.
    passkeys: dict[str, str] = field(default_factory=dict)
    accept_any_app: bool = True
    callback_delay: float = 0.0
    hang_seconds: float = 40.0
    pending_queries: int = 3
    rule_same_amount: bool = True
    rule_subscriber_lock: bool = True
    # Pushes remembered for queries and statements, oldest forgotten first: a day of them
    # at load-test rates would not fit in memory (~3.5 KiB each).
    max_pushes: int = 20_000
    # Interactive mode (simulator/prompts.py): ordinary numbers wait for the sandbox phone.
    mode: SimulatorMode = SimulatorMode.AUTO
    pin: str = "1234"
    prompt_timeout: float = 60.0
    # B2C (simulator/b2c.py). Safaricom's published sandbox initiator (daraja.md §8).
    initiator_name: str = "testapi"
    initiator_password: str = "Safaricom999!*!"
    b2c_utility_balance: int = 1_000_000  # KES per shortcode, spent by each payout
    rule_b2c_min_amount: bool = True
    rule_b2c_max_amount: bool = True
    rule_b2c_utility_balance: bool = True
    # C2B (simulator/c2b.py): Daraja's validation budget; production's one-time Register URL.
    c2b_validation_budget: float = 8.0
    c2b_register_once: bool = False
    # Seeded fault injection for chaos runs (simulator/chaos.py); None: no faults.
    chaos: ChaosSettings | None = None


class Simulator:
    def __init__(self, config: SimulatorConfig, callback_http: httpx.AsyncClient | None = None):
        self.config = config
        self._callback_http = callback_http
        self._owns_http = callback_http is None
        self.tokens: dict[str, float] = {}
        self.pushes: dict[str, SimulatedPush] = {}
        # The same pushes oldest first, all of them and by phone number: the prune and the
        # rules read only the pushes they need, not every push of the last day (a scan
        # of all was most of the simulator's CPU per push once thousands were held).
        self._oldest_first: deque[SimulatedPush] = deque()
        self._by_msisdn: dict[str, deque[SimulatedPush]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.chaos = Chaos(config.chaos) if config.chaos is not None else None
        self.b2c = B2CSimulator(
            config,
            spawn=self._spawn,
            authorized=self._authorized,
            callback_http=lambda: self.callback_http,
            chaos=self.chaos,
        )
        self.reversals = ReversalSimulator(self.b2c, self.pushes)
        self.prompts = PromptDesk(
            PromptSettings(config.mode, config.pin, config.prompt_timeout),
            self.pushes,
            spawn=self._spawn,
            deliver=self._deliver_callback,
        )
        # The sandbox phone page, also mounted on the gateway when the simulator is embedded.
        self.c2b = C2BSimulator(
            spawn=self._spawn, authorized=self._authorized,
            callback_http=lambda: self.callback_http,
            validation_budget=config.c2b_validation_budget,
            register_once=config.c2b_register_once, stk_statement=stk_statement(self.pushes),
        )  # fmt: skip
        self.phone_app = create_phone_app(self.prompts, c2b_recent=self.c2b.recent_for)
        self.b2c.status_lookups += [self.c2b.status_parameters, stk_status_lookup(self.pushes)]
        self.app = self._build_app()

    @property
    def certificate_pem(self) -> bytes:
        """The certificate to encrypt the initiator password with (also at
        ``GET /simulator/certificate``), as Safaricom publishes its own."""
        return self.b2c.keys.certificate_pem

    def use_callback_client(self, client: httpx.AsyncClient) -> None:
        """Deliver callbacks through ``client`` (tests route them in-process)."""
        self._callback_http = client
        self._owns_http = False

    @property
    def callback_http(self) -> httpx.AsyncClient:
        if self._callback_http is None:
            self._callback_http = async_client(timeout=10.0)
        return self._callback_http

    async def aclose(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._owns_http and self._callback_http is not None:
            await self._callback_http.aclose()

    # --- callbacks -------------------------------------------------------------------

    def _spawn(self, coro: Any) -> None:
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _deliver_callback(self, push: SimulatedPush) -> None:
        body = json.dumps(wire.stk_callback_body(push)).encode()
        try:
            status = await post_for_status(
                self.callback_http, push.callback_url, body=body,
                headers={
                    "Content-Type": "application/json;charset=UTF-8",
                    "BusinessShortCode": push.shortcode,
                },
            )  # fmt: skip
            push.callbacks_sent.append(status)
        except httpx.HTTPError as exc:
            # Daraja delivers once and never retries (daraja.md §3); neither do we.
            push.callbacks_sent.append(0)
            log.warning("simulator.callback.failed", error=repr(exc))

    async def _callback_later(self, push: SimulatedPush, copies: int) -> None:
        await asyncio.sleep(max(0.0, push.final_at - time.monotonic()))
        await asyncio.gather(*(self._deliver_callback(push) for _ in range(copies)))

    # --- rules -----------------------------------------------------------------------

    def _subscriber_locked(self, msisdn: str, now: float) -> bool:
        return any(not p.is_final(now) for p in self._by_msisdn.get(msisdn, ()))

    def _same_amount_recently(self, msisdn: str, amount: int, now: float) -> bool:
        for push in reversed(self._by_msisdn.get(msisdn, ())):  # newest first
            if now - push.created_at >= SAME_AMOUNT_WINDOW:
                return False
            if push.amount == amount:
                return True
        return False

    def _remember(self, push: SimulatedPush) -> None:
        self.pushes[push.checkout_request_id] = push
        self._oldest_first.append(push)
        self._by_msisdn.setdefault(push.msisdn, deque()).append(push)

    def _prune(self, now: float) -> None:
        # Keep a day of history for queries (at most max_pushes); older pushes are
        # forgotten like Daraja's. They are remembered as they are made: the stale ones
        # are at the front.
        while self._oldest_first and (
            now - self._oldest_first[0].created_at > PUSH_HISTORY
            or len(self._oldest_first) >= self.config.max_pushes  # room for the next
        ):
            push = self._oldest_first.popleft()
            self.pushes.pop(push.checkout_request_id, None)
            same_phone = self._by_msisdn[push.msisdn]
            same_phone.popleft()  # its oldest: the same order
            if not same_phone:
                del self._by_msisdn[push.msisdn]

    # --- HTTP ------------------------------------------------------------------------

    def _authorized(self, request: Request) -> bool:
        header = request.headers.get("authorization", "")
        token = header.removeprefix("Bearer ").strip()
        expires = self.tokens.get(token)
        return expires is not None and expires > time.monotonic()

    def _check_basic(self, header: str) -> bool:
        if not header.startswith("Basic "):
            return False
        try:
            key, _, secret = base64.b64decode(header[6:]).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return False
        if crypto.secrets_equal(key, self.config.consumer_key) & crypto.secrets_equal(
            secret, self.config.consumer_secret
        ):
            return True
        return self.config.accept_any_app and bool(key) and bool(secret)

    async def oauth(self, request: Request) -> JSONResponse:
        if request.query_params.get("grant_type") != "client_credentials":
            return wire.error(400, "400.008.02", "Invalid grant type passed")
        if not self._check_basic(request.headers.get("authorization", "")):
            return wire.error(400, "400.008.01", "Invalid Authentication passed")
        token = secrets.token_urlsafe(21)[:28]
        self.tokens[token] = time.monotonic() + TOKEN_LIFETIME
        # expires_in as a string, as real captures show (daraja.md §1).
        return JSONResponse({"access_token": token, "expires_in": str(TOKEN_LIFETIME)})

    def _password_ok(self, shortcode: str, password: Any, timestamp: str) -> bool:
        passkey = self.config.passkeys.get(shortcode, SANDBOX_PASSKEY)
        return isinstance(password, str) and crypto.secrets_equal(
            password, stk_password(shortcode, passkey, timestamp)
        )

    async def stk_push(self, request: Request) -> JSONResponse:
        if not self._authorized(request):
            return wire.error(404, "404.001.03", "Invalid Access Token")
        try:
            body = await wire.read_json(request)
        except ValueError:
            return wire.error(400, "400.002.05", "Invalid Request Payload")
        if not isinstance(body, dict):
            return wire.error(400, "400.002.05", "Invalid Request Payload")
        shortcode = str(body.get("BusinessShortCode", ""))
        timestamp = str(body.get("Timestamp", ""))
        amount = wire.whole_amount(body.get("Amount"))
        msisdn = str(body.get("PhoneNumber", ""))
        checks = [
            ("BusinessShortCode", wire.SHORTCODE.match(shortcode)),
            ("Timestamp", wire.TIMESTAMP.match(timestamp)),
            ("TransactionType", body.get("TransactionType") in wire.TRANSACTION_TYPES),
            ("Amount", amount is not None and amount >= 1),
            ("PartyA", wire.MSISDN.match(str(body.get("PartyA", "")))),
            ("PartyB", wire.DIGITS.match(str(body.get("PartyB", "")))),
            ("PhoneNumber", wire.MSISDN.match(msisdn)),
            ("CallBackURL", wire.is_callback_url(body.get("CallBackURL"))),
            ("AccountReference", _short_text(body.get("AccountReference"), 12)),
            ("Remarks", _short_text(body.get("TransactionDesc"), 13)),
        ]
        for field_name, ok in checks:
            if not ok:
                return wire.invalid(field_name)
        if not self._password_ok(shortcode, body.get("Password"), timestamp):
            return wire.error(500, "500.001.1001", "Wrong credentials")
        assert amount is not None

        now = time.monotonic()
        self._prune(now)
        scenario = scenario_for(msisdn)
        fault = PushFault.NONE
        if self.chaos is not None and scenario.behaviour is Behaviour.NORMAL:
            fault = self.chaos.push_fault(msisdn)
            if fault is PushFault.INVALID_TOKEN:  # revoked: the next push needs a new one
                self.tokens.pop(request.headers["authorization"].removeprefix("Bearer "), None)
            refused = self.chaos.refusal(fault, str(body["CallBackURL"]))
            if refused is not None:
                return refused
        if scenario.behaviour is Behaviour.LOCKED or (
            self.config.rule_subscriber_lock and self._subscriber_locked(msisdn, now)
        ):
            return wire.error(
                500,
                "500.001.1001",
                "Unable to lock subscriber, a transaction is already in process for the "
                "current subscriber",
            )
        result_code = scenario.result_code
        if amount > MAX_STK_AMOUNT:
            result_code = 3
        elif self.config.rule_same_amount and self._same_amount_recently(msisdn, amount, now):
            result_code = 17

        moment = datetime.now(UTC)
        push = SimulatedPush(
            checkout_request_id=wire.checkout_request_id(msisdn, moment),
            merchant_request_id=wire.request_id(),
            msisdn=msisdn,
            amount=amount,
            shortcode=shortcode,
            callback_url=str(body["CallBackURL"]),
            result_code=result_code,
            behaviour=scenario.behaviour,
            created_at=now,
            final_at=now + self.config.callback_delay,
            receipt=wire.receipt_number(moment) if result_code == 0 else None,
            transaction_date=wire.transaction_date(moment),
            party_b=str(body["PartyB"]),
            account_reference=str(body["AccountReference"]).strip(),
            buy_goods=body.get("TransactionType") == "CustomerBuyGoodsOnline",
            accepted_at=moment,
        )
        while push.checkout_request_id in self.pushes:  # same millisecond, same number
            push.checkout_request_id += str(secrets.randbelow(10))
        self._remember(push)
        log.info("simulator.stk.accepted", msisdn=msisdn, behaviour=push.behaviour.value)
        if self.chaos is not None:
            self.chaos.record_push(push)

        match push.behaviour:
            case Behaviour.LOST_CALLBACK:
                pass
            case Behaviour.SLOW_QUERY:
                push.pending_queries_left = self.config.pending_queries
            case Behaviour.EARLY_CALLBACK:
                push.final_at = now
                await self._deliver_callback(push)
            case Behaviour.DUPLICATE_CALLBACK:
                self._spawn(self._callback_later(push, copies=2))
            case Behaviour.HANGING_PUSH:
                # The customer pays after the client has given up on the push response.
                push.final_at = now + self.config.hang_seconds + self.config.callback_delay
                self._spawn(self._callback_later(push, copies=1))
            case Behaviour.NORMAL if self.chaos is not None:
                hung = fault is PushFault.HANG
                wait = self.config.callback_delay + (self.config.hang_seconds if hung else 0)
                callbacks = self.chaos.callback_fault(msisdn, hung=hung)
                self._spawn(deliver_stk_callbacks(
                    self.chaos, push, self._deliver_callback, fault=callbacks, wait=wait
                ))  # fmt: skip
                if hung:
                    await asyncio.sleep(self.config.hang_seconds)
            case Behaviour.NORMAL if self.prompts.interactive and push.result_code == 0:
                # Daraja's own rules (17, 3) still answer at once; only a real prompt waits.
                self.prompts.hold(push)
            case _:
                self._spawn(self._callback_later(push, copies=1))
        if push.behaviour is Behaviour.HANGING_PUSH:
            await asyncio.sleep(self.config.hang_seconds)

        message = "Success. Request accepted for processing"
        return JSONResponse(
            {
                "MerchantRequestID": push.merchant_request_id,
                "CheckoutRequestID": push.checkout_request_id,
                "ResponseCode": "0",
                "ResponseDescription": message,
                "CustomerMessage": message,
            }
        )

    async def stk_query(self, request: Request) -> JSONResponse:
        if not self._authorized(request):
            return wire.error(400, "400.003.01", "Invalid Access Token")
        try:
            body = await wire.read_json(request)
        except ValueError:
            return wire.error(400, "400.002.05", "Invalid Request Payload")
        if not isinstance(body, dict):
            return wire.error(400, "400.002.05", "Invalid Request Payload")
        shortcode = str(body.get("BusinessShortCode", ""))
        timestamp = str(body.get("Timestamp", ""))
        if not wire.SHORTCODE.match(shortcode):
            return wire.invalid("BusinessShortCode")
        if not wire.TIMESTAMP.match(timestamp):
            return wire.invalid("Timestamp")
        if not self._password_ok(shortcode, body.get("Password"), timestamp):
            return wire.error(500, "500.001.1001", "Wrong credentials")
        push = self.pushes.get(str(body.get("CheckoutRequestID", "")))
        if push is None:
            return wire.error(500, "500.001.1001", "The transaction does not Exist")
        now = time.monotonic()
        if not push.is_final(now):
            # Both "still processing" shapes seen in 2025-26 (daraja.md §4), alternating.
            if push.pending_queries_left > 0:
                push.pending_queries_left -= 1
            if push.pending_queries_left % 2 == 1:
                return wire.error(500, "500.001.1001", "")
            return JSONResponse(
                {"ResultCode": "4999", "ResultDesc": "The transaction is still under processing"}
            )
        return JSONResponse(
            {
                "ResponseCode": "0",
                "ResponseDescription": "The service request has been accepted successsfully",
                "MerchantRequestID": push.merchant_request_id,
                "CheckoutRequestID": push.checkout_request_id,
                "ResultCode": str(push.result_code),
                "ResultDesc": describe(push.result_code, for_query=True),
            }
        )

    def _build_app(self) -> FastAPI:
        app = FastAPI(title="pesaswitch Daraja simulator", openapi_url=None, docs_url=None)
        app.add_api_route("/oauth/v1/generate", self.oauth, methods=["GET"])
        app.add_api_route("/mpesa/stkpush/v1/processrequest", self.stk_push, methods=["POST"])
        app.add_api_route("/mpesa/stkpushquery/v1/query", self.stk_query, methods=["POST"])
        self.b2c.register(app)
        self.c2b.register(app, self.phone_app)
        self.reversals.register(app)

        async def health() -> dict[str, Any]:
            return {"status": "ok", "pushes": len(self.pushes)}

        app.add_api_route("/simulator/health", health, methods=["GET"])
        if self.chaos is not None:
            chaos = self.chaos

            async def truth() -> dict[str, Any]:
                return chaos.truth.as_json()

            app.add_api_route("/simulator/chaos/truth", truth, methods=["GET"])
        # Mounted last: the mount answers every other /simulator/… path.
        app.mount("/simulator", self.phone_app)
        return app


def _short_text(value: Any, limit: int) -> bool:
    return isinstance(value, str) and 0 < len(value.strip()) <= limit
