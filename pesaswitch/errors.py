"""One error hierarchy, rendered as RFC 9457 ``application/problem+json``.

    PesaswitchError                      500 internal_error
    ├── BadRequest                       400 bad_request
    │   ├── InvalidJson                  400 invalid_json
    │   └── ClientGone                   400 client_disconnected (nobody reads it)
    ├── ValidationFailed                 422 validation_error
    │   ├── InvalidPhone                 422 invalid_phone
    │   ├── UnsupportedNetwork           422 unsupported_network
    │   ├── AmountOutOfRange             422 amount_out_of_range
    │   ├── IdempotencyKeyMismatch       422 idempotency_key_mismatch
    │   └── InsufficientFunds            422 insufficient_funds
    ├── AuthenticationFailed             401 invalid_api_key
    │   └── ApiKeyRevoked                401 api_key_revoked
    ├── PermissionDenied                 403 insufficient_permissions
    ├── NotFound                         404 not_found
    │   └── ChannelNotFound              404 channel_not_found
    ├── Conflict                         409 conflict
    │   ├── IdempotencyKeyInUse          409 idempotency_key_in_use
    │   └── LedgerConflict               409 ledger_conflict
    ├── PayloadTooLarge                  413 payload_too_large
    ├── TooManyRequests                  429 rate_limited (with Retry-After)
    │   ├── StkPhoneBlocked              429 stk_phone_blocked
    │   └── StkAccountRestricted         429 stk_account_restricted
    ├── UnbalancedEntry                  500 ledger_unbalanced (a bug: postings ≠ 0)
    ├── DarajaRejected                   409/422 daraja_* (a business answer from Daraja)
    ├── DarajaOutage                     502/503 daraja_timeout / daraja_unavailable
    └── DatabaseUnavailable              503 database_unavailable (with Retry-After)

Domain modules subclass these for their own stable codes: payouts' duplicate_reference
(409); refunds' payment_not_refundable, payment_not_reversible, payment_already_reversed
(409) and refund_exceeds_payment (422, with ``refundable``); banks' unknown_bank_paybill
and invalid_bank_account (422).

Services raise these and never HTTP exceptions; `install_handlers` renders them.
"""

from __future__ import annotations

from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

log = structlog.get_logger(__name__)

PROBLEM_JSON = "application/problem+json"


class PesaswitchError(Exception):
    status_code = 500
    code = "internal_error"
    title = "Internal error"

    def __init__(
        self, detail: str | None = None, *, headers: dict[str, str] | None = None, **extra: Any
    ) -> None:
        self.detail = detail or self.title
        self.headers = headers
        self.extra = extra
        super().__init__(self.detail)

    def to_problem(self) -> dict[str, Any]:
        return {
            "type": f"https://pesaswitch.dev/errors/{self.code}",
            "title": self.title,
            "status": self.status_code,
            "code": self.code,
            "detail": self.detail,
            **self.extra,
        }


class BadRequest(PesaswitchError):
    status_code = 400
    code = "bad_request"
    title = "Bad request"


class InvalidJson(BadRequest):
    code = "invalid_json"
    title = "The request body is not valid JSON"


class ValidationFailed(PesaswitchError):
    status_code = 422
    code = "validation_error"
    title = "The request is invalid"


class InvalidPhone(ValidationFailed):
    code = "invalid_phone"
    title = "The phone number is not a valid Kenyan mobile number"


class UnsupportedNetwork(ValidationFailed):
    code = "unsupported_network"
    title = "The phone number is not on Safaricom M-Pesa"


class AmountOutOfRange(ValidationFailed):
    code = "amount_out_of_range"
    title = "The amount is outside the allowed range"


class IdempotencyKeyMismatch(ValidationFailed):
    code = "idempotency_key_mismatch"
    title = "The Idempotency-Key was used with a different request"


class InsufficientFunds(ValidationFailed):
    """A wallet (or hold) would go below zero; nothing was posted."""

    code = "insufficient_funds"
    title = "Insufficient funds"


class AuthenticationFailed(PesaswitchError):
    status_code = 401
    code = "invalid_api_key"
    title = "Missing or invalid API key"


class ApiKeyRevoked(AuthenticationFailed):
    code = "api_key_revoked"
    title = "The API key has been revoked"


class PermissionDenied(PesaswitchError):
    status_code = 403
    code = "insufficient_permissions"
    title = "This key may not perform this action"


