"""Signing in and filling forms the way a browser does: cookies kept by the client,
the CSRF token read from the page."""

from __future__ import annotations

import re
from typing import Any

import httpx

from pesaswitch.dashboard import users
from pesaswitch.db import create_engine, create_sessionmaker, transaction
from tests.conftest import Gateway

PASSWORD = "correct horse battery"
_CSRF = re.compile(r'name="csrf_token" value="([0-9a-f]+)"')


def csrf_of(html: str) -> str:
    found = _CSRF.search(html)
    assert found, "no CSRF token on the page"
    return found.group(1)


async def make_user(
    gateway: Gateway, *, email: str, account_id: str | None, staff: bool = False
) -> None:
    engine = create_engine(gateway.settings)
    try:
        async with transaction(create_sessionmaker(engine)) as session:
            await users.create_user(
                session, email=email, password=PASSWORD, account_id=account_id, is_staff=staff
            )
    finally:
        await engine.dispose()


def browser(gateway: Gateway) -> httpx.AsyncClient:
    """A separate cookie jar on the same in-process gateway."""
    return httpx.AsyncClient(transport=gateway.client._transport, base_url="http://gateway.test")


async def sign_in(
    client: httpx.AsyncClient, email: str, password: str = PASSWORD
) -> httpx.Response:
    page = await client.get("/dashboard/login")
    return await client.post(
        "/dashboard/login",
        data={"email": email, "password": password, "csrf_token": csrf_of(page.text)},
    )


async def post_form(
    client: httpx.AsyncClient, page_path: str, action: str, data: dict[str, Any] | None = None
) -> httpx.Response:
    """Load ``page_path`` for its CSRF token, then submit ``data`` to ``action``."""
    page = await client.get(page_path)
    assert page.status_code == 200, page.text
    return await client.post(action, data={"csrf_token": csrf_of(page.text), **(data or {})})
