"""Suite-wide fixtures. ``--db sqlite|postgres`` picks the database the whole run uses;
with postgres the suite creates (and removes) its own throwaway cluster."""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from pesaswitch.accounts import service as accounts
from pesaswitch.accounts.models import Environment
from pesaswitch.app import create_app
from pesaswitch.config import Settings
from pesaswitch.db import create_engine, create_sessionmaker, transaction
from pesaswitch.migrate import upgrade
from tests.support.pg_cluster import throwaway_cluster

TEST_SECRET_KEY = "test-secret-key-for-the-suite-only"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--db", choices=("sqlite", "postgres"), default="sqlite")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark ``db_agnostic`` every test that cannot reach the suite's database: one whose
    fixtures do not include ``database_url``, the only way to the ``--db`` database. Such
    a test runs the same code whichever database the suite has, so `make test-postgres`
    deselects it and it runs once, in the SQLite pass. A test that reads ``--db`` itself
    instead of through ``database_url`` is marked ``postgres_only`` (or must request
    ``database_url``), never left to this rule."""
    for item in items:
        fixtures = getattr(item, "fixturenames", ())
        if "database_url" not in fixtures and item.get_closest_marker("postgres_only") is None:
            item.add_marker(pytest.mark.db_agnostic)


@pytest.fixture(scope="session")
def database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    if request.config.getoption("--db") == "postgres":
        with throwaway_cluster() as url:
            upgrade(Settings(database_url=url))
            yield url
    else:
        path = tmp_path_factory.mktemp("db") / "pesaswitch.db"
        url = f"sqlite+aiosqlite:///{path}"
        upgrade(Settings(database_url=url))
        yield url


CloneDatabase = Callable[[], Awaitable[str]]


@pytest.fixture(scope="session")
async def clone_database(
    request: pytest.FixtureRequest, database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[CloneDatabase]:
    """Makes a migrated database of the suite's kind, empty but for what migrations write:
    a copy of a template migrated once (a file copy on SQLite, ``CREATE DATABASE …
    TEMPLATE`` on PostgreSQL), not a migration per database."""
    made: list[str] = []
    if request.config.getoption("--db") == "postgres":
        server = database_url.rsplit("/", 1)[0]
        admin = create_async_engine(f"{server}/postgres", isolation_level="AUTOCOMMIT")
        async with admin.connect() as conn:
            await conn.execute(text('CREATE DATABASE "pesaswitch_template"'))
        await asyncio.to_thread(upgrade, Settings(database_url=f"{server}/pesaswitch_template"))

        async def clone() -> str:
            name = f"pesaswitch_clone_{len(made)}"
            async with admin.connect() as conn:
                await conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "pesaswitch_template"'))
            made.append(name)
            return f"{server}/{name}"

        yield clone
        async with admin.connect() as conn:
            for name in made:
                await conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        await admin.dispose()
    else:
        folder = tmp_path_factory.mktemp("clones")
        template = folder / "template.db"
        await asyncio.to_thread(upgrade, Settings(database_url=f"sqlite+aiosqlite:///{template}"))

        async def clone() -> str:
            path = folder / f"clone_{len(made)}.db"
            shutil.copyfile(template, path)
            made.append(path.name)
            return f"sqlite+aiosqlite:///{path}"

        yield clone


@pytest.fixture
async def isolated_database_url(clone_database: CloneDatabase) -> str:
    """A database of this test's own: nothing that earlier tests left (an outbox of due
    deliveries, global rates) is there for its worker to pick up."""
    return await clone_database()


@pytest.fixture(scope="session")
def make_settings(database_url: str) -> Callable[..., Settings]:
    return settings_maker(database_url)


def settings_maker(database_url: str) -> Callable[..., Settings]:
    """The suite's settings on ``database_url``: fast reconciliation, no callback delay."""

    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "database_url": database_url,
            "secret_key": TEST_SECRET_KEY,
            "simulator_delay": 0.0,
            "reconcile_after": 0.2,
            "reconcile_backoff": "0.2",
            "reconcile_interval": 0.05,
            "daraja_timeout": 2.0,
            "simulator_hang_seconds": 3.0,
            "log_level": "warning",
        }
        values.update(overrides)
        return Settings(**values)

    return make