class NotFound(PesaswitchError):
    status_code = 404
    code = "not_found"
    title = "Not found"


class ChannelNotFound(NotFound):
    code = "channel_not_found"
    title = "No such channel on this account"


class Conflict(PesaswitchError):
    status_code = 409
    code = "conflict"
    title = "Conflict"


class IdempotencyKeyInUse(Conflict):
    code = "idempotency_key_in_use"
    title = "A request with this Idempotency-Key is still being processed"


class LedgerConflict(Conflict):
    """A ledger step out of order: e.g. settling a payout that was released, or never
    reserved, or with other amounts than were reserved."""

    code = "ledger_conflict"
    title = "The ledger refused this step"


class PayloadTooLarge(PesaswitchError):
    status_code = 413
    code = "payload_too_large"
    title = "The request body is too large"


class TooManyRequests(PesaswitchError):
    """Refused for now; ``Retry-After`` says for how long."""

    status_code = 429
    code = "rate_limited"
    title = "Too many requests"


class StkPhoneBlocked(TooManyRequests):
    code = "stk_phone_blocked"
    title = "STK prompts to this number are blocked for this account"


class StkAccountRestricted(TooManyRequests):
    code = "stk_account_restricted"
    title = "STK prompts are restricted for this account"


class UnbalancedEntry(PesaswitchError):
    """Postings that do not sum to zero per currency: a programming error, never posted."""

    code = "ledger_unbalanced"
    title = "A journal entry does not balance"


class DarajaRejected(PesaswitchError):
    """Daraja answered, and the answer is no (a business or validation error)."""

    status_code = 422
    code = "daraja_rejected"
    title = "M-Pesa rejected the request"

    def __init__(self, detail: str | None = None, *, status_code: int, code: str, **extra: Any):
        super().__init__(detail, **extra)
        self.status_code = status_code
        self.code = code


class DarajaOutage(PesaswitchError):
    """Daraja did not answer usefully: timeout, connection failure, 5xx."""

    status_code = 503
    code = "daraja_unavailable"
    title = "M-Pesa is not reachable"

    def __init__(self, detail: str | None = None, *, status_code: int, code: str, **extra: Any):
        super().__init__(detail, **extra)
        self.status_code = status_code
        self.code = code


