"""What the dialects share: vendor-style error answers and key authentication."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from typing import Any

import pydantic
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from pesaswitch.accounts.dependencies import authenticate_cached, client_of
from pesaswitch.accounts.service import AuthContext
from pesaswitch.errors import (
    AuthenticationFailed,
    ClientGone,
    InvalidJson,
    PermissionDenied,
    PesaswitchError,
    ValidationFailed,
    database_outage,
    outage_types,
)
from pesaswitch.runtime import Runtime, get_runtime

# Renders a domain error in the vendor's style: (error) -> body
ErrorRenderer = Callable[[PesaswitchError], dict[str, Any]]


def validation_error(exc: RequestValidationError) -> PesaswitchError:
    fields: list[str] = []
    for err in exc.errors():
        if err.get("type") == "json_invalid":
            return InvalidJson("The request body is not valid JSON")
        loc = [str(p) for p in err.get("loc", ()) if p != "body"]
        fields.append(".".join(loc) or "body")
    return ValidationFailed(f"Invalid or missing fields: {', '.join(fields)}")


def install_vendor_errors(app: FastAPI, render: ErrorRenderer) -> None:
    """Every error on a dialect's sub-application comes out in the vendor's shape."""

    def respond(error: PesaswitchError) -> JSONResponse:
        return JSONResponse(render(error), status_code=error.status_code, headers=error.headers)

    async def on_domain(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, PesaswitchError)
        return respond(exc)

    async def on_validation(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return respond(validation_error(exc))

    async def on_model_error(_request: Request, exc: Exception) -> JSONResponse:
        # A vendor body translated into a native model that the native rules refuse.
        assert isinstance(exc, pydantic.ValidationError)
        fields = ", ".join(".".join(str(p) for p in e["loc"]) for e in exc.errors())
        return respond(ValidationFailed(f"Invalid fields: {fields}"))

    async def on_http(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        error = PesaswitchError(str(exc.detail))
        error.status_code = exc.status_code
        error.code = "not_found" if exc.status_code == 404 else "http_error"
        return respond(error)

    async def on_maybe_outage(_request: Request, exc: Exception) -> JSONResponse:
        import structlog

        outage = database_outage(exc)
        if outage is None:
            raise exc  # a bug after all: on to on_unexpected
        # An outage, not a bug (errors.OUTAGE_TYPES): a 503 and no traceback.
        structlog.get_logger(__name__).warning("compat.database_unavailable", error=repr(exc))
        return respond(outage)

    async def on_unexpected(_request: Request, exc: Exception) -> JSONResponse:
        import structlog

        structlog.get_logger(__name__).exception("compat.unhandled_error", error=repr(exc))
        return respond(PesaswitchError("An unexpected error occurred"))

    app.add_exception_handler(PesaswitchError, on_domain)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(pydantic.ValidationError, on_model_error)
    app.add_exception_handler(StarletteHTTPException, on_http)

    async def on_client_gone(_request: Request, exc: Exception) -> JSONResponse:
        return respond(ClientGone())

    for kind in outage_types():
        app.add_exception_handler(kind, on_maybe_outage)
    app.add_exception_handler(ClientDisconnect, on_client_gone)
    app.add_exception_handler(Exception, on_unexpected)


async def authenticate_key(runtime: Runtime, presented: str, request: Request) -> AuthContext:
    # The native API's key cache (``accounts/keycache.py``): a revocation through this
    # process evicts the key at once, one through another within the cache's TTL.
    return await authenticate_cached(runtime, presented, client=client_of(request))


async def basic_auth(request: Request) -> AuthContext:
    """``Basic base64(api_username:api_password)``: the key's id and the secret key; or
    ``base64(sk_…:)`` with the key as user name and no password, as some clients send."""
    runtime = get_runtime(request)
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic" or not token.strip():
        raise AuthenticationFailed("Send 'Authorization: Basic base64(api_username:api_password)'")
    try:
        username, _, password = (
            base64.b64decode(token.strip(), validate=True).decode().partition(":")
        )
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise AuthenticationFailed("The Basic credentials are not valid base64") from exc
    if not password:
        return await authenticate_key(runtime, username, request)
    auth = await authenticate_key(runtime, password, request)
    if auth.key_id != username:
        raise AuthenticationFailed("The API username does not match the API password")
    return auth


async def api_key_auth(request: Request) -> AuthContext:
    """``X-API-Key: sk_…|pk_…`` or ``Authorization: Bearer …``."""
    presented = request.headers.get("x-api-key", "").strip()
    if not presented:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        presented = token.strip() if scheme.lower() == "bearer" else ""
    if not presented:
        raise AuthenticationFailed("Send your API key in the X-API-Key header")
    return await authenticate_key(get_runtime(request), presented, request)


def require_write(auth: AuthContext) -> AuthContext:
    if not auth.can_write:
        raise PermissionDenied("Public keys (pk_…) are read-only; use your secret key (sk_…)")
    return auth


def basic_credentials(key_id: str, secret_key: str) -> dict[str, str]:
    """The PayHero-style credentials of a key, as the CLI and docs show them."""
    token = base64.b64encode(f"{key_id}:{secret_key}".encode()).decode()
    return {
        "api_username": key_id,
        "api_password": secret_key,
        "basic_auth_header": f"Basic {token}",
    }
