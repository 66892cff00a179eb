"""Authentication dependencies: ``Authorization: Bearer sk_…`` writes, ``pk_…`` reads."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header

from pesaswitch.accounts.service import AuthContext, authenticate
from pesaswitch.errors import AuthenticationFailed, PermissionDenied
from pesaswitch.runtime import RuntimeDep

_BEARER_HEADERS = {"WWW-Authenticate": 'Bearer realm="pesaswitch"'}


async def read_auth(
    runtime: RuntimeDep,
    authorization: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> AuthContext:
    scheme, _, credentials = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not credentials.strip():
        raise AuthenticationFailed(
            "Send 'Authorization: Bearer <key>' with a secret or public key",
            headers=_BEARER_HEADERS,
        )
    async with runtime.sessionmaker() as session:
        try:
            return await authenticate(
                session, secret_key=runtime.settings.secret_key, presented=credentials.strip()
            )
        except AuthenticationFailed as exc:
            exc.headers = _BEARER_HEADERS
            raise


async def write_auth(auth: Annotated[AuthContext, Depends(read_auth)]) -> AuthContext:
    if not auth.can_write:
        raise PermissionDenied("Public keys (pk_…) are read-only; use a secret key (sk_…)")
    return auth


ReadAuth = Annotated[AuthContext, Depends(read_auth)]
WriteAuth = Annotated[AuthContext, Depends(write_auth)]