@dataclass
class Merchant:
    account_id: str
    secret_key: str
    public_key: str
    channel_id: int
    secret_key_id: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.secret_key}"}

    @property
    def read_auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.public_key}"}


async def create_merchant(settings: Settings, name: str = "Test shop") -> Merchant:
    engine = create_engine(settings)
    try:
        async with transaction(create_sessionmaker(engine)) as session:
            new = await accounts.create_account(
                session, secret_key=settings.secret_key, name=name,
                environment=Environment.SANDBOX,
            )  # fmt: skip
    finally:
        await engine.dispose()
    return Merchant(
        new.account.id, new.secret_key.key, new.public_key.key, new.default_channel.id,
        new.secret_key.id,
    )  # fmt: skip


@dataclass
class Gateway:
    """The gateway in-process, its embedded simulator calling back through ASGI too."""

    settings: Settings
    client: httpx.AsyncClient
    app: Any

    async def wait_for_status(
        self, merchant: Merchant, payment_id: str, timeout: float = 10.0
    ) -> dict[str, Any]:
        """The payment once it is no longer pending, or as it is after ``timeout``."""
        return await self._wait_for(
            merchant, payment_id, lambda body: body["status"] != "pending", timeout
        )

    async def wait_for_receipt(
        self, merchant: Merchant, payment_id: str, timeout: float = 10.0
    ) -> dict[str, Any]:
        """The payment once it has its M-Pesa receipt, or as it is after ``timeout``."""
        return await self._wait_for(
            merchant, payment_id, lambda body: body["mpesa_receipt"] is not None, timeout
        )

    async def _wait_for(
        self,
        merchant: Merchant,
        payment_id: str,
        done: Callable[[dict[str, Any]], bool],
        timeout: float,
    ) -> dict[str, Any]:
        import asyncio

        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            body: dict[str, Any] = (
                await self.client.get(f"/v1/payments/{payment_id}", headers=merchant.auth)
            ).json()
            if done(body) or asyncio.get_running_loop().time() > deadline:
                return body
            await asyncio.sleep(0.05)


@pytest.fixture
async def gateway_factory(
    make_settings: Callable[..., Settings],
) -> AsyncIterator[Callable[..., Any]]:
    stack: list[tuple[Any, Any, httpx.AsyncClient, httpx.AsyncClient]] = []

    async def start(**overrides: Any) -> Gateway:
        settings = make_settings(**overrides)
        app = create_app(settings)
        lifespan = app.router.lifespan_context(app)
        await lifespan.__aenter__()
        transport = httpx.ASGITransport(app=app)
        client = httpx.AsyncClient(transport=transport, base_url="http://gateway.test")
        callbacks = httpx.AsyncClient(transport=transport, base_url="http://gateway.test")
        runtime = app.state.runtime
        if runtime.simulator is not None:
            runtime.simulator.use_callback_client(callbacks)
        stack.append((app, lifespan, client, callbacks))
        return Gateway(settings, client, app)

    yield start
    for _app, lifespan, client, callbacks in reversed(stack):
        await client.aclose()
        await lifespan.__aexit__(None, None, None)
        await callbacks.aclose()


@pytest.fixture
async def gateway(gateway_factory: Callable[..., Any]) -> Gateway:
    gw: Gateway = await gateway_factory()
    return gw


@pytest.fixture
async def merchant(gateway: Gateway) -> Merchant:
    return await create_merchant(gateway.settings)


def problem(response: httpx.Response) -> dict[str, Any]:
    """Assert the response is problem+json and return it."""
    assert response.headers["content-type"].startswith("application/problem+json"), response.text
    body: dict[str, Any] = json.loads(response.text)
    assert body["status"] == response.status_code
    return body


@pytest.fixture
def repo_root() -> Path:
    return Path(__file__).resolve().parent.parent
