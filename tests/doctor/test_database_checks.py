"""The checks that read the database: its migration state, and the webhook endpoints
and merchant Daraja apps stored in it. Databases made here are of the suite's kind
(``--db``), each for its own test."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import delete

from pesaswitch.accounts import service as accounts
from pesaswitch.accounts.models import Credential, Environment
from pesaswitch.config import SANDBOX_PASSKEY, SANDBOX_SHORTCODE, Settings
from pesaswitch.db import create_engine, create_sessionmaker, transaction
from pesaswitch.doctor.report import Status
from pesaswitch.doctor.runner import run_doctor
from pesaswitch.kit import crypto
from pesaswitch.kit.ids import new_id
from pesaswitch.migrate import alembic_config
from pesaswitch.webhooks.models import WebhookEndpoint
from tests.doctor.conftest import CONSUMER_KEY, CONSUMER_SECRET, migrate
from tests.doctor.test_checks import failing, summary_of

MakeSettings = Callable[..., Settings]
NewDatabase = Callable[[str], Awaitable[str]]


def _unique(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(4)}"


async def test_unmigrated_database(
    doctor_settings: MakeSettings, new_database_url: NewDatabase
) -> None:
    url = await new_database_url(_unique("doctor_empty"))
    if url.startswith("sqlite"):
        Path(url.removeprefix("sqlite+aiosqlite:///")).touch()  # exists, but empty
    report = await run_doctor(doctor_settings(database_url=url))
    assert failing(report) == {"database"}, report.render_text()
    assert "is not migrated" in summary_of(report, "database")
    assert report.status_of("webhook_endpoints") is Status.SKIP


async def test_database_one_revision_behind(
    doctor_settings: MakeSettings, new_database_url: NewDatabase
) -> None:
    url = await new_database_url(_unique("doctor_behind"))
    script = ScriptDirectory.from_config(alembic_config(url))
    head = script.get_revision(script.get_current_head())
    assert head is not None
    assert isinstance(head.down_revision, str)
    await migrate(url, head.down_revision)
    report = await run_doctor(doctor_settings(database_url=url))
    assert failing(report) == {"database"}, report.render_text()
    summary = summary_of(report, "database")
    assert f"is at {head.down_revision}, the code's head is {head.revision}" in summary


async def test_missing_database(doctor_settings: MakeSettings, tmp_path: Path) -> None:
    path = tmp_path / "never-created.db"
    report = await run_doctor(doctor_settings(database_url=f"sqlite+aiosqlite:///{path}"))
    assert failing(report) == {"database"}, report.render_text()
    assert "does not exist" in summary_of(report, "database")
    assert not path.exists()  # the doctor did not create it by looking


async def test_unreachable_postgres_password_masked(doctor_settings: MakeSettings) -> None:
    port = 1  # nothing listens there
    url = f"postgresql+asyncpg://pesaswitch:hunter2-db-password@127.0.0.1:{port}/gateway"
    report = await run_doctor(doctor_settings(database_url=url))
    assert failing(report) == {"database"}, report.render_text()
    assert "cannot connect to postgresql+asyncpg://pesaswitch:***@127.0.0.1" in (
        summary_of(report, "database")
    )
    assert "hunter2-db-password" not in report.render_json()


@pytest.fixture
async def endpoint_with_url(
    doctor_settings: MakeSettings,
) -> AsyncIterator[Callable[[Environment, str], Awaitable[str]]]:
    """Store an endpoint as it might be found later (its host now resolving somewhere
    private), past the guard that create_endpoint applies; removed afterwards."""
    settings = doctor_settings()
    engine = create_engine(settings)
    made: list[str] = []

    async def add(environment: Environment, url: str) -> str:
        async with transaction(create_sessionmaker(engine)) as session:
            new = await accounts.create_account(
                session, secret_key=settings.secret_key, name="Shop", environment=environment
            )
            endpoint = WebhookEndpoint(
                id=new_id("we"), account_id=new.account.id, url=url,
                secret_enc=crypto.encrypt(settings.secret_key, "whsec_x"),
            )  # fmt: skip
            session.add(endpoint)
        made.append(endpoint.id)
        return endpoint.id

    yield add
    async with transaction(create_sessionmaker(engine)) as session:
        await session.execute(delete(WebhookEndpoint).where(WebhookEndpoint.id.in_(made)))
    await engine.dispose()


@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.1/hooks",
        "https://localhost/hooks",
        "https://10.0.0.8/hooks",
        "http://196.201.214.202/hooks",  # public, but live endpoints must be https
    ],
)
async def test_live_endpoint_failing_the_guard(
    doctor_settings: MakeSettings,
    endpoint_with_url: Callable[[Environment, str], Awaitable[str]],
    url: str,
) -> None:
    endpoint_id = await endpoint_with_url(Environment.LIVE, url)
    report = await run_doctor(doctor_settings())
    assert failing(report) == {"webhook_endpoints"}, report.render_text()
    result = next(r for r in report.results if r.name == "webhook_endpoints")
    assert [d for d in result.details if d.startswith(endpoint_id)], result.details
    assert "/hooks" not in report.render_json()  # a path can carry a token: never shown


async def test_sandbox_endpoint_failing_the_guard_only_warns(
    doctor_settings: MakeSettings,
    endpoint_with_url: Callable[[Environment, str], Awaitable[str]],
) -> None:
    await endpoint_with_url(Environment.SANDBOX, "https://127.0.0.1/hooks")
    report = await run_doctor(doctor_settings())
    assert report.ok, report.render_text()
    assert report.status_of("webhook_endpoints") is Status.WARN
    # With private URLs allowed for sandbox accounts (`make run`), it passes.
    allowed = await run_doctor(doctor_settings(sandbox_allow_private_urls=True))
    assert allowed.status_of("webhook_endpoints") is Status.PASS


@pytest.fixture
async def stored_credential(
    doctor_settings: MakeSettings,
) -> AsyncIterator[Callable[..., Awaitable[int]]]:
    """A merchant's own Daraja app, stored as `pesaswitch credentials add` stores it."""
    settings = doctor_settings()
    engine = create_engine(settings)
    made: list[int] = []

    async def add(
        *, consumer_secret: str = CONSUMER_SECRET, passkey: str = SANDBOX_PASSKEY,
        secret_key: str = settings.secret_key,
    ) -> int:  # fmt: skip
        async with transaction(create_sessionmaker(engine)) as session:
            new = await accounts.create_account(
                session,
                secret_key=settings.secret_key,
                name="Own till",
                environment=Environment.LIVE,
            )
            credential = await accounts.add_credential(
                session, secret_key=secret_key, account_id=new.account.id, name="Till app",
                shortcode=SANDBOX_SHORTCODE, consumer_key=CONSUMER_KEY,
                consumer_secret=consumer_secret, passkey=passkey,
            )  # fmt: skip
        made.append(credential.id)
        return credential.id

    yield add
    async with transaction(create_sessionmaker(engine)) as session:
        await session.execute(delete(Credential).where(Credential.id.in_(made)))
    await engine.dispose()


