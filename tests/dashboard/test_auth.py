"""Sign-in, lockout, sessions, CSRF on every form."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import func, select

from pesaswitch.accounts.models import ApiKey
from pesaswitch.dashboard import users
from pesaswitch.db import create_engine, create_sessionmaker
from tests.conftest import Gateway, create_merchant
from tests.dashboard.conftest import Shop
from tests.dashboard.helpers import PASSWORD, browser, csrf_of, make_user, sign_in


async def test_pages_need_a_session(dashboard: Gateway) -> None:
    for path in ("/dashboard", "/dashboard/payments", "/dashboard/keys", "/dashboard/wallet"):
        response = await dashboard.client.get(path)
        assert response.status_code == 303
        assert response.headers["location"] == "/dashboard/login"


async def test_sign_in_sets_a_hardened_cookie_and_shows_the_account(dashboard: Gateway) -> None:
    merchant = await create_merchant(dashboard.settings, "Mama Mboga")
    await make_user(dashboard, email="Owner@Mboga.co.ke", account_id=merchant.account_id)
    async with browser(dashboard) as client:
        response = await sign_in(client, "owner@mboga.co.ke")
        assert response.status_code == 303
        cookie = response.headers["set-cookie"]
        assert "ps_session=" in cookie
        assert "HttpOnly" in cookie
        assert "SameSite=lax" in cookie
        page = await client.get("/dashboard")
        assert page.status_code == 200
        assert "Mama Mboga" in page.text
        assert page.headers["cache-control"] == "no-store"
        assert page.headers["x-frame-options"] == "DENY"


async def test_wrong_password_is_refused_and_locks_after_five(dashboard: Gateway) -> None:
    merchant = await create_merchant(dashboard.settings)
    email = f"lock-{merchant.account_id.lower()}@example.com"
    await make_user(dashboard, email=email, account_id=merchant.account_id)
    async with browser(dashboard) as client:
        for _ in range(users.MAX_FAILED_LOGINS - 1):
            response = await sign_in(client, email, "wrong password!")
            assert response.status_code == 401
            assert "Wrong email or password" in response.text
        response = await sign_in(client, email, "wrong password!")
        assert response.status_code == 429
        assert int(response.headers["retry-after"]) > 0
        # Locked: even the right password is refused until the lock ends.
        response = await sign_in(client, email, PASSWORD)
        assert response.status_code == 429
        assert (await client.get("/dashboard")).status_code == 303


async def test_unknown_email_answers_like_a_wrong_password(dashboard: Gateway) -> None:
    async with browser(dashboard) as client:
        response = await sign_in(client, "nobody@example.com", "whatever-password")
        assert response.status_code == 401
        assert "Wrong email or password" in response.text


async def test_login_form_without_csrf_is_refused(dashboard: Gateway) -> None:
    merchant = await create_merchant(dashboard.settings)
    email = f"csrf-{merchant.account_id.lower()}@example.com"
    await make_user(dashboard, email=email, account_id=merchant.account_id)
    async with browser(dashboard) as client:
        await client.get("/dashboard/login")
        response = await client.post(
            "/dashboard/login", data={"email": email, "password": PASSWORD}
        )
        assert response.status_code == 403
        assert "ps_session" not in response.headers.get("set-cookie", "")


async def test_logout_ends_the_session_server_side(shops: tuple[Shop, Shop]) -> None:
    shop, _ = shops
    page = await shop.client.get("/dashboard")
    stolen = shop.client.cookies.get("ps_session")
    response = await shop.client.post("/dashboard/logout", data={"csrf_token": csrf_of(page.text)})
    assert response.status_code == 303
    # A copy of the old cookie is worthless: the session row is gone.
    async with httpx.AsyncClient(
        transport=shop.client._transport,
        base_url="http://gateway.test",
        cookies={"ps_session": stolen or ""},
    ) as thief:
        assert (await thief.get("/dashboard")).status_code == 303


async def test_forged_cookie_is_ignored(dashboard: Gateway) -> None:
    async with httpx.AsyncClient(
        transport=dashboard.client._transport,
        base_url="http://gateway.test",
        cookies={"ps_session": "made-up-token.0123456789abcdef"},
    ) as client:
        assert (await client.get("/dashboard")).status_code == 303


@pytest.mark.parametrize(
    ("action", "data"),
    [
        ("/dashboard/keys", {"kind": "secret"}),
        ("/dashboard/links", {"description": "Deposit", "amount": "100"}),
        ("/dashboard/webhooks", {"url": "http://127.0.0.1:9/hook"}),
        ("/dashboard/logout", {}),
    ],
)
async def test_forms_without_a_valid_csrf_token_change_nothing(
    shops: tuple[Shop, Shop], dashboard: Gateway, action: str, data: dict[str, str]
) -> None:
    shop, _ = shops
    engine = create_engine(dashboard.settings)
    sessions = create_sessionmaker(engine)

    async def key_count() -> int:
        async with sessions() as session:
            return int(
                await session.scalar(
                    select(func.count())
                    .select_from(ApiKey)
                    .where(ApiKey.account_id == shop.merchant.account_id)
                )
                or 0
            )

    before = await key_count()
    for token in (None, "0" * 64):
        form = dict(data) if token is None else {**data, "csrf_token": token}
        response = await shop.client.post(action, data=form)
        assert response.status_code == 403, response.text
        assert "csrf_failed" in response.text
    assert await key_count() == before
    for path in ("/dashboard/links", "/dashboard/webhooks"):
        page = await shop.client.get(path)
        assert page.status_code == 200  # still signed in: logout was refused too
        assert "Deposit" not in page.text
        assert "127.0.0.1:9" not in page.text
    await engine.dispose()


async def test_expired_sessions_are_refused_and_swept_at_the_next_sign_in(
    dashboard: Gateway, shops: tuple[Shop, Shop]
) -> None:
    from datetime import timedelta

    from sqlalchemy import update

    from pesaswitch.dashboard.models import DashboardSession
    from pesaswitch.db import transaction
    from pesaswitch.kit.clock import utcnow

    shop, other = shops
    engine = create_engine(dashboard.settings)
    sessions = create_sessionmaker(engine)
    token = users.token_hash((shop.client.cookies.get("ps_session") or "").rpartition(".")[0])
    async with transaction(sessions) as session:
        await session.execute(
            update(DashboardSession)
            .where(DashboardSession.token_hash == token)
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
    assert (await shop.client.get("/dashboard")).status_code == 303
    async with browser(dashboard) as client:
        assert (await sign_in(client, other.email)).status_code == 303
    async with sessions() as session:
        assert await session.get(DashboardSession, token) is None
    await engine.dispose()


async def test_one_client_address_guessing_across_emails_is_throttled(
    dashboard: Gateway,
) -> None:
    merchant = await create_merchant(dashboard.settings)
    email = f"target-{merchant.account_id.lower()}@example.com"
    await make_user(dashboard, email=email, account_id=merchant.account_id)
    transport = httpx.ASGITransport(app=dashboard.app, client=("198.51.100.7", 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway.test") as guesser:
        for n in range(users.MAX_FAILURES_PER_CLIENT):
            response = await sign_in(guesser, f"guess-{n}@example.com", "password-guess")
            assert response.status_code == 401
        blocked = await sign_in(guesser, email, PASSWORD)
        assert blocked.status_code == 429
        assert int(blocked.headers["retry-after"]) > 0
    # Another address is not affected, and the user was never locked.
    async with browser(dashboard) as client:
        assert (await sign_in(client, email)).status_code == 303
