"""The doctor against real parts: a standalone simulator process as Daraja (strict about
the consumer key and secret, with a passkey of its own for the shortcode), its published
certificate in a file, and databases of the suite's kind made for these tests alone, so
the endpoints other tests leave behind cannot change an answer here.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from pesaswitch.accounts import service as accounts
from pesaswitch.accounts.models import Environment
from pesaswitch.config import Settings
from pesaswitch.db import create_engine, create_sessionmaker, transaction
from pesaswitch.migrate import upgrade
from pesaswitch.webhooks import service as webhooks
from tests.support.processes import PESASWITCH, Process, free_port

CONSUMER_KEY = "doctor-consumer-key-0001"
CONSUMER_SECRET = "doctor-consumer-secret-0001"
SHORTCODE = "600777"
PASSKEY = secrets.token_hex(32)
STRONG_SECRET_KEY = secrets.token_urlsafe(48)
INITIATOR_PASSWORD = "Doctor#Initiator%2026"
# Public addresses written as literals: the guard decides without DNS, which the suite
# has none of. Safaricom's own API range, so "public" is not in doubt.
PUBLIC_URL = "https://196.201.214.200"
PUBLIC_WEBHOOK_URL = "https://196.201.214.201/hooks/pesaswitch"


@pytest.fixture(scope="session")
def simulator_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    env = {
        "PESASWITCH_DARAJA_CONSUMER_KEY": CONSUMER_KEY,
        "PESASWITCH_DARAJA_CONSUMER_SECRET": CONSUMER_SECRET,
        "PESASWITCH_DARAJA_SHORTCODE": SHORTCODE,
        "PESASWITCH_DARAJA_PASSKEY": PASSKEY,
        "PESASWITCH_SIMULATOR_ACCEPT_ANY_APP": "false",
        "PESASWITCH_SIMULATOR_DELAY": "0",
        "PESASWITCH_LOG_LEVEL": "warning",
    }
    logs = tmp_path_factory.mktemp("doctor-simulator") / "simulator.log"
    process = Process([PESASWITCH, "simulator", "--port", str(port)], env, logs)
    url = f"http://127.0.0.1:{port}"
    try:
        process.wait_http(f"{url}/simulator/health")
        yield url
    finally:
        process.stop()


@pytest.fixture(scope="session")
def certificate_file(simulator_url: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The simulator's certificate saved to a file, as an operator saves Safaricom's."""
    response = httpx.get(f"{simulator_url}/simulator/certificate", timeout=10)
    response.raise_for_status()
    path = tmp_path_factory.mktemp("doctor-cert") / "daraja.cer"
    path.write_bytes(response.content)
    return path


NewDatabase = Callable[[str], Awaitable[str]]


@pytest.fixture(scope="session")
def new_database_url(
    request: pytest.FixtureRequest, database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> NewDatabase:
    """An empty database of the suite's kind (``--db``), named ``name``, unmigrated."""
    is_postgres = request.config.getoption("--db") == "postgres"

    async def make(name: str) -> str:
        if not is_postgres:
            return f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('doctor-db') / name}.db"
        admin = create_async_engine(database_url, isolation_level="AUTOCOMMIT")
        try:
            async with admin.connect() as conn:
                await conn.execute(text(f'CREATE DATABASE "{name}"'))
        finally:
            await admin.dispose()
        return database_url.rsplit("/", 1)[0] + f"/{name}"

    return make


async def migrate(url: str, revision: str = "head") -> None:
    # Alembic's env.py runs its own event loop, so it runs in a thread of its own.
    await asyncio.to_thread(upgrade, Settings(database_url=url), revision)


@pytest.fixture(scope="session")
async def doctor_database(new_database_url: NewDatabase) -> str:
    url = await new_database_url("doctor_checks")
    await migrate(url)
    return url


@pytest.fixture(scope="session")
def make_doctor_settings(
    simulator_url: str, certificate_file: Path, doctor_database: str
) -> Callable[..., Settings]:
    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "database_url": doctor_database,
            "secret_key": STRONG_SECRET_KEY,
            "daraja_mode": "sandbox",
            "daraja_base_url": simulator_url,
            "daraja_consumer_key": CONSUMER_KEY,
            "daraja_consumer_secret": CONSUMER_SECRET,
            "daraja_shortcode": SHORTCODE,
            "daraja_passkey": PASSKEY,
            "daraja_certificate_path": str(certificate_file),
            "daraja_initiator_password": INITIATOR_PASSWORD,
            "daraja_timeout": 10.0,  # generous: the machine is shared
            "public_url": PUBLIC_URL,
            "embedded_worker": False,
            "log_level": "warning",
        }
        values.update(overrides)
        return Settings(**values)

    return make


@pytest.fixture(scope="session")
async def live_account(make_doctor_settings: Callable[..., Settings]) -> str:
    """A live account with a public webhook endpoint, created through the service."""
    settings = make_doctor_settings()
    engine = create_engine(settings)
    try:
        async with transaction(create_sessionmaker(engine)) as session:
            new = await accounts.create_account(
                session, secret_key=settings.secret_key, name="Live shop",
                environment=Environment.LIVE,
            )  # fmt: skip
            await webhooks.create_endpoint(
                session, secret_key=settings.secret_key, account_id=new.account.id,
                environment=Environment.LIVE, url=PUBLIC_WEBHOOK_URL, event_types=None,
                description="", allow_private=False,
            )  # fmt: skip
    finally:
        await engine.dispose()
    return new.account.id


@pytest.fixture
def doctor_settings(
    make_doctor_settings: Callable[..., Settings], live_account: str
) -> Callable[..., Settings]:
    """Settings under which every check passes; each test overrides what it breaks."""
    return make_doctor_settings
