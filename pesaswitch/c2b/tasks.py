"""The C2B background loop, beside the reconciler: STK receipts by Transaction Status,
and the daily Pull Transactions sweep of every registered channel that is due."""

from __future__ import annotations

import asyncio
import contextlib

import structlog

from pesaswitch.c2b import flows, receipts
from pesaswitch.errors import log_tick_failure
from pesaswitch.runtime import Runtime

log = structlog.get_logger(__name__)


async def run_c2b_worker(runtime: Runtime, stop: asyncio.Event) -> None:
    interval = runtime.settings.reconcile_interval
    while not stop.is_set():
        handled = 0
        try:
            handled = await receipts.lookup_once(runtime)
            await flows.sweep_all(runtime)
        except Exception as exc:
            # A database hiccup must not kill the loop; the next tick retries.
            log_tick_failure("c2b.worker.tick_failed", exc)
        if handled:
            continue
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=interval)
