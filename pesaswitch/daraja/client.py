"""Async Daraja client: cached OAuth token, STK Push and STK Query with typed results,
and the initiator APIs (B2C, Transaction Status, Account Balance) built in ``b2c.py``.

One ``httpx.AsyncClient`` (and so one connection pool) serves every Daraja app; each app
(the gateway's own, or a merchant's credential) keeps its own token.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
import structlog

from pesaswitch.daraja import b2c, c2b
from pesaswitch.daraja.errors import DarajaBusinessError, DarajaTechnicalError
from pesaswitch.daraja.result_codes import INVALID_TOKEN_CODES
from pesaswitch.daraja.reversal import ReversalRequest, transaction_reversal
from pesaswitch.daraja.wire import (
    StkPushAccepted,
    StkPushRequest,
    StkResult,
    error_fields,
    parse_stk_query_answer,
    stk_password,
)
from pesaswitch.kit.clock import daraja_timestamp
from pesaswitch.kit.http import aiohttp_transport_of

log = structlog.get_logger(__name__)

# bandit B105: a URL path, not a password.
TOKEN_PATH = "/oauth/v1/generate"  # nosec B105
STK_PUSH_PATH = "/mpesa/stkpush/v1/processrequest"
STK_QUERY_PATH = "/mpesa/stkpushquery/v1/query"

# Refresh ahead of expiry so a token never dies in flight (daraja.md §1).
TOKEN_REFRESH_MARGIN = 60.0
# Daraja's answers are a few hundred bytes; what is read of one beyond this is dropped.
_ANSWER_KEEP_BYTES = 1 << 20

# Transport failures before any byte of the request was written, so Daraja cannot have
# acted on it: no connection could be made (ConnectError, ConnectTimeout), none was free
# in our own pool in time (PoolTimeout: httpx raises it while waiting for a connection,
# before writing), or the URL's scheme has no transport. Everything later (a write, read
# or protocol error) may have reached Daraja and stays "maybe sent".
NEVER_SENT = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
    httpx.UnsupportedProtocol,
)


@dataclass(frozen=True, slots=True)
class DarajaApp:
    consumer_key: str
    consumer_secret: str


@dataclass(slots=True)
class _Token:
    value: str
    expires_at: float


def _json_or_none(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


class DarajaClient:
    def __init__(self, http: httpx.AsyncClient, app: DarajaApp) -> None:
        self._http = http
        self._app = app
        self._token: _Token | None = None
        self._token_lock = asyncio.Lock()

    async def _fetch_token(self) -> _Token:
        basic = base64.b64encode(
            f"{self._app.consumer_key}:{self._app.consumer_secret}".encode()
        ).decode()
        try:
            response = await self._http.get(
                TOKEN_PATH,
                params={"grant_type": "client_credentials"},
                headers={"Authorization": f"Basic {basic}"},
            )
        except httpx.TimeoutException as exc:
            raise DarajaTechnicalError("OAuth timed out", maybe_sent=False, timeout=True) from exc
        except httpx.HTTPError as exc:
            raise DarajaTechnicalError(f"OAuth failed: {exc!r}", maybe_sent=False) from exc
        body = _json_or_none(response)
        if response.status_code == 200 and isinstance(body, dict) and "access_token" in body:
            # expires_in arrives as "3599" or 3599 depending on the era (daraja.md §1).
            expires_in = float(body.get("expires_in") or 3599)
            return _Token(str(body["access_token"]), time.monotonic() + expires_in)
        fields = error_fields(body)
        if response.status_code < 500:
            code, message = fields or ("400.008.01", "OAuth refused (empty body)")
            raise DarajaBusinessError(
                http_status=response.status_code, error_code=code, message=message
            )
        raise DarajaTechnicalError(f"OAuth HTTP {response.status_code}", maybe_sent=False)

    async def _access_token(self, *, refresh: bool = False) -> str:
        async with self._token_lock:
            token = self._token
            if (
                refresh
                or token is None
                or token.expires_at - TOKEN_REFRESH_MARGIN < time.monotonic()
            ):
                token = self._token = await self._fetch_token()
            return token.value

    async def _post(self, path: str, payload: dict[str, Any]) -> httpx.Response:
        """POST with a bearer token, refreshing it once on any invalid-token answer."""
        for attempt in (1, 2):
            token = await self._access_token(refresh=attempt == 2)
            try:
                response = await self._send(path, payload, token)
            except NEVER_SENT as exc:
                raise DarajaTechnicalError(f"not sent: {exc!r}", maybe_sent=False) from exc
            except httpx.TimeoutException as exc:
                # The request may have reached Daraja: the prompt could be on the phone.
                raise DarajaTechnicalError(
                    f"{path} timed out", maybe_sent=True, timeout=True
                ) from exc
            except httpx.HTTPError as exc:
                raise DarajaTechnicalError(f"{path} failed: {exc!r}", maybe_sent=True) from exc
            fields = error_fields(_json_or_none(response))
            if fields and fields[0] in INVALID_TOKEN_CODES and attempt == 1:
                log.info("daraja.token.rejected", code=fields[0])
                continue
            return response
        raise AssertionError("unreachable")  # pragma: no cover

    async def _send(self, path: str, payload: dict[str, Any], token: str) -> httpx.Response:
        """The POST itself: on the gateway's own client straight to aiohttp, which saves
        httpx's request pipeline (~a third of the push's client CPU by the gateway's
        profile, bench/issue-11-rounds.md); through httpx on any other (the tests'
        in-process simulator)."""
        headers = {"Authorization": f"Bearer {token}"}
        transport = aiohttp_transport_of(self._http)
        if transport is None:
            return await self._http.post(path, json=payload, headers=headers)
        status, content = await transport.post_capped(
            # As httpx merges them: the base URL's path, then this one (not an RFC join,
            # which would drop a base path such as the simulator's prefix).
            str(self._http.base_url).rstrip("/") + path,
            headers={**self._http.headers, "Content-Type": "application/json", **headers},
            body=json.dumps(payload, separators=(",", ":")).encode(),
            timeouts=self._http.timeout, sni_hostname=None, keep=_ANSWER_KEEP_BYTES,
        )  # fmt: skip
        return httpx.Response(status, content=content)

    async def stk_push(self, request: StkPushRequest) -> StkPushAccepted:
        response = await self._post(STK_PUSH_PATH, request.to_json(daraja_timestamp()))
        body = _json_or_none(response)
        if (
            response.status_code == 200
            and isinstance(body, dict)
            and str(body.get("ResponseCode")) == "0"
            and body.get("CheckoutRequestID")
        ):
            return StkPushAccepted(
                merchant_request_id=str(body.get("MerchantRequestID", "")),
                checkout_request_id=str(body["CheckoutRequestID"]),
                customer_message=str(body.get("CustomerMessage", "")),
            )
        fields = error_fields(body)
        if fields is not None and _is_business_refusal(response.status_code, fields[0]):
            raise DarajaBusinessError(
                http_status=response.status_code, error_code=fields[0], message=fields[1]
            )
        if response.status_code in NOT_PROCESSED_STATUSES:
            # The API gateway in front of Daraja turned the request away (RFC 9110: 503
            # "unable to handle the request", 429 too many): nothing reached the phone.
            # As "maybe sent" the payment would stay pending for ever, with no
            # CheckoutRequestID to query.
            raise DarajaTechnicalError(
                f"STK Push turned away: HTTP {response.status_code}", maybe_sent=False
            )
        raise DarajaTechnicalError(
            f"unexpected STK Push answer: HTTP {response.status_code}", maybe_sent=True
        )

    async def stk_query(
        self, *, business_shortcode: str, passkey: str, checkout_request_id: str
    ) -> StkResult | None:
        """The final or still-processing result, or None when Daraja gave no usable answer."""
        timestamp = daraja_timestamp()
        response = await self._post(
            STK_QUERY_PATH,
            {
                "BusinessShortCode": business_shortcode,
                "Password": stk_password(business_shortcode, passkey, timestamp),
                "Timestamp": timestamp,
                "CheckoutRequestID": checkout_request_id,
            },
        )
        return parse_stk_query_answer(response.status_code, _json_or_none(response))

    # Initiator APIs: each only acknowledges; the outcome arrives as a Result callback,
    # read with the parsers in ``daraja/b2c_results.py``.

    async def b2c_payment(self, request: b2c.B2CPaymentRequest) -> b2c.B2CAccepted:
        return await b2c.b2c_payment(self._post, request)

    async def transaction_status(self, request: b2c.TransactionStatusRequest) -> b2c.B2CAccepted:
        return await b2c.transaction_status(self._post, request)

    async def account_balance(self, request: b2c.AccountBalanceRequest) -> b2c.B2CAccepted:
        return await b2c.account_balance(self._post, request)

    # C2B (``daraja/c2b.py``): Register URL and Pull Transactions answer synchronously.

    async def register_c2b_urls(self, request: c2b.C2BRegisterRequest) -> c2b.C2BRegistered:
        return await c2b.register_urls(self._post, request)

    async def pull_transactions(
        self, *, shortcode: str, start: datetime, end: datetime, offset: int = 0
    ) -> list[c2b.PulledTransaction]:
        return await c2b.pull_transactions(
            self._post, shortcode=shortcode, start=start, end=end, offset=offset
        )

    async def transaction_reversal(self, request: ReversalRequest) -> b2c.B2CAccepted:
        return await transaction_reversal(self._post, request)


# HTTP statuses that say the request was not processed at all, whatever the body says.
NOT_PROCESSED_STATUSES = frozenset({429, 503})


def _is_business_refusal(http_status: int, error_code: str) -> bool:
    """Refusals that prove nothing was sent to the phone (daraja.md §2 error table)."""
    if 400 <= http_status < 500:
        return True
    # 500.001.1001 is overloaded (locked subscriber, wrong credentials, unknown merchant)
    # but every variant is a refusal; 500.003.02/03 are throttling. 500.003.1001 is not.
    return error_code in {"500.001.1001", "500.003.02", "500.003.03"}


class DarajaClients:
    """One client per Daraja app, all sharing one connection pool."""

    def __init__(self, http: httpx.AsyncClient, default_app: DarajaApp) -> None:
        self.http = http
        self.default_app = default_app
        self._clients: dict[DarajaApp, DarajaClient] = {}

    def for_app(self, app: DarajaApp | None = None) -> DarajaClient:
        key = app or self.default_app
        client = self._clients.get(key)
        if client is None:
            client = self._clients[key] = DarajaClient(self.http, key)
        return client

    async def aclose(self) -> None:
        await self.http.aclose()
