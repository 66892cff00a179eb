"""The simulator's C2B: Register URL, customers paying a till or paybill unprompted
(validation first, then confirmation), and Pull Transactions (which also lists the paid
STK pushes into the shortcode, ``c2b_wire.stk_statement``).

A payment is played by Daraja's sandbox ``/mpesa/c2b/v2/simulate`` or by the
simulator's own ``POST /simulator/c2b/pay {shortcode, amount, msisdn, bill_ref}`` (also
the sandbox phone's "Pay a till/paybill" form). The payer's test number picks the
faults, as for STK: ``254711990002`` loses the confirmation (only Pull Transactions
knows of the payment), ``254711990003`` sends it twice at once. ``confirm`` in the
body ("lost", "duplicate") asks for the same with any number.

Like Daraja, the validation URL gets about 8 s; after that, or if it cannot be read,
the registered ResponseType decides (Completed: go on, Cancelled: cancel).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import httpx
import structlog
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response

from pesaswitch.kit.clock import NAIROBI
from pesaswitch.kit.phones import check_phone
from pesaswitch.simulator import wire
from pesaswitch.simulator.c2b_wire import (
    PAYER,
    StatementEntry,
    StkStatement,
    parse_pay,
    problem,
)
from pesaswitch.simulator.scenarios import Behaviour, scenario_for

log = structlog.get_logger(__name__)

Spawn = Callable[[Coroutine[Any, Any, None]], None]

RESPONSE_TYPES = {"Completed", "Cancelled"}
COMMANDS = {"CustomerPayBillOnline": "Pay Bill", "CustomerBuyGoodsOnline": "Buy Goods"}
# Words Daraja refuses in callback URLs (daraja.md §2, the C2B page).
FORBIDDEN_URL_WORDS = ("mpesa", "m-pesa", "safaricom", "sql", "exec", "cmd", "query")
VALIDATION_BUDGET = 8.0
PULL_PAGE = 100
PULL_TIME = "%Y-%m-%d %H:%M:%S"
RECENT = 10


@dataclass(slots=True)
class Registration:
    shortcode: str
    response_type: str
    confirmation_url: str
    validation_url: str
    version: str  # v1 hashes the MSISDN, v2 masks it


@dataclass(slots=True)
class SimulatedC2B:
    trans_id: str
    shortcode: str
    command: str
    amount: int
    msisdn: str
    bill_ref: str
    moment: datetime
    # completed | rejected (validation said no) | cancelled (ResponseType Cancelled)
    status: str = "completed"
    validation_code: str | None = None
    confirmations_sent: list[int] = field(default_factory=list)

    @property
    def trans_time(self) -> str:
        return self.moment.astimezone(NAIROBI).strftime("%Y%m%d%H%M%S")


def masked(msisdn: str) -> str:
    """Daraja v2's form, ``2547 ***** 149``."""
    return f"{msisdn[:4]} ***** {msisdn[-3:]}"


def _url_ok(value: Any) -> bool:
    return wire.is_callback_url(value) and not any(
        word in str(value).lower() for word in FORBIDDEN_URL_WORDS
    )


