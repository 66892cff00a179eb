"""Authentication dependencies: ``Authorization: Bearer sk_…`` writes, ``pk_…`` reads.

A key verified within the last ``api_key_cache_seconds`` is trusted without a database
lookup (``keycache.py`` says how revocation stays immediate in this process); otherwise
the lookup runs in a read-only session, which on SQLite does not take the write lock.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request

from pesaswitch.accounts.keycache import cache
from pesaswitch.accounts.service import AuthContext, authenticate
from pesaswitch.db import read_sessions
from pesaswitch.errors import AuthenticationFailed, PermissionDenied
from pesaswitch.kit import crypto
from pesaswitch.runtime import Runtime, RuntimeDep

_BEARER_HEADERS = {"WWW-Authenticate": 'Bearer realm="pesaswitch"'}


async def read_auth(
    request: Request,
    runtime: RuntimeDep,
    authorization: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> AuthContext:
    presented = bearer_key(authorization)
    if presented is None:
        raise AuthenticationFailed(
            "Send 'Authorization: Bearer <key>' with a secret or public key",
            headers=_BEARER_HEADERS,
        )
    try:
        return await authenticate_cached(runtime, presented, client=client_of(request))
    except AuthenticationFailed as exc:
        exc.headers = _BEARER_HEADERS
        raise


def bearer_key(authorization: str | None) -> str | None:
    """The key of an ``Authorization: Bearer <key>`` header; None for any other header."""
    scheme, _, credentials = (authorization or "").partition(" ")
    presented = credentials.strip()
    return presented if scheme.lower() == "bearer" and presented else None


def cached_auth(runtime: Runtime, presented: str) -> AuthContext | None:
    """The key's context if this process verified it within the TTL; else None. No
    lookup, no throttle: the side-effect-free start of ``authenticate_cached``."""
    settings = runtime.settings
    return cache.get(settings.database_url, _digest(runtime, presented))


def _digest(runtime: Runtime, presented: str) -> str:
    return crypto.keyed_hash(runtime.settings.secret_key, presented)


def client_of(request: Request) -> str | None:
    return request.client.host if request.client else None


async def authenticate_cached(
    runtime: Runtime, presented: str, *, client: str | None = None
) -> AuthContext:
    """The key's context, from the cache when it was verified within the TTL, else looked
    up in a read-only session and cached. Every dialect authenticates through here.
    A client that keeps presenting invalid keys is throttled (``throttle.py``)."""
    settings = runtime.settings
    digest = _digest(runtime, presented)
    cached = cache.get(settings.database_url, digest)
    if cached is not None:
        return cached
    runtime.key_throttle.check(client)
    generation = cache.generation  # before the read: a revocation after it wins
    try:
        async with read_sessions(runtime.sessionmaker)() as session:
            context = await authenticate(
                session, secret_key=settings.secret_key, presented=presented
            )
    except AuthenticationFailed:
        runtime.key_throttle.failed(
            client, limit=settings.auth_failure_limit,
            window_seconds=settings.auth_failure_window, block_seconds=settings.auth_block_seconds,
        )  # fmt: skip
        raise
    cache.put(settings.database_url, digest, context, ttl=settings.api_key_cache_seconds,
              generation=generation)  # fmt: skip
    return context


async def write_auth(auth: Annotated[AuthContext, Depends(read_auth)]) -> AuthContext:
    if not auth.can_write:
        raise PermissionDenied("Public keys (pk_…) are read-only; use a secret key (sk_…)")
    return auth


ReadAuth = Annotated[AuthContext, Depends(read_auth)]
WriteAuth = Annotated[AuthContext, Depends(write_auth)]
