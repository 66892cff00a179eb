"""A lost database connection is an outage, not a bug: a 503 with Retry-After that the
client may retry (with its Idempotency-Key), and a warning rather than a traceback.

Found by the chaos run (seed 3, PostgreSQL restarted mid-run): requests on pooled
connections the restart had closed were answered 500 "internal_error" with tracebacks.
"""

from __future__ import annotations

import dataclasses

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import create_async_engine

from pesaswitch.compat.common import install_vendor_errors
from pesaswitch.db import create_engine, create_sessionmaker
from pesaswitch.errors import PesaswitchError, database_outage, install_handlers
from pesaswitch.payments.tasks import reconcile_guarded
from tests.conftest import Gateway
from tests.support.processes import free_port


def app_raising(exc: Exception, *, vendor: bool = False) -> FastAPI:
    app = FastAPI()
    if vendor:
        install_vendor_errors(app, lambda error: {"success": False, "error": error.code})
    else:
        install_handlers(app)

    @app.get("/boom")
    async def boom() -> None:
        raise exc

    return app


async def get(app: FastAPI, *, reraised: bool = False) -> httpx.Response:
    # With raise_app_exceptions, an exception Starlette re-raises to the server (which
    # logs its traceback) fails the test.
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=not reraised)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        return await client.get("/boom")


async def refused_connection() -> Exception:
    """What asyncpg and SQLAlchemy really raise when PostgreSQL is down."""
    engine = create_async_engine(f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/x")
    try:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    except Exception as exc:  # the point is to capture it
        return exc
    finally:
        await engine.dispose()
    raise AssertionError("connected to a port nobody listens on")


def invalidated() -> DBAPIError:
    # As SQLAlchemy raises it when a pooled connection died under a statement.
    return DBAPIError(
        "SELECT 1", {}, ConnectionResetError(104, "reset"), connection_invalidated=True
    )


def starting_up() -> Exception:
    # Raised by asyncpg itself, unwrapped, while PostgreSQL restarts.
    from asyncpg.exceptions import CannotConnectNowError

    return CannotConnectNowError("the database system is starting up")


@pytest.mark.parametrize("vendor", [False, True])
async def test_a_database_outage_is_a_503(vendor: bool, caplog: pytest.LogCaptureFixture) -> None:
    for exc in (await refused_connection(), invalidated(), starting_up()):
        answer = await get(app_raising(exc, vendor=vendor))
        assert answer.status_code == 503, exc
        assert answer.headers["retry-after"] == "2"
        body = answer.json()
        assert (body["error"] if vendor else body["code"]) == "database_unavailable"


async def test_other_errors_stay_500() -> None:
    answer = await get(app_raising(RuntimeError("a bug")), reraised=True)
    assert answer.status_code == 500
    assert answer.json()["code"] == "internal_error"
    assert database_outage(ValueError("no")) is None
    assert database_outage(FileNotFoundError(2, "missing")) is None
    assert isinstance(database_outage(invalidated()), PesaswitchError)
    integrity = DBAPIError("INSERT", {}, ValueError("duplicate key"))
    assert database_outage(integrity) is None
    assert (await get(app_raising(integrity), reraised=True)).status_code == 500


async def test_a_reconciler_step_that_loses_the_database_logs_no_traceback(
    gateway: Gateway, capsys: pytest.CaptureFixture[str]
) -> None:
    # Found by the chaos run (PostgreSQL restarted mid-run): the reconciler's per-payment
    # step logged the restart's lost connection as an error with its traceback.
    settings = gateway.settings.model_copy(
        update={"database_url": f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/x"}
    )
    engine = create_engine(settings)
    runtime = dataclasses.replace(
        gateway.app.state.runtime, engine=engine, sessionmaker=create_sessionmaker(engine)
    )
    capsys.readouterr()
    try:
        await reconcile_guarded(runtime, "pay_01ANY")
    finally:
        await engine.dispose()
    out = capsys.readouterr().out
    assert "reconcile.error" in out
    assert "database_unavailable=True" in out
    assert "Traceback" not in out