class C2BSimulator:
    """Part of ``Simulator``: it shares its tokens, its callback client and its tasks."""

    def __init__(
        self,
        *,
        spawn: Spawn,
        authorized: Callable[[Request], bool],
        callback_http: Callable[[], httpx.AsyncClient],
        validation_budget: float = VALIDATION_BUDGET,
        register_once: bool = False,
        stk_statement: StkStatement | None = None,
    ) -> None:
        self._spawn = spawn
        self._authorized = authorized
        self._callback_http = callback_http
        self.validation_budget = validation_budget
        # Production refuses a second registration; the sandbox lets it replace the first.
        self.register_once = register_once
        self.registrations: dict[str, Registration] = {}
        self.transactions: list[SimulatedC2B] = []
        self.balances: dict[str, int] = {}
        self.pull_registrations: dict[str, str] = {}
        # Paid STK pushes are on the statement too (Simulator passes its pushes).
        self._stk_statement = stk_statement or (lambda _shortcode: [])

    def register(self, app: FastAPI, phone_app: FastAPI) -> None:
        for version in ("v1", "v2"):
            app.add_api_route(
                f"/mpesa/c2b/{version}/registerurl", self._register_url(version), methods=["POST"]
            )
            app.add_api_route(f"/mpesa/c2b/{version}/simulate", self.simulate, methods=["POST"])
        app.add_api_route("/pulltransactions/v1/register", self.pull_register, methods=["POST"])
        app.add_api_route("/pulltransactions/v1/query", self.pull_query, methods=["POST"])
        # On the phone app, so that it is reachable wherever the sandbox phone is mounted.
        phone_app.add_api_route("/c2b/pay", self.pay_json, methods=["POST"])
        phone_app.add_api_route("/phone/c2b", self.pay_form, methods=["POST"])

    def recent_for(self, msisdn: str) -> list[SimulatedC2B]:
        """The number's till/paybill payments, newest first (the sandbox phone shows them)."""
        return [t for t in reversed(self.transactions) if t.msisdn == msisdn][:RECENT]

    def find(self, trans_id: str) -> SimulatedC2B | None:
        return next((t for t in self.transactions if t.trans_id == trans_id), None)

    # --- Daraja's API ----------------------------------------------------------------

    async def _body(self, request: Request) -> dict[str, Any] | JSONResponse:
        if not self._authorized(request):
            return wire.error(400, "400.003.01", "Invalid Access Token")
        try:
            body = await request.json()
        except ValueError:
            return wire.error(400, "400.002.05", "Invalid Request Payload")
        if not isinstance(body, dict):
            return wire.error(400, "400.002.05", "Invalid Request Payload")
        return body

    def _register_url(self, version: str) -> Callable[[Request], Coroutine[Any, Any, Any]]:
        async def register_url(request: Request) -> JSONResponse:
            body = await self._body(request)
            if isinstance(body, JSONResponse):
                return body
            shortcode = str(body.get("ShortCode", ""))
            checks = (
                ("ShortCode", wire.SHORTCODE.match(shortcode)),
                ("ResponseType", body.get("ResponseType") in RESPONSE_TYPES),
                ("ConfirmationURL", _url_ok(body.get("ConfirmationURL"))),
                ("ValidationURL", _url_ok(body.get("ValidationURL"))),
            )
            for name, ok in checks:
                if not ok:
                    return wire.invalid(name)
            if self.register_once and shortcode in self.registrations:
                return wire.error(500, "500.003.1001", "Urls are already registered.")
            self.registrations[shortcode] = Registration(
                shortcode, str(body["ResponseType"]), str(body["ConfirmationURL"]),
                str(body["ValidationURL"]), version,
            )  # fmt: skip
            log.info("simulator.c2b.registered", shortcode=shortcode, version=version)
            return JSONResponse(
                # Sic: Daraja's own spelling (daraja.md §7).
                {"OriginatorCoversationID": wire.request_id(), "ResponseCode": "0",
                 "ResponseDescription": "Success"}
            )  # fmt: skip

        return register_url

    async def simulate(self, request: Request) -> JSONResponse:
        """Daraja's sandbox-only simulate: acknowledged, then played in the background."""
        body = await self._body(request)
        if isinstance(body, JSONResponse):
            return body
        shortcode = str(body.get("ShortCode", ""))
        amount = wire.whole_amount(body.get("Amount"))
        msisdn = str(body.get("Msisdn", ""))
        checks = (
            ("ShortCode", wire.SHORTCODE.match(shortcode)),
            ("CommandID", body.get("CommandID") in COMMANDS),
            ("Amount", amount is not None and amount >= 1),
            ("Msisdn", wire.MSISDN.match(msisdn)),
        )
        for name, ok in checks:
            if not ok:
                return wire.invalid(name)
        assert amount is not None
        self._spawn(
            self._play_quietly(
                shortcode=shortcode, amount=amount, msisdn=msisdn,
                bill_ref=str(body.get("BillRefNumber") or "")[:100],
                command=str(body["CommandID"]),
            )
        )  # fmt: skip
        return JSONResponse(
            {"OriginatorCoversationID": wire.request_id(), "ResponseCode": "0",
             "ResponseDescription": "Accept the service request successfully."}
        )  # fmt: skip

    async def pull_register(self, request: Request) -> JSONResponse:
        # The answer's field names are the simulator's best reading of the docs (UNCERTAIN).
        body = await self._body(request)
        if isinstance(body, JSONResponse):
            return body
        shortcode = str(body.get("ShortCode", ""))
        if not wire.SHORTCODE.match(shortcode):
            return wire.invalid("ShortCode")
        if not _url_ok(body.get("CallBackURL")):
            return wire.invalid("CallBackURL")
        self.pull_registrations[shortcode] = str(body["CallBackURL"])
        return JSONResponse(
            {"ResponseRefID": wire.request_id(), "ResponseStatus": "1000",
             "ShortCode": shortcode, "ResponseDescription": "Shortcode Registered Successfully"}
        )  # fmt: skip

    async def pull_query(self, request: Request) -> JSONResponse:
        body = await self._body(request)
        if isinstance(body, JSONResponse):
            return body
        shortcode = str(body.get("ShortCode", ""))
        try:
            start = datetime.strptime(str(body.get("StartDate")), PULL_TIME)
            end = datetime.strptime(str(body.get("EndDate")), PULL_TIME)
        except ValueError:
            return wire.invalid("StartDate")
        offset = str(body.get("OffSetValue", "0"))
        if not wire.SHORTCODE.match(shortcode):
            return wire.invalid("ShortCode")
        if not offset.isdigit():
            return wire.invalid("OffSetValue")
        if end < start or end - start > timedelta(hours=48):
            return wire.invalid("EndDate")  # Daraja keeps 48 hours
        everything = [
            StatementEntry(t.trans_id, t.moment, t.msisdn, t.command != "CustomerPayBillOnline",
                           t.bill_ref, t.amount)
            for t in self.transactions if t.shortcode == shortcode and t.status == "completed"
        ] + self._stk_statement(shortcode)  # fmt: skip
        rows = sorted(
            (e for e in everything
             if start <= e.moment.astimezone(NAIROBI).replace(tzinfo=None, microsecond=0) <= end),
            key=lambda e: e.moment,
        )  # fmt: skip
        page = rows[int(offset) : int(offset) + PULL_PAGE]
        return JSONResponse(
            {
                "ResponseRefID": wire.request_id(), "ResponseCode": "1000",
                "ResponseMessage": "Success",
                "Response": [[
                    {"transactionId": e.trans_id,
                     "trxDate": e.moment.astimezone(NAIROBI).strftime("%Y-%m-%dT%H:%M:%SZ"),
                     "msisdn": int(e.msisdn), "sender": "UNKNOWN",
                     "transactiontype": "c2b-buy-goods-debit" if e.buy_goods
                     else "c2b-pay-bill-debit",
                     "billreference": e.bill_ref, "amount": f"{e.amount}.00",
                     "organizationname": f"Sandbox business {shortcode}"}
                    for e in page
                ]],
            }
        )  # fmt: skip

    # --- the simulator's own API -------------------------------------------------------

    async def pay_json(self, request: Request) -> JSONResponse:
        try:
            body = json.loads(await request.body() or b"null")
        except ValueError:
            return problem(400, "invalid_json", "The body is not JSON")
        if not isinstance(body, dict):
            return problem(400, "invalid_json", "Send a JSON object")
        parsed = parse_pay(body)
        if isinstance(parsed, JSONResponse):
            return parsed
        played = await self.play(**parsed)
        return JSONResponse(
            {"trans_id": played.trans_id, "status": played.status,
             "validation_result_code": played.validation_code,
             "confirmations_sent": played.confirmations_sent},
            status_code=201,
        )  # fmt: skip

    async def pay_form(self, request: Request) -> Response:
        """The sandbox phone's "Pay a till/paybill" form; back to the phone with a notice."""
        form = await request.form()
        values = {key: str(form.get(key) or "").strip() for key in
                  ("msisdn", "shortcode", "amount", "bill_ref", "kind")}  # fmt: skip
        page = str(request.url_for("phone_page").path)
        msisdn = check_phone(values["msisdn"]).normalized
        amount: Any = int(values["amount"]) if values["amount"].isdigit() else None
        parsed = parse_pay({**values, "amount": amount})
        if isinstance(parsed, JSONResponse) or msisdn is None:
            notice = "c2b_invalid"
        else:
            notice = f"c2b_{(await self.play(**parsed)).status}"
        query = urlencode({"msisdn": msisdn or "", "notice": notice})
        return RedirectResponse(f"{page}?{query}", status_code=303)

    # --- a customer paying -------------------------------------------------------------

    async def _play_quietly(self, **kw: Any) -> None:
        await self.play(**kw)

    def _notice(
        self, tx: SimulatedC2B, registration: Registration, *, confirmation: bool
    ) -> dict[str, Any]:
        if registration.version == "v1":
            shown = hashlib.sha256(tx.msisdn.encode()).hexdigest()
        else:
            shown = masked(tx.msisdn)
        first, middle, last = PAYER
        return {
            "TransactionType": COMMANDS.get(tx.command, "Pay Bill"), "TransID": tx.trans_id,
            "TransTime": tx.trans_time, "TransAmount": f"{tx.amount}.00",
            "BusinessShortCode": tx.shortcode, "BillRefNumber": tx.bill_ref,
            "InvoiceNumber": "", "ThirdPartyTransID": "", "MSISDN": shown,
            # Blank in validation requests (daraja.md §7).
            "OrgAccountBalance": f"{self.balances.get(tx.shortcode, 0)}.00" if confirmation else "",
            "FirstName": first, "MiddleName": middle, "LastName": last,
        }  # fmt: skip

    async def _post(
        self, url: str, body: dict[str, Any], seconds: float | None
    ) -> httpx.Response | None:
        try:
            return await self._callback_http().post(
                url, content=json.dumps(body).encode(),
                headers={"Content-Type": "application/json"},
                timeout=seconds,
            )  # fmt: skip
        except httpx.HTTPError as exc:
            log.warning("simulator.c2b.post_failed", error=repr(exc))
            return None

    async def _validate(self, tx: SimulatedC2B, registration: Registration) -> bool:
        """True: go on. The ResponseType decides when the answer is late or unreadable."""
        body = self._notice(tx, registration, confirmation=False)
        try:
            async with asyncio.timeout(self.validation_budget):
                response = await self._post(
                    registration.validation_url, body, self.validation_budget
                )
        except TimeoutError:
            response = None
        code = None
        if response is not None and response.status_code == 200:
            try:
                answer = response.json()
            except ValueError:
                answer = None
            if isinstance(answer, dict):
                code = str(answer.get("ResultCode", "")).strip() or None
        if code == "0" or (code or "").startswith("C2B000"):
            tx.validation_code = code
            return code == "0"
        tx.validation_code = None
        return registration.response_type == "Completed"

    async def play(
        self, *, shortcode: str, amount: int, msisdn: str, bill_ref: str,
        command: str = "CustomerPayBillOnline", confirm: str | None = None,
    ) -> SimulatedC2B:  # fmt: skip
        moment = datetime.now(UTC)
        tx = SimulatedC2B(
            trans_id=wire.receipt_number(moment), shortcode=shortcode, command=command,
            amount=amount, msisdn=msisdn, bill_ref=bill_ref, moment=moment,
        )  # fmt: skip
        while self.find(tx.trans_id) is not None:
            tx.trans_id = wire.receipt_number(moment)
        self.transactions.append(tx)
        registration = self.registrations.get(shortcode)
        if registration is not None and not await self._validate(tx, registration):
            tx.status = "rejected" if tx.validation_code else "cancelled"
            log.info("simulator.c2b.refused", trans_id=tx.trans_id, status=tx.status)
            return tx
        self.balances[shortcode] = self.balances.get(shortcode, 0) + amount
        behaviour = scenario_for(msisdn).behaviour
        copies = 1
        if confirm == "lost" or behaviour is Behaviour.LOST_CALLBACK:
            copies = 0
        elif confirm == "duplicate" or behaviour is Behaviour.DUPLICATE_CALLBACK:
            copies = 2
        if registration is None or copies == 0:
            return tx  # paid; only Pull Transactions will tell
        body = self._notice(tx, registration, confirmation=True)
        answers = await asyncio.gather(
            *(self._post(registration.confirmation_url, body, 10.0) for _ in range(copies))
        )
        tx.confirmations_sent.extend(0 if a is None else a.status_code for a in answers)
        return tx

    # --- Transaction Status of a C2B receipt (``b2c.py`` asks) ----------------------------

    def status_parameters(
        self, transaction_id: str, _originator: str
    ) -> list[tuple[str, Any]] | None:
        tx = self.find(transaction_id) if transaction_id else None
        if tx is None or tx.status != "completed":
            return None
        when = tx.trans_time
        return [
            ("DebitPartyName", f"{tx.msisdn} - {' '.join(p for p in PAYER if p)}"),
            ("CreditPartyName", f"{tx.shortcode} - Sandbox business"),
            ("OriginatorConversationID", ""), ("InitiatedTime", when),
            ("DebitAccountType", "MMF Account For Customer"), ("DebitPartyCharges", ""),
            ("TransactionReason", ""), ("ReasonType", COMMANDS.get(tx.command, "Pay Bill")),
            ("TransactionStatus", "Completed"), ("FinalisedTime", when),
            ("Amount", float(tx.amount)), ("ConversationID", ""), ("ReceiptNo", tx.trans_id),
        ]  # fmt: skip
