"""Process faults: SIGKILL of a random API process or worker every few seconds, and one
PostgreSQL restart mid-run. Seeded: the same seed kills in the same order at the same
offsets (which request each kill interrupts depends on timing, as it would in life).

API processes are the children of ``serve --workers 2``; uvicorn's supervisor starts a
new one in place of a killed one, and the harness checks that it did. Workers are
started again by the harness after a short pause.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from bench.stack import Stack, _api_workers

WORKER_NAMES = ("worker0", "worker1")


@dataclass
class FaultLog:
    kills: list[tuple[float, str]] = field(default_factory=list)  # (seconds into run, what)
    api_not_restarted: list[str] = field(default_factory=list)
    db_restarts: list[float] = field(default_factory=list)


def _kill(pid: int) -> bool:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return False
    return True


async def _api_back(supervisor: int, count: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if len(_api_workers(supervisor)) >= count:
            return True
        await asyncio.sleep(0.25)
    return False


async def kill_loop(
    stack: Stack,
    seed: int,
    every: tuple[float, float],
    stop: asyncio.Event,
    log: FaultLog,
    api_procs: int,
    started: float,
) -> None:
    rng = random.Random(f"{seed}:kills")
    supervisor = stack.processes["gateway0"].popen.pid
    while not stop.is_set():
        try:
            await asyncio.wait_for(stop.wait(), timeout=rng.uniform(*every))
            return
        except TimeoutError:
            pass
        target = rng.choice(("api", "api", *WORKER_NAMES))
        at = round(time.monotonic() - started, 1)
        if target == "api":
            children = sorted(_api_workers(supervisor))
            if not children:
                continue
            pid = children[rng.randrange(len(children))]
            if _kill(pid):
                log.kills.append((at, f"api pid {pid}"))
            if not await _api_back(supervisor, api_procs, 30.0):
                log.api_not_restarted.append(f"after killing {pid} at {at}s")
        else:
            process = stack.processes[target]
            if _kill(process.popen.pid):
                process.popen.wait(timeout=10)
                log.kills.append((at, target))
            await asyncio.sleep(rng.uniform(0.2, 1.5))
            stack.restart(target)


async def restart_database_once(
    restart: Callable[[], None], at: float, stop: asyncio.Event, log: FaultLog, started: float
) -> None:
    try:
        await asyncio.wait_for(stop.wait(), timeout=at)
        return
    except TimeoutError:
        pass
    log.db_restarts.append(round(time.monotonic() - started, 1))
    await asyncio.to_thread(restart)
