"""No secret reaches the logs. A gateway process logging at debug level goes through the
flows that make or use secrets: API keys (native and PayHero Basic credentials, good and
bad), webhook secrets (created, rotated, the callback secret), a merchant's own Daraja
credential (used for a push the simulator refuses), dashboard passwords (wrong and right)
and a key made in the dashboard. Then its whole log is searched for every value, and for
the customers' full phone numbers (logs mask them)."""

from __future__ import annotations

import asyncio
import base64
import re
import secrets
from collections.abc import Iterator

import httpx
import pytest

from pesaswitch.accounts import service as accounts
from pesaswitch.accounts.models import ChannelKind
from pesaswitch.config import Settings
from pesaswitch.dashboard.security import SESSION_COOKIE
from pesaswitch.db import create_engine, create_sessionmaker, transaction
from tests.conftest import TEST_SECRET_KEY
from tests.dashboard.helpers import PASSWORD, csrf_of, make_user
from tests.security.conftest import Served, serving


@pytest.fixture(scope="module")
def loud(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with serving(
        database_url, tmp_path_factory.mktemp("loud"), PESASWITCH_LOG_LEVEL="debug",
        PESASWITCH_SANDBOX_ALLOW_PRIVATE_URLS="true",
    ) as running:  # fmt: skip
        yield running


async def add_credential(database_url: str, account_id: str, values: dict[str, str]) -> int:
    engine = create_engine(Settings(database_url=database_url, secret_key=TEST_SECRET_KEY))
    try:
        async with transaction(create_sessionmaker(engine)) as session:
            credential = await accounts.add_credential(
                session, secret_key=TEST_SECRET_KEY, account_id=account_id, name="Own app",
                shortcode="4000123", **values,
            )  # fmt: skip
            channel = await accounts.add_channel(
                session, account_id=account_id, kind=ChannelKind.PAYBILL, shortcode="4000123",
                credential_id=credential.id,
            )  # fmt: skip
            return channel.id
    finally:
        await engine.dispose()


async def test_no_secret_is_logged(loud: Served, database_url: str) -> None:
    merchant = loud.merchant
    found: list[str] = [merchant.secret_key, merchant.public_key]
    credential = {
        "consumer_key": f"ck{secrets.token_hex(12)}",
        "consumer_secret": f"cs{secrets.token_hex(12)}",
        "passkey": f"pk{secrets.token_hex(20)}",
    }
    found += credential.values()
    channel_id = await add_credential(database_url, merchant.account_id, credential)
    async with httpx.AsyncClient(base_url=loud.url, timeout=10) as http:
        auth = merchant.auth
        hook = await http.post(
            "/v1/webhook-endpoints", headers=auth, json={"url": "http://127.0.0.1:9/h"}
        )
        assert hook.status_code == 201, hook.text
        found.append(hook.json()["secret"])
        rotated = await http.post(
            f"/v1/webhook-endpoints/{hook.json()['id']}/rotate-secret", headers=auth
        )
        found.append(rotated.json()["secret"])
        found.append((await http.get("/v1/callback-secret", headers=auth)).json()["secret"])
        wrong_key = f"sk_test_{secrets.token_urlsafe(24)}"
        found.append(wrong_key)
        assert (await http.get("/v1/balance", headers={"Authorization": f"Bearer {wrong_key}"})
                ).status_code == 401  # fmt: skip
        basic = base64.b64encode(f"{merchant.secret_key_id}:{merchant.secret_key}".encode())
        found.append(basic.decode())
        assert (await http.get("/api/v2/payment_channels",
                               headers={"Authorization": f"Basic {basic.decode()}"})
                ).status_code == 200  # fmt: skip
        paid = await http.post(
            "/v1/payments", headers=auth,
            json={"amount": 11, "phone": "0708374149", "callback_url": "http://127.0.0.1:9/cb"},
        )  # fmt: skip
        assert paid.status_code == 201, paid.text
        # Pushed with the merchant's own app, which the simulator does not know: refused.
        own = await http.post(
            "/v1/payments", headers=auth,
            json={"amount": 12, "phone": "0711000001", "channel_id": channel_id},
        )  # fmt: skip
        assert own.status_code >= 400, own.text
        found += await dashboard_flows(database_url, http, merchant.account_id)
        await asyncio.sleep(1.0)  # the worker's deliveries and their log lines
    log = loud.log.read_text(errors="replace")
    assert "Application startup complete" in log  # the log is the one the flows wrote to
    leaked = [value for value in found if value and value in log]
    assert leaked == [], f"secrets in {loud.log}"
    # Full MSISDNs (2547…, 2541…) never appear; logs show 2547*****149.
    assert re.findall(r"254[17]\d{8}", log) == []


async def dashboard_flows(database_url: str, http: httpx.AsyncClient, account_id: str) -> list[str]:
    """A user signs in (a wrong password first) and makes a key; returns the secrets."""
    from tests.conftest import Gateway

    email = f"owner-{secrets.token_hex(4)}@example.com"
    settings = Settings(database_url=database_url, secret_key=TEST_SECRET_KEY)
    await make_user(Gateway(settings, http, None), email=email, account_id=account_id)
    wrong = f"wrong-{secrets.token_hex(8)}"
    for password in (wrong, PASSWORD):
        page = await http.get("/dashboard/login")
        response = await http.post("/dashboard/login", data={
            "email": email, "password": password, "csrf_token": csrf_of(page.text)})  # fmt: skip
    assert response.status_code == 303, response.text
    keys = await http.get("/dashboard/keys")
    made = await http.post(
        "/dashboard/keys", data={"kind": "secret", "csrf_token": csrf_of(keys.text)}
    )
    key = re.search(r"sk_test_[A-Za-z0-9_-]+", made.text)
    assert key, made.text
    cookie = http.cookies.get(SESSION_COOKIE) or ""
    return [wrong, PASSWORD, key.group(0), cookie]
