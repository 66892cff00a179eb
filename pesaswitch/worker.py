"""Background loops. Embedded in ``serve`` by default, or run alone as ``pesaswitch worker``;
any number of them can run at once, since every claim goes through the database."""

from __future__ import annotations

import asyncio
import contextlib

import structlog

from pesaswitch.c2b.tasks import run_c2b_worker
from pesaswitch.errors import log_tick_failure
from pesaswitch.payments.orphans import settle_orphans_once
from pesaswitch.payments.tasks import reconcile_once
from pesaswitch.payouts.tasks import reconcile_payouts_once
from pesaswitch.refunds.tasks import reconcile_reversals_once
from pesaswitch.runtime import Runtime
from pesaswitch.webhooks.dispatcher import Dispatcher

log = structlog.get_logger(__name__)


async def run_worker(runtime: Runtime, stop: asyncio.Event) -> None:
    """The reconciler (with the orphan sweep), the webhook dispatcher and the C2B loop
    (STK receipts, the daily sweep), side by side until ``stop`` is set."""
    await asyncio.gather(
        run_reconciler(runtime, stop), Dispatcher(runtime).run(stop), run_c2b_worker(runtime, stop)
    )


async def run_reconciler(runtime: Runtime, stop: asyncio.Event) -> None:
    interval = runtime.settings.reconcile_interval
    log.info("worker.started", interval=interval)
    while not stop.is_set():
        try:
            handled = (
                await reconcile_once(runtime)
                + await settle_orphans_once(runtime)
                + await reconcile_payouts_once(runtime)
                + await reconcile_reversals_once(runtime)
            )
        except Exception as exc:
            # A database hiccup must not kill the loop; the next tick retries.
            log_tick_failure("worker.tick_failed", exc)
            handled = 0
        if handled:
            continue  # more may be due; go again without sleeping
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=interval)
    log.info("worker.stopped")
