"""GET /v1/payments/{id} without FastAPI's request handling, for the read merchants poll
a payment's status with: a key this process verified recently, PostgreSQL, and a payment
never refunded or reversed.

FastAPI's dependency solving and response validation, and the general path's read-only
transaction of three ORM reads, made a status read cost ~1.7 ms of the gateway's CPU, about
as much as a whole payment's POST (bench/issue-11-rounds-2.md, twelfth round). This route
answers the common read itself, in one statement (``store_read.py``), with the answer the
general path renders (``refunds.service.render_detail``). Any other request (a query
string, a key not in the cache, SQLite, a NUL in the id, a payment not found or with
refunds) is handed to the router again, which then skips this route: FastAPI's route
answers it in its own words, as before (a key not in the cache is looked up, and a failure
counted, by FastAPI's route only).

The API document still comes from ``endpoints.read_payment``: this route is not in it.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Match, Route
from starlette.types import Receive, Scope, Send

from pesaswitch.accounts.dependencies import bearer_key, cached_auth
from pesaswitch.kit.nul import NUL
from pesaswitch.payments.store_read import unreturned_detail
from pesaswitch.runtime import get_runtime

PATH = "/v1/payments/{payment_id}"
# Set on a request this route handed back, so the router's second pass passes it by.
_DECLINED = "pesaswitch.read_route.declined"


class _ReadPaymentApp:
    """The route's ASGI app (a class: Starlette would wrap a function as an endpoint
    taking a Request, and this one also hands requests back to the router)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        runtime = get_runtime(request)
        payment_id: str = scope["path_params"]["payment_id"]
        detail = None
        if (
            not scope["query_string"]
            and NUL not in payment_id
            and runtime.engine.dialect.name == "postgresql"
        ):
            presented = bearer_key(request.headers.get("authorization"))
            auth = None if presented is None else cached_auth(runtime, presented)
            if auth is not None:  # a secret or a public key: both may read
                detail = await unreturned_detail(
                    runtime.engine, account_id=auth.account_id, payment_id=payment_id
                )
        if detail is None:
            scope[_DECLINED] = True
            await scope["router"](scope, receive, send)
            return
        await JSONResponse(detail)(scope, receive, send)


class ReadPaymentRoute(Route):
    """Matched before the route table (app.py); a request it handed back, or any method
    but GET (FastAPI's route has no HEAD), matches nothing here."""

    def __init__(self) -> None:
        super().__init__(PATH, _ReadPaymentApp(), methods=["GET"], include_in_schema=False)

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope.get(_DECLINED) or scope.get("method") != "GET":
            return Match.NONE, {}
        return super().matches(scope)
