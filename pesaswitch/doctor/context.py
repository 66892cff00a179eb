"""What the checks share: the settings, a Daraja connection and a database engine.

Built like the gateway's own runtime (same base URL, timeout and, in simulator mode, an
embedded simulator behind an ASGI transport), but without ``build_runtime``'s
process-wide bindings: the doctor only reads.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from pesaswitch.app import simulator_config
from pesaswitch.config import Settings
from pesaswitch.daraja.diagnostics import Answer
from pesaswitch.db import create_engine
from pesaswitch.simulator.app import Simulator


@dataclass(slots=True)
class DoctorContext:
    settings: Settings
    daraja_http: httpx.AsyncClient
    simulator: Simulator | None
    probe: bool
    _engine: AsyncEngine | None = None
    # Filled in by the checks that run first, read by the ones after them.
    token: str | None = None
    token_answer: Answer | None = None
    database_at_head: bool = False

    @classmethod
    def open(cls, settings: Settings, *, probe: bool) -> DoctorContext:
        simulator = None
        transport: httpx.AsyncBaseTransport | None = None
        if settings.embedded_simulator:
            simulator = Simulator(simulator_config(settings))
            transport = httpx.ASGITransport(app=simulator.app)
        http = httpx.AsyncClient(
            base_url=settings.effective_daraja_base_url,
            timeout=settings.daraja_timeout,
            transport=transport,
        )
        return cls(settings, http, simulator, probe)

    @property
    def engine(self) -> AsyncEngine:
        if self._engine is None:
            self._engine = create_engine(self.settings)
        return self._engine

    async def aclose(self) -> None:
        await self.daraja_http.aclose()
        if self.simulator is not None:
            await self.simulator.aclose()
        if self._engine is not None:
            await self._engine.dispose()
