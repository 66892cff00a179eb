"""POST /v1/payments without FastAPI's request handling, for the request every payment
makes: a JSON body that validates, and a secret key this process verified recently.

FastAPI's dependency solving, body handling and route scan cost ~13 % of the gateway's
CPU per payment (py-spy, bench/issue-11-rounds-2.md, eleventh round), for an endpoint that
takes a body, a key and a header. This route answers the common request itself, as
``endpoints.create_payment`` would, and hands every other one (a query string, another
content type, a body FastAPI would refuse, a key not in the cache, a public key) to the
router again, which then skips this route: FastAPI's route decides it and answers in its
own words, so every refusal stays as it was, and nothing is validated or counted twice
(a key not in the cache is looked up, and a failure counted, by FastAPI's route only).

The API document still comes from ``endpoints.create_payment``: this route is not in it.
"""

from __future__ import annotations

import json

from fastapi import HTTPException
from pydantic import ValidationError
from starlette.requests import Request
from starlette.routing import Match, Route
from starlette.types import Message, Receive, Scope, Send

from pesaswitch.accounts.dependencies import bearer_key, cached_auth
from pesaswitch.accounts.service import AuthContext
from pesaswitch.kit.nul import may_hold_nul
from pesaswitch.payments.endpoints import initiation_answer
from pesaswitch.payments.initiate import initiate_payment
from pesaswitch.payments.schemas import PaymentCreate
from pesaswitch.runtime import Runtime, get_runtime

PATH = "/v1/payments"
# Set on a request this route handed back, so the router's second pass passes it by.
_DECLINED = "pesaswitch.create_route.declined"


def _cached_writer(runtime: Runtime, request: Request) -> AuthContext | None:
    """A secret key's context when this process verified the key within the TTL
    (``accounts.dependencies.cached_auth``, which has no side effects). Anything else is
    for FastAPI's route: its lookup, throttle and refusals."""
    presented = bearer_key(request.headers.get("authorization"))
    context = None if presented is None else cached_auth(runtime, presented)
    return context if context is not None and context.can_write else None


def _payment_create(request: Request, raw: bytes) -> PaymentCreate | None:
    """The body as FastAPI would validate it, or None where FastAPI might answer
    otherwise (it then decides, in its own error shape)."""
    media_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if media_type != "application/json" or not raw or may_hold_nul(raw):
        return None
    try:
        data = PaymentCreate.model_validate(json.loads(raw))
    except (ValueError, ValidationError):  # a JSONDecodeError is a ValueError
        return None
    return data


async def _read_body(request: Request) -> bytes:
    try:
        return await request.body()
    except Exception as exc:
        # As FastAPI answers a body it could not read (fastapi/routing.py).
        raise HTTPException(400, "There was an error parsing the body") from exc


def _replaying(raw: bytes, receive: Receive) -> Receive:
    """``receive`` with the body already read given again, once, for FastAPI's route."""
    pending = [{"type": "http.request", "body": raw, "more_body": False}]

    async def replay() -> Message:
        return pending.pop() if pending else await receive()

    return replay


class _CreatePaymentApp:
    """The route's ASGI app (a class: Starlette would wrap a function as an endpoint
    taking a Request, and this one also hands requests back to the router)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        runtime = get_runtime(request)
        raw = b""
        auth = data = None
        # A body without a declared length is left unread: the length is what the body
        # limit checks (kit/body_limit.py), and FastAPI's route reads it as it always has.
        if not scope["query_string"] and "content-length" in request.headers:
            auth = _cached_writer(runtime, request)
            if auth is not None:
                raw = await _read_body(request)
                data = _payment_create(request, raw)
        if auth is None or data is None:
            scope[_DECLINED] = True
            await scope["router"](scope, _replaying(raw, receive) if raw else receive, send)
            return
        response = await initiate_payment(
            runtime, auth=auth, data=data, idempotency_key=request.headers.get("idempotency-key")
        )
        await initiation_answer(response)(scope, receive, send)


class CreatePaymentRoute(Route):
    """Matched before the route table (app.py); a request it handed back matches nothing
    here and goes on to FastAPI's route."""

    def __init__(self) -> None:
        super().__init__(PATH, _CreatePaymentApp(), methods=["POST"], include_in_schema=False)

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope.get(_DECLINED):
            return Match.NONE, {}
        match, child_scope = super().matches(scope)
        # GET /v1/payments is FastAPI's list route, not a 405 from here.
        return (Match.NONE, {}) if match is Match.PARTIAL else (match, child_scope)
