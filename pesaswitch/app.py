"""create_app(settings): the gateway's ASGI application."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
from fastapi import Depends, FastAPI
from fastapi.responses import JSONResponse, Response
from fastapi.telemetry import TelemetryConfig
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
from sqlalchemy import text
from starlette.routing import Mount

from pesaswitch.accounts.dependencies import read_auth, write_auth
from pesaswitch.banks.endpoints import router as bank_paybills_router
from pesaswitch.c2b.endpoints import daraja_router as c2b_daraja_router
from pesaswitch.c2b.endpoints import router as c2b_router
from pesaswitch.c2b.receipts import router as receipts_router
from pesaswitch.compat.payhero import create_payhero_app
from pesaswitch.compat.paynexus import create_paynexus_app
from pesaswitch.compat.pokea import create_pokea_app
from pesaswitch.config import Settings
from pesaswitch.daraja.client import DarajaApp, DarajaClients
from pesaswitch.daraja.endpoints import STK_CALLBACK_ROUTE
from pesaswitch.dashboard.router import install_dashboard
from pesaswitch.db import create_engine, create_sessionmaker
from pesaswitch.doctor.probe import router as doctor_probe_router
from pesaswitch.errors import install_handlers
from pesaswitch.kit.body_limit import BodyLimitMiddleware
from pesaswitch.kit.heap import settle_heap
from pesaswitch.kit.http import async_client
from pesaswitch.kit.logging import configure_logging
from pesaswitch.kit.nul import refuse_nul
from pesaswitch.kit.openapi import declare_problems, parameters_without_null
from pesaswitch.kit.query import single_valued_query
from pesaswitch.ledger.endpoints import router as ledger_router
from pesaswitch.payments.create_route import CreatePaymentRoute
from pesaswitch.payments.endpoints import router as payments_router
from pesaswitch.payments.read_route import ReadPaymentRoute
from pesaswitch.payouts.callbacks import router as payout_callbacks_router
from pesaswitch.payouts.endpoints import router as payouts_router
from pesaswitch.refunds.callbacks import router as reversal_callbacks_router
from pesaswitch.refunds.endpoints import router as refunds_router
from pesaswitch.runtime import Runtime
from pesaswitch.simulator.app import Simulator, SimulatorConfig
from pesaswitch.simulator.chaos import ChaosSettings
from pesaswitch.webhooks.endpoints import router as webhooks_router
from pesaswitch.worker import run_worker

# FastAPI's native OpenTelemetry, not asked for (config.py, opentelemetry).
TELEMETRY_OFF: TelemetryConfig = {"tracing": False, "metrics": False, "logs": False}


def simulator_config(settings: Settings) -> SimulatorConfig:
    return SimulatorConfig(
        consumer_key=settings.daraja_consumer_key,
        consumer_secret=settings.daraja_consumer_secret,
        accept_any_app=settings.simulator_accept_any_app,
        passkeys={settings.daraja_shortcode: settings.daraja_passkey},
        callback_delay=settings.simulator_delay,
        hang_seconds=settings.simulator_hang_seconds,
        pending_queries=settings.simulator_pending_queries,
        rule_same_amount=settings.simulator_rule_same_amount,
        rule_subscriber_lock=settings.simulator_rule_subscriber_lock,
        mode=settings.simulator_mode,
        pin=settings.simulator_pin,
        prompt_timeout=settings.simulator_prompt_timeout,
        initiator_name=settings.daraja_initiator_name,
        initiator_password=settings.daraja_initiator_password,
        b2c_utility_balance=settings.simulator_b2c_utility_balance,
        chaos=None
        if settings.simulator_chaos_seed is None
        else ChaosSettings(
            seed=settings.simulator_chaos_seed,
            rate=settings.simulator_chaos_rate,
            late_seconds=settings.simulator_chaos_late_seconds,
        ),
    )


def build_runtime(settings: Settings) -> Runtime:
    engine = create_engine(settings)
    simulator: Simulator | None = None
    transport: httpx.AsyncBaseTransport | None = None
    if settings.embedded_simulator:
        simulator = Simulator(simulator_config(settings))
        transport = httpx.ASGITransport(app=simulator.app)
    options: dict[str, Any] = {
        "base_url": settings.effective_daraja_base_url, "timeout": settings.daraja_timeout,
    }  # fmt: skip
    http = (
        httpx.AsyncClient(transport=transport, **options)
        if transport is not None
        # aiohttp's pool, not httpcore's, which scans its connections on every request
        # (encode/httpx#3215): 2.0 ms of CPU per push at 32 in flight (kit/http.py).
        else async_client(limits=httpx.Limits(max_connections=100), **options)
    )
    daraja = DarajaClients(
        http, DarajaApp(settings.daraja_consumer_key, settings.daraja_consumer_secret)
    )
    return Runtime(settings, engine, create_sessionmaker(engine), daraja, simulator)


def create_app(settings: Settings | None = None, *, runtime: Runtime | None = None) -> FastAPI:
    settings = settings or (runtime.settings if runtime else Settings())
    configure_logging(settings.log_level, json=settings.log_json)
    runtime = runtime or build_runtime(settings)

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        stop = asyncio.Event()
        worker = (
            asyncio.create_task(run_worker(runtime, stop)) if settings.embedded_worker else None
        )
        try:
            yield
        finally:
            stop.set()
            if worker is not None:
                await worker
            await runtime.aclose()

    app = FastAPI(
        title="pesaswitch",
        version="0.1.0",
        description="Self-hostable M-Pesa payment gateway.",
        lifespan=lifespan,
        dependencies=[Depends(single_valued_query), Depends(refuse_nul)],
        telemetry=None if settings.opentelemetry else TELEMETRY_OFF,
    )
    app.state.runtime = runtime
    parameters_without_null(app)
    install_handlers(app)
    v1_routers = (
        payments_router,
        webhooks_router,
        ledger_router,
        payouts_router,
        refunds_router,
        bank_paybills_router,
        c2b_router,
    )
    for router in v1_routers:
        # Every error a v1 route can answer, in the document (kit/openapi.py).
        declare_problems(router, auth=(read_auth,), write=(write_auth,))
        app.include_router(router)
    # First of all routes: the one request every payment makes besides its POST, matched
    # before the route table's linear scan (the paths do not overlap).
    app.router.routes.insert(0, STK_CALLBACK_ROUTE)
    # And the POST every payment starts with, answered without FastAPI's request handling
    # when it is the common one; any other goes on to the route above (create_route.py).
    app.router.routes.insert(1, CreatePaymentRoute())
    # And the status read merchants poll, the same way (read_route.py).
    app.router.routes.insert(2, ReadPaymentRoute())
    # `pesaswitch doctor --probe` fetches this through PESASWITCH_PUBLIC_URL.
    app.include_router(doctor_probe_router)
    app.include_router(payout_callbacks_router)
    app.include_router(c2b_daraja_router)
    app.include_router(receipts_router)
    app.include_router(reversal_callbacks_router)
    # Server-rendered pages; their errors render as HTML, the API's stay problem+json.
    # After the API and Daraja's callbacks: routes are matched in order, and those are
    # the requests every payment makes (the paths do not overlap).
    install_dashboard(app)
    # Vendor dialects: same paths as the vendors, so only the base URL changes.
    for prefix, dialect in (
        ("/api/v2", create_payhero_app(runtime)),
        ("/api", create_paynexus_app(runtime)),
        ("/remittance", create_pokea_app(runtime)),
    ):
        app.mount(prefix, dialect)
        # Starlette matches a mount with `.*`, which stops at a newline: a dialect URL with
        # %0A in an id fell through to the native app and got a native-shaped 404.
        mount = app.router.routes[-1]
        assert isinstance(mount, Mount)
        mount.path_regex = re.compile(mount.path_regex.pattern, re.DOTALL)
    if runtime.simulator is not None:
        # The sandbox phone on the gateway's own port: only beside the embedded simulator,
        # never in daraja_mode sandbox or production.
        app.mount("/simulator", runtime.simulator.phone_app)

    app.add_middleware(BodyLimitMiddleware, max_body=settings.max_body_bytes)

    @app.get("/healthz", tags=["health"])
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    # A route, not a mounted app: a mount at /metrics answers 307 to /metrics/.
    @app.get("/metrics", tags=["health"], include_in_schema=False)
    async def metrics() -> Response:
        return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)

    @app.get("/readyz", tags=["health"])
    async def readyz() -> JSONResponse:
        try:
            async with runtime.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        except Exception as exc:
            return JSONResponse({"status": "unavailable", "error": type(exc).__name__}, 503)
        return JSONResponse({"status": "ready"})

    return app


def create_served_app(settings: Settings | None = None) -> FastAPI:
    """The app as ``serve`` runs it: built, then its heap settled (kit/heap.py). Also
    ``serve --workers N``'s factory, where each process builds it from the environment."""
    app = create_app(settings)
    settle_heap()
    return app