def problem_response(error: PesaswitchError, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(
        error.to_problem(),
        status_code=error.status_code,
        media_type=PROBLEM_JSON,
        headers=headers,
    )


def _validation_problem(exc: RequestValidationError) -> PesaswitchError:
    errors = []
    for err in exc.errors():
        if err.get("type") == "json_invalid":
            return InvalidJson("The request body could not be parsed as JSON")
        loc = [str(part) for part in err.get("loc", ()) if part != "body"]
        errors.append({"field": ".".join(loc), "message": err.get("msg", "invalid")})
    fields = ", ".join(e["field"] for e in errors if e["field"]) or "body"
    return ValidationFailed(f"Invalid fields: {fields}", errors=errors)


class DatabaseUnavailable(PesaswitchError):
    """The database connection failed (restart, failover, locked SQLite file): nothing
    is wrong with the request, and the same request (with its Idempotency-Key) may be
    sent again shortly. The transaction was rolled back, or never started."""

    status_code = 503
    code = "database_unavailable"
    title = "The database is unavailable; try again shortly"

    def __init__(self) -> None:
        super().__init__(headers={"Retry-After": "2"})


class TransactionConflict(DatabaseUnavailable):
    """PostgreSQL aborted the transaction to break a deadlock with a concurrent one
    (``transaction_conflict``): nothing was written, and the same request may be sent
    again at once."""

    code = "transaction_conflict"
    title = "The request met a concurrent one and was not applied; try again"

    def __init__(self) -> None:
        PesaswitchError.__init__(self, headers={"Retry-After": "1"})


def database_outage(exc: BaseException) -> DatabaseUnavailable | None:
    """A DatabaseUnavailable for a lost or refused database connection, else None.

    A PostgreSQL restart surfaces as a DBAPIError with ``connection_invalidated`` (the
    pool then drops its other connections too), as an InterfaceError or an
    OperationalError ("the database system is starting up"), or as a ConnectionError
    from a connect while the server is down. A deadlock PostgreSQL broke by aborting
    this transaction is a ``TransactionConflict``: also a 503, to be retried.
    """
    if transaction_conflict(exc):
        return TransactionConflict()
    if isinstance(exc, DBAPIError) and (
        exc.connection_invalidated or isinstance(exc, InterfaceError | OperationalError)
    ):
        return DatabaseUnavailable()
    if isinstance(exc, (ConnectionError, TimeoutError, *_asyncpg_outages())):
        return DatabaseUnavailable()
    return None


# PostgreSQL's "try the transaction again" answers: deadlock_detected, serialization_failure.
CONFLICT_SQLSTATES = frozenset({"40P01", "40001"})


def transaction_conflict(exc: BaseException) -> bool:
    """Whether PostgreSQL aborted this transaction to break a deadlock (or a serialization
    conflict): nothing was written, and running it again is the documented answer. asyncpg
    raises its own error where the hot paths use it directly (``payments/store.py``);
    SQLAlchemy wraps it elsewhere (``orig.sqlstate``)."""
    for candidate in (exc, getattr(exc, "orig", None)):
        if getattr(candidate, "sqlstate", None) in CONFLICT_SQLSTATES:
            return True
    return False


def _asyncpg_outages() -> tuple[type[BaseException], ...]:
    """asyncpg's own errors that escape SQLAlchemy's wrapping while (re)connecting:
    "the database system is starting up" / "shutting down" (class 57P), a closed
    connection; and a deadlock or serialization failure raised on asyncpg directly (the
    hot paths' statements), which ``database_outage`` calls a ``TransactionConflict``."""
    try:
        from asyncpg import exceptions  # type: ignore[import-untyped]
    except ImportError:  # SQLite-only installs
        return ()
    return (exceptions.OperatorInterventionError, exceptions.InterfaceError,
            exceptions.ConnectionDoesNotExistError, exceptions.DeadlockDetectedError,
            exceptions.SerializationError)  # fmt: skip


# Registered for these types (not only for Exception), so Starlette's
# ExceptionMiddleware answers them: its ServerErrorMiddleware, which handles Exception,
# always re-raises to the server, which logs a traceback.
OUTAGE_TYPES: tuple[type[Exception], ...] = (DBAPIError, ConnectionError, TimeoutError)


def log_tick_failure(event: str, exc: Exception, **fields: Any) -> None:
    """A background loop's failed step: a warning for a database outage (the next tick
    retries, a traceback would only hide real bugs), the traceback for anything else."""
    if database_outage(exc) is not None:
        log.warning(event, error=repr(exc), database_unavailable=True, **fields)
    else:
        log.exception(event, error=repr(exc), **fields)


def outage_types() -> tuple[type[Exception], ...]:
    return (*OUTAGE_TYPES, *(t for t in _asyncpg_outages() if issubclass(t, Exception)))


class ClientGone(BadRequest):
    """The client closed the connection before its request body was read (its own
    timeout, or a process killed): nobody reads the answer, and it is no server error."""

    code = "client_disconnected"
    title = "The client disconnected before the request was read"


def install_handlers(app: FastAPI) -> None:
    async def on_pesaswitch_error(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, PesaswitchError)
        return problem_response(exc, exc.headers)

    async def on_validation_error(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return problem_response(_validation_problem(exc))

    async def on_http_error(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        error = PesaswitchError(str(exc.detail))
        error.status_code = exc.status_code
        error.code = {404: "not_found", 405: "method_not_allowed"}.get(
            exc.status_code, "http_error"
        )
        error.title = str(exc.detail)
        return problem_response(error, dict(exc.headers or {}))

    async def on_maybe_outage(_request: Request, exc: Exception) -> JSONResponse:
        outage = database_outage(exc)
        if outage is None:
            raise exc  # a bug after all: on to on_unexpected, with its traceback
        # An outage, not a bug: no traceback, and a 503 the client may retry.
        log.warning("http.database_unavailable", error=repr(exc))
        return problem_response(outage, outage.headers)

    async def on_unexpected(_request: Request, exc: Exception) -> JSONResponse:
        log.exception("http.unhandled_error", error=repr(exc))
        return problem_response(PesaswitchError("An unexpected error occurred"))

    app.add_exception_handler(PesaswitchError, on_pesaswitch_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)

    async def on_client_gone(_request: Request, exc: Exception) -> JSONResponse:
        log.info("http.client_disconnected")
        return problem_response(ClientGone())

    for kind in outage_types():
        app.add_exception_handler(kind, on_maybe_outage)
    app.add_exception_handler(ClientDisconnect, on_client_gone)
    app.add_exception_handler(Exception, on_unexpected)
