"""What a running process shares: settings, database, Daraja clients, the simulator."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from pesaswitch.accounts.throttle import KeyThrottle
from pesaswitch.config import Settings
from pesaswitch.daraja.client import DarajaClients
from pesaswitch.ledger.policy import bind_ledger_policy
from pesaswitch.protection.stk import bind_policy
from pesaswitch.simulator.app import Simulator
from pesaswitch.sqlite_direct import close_direct


@dataclass(slots=True)
class Runtime:
    settings: Settings
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    daraja: DarajaClients
    simulator: Simulator | None = None
    # API key guessing, counted per client address in this process (accounts/throttle.py).
    key_throttle: KeyThrottle = field(default_factory=KeyThrottle)

    def __post_init__(self) -> None:
        # Outcomes are recorded and wallets credited where only a session is at hand
        # (callbacks, the reconciler): the STK limits, the fee tariff and the shortcode.
        bind_policy(self.sessionmaker, self.settings)
        bind_ledger_policy(self.sessionmaker, self.settings)

    async def aclose(self) -> None:
        if self.simulator is not None:
            await self.simulator.aclose()
        await self.daraja.aclose()
        close_direct(self.engine)
        await self.engine.dispose()


def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


async def _runtime_dependency(request: Request) -> Runtime:
    # Async on purpose: FastAPI runs a plain ``def`` dependency in its thread pool, a
    # thread hand-off (and GIL contention) on every request for one attribute read.
    return get_runtime(request)


RuntimeDep = Annotated[Runtime, Depends(_runtime_dependency)]
