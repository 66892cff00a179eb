"""Questions ``pesaswitch doctor`` asks Daraja, answered raw.

``DarajaClient`` hides what a go-live check needs: the HTTP answer's ``Date`` header (to
compare clocks) and the exact error of a refused request (to tell a wrong passkey from a
good one). Nothing here moves money or reaches a phone: one OAuth request and one STK
Query for a CheckoutRequestID that cannot exist.
"""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from enum import StrEnum
from typing import Any

import httpx

from pesaswitch.daraja.client import STK_QUERY_PATH, TOKEN_PATH, DarajaApp
from pesaswitch.daraja.wire import error_fields, stk_password
from pesaswitch.kit.clock import daraja_timestamp, utcnow


@dataclass(frozen=True, slots=True)
class Answer:
    """One HTTP exchange with Daraja, with the local clock read around it."""

    status: int
    error_code: str | None
    error_message: str
    body: Any
    # Naive UTC, like ``kit.clock.utcnow()``: the local clock before and after.
    sent_at: datetime
    received_at: datetime
    server_date: datetime | None


class Unreachable(Exception):
    """No HTTP answer at all: DNS, connection, TLS or timeout."""


def _server_date(response: httpx.Response) -> datetime | None:
    raw = response.headers.get("date")
    if not raw:
        return None
    try:
        parsed = parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    if parsed.tzinfo is None:  # RFC 9110 dates are GMT
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC).replace(tzinfo=None)


async def _exchange(http: httpx.AsyncClient, request: httpx.Request) -> Answer:
    sent_at = utcnow()
    try:
        response = await http.send(request)
    except httpx.HTTPError as exc:
        raise Unreachable(f"{type(exc).__name__}: {exc}") from exc
    received_at = utcnow()
    try:
        body: Any = response.json()
    except ValueError:
        body = None
    fields = error_fields(body)
    return Answer(
        status=response.status_code,
        error_code=fields[0] if fields else None,
        error_message=fields[1] if fields else "",
        body=body,
        sent_at=sent_at,
        received_at=received_at,
        server_date=_server_date(response),
    )


async def request_token(http: httpx.AsyncClient, app: DarajaApp) -> tuple[str | None, Answer]:
    """The access token (None when refused) and the answer it came in."""
    basic = base64.b64encode(f"{app.consumer_key}:{app.consumer_secret}".encode()).decode()
    request = http.build_request(
        "GET",
        TOKEN_PATH,
        params={"grant_type": "client_credentials"},
        headers={"Authorization": f"Basic {basic}"},
    )
    answer = await _exchange(http, request)
    token = None
    if answer.status == 200 and isinstance(answer.body, dict):
        token = answer.body.get("access_token") or None
    return (str(token) if token else None), answer


def impossible_checkout_request_id() -> str:
    """Shaped like Daraja's (``ws_CO_`` + Nairobi DDMMYYYYHHmmss + digits) but dated 1970,
    so it names no transaction that ever existed; random so two runs never share one."""
    return f"ws_CO_01011970000000{secrets.randbelow(10**12):012d}"


async def query_unknown_checkout(
    http: httpx.AsyncClient, *, token: str, shortcode: str, passkey: str
) -> Answer:
    timestamp = daraja_timestamp()
    request = http.build_request(
        "POST",
        STK_QUERY_PATH,
        json={
            "BusinessShortCode": shortcode,
            "Password": stk_password(shortcode, passkey, timestamp),
            "Timestamp": timestamp,
            "CheckoutRequestID": impossible_checkout_request_id(),
        },
        headers={"Authorization": f"Bearer {token}"},
    )
    return await _exchange(http, request)


class PasswordVerdict(StrEnum):
    VALID = "valid"  # Daraja checked the password, then looked for the transaction
    WRONG = "wrong"  # the password does not match the shortcode
    UNKNOWN_SHORTCODE = "unknown_shortcode"
    REFUSED = "refused"  # refused for another stated reason (token, payload, product)
    INCONCLUSIVE = "inconclusive"  # an answer that proves neither


def judge_password(answer: Answer) -> PasswordVerdict:
    """Read the STK Query answer for an impossible CheckoutRequestID (daraja.md §2, §4, §12).

    Every verdict here rests on the *message*, against daraja.md's rule to branch on codes:
    Daraja gives a wrong password, an unknown merchant and an unknown transaction the same
    code, ``500.001.1001``, and only the text differs. The texts are the ones recorded in
    daraja.md; any other text is inconclusive rather than a guess. The empty message also
    seen with ``500.001.1001`` (daraja.md §4) proves nothing either.
    """
    if answer.error_code is None:
        # A 200 for a made-up id would be news; do not call it a proof.
        return PasswordVerdict.INCONCLUSIVE
    text = answer.error_message.lower()
    if answer.error_code == "500.001.1001":
        if "wrong credentials" in text or "password" in text:
            return PasswordVerdict.WRONG
        if "merchant does not exist" in text:
            return PasswordVerdict.UNKNOWN_SHORTCODE
        if "transaction does not exist" in text:
            return PasswordVerdict.VALID
        return PasswordVerdict.INCONCLUSIVE
    if answer.error_code.startswith("400.002.02") and "shortcode" in text:
        return PasswordVerdict.UNKNOWN_SHORTCODE
    if answer.error_code.startswith(("400.", "401.", "404.")):
        return PasswordVerdict.REFUSED
    return PasswordVerdict.INCONCLUSIVE


def clock_skew(answer: Answer) -> tuple[float, float] | None:
    """(seconds the local clock is ahead of Daraja's, the error bound), or None.

    ``Date`` has whole seconds and was stamped somewhere between sending and receiving,
    so the bound is half a second plus half the round trip.
    """
    if answer.server_date is None:
        return None
    round_trip = (answer.received_at - answer.sent_at).total_seconds()
    local_mid = answer.sent_at + timedelta(seconds=round_trip / 2)
    server_mid = answer.server_date + timedelta(seconds=0.5)
    return (local_mid - server_mid).total_seconds(), 0.5 + round_trip / 2
