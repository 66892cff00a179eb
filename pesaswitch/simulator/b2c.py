"""The simulator's initiator APIs: B2C payouts, Transaction Status and Account Balance.

Like Daraja, each request is only acknowledged; the outcome goes to ResultURL as a
``Result`` callback after ``callback_delay``. The recipient's test number picks the
behaviour (``scenarios.py``), then Daraja's B2C rules apply in the order Daraja checks
them: the initiator (2001), the amount limits (2, 3), the test number's code, and the
shortcode's Utility balance (1). State lives in memory, as for STK.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import httpx
import structlog
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

from pesaswitch.kit import crypto
from pesaswitch.simulator import b2c_wire, wire
from pesaswitch.simulator.b2c_wire import SimulatedPayout
from pesaswitch.simulator.c2b_wire import StatusLookup, status_result_body
from pesaswitch.simulator.chaos import Chaos, deliver_b2c_results
from pesaswitch.simulator.credentials import SimulatorKeys
from pesaswitch.simulator.scenarios import Behaviour, scenario_for

if TYPE_CHECKING:  # app.py imports this module to build the app
    from pesaswitch.simulator.app import SimulatorConfig

log = structlog.get_logger(__name__)

# Daraja's B2C limits (daraja.md §10): KES 10 to 250,000 per payout.
MIN_B2C_AMOUNT = 10
MAX_B2C_AMOUNT = 250_000
# Payouts are remembered this long for duplicate checks and status queries.
PAYOUT_MEMORY = 86_400.0

Spawn = Callable[[Coroutine[Any, Any, None]], None]


class B2CSimulator:
    """Part of ``Simulator``: it shares its tokens, its callback client and its tasks."""

    def __init__(
        self,
        config: SimulatorConfig,
        *,
        spawn: Spawn,
        authorized: Callable[[Request], bool],
        callback_http: Callable[[], httpx.AsyncClient],
        chaos: Chaos | None = None,
    ) -> None:
        self.config = config
        self._spawn = spawn
        self._authorized = authorized
        self._callback_http = callback_http
        self.chaos = chaos
        self.keys = SimulatorKeys()
        self.payouts: dict[str, SimulatedPayout] = {}  # by OriginatorConversationID
        # Other receipts Transaction Status can answer for (C2B and STK: ``c2b.py``).
        self.status_lookups: list[StatusLookup] = []
        self.accounts: dict[str, b2c_wire.ShortcodeAccounts] = {}

    def register(self, app: FastAPI) -> None:
        app.add_api_route("/mpesa/b2c/v3/paymentrequest", self.payment, methods=["POST"])
        app.add_api_route(
            "/mpesa/transactionstatus/v1/query", self.transaction_status, methods=["POST"]
        )
        app.add_api_route("/mpesa/accountbalance/v1/query", self.account_balance, methods=["POST"])
        app.add_api_route("/simulator/certificate", self.certificate, methods=["GET"])

    def accounts_for(self, shortcode: str) -> b2c_wire.ShortcodeAccounts:
        accounts = self.accounts.get(shortcode)
        if accounts is None:
            utility = Decimal(self.config.b2c_utility_balance)
            accounts = self.accounts[shortcode] = b2c_wire.ShortcodeAccounts(utility)
        return accounts

    def find_payout(self, transaction_id: str, originator_id: str) -> SimulatedPayout | None:
        if transaction_id:
            return next(
                (p for p in self.payouts.values() if p.transaction_id == transaction_id), None
            )
        return self.payouts.get(originator_id)

    # --- HTTP ------------------------------------------------------------------------

    async def certificate(self) -> Response:
        # What Safaricom publishes on its portal; the gateway encrypts with it.
        return Response(self.keys.certificate_pem, media_type="application/x-pem-file")

    async def payment(self, request: Request) -> JSONResponse:
        body = await self._authorized_body(request, ("401.002.01", 401))
        if isinstance(body, JSONResponse):
            return body
        originator_id = body.get("OriginatorConversationID")
        amount = wire.whole_amount(body.get("Amount"))
        party_a = str(body.get("PartyA", ""))
        party_b = str(body.get("PartyB", ""))
        # The sandbox takes both spellings (daraja.md §6).
        occasion = body.get("Occassion", body.get("Occasion"))
        invalid = _first_invalid(
            ("OriginatorConversationID", _text(originator_id, 1, 100)),
            ("InitiatorName", _text(body.get("InitiatorName"), 1, 100)),
            ("SecurityCredential", _text(body.get("SecurityCredential"), 1, 4096)),
            ("CommandID", body.get("CommandID") in b2c_wire.B2C_COMMANDS),
            ("Amount", amount is not None and amount >= 1),
            ("PartyA", wire.SHORTCODE.match(party_a)),
            ("PartyB", wire.MSISDN.match(party_b)),
            ("Remarks", _text(body.get("Remarks"), 2, 100)),
            ("QueueTimeOutURL", wire.is_callback_url(body.get("QueueTimeOutURL"))),
            ("ResultURL", wire.is_callback_url(body.get("ResultURL"))),
            ("Occassion", occasion in (None, "") or _text(occasion, 1, 100)),
        )
        if invalid is not None:
            return invalid
        assert isinstance(originator_id, str)
        assert amount is not None
        now = time.monotonic()
        self._prune(now)
        if originator_id in self.payouts:
            return wire.error(500, "500.002.1001", "Duplicate OriginatorConversationID.")

        scenario = scenario_for(party_b)
        accounts = self.accounts_for(party_a)
        config = self.config
        if not self._initiator_ok(body.get("InitiatorName"), body.get("SecurityCredential")):
            result_code = 2001
        elif config.rule_b2c_min_amount and amount < MIN_B2C_AMOUNT:
            result_code = 2
        elif config.rule_b2c_max_amount and amount > MAX_B2C_AMOUNT:
            result_code = 3
        elif scenario.result_code:
            result_code = scenario.result_code
        elif config.rule_b2c_utility_balance and accounts.utility < amount:
            result_code = 1
        else:
            result_code = 0
        if result_code == 0 and scenario.behaviour is not Behaviour.QUEUE_TIMEOUT:
            accounts.utility -= amount
            accounts.charges_paid -= b2c_wire.B2C_CHARGE

        moment = datetime.now(UTC)
        payout = SimulatedPayout(
            originator_conversation_id=originator_id,
            conversation_id=b2c_wire.conversation_id(moment),
            transaction_id=wire.receipt_number(moment),
            command_id=str(body["CommandID"]),
            amount=amount,
            party_a=party_a,
            party_b=party_b,
            result_url=str(body["ResultURL"]),
            queue_timeout_url=str(body["QueueTimeOutURL"]),
            result_code=result_code,
            behaviour=scenario.behaviour,
            created_at=now,
            final_at=now + config.callback_delay,
            initiated=moment,
            balances=accounts.snapshot(),
        )
        self.payouts[originator_id] = payout
        log.info("simulator.b2c.accepted", party_b=party_b, behaviour=payout.behaviour.value)
        if self.chaos is not None:
            self.chaos.record_payout(
                originator_id, result_code, payout.transaction_id, executed=payout.executed,
                amount=amount,
            )  # fmt: skip

        match payout.behaviour:
            case Behaviour.LOST_CALLBACK:
                pass
            case Behaviour.EARLY_CALLBACK:
                payout.final_at = now
                payout.results_sent.append(await self._send_result(payout))
            case Behaviour.DUPLICATE_CALLBACK:
                self._spawn(self._result_later(payout, copies=2))
            case Behaviour.QUEUE_TIMEOUT:
                self._spawn(self._queue_timeout_later(payout))
            case Behaviour.NORMAL if self.chaos is not None:
                fault = self.chaos.result_fault(party_b)
                self._spawn(deliver_b2c_results(
                    self.chaos, payout, self._send_result, fault=fault, wait=config.callback_delay
                ))  # fmt: skip
            case Behaviour.HANGING_PUSH:
                # Paid, but the client has given up on the HTTP answer by then.
                payout.final_at = now + config.hang_seconds + config.callback_delay
                self._spawn(self._result_later(payout, copies=1))
            case _:
                self._spawn(self._result_later(payout, copies=1))
        if payout.behaviour is Behaviour.HANGING_PUSH:
            await asyncio.sleep(config.hang_seconds)
        return JSONResponse(b2c_wire.acknowledgement(originator_id, payout.conversation_id))

    async def transaction_status(self, request: Request) -> JSONResponse:
        # Transaction Status reports a bad token like STK Query does (daraja.md §8).
        body = await self._authorized_body(request, ("400.003.01", 400))
        if isinstance(body, JSONResponse):
            return body
        transaction_id = str(body.get("TransactionID") or "").strip()
        # daraja.md §7 names it OriginalConversationID; some SDKs send the B2C name.
        originator_id = str(
            body.get("OriginalConversationID") or body.get("OriginatorConversationID") or ""
        ).strip()
        invalid = self._initiator_fields_invalid(body, "TransactionStatusQuery") or (
            _first_invalid(("TransactionID", bool(transaction_id or originator_id)))
        )
        if invalid is not None:
            return invalid
        credential_ok = self._initiator_ok(body.get("Initiator"), body.get("SecurityCredential"))
        ack, query = self._query_ids()

        async def answer() -> None:
            await asyncio.sleep(self.config.callback_delay)
            payout = self.find_payout(transaction_id, originator_id)
            found = next(
                (p for look in self.status_lookups if (p := look(transaction_id, originator_id))),
                None,
            )
            if not credential_ok:
                result = b2c_wire.failed_query_body(2001, *query)
            elif payout is None and found is not None:
                txid = wire.receipt_number(datetime.now(UTC))
                result = status_result_body(found, *query, transaction_id=txid)
            elif (
                payout is None
                or not payout.executed
                or (
                    self.chaos is not None
                    and self.chaos.unknown_to_status(payout.originator_conversation_id)
                )
            ):
                result = b2c_wire.failed_query_body(2032, *query)
            else:
                result = b2c_wire.transaction_status_body(
                    payout,
                    originator_conversation_id=query[0],
                    conversation=query[1],
                    transaction_id=wire.receipt_number(datetime.now(UTC)),
                    now=time.monotonic(),
                )
            await self._post(str(body["ResultURL"]), result)

        self._spawn(answer())
        return JSONResponse(ack)

    async def account_balance(self, request: Request) -> JSONResponse:
        body = await self._authorized_body(request, ("401.002.01", 401))
        if isinstance(body, JSONResponse):
            return body
        invalid = self._initiator_fields_invalid(body, "AccountBalance")
        if invalid is not None:
            return invalid
        credential_ok = self._initiator_ok(body.get("Initiator"), body.get("SecurityCredential"))
        shortcode = str(body["PartyA"])
        ack, query = self._query_ids()

        async def answer() -> None:
            await asyncio.sleep(self.config.callback_delay)
            if not credential_ok:
                result = b2c_wire.failed_query_body(2001, *query, as_strings=True)
            else:
                result = b2c_wire.account_balance_body(
                    self.accounts_for(shortcode),
                    originator_conversation_id=query[0],
                    conversation=query[1],
                    transaction_id=wire.receipt_number(datetime.now(UTC)),
                    moment=datetime.now(UTC),
                )
            await self._post(str(body["ResultURL"]), result)

        self._spawn(answer())
        return JSONResponse(ack)

    # --- helpers ---------------------------------------------------------------------

    async def _authorized_body(
        self, request: Request, bad_token: tuple[str, int]
    ) -> dict[str, Any] | JSONResponse:
        if not self._authorized(request):
            token = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
            code, status = bad_token
            return wire.error(status, code, f"Error Occurred - Invalid Access Token - {token}")
        try:
            body = await wire.read_json(request)
        except ValueError:
            return wire.error(400, "400.002.05", "Invalid Request Payload")
        if not isinstance(body, dict):
            return wire.error(400, "400.002.05", "Invalid Request Payload")
        return body

    def _initiator_fields_invalid(
        self, body: dict[str, Any], command_id: str
    ) -> JSONResponse | None:
        """The fields Transaction Status and Account Balance share (daraja.md §7)."""
        return _first_invalid(
            ("Initiator", _text(body.get("Initiator"), 1, 100)),
            ("SecurityCredential", _text(body.get("SecurityCredential"), 1, 4096)),
            ("CommandID", body.get("CommandID") == command_id),
            ("PartyA", wire.DIGITS.match(str(body.get("PartyA", "")))),
            ("IdentifierType", str(body.get("IdentifierType")) in b2c_wire.IDENTIFIER_TYPES),
            ("Remarks", _text(body.get("Remarks"), 1, 100)),
            ("QueueTimeOutURL", wire.is_callback_url(body.get("QueueTimeOutURL"))),
            ("ResultURL", wire.is_callback_url(body.get("ResultURL"))),
        )

    def _initiator_ok(self, name: Any, credential: Any) -> bool:
        # A wrong name, password or certificate all end as ResultCode 2001 (daraja.md §12).
        password = self.keys.decrypt(credential) if isinstance(credential, str) else None
        return (
            name == self.config.initiator_name
            and password is not None
            and crypto.secrets_equal(password, self.config.initiator_password)
        )

    @staticmethod
    def _query_ids() -> tuple[dict[str, Any], tuple[str, str]]:
        """The acknowledgement of a query, and the (Originator)ConversationID it names."""
        moment = datetime.now(UTC)
        ids = (wire.request_id(), b2c_wire.conversation_id(moment))
        return b2c_wire.acknowledgement(*ids), ids

    def _prune(self, now: float) -> None:
        stale = [k for k, p in self.payouts.items() if now - p.created_at > PAYOUT_MEMORY]
        for key in stale:
            del self.payouts[key]

    async def _post(self, url: str, body: dict[str, Any]) -> int:
        """Deliver once, never retry (daraja.md §3); 0 when the receiver was unreachable."""
        try:
            response = await self._callback_http().post(
                url,
                content=json.dumps(body).encode(),
                headers={"Content-Type": "application/json"},
            )
        except httpx.HTTPError as exc:
            log.warning("simulator.result.failed", url=url, error=repr(exc))
            return 0
        return response.status_code

    async def _send_result(self, payout: SimulatedPayout) -> int:
        return await self._post(payout.result_url, b2c_wire.b2c_result_body(payout))

    async def _result_later(self, payout: SimulatedPayout, copies: int) -> None:
        await asyncio.sleep(max(0.0, payout.final_at - time.monotonic()))
        sent = await asyncio.gather(*(self._send_result(payout) for _ in range(copies)))
        payout.results_sent.extend(sent)

    async def _queue_timeout_later(self, payout: SimulatedPayout) -> None:
        await asyncio.sleep(max(0.0, payout.final_at - time.monotonic()))
        sent = await self._post(payout.queue_timeout_url, b2c_wire.queue_timeout_body(payout))
        payout.results_sent.append(sent)


def _first_invalid(*checks: tuple[str, object]) -> JSONResponse | None:
    """Daraja names the first bad field: ``400.002.02 Bad Request - Invalid <Field>``."""
    for field_name, ok in checks:
        if not ok:
            return wire.invalid(field_name)
    return None


def _text(value: Any, shortest: int, longest: int) -> bool:
    return isinstance(value, str) and shortest <= len(value.strip()) <= longest