async def test_merchant_credential_passes(
    doctor_settings: MakeSettings, stored_credential: Callable[..., Awaitable[int]]
) -> None:
    await stored_credential()
    report = await run_doctor(doctor_settings())
    assert report.ok, report.render_text()
    assert report.status_of("merchant_credentials") is Status.PASS
    assert "1 merchant Daraja app:" in summary_of(report, "merchant_credentials")


@pytest.mark.parametrize(
    ("broken", "expected"),
    [
        ({"consumer_secret": "not-the-secret"}, "400.008.01"),
        ({"passkey": "0" * 64}, "Wrong credentials"),
        # Stored under another PESASWITCH_SECRET_KEY, e.g. before the key was changed.
        ({"secret_key": "an-older-secret-key-of-this-gateway"}, "cannot be decrypted"),
    ],
)
async def test_merchant_credential_fails(
    doctor_settings: MakeSettings,
    stored_credential: Callable[..., Awaitable[int]],
    broken: dict[str, str],
    expected: str,
) -> None:
    credential_id = await stored_credential(**broken)
    report = await run_doctor(doctor_settings())
    assert failing(report) == {"merchant_credentials"}, report.render_text()
    result = next(r for r in report.results if r.name == "merchant_credentials")
    (line,) = result.details
    assert line.startswith(f"credential {credential_id} (")
    assert expected in line
