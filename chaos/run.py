"""``make chaos`` / ``pesaswitch chaos`` / ``python -m chaos.run``: a seeded chaos run.

The gateway (``serve --workers 2``), two ``worker`` processes, the standalone simulator
with its seeded faults and a misbehaving webhook receiver run as processes on 127.0.0.1
(bench/stack.py), on SQLite or a throwaway PostgreSQL cluster. A seeded load of payments
(native, PayHero/UpesiPay, PayNexus) and payouts (native, Pokea) runs while API processes
and workers are SIGKILLed every few seconds and PostgreSQL is restarted once. Then the
harness waits for quiescence and checks the outcome (chaos/checks.py). Exit 1 on any
failed check. Everything stops by itself: the load and the wait are both bounded.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench.stack import SECRET, running_stack
from chaos import checks, faults, load
from chaos.merchants import create_merchants, register_endpoints
from pesaswitch.config import Settings
from tests.support.pg_cluster import restartable_cluster


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="pesaswitch chaos", description=__doc__)
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--seed", type=int, default=None, help="default: a random one (printed)")
    parser.add_argument("--payments", type=int, default=10_000)
    parser.add_argument("--payouts", type=int, default=None, help="default: payments / 10")
    parser.add_argument("--accounts", type=int, default=20)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument(
        "--kill-every",
        type=float,
        nargs=2,
        default=(3.0, 8.0),
        metavar=("MIN", "MAX"),
        help="seconds between kills (uniform)",
    )
    parser.add_argument("--no-kills", action="store_true", help="no SIGKILLs, no DB restart")
    parser.add_argument(
        "--fault-rate",
        type=float,
        default=0.3,
        help="share of requests/callbacks meeting a simulator or receiver fault",
    )
    parser.add_argument("--load-timeout", type=float, default=1800.0)
    parser.add_argument("--quiet-timeout", type=float, default=180.0)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--keep-logs", action="store_true")
    args = parser.parse_args(argv)
    if args.seed is None:
        args.seed = random.SystemRandom().randrange(1, 1_000_000)
    if args.payouts is None:
        args.payouts = args.payments // 10
    if args.accounts < 1 or args.payments < 1 or args.concurrency < 1:
        parser.error("--accounts, --payments and --concurrency must be at least 1")
    return args


def run_settings(args: argparse.Namespace) -> dict[str, str]:
    """Every process's settings: short timeouts and intervals so that a run can settle."""
    return {
        "PESASWITCH_DARAJA_TIMEOUT": "4",
        "PESASWITCH_SIMULATOR_HANG_SECONDS": "6",  # past the client's timeout
        "PESASWITCH_SIMULATOR_CHAOS_SEED": str(args.seed),
        "PESASWITCH_SIMULATOR_CHAOS_RATE": str(args.fault_rate),
        "PESASWITCH_SIMULATOR_CHAOS_LATE_SECONDS": "8",  # past the reconciler's threshold
        "PESASWITCH_SIMULATOR_B2C_UTILITY_BALANCE": "1000000000",
        "PESASWITCH_RECONCILE_AFTER": "5",
        # Past the simulator's late Results (8 s + jitter, later on a busy machine: at 20 s,
        # 1 payout in 560 was failed by an early 2032 at load average 10).
        "PESASWITCH_PAYOUT_NOT_FOUND_GRACE": "60",
        "PESASWITCH_RECONCILE_BACKOFF": "2,3,5",
        # Orphaned pushes (no CheckoutRequestID, no callback) are settled from the gateway
        # paybill's statement once their prompt is over: the simulator's last callback
        # comes within hang 6 s + late 8 s + jitter 2 s of the push, so a prompt "lives"
        # 20 s here; the margin covers a push sent late by a starved API process.
        "PESASWITCH_STK_STATEMENT_CHECK": "true",
        "PESASWITCH_STK_PROMPT_LIFETIME": "20",
        "PESASWITCH_STK_STATEMENT_MARGIN": "30",
        "PESASWITCH_RECONCILE_INTERVAL": "0.5",
        "PESASWITCH_WEBHOOK_RETRY_SCHEDULE": "1,2,3,5,8",
        "PESASWITCH_WEBHOOK_TIMEOUT": "4",  # the receiver's hang is 12 s, its slow 200 1.5 s
        "PESASWITCH_IDEMPOTENCY_LOCK_SECONDS": "8",
        "PESASWITCH_DB_POOL_SIZE": "16",
        "CHAOS_SEED": str(args.seed),
        "CHAOS_RECEIVER_FAULT_RATE": str(args.fault_rate),
    }


@contextmanager
def database(kind: str, logs: Path) -> Iterator[tuple[str, Callable[[], None] | None]]:
    if kind == "sqlite":
        yield f"sqlite+aiosqlite:///{logs / 'chaos.db'}", None
        return
    with restartable_cluster() as cluster:
        yield cluster.url, cluster.restart


def _tracebacks(logs: Path) -> dict[str, int]:
    found = {}
    for path in sorted(logs.glob("*.log")):
        count = path.read_text(errors="replace").count("Traceback (most recent call last)")
        if count:
            found[path.name] = count
    return found


async def _under_fire(
    args: argparse.Namespace,
    stack: Any,
    jobs: list[load.Job],
    restart_db: Callable[[], None] | None,
) -> tuple[load.Tally, faults.FaultLog]:
    started = time.monotonic()
    stop, log = asyncio.Event(), faults.FaultLog()
    background = []
    if not args.no_kills:
        background.append(
            asyncio.create_task(
                faults.kill_loop(stack, args.seed, tuple(args.kill_every), stop, log, 2, started)
            )
        )
        if restart_db is not None:
            # Once, while the load is in full swing: about a third of its expected length.
            at = max(5.0, len(jobs) / 40 / 3)
            background.append(
                asyncio.create_task(
                    faults.restart_database_once(restart_db, at, stop, log, started)
                )
            )
    try:
        tally = await load.drive(
            stack.gateways[0],
            stack.receiver_url,
            jobs,
            args.concurrency,
            started + args.load_timeout,
        )
    finally:
        stop.set()
        await asyncio.gather(*background, return_exceptions=True)
    return tally, log


def run(args: argparse.Namespace) -> int:
    logs = Path(tempfile.mkdtemp(prefix="pesaswitch-chaos-"))
    print(
        f"chaos: seed {args.seed}, {args.db}, {args.payments} payments + {args.payouts} "
        f"payouts over {args.accounts} accounts; logs in {logs}",
        flush=True,
    )
    print(
        f"reproduce: python -m chaos.run --db {args.db} --seed {args.seed} --payments "
        f"{args.payments} --payouts {args.payouts} --accounts {args.accounts}",
        flush=True,
    )
    load_before = os.getloadavg()
    failed = True
    try:
        with (
            database(args.db, logs) as (url, restart_db),
            running_stack(
                url,
                logs,
                api_procs=2,
                workers=2,
                one_port=True,
                extra_env=run_settings(args),
                receiver=[sys.executable, "-m", "chaos.receiver"],
                start_timeout=180.0,  # two API processes importing the app on a busy machine
            ) as stack,
        ):
            settings = Settings(database_url=url, secret_key=SECRET)
            merchants = create_merchants(settings, args.accounts, args.seed)
            register_endpoints(stack.gateways[0], stack.receiver_url, merchants)
            jobs = load.make_plan(args.seed, args.payments, args.payouts, merchants)
            tally, fault_log = asyncio.run(_under_fire(args, stack, jobs, restart_db))
            load_seconds = tally.finished - tally.started
            print(
                f"load: {load_seconds:.0f} s, {len(tally.accepted)} accepted, "
                f"{len(fault_log.kills)} kills, DB restarts at {fault_log.db_restarts}",
                flush=True,
            )
            quiet_seconds, left = asyncio.run(checks.wait_quiet(settings, args.quiet_timeout))
            figures, stats = asyncio.run(
                checks.judge(settings, stack.simulator_url, stack.receiver_url)
            )
            dead = stack.dead()
        tracebacks = _tracebacks(logs)
        figures += _request_figures(tally, fault_log, tracebacks, dead)
        stats.update(
            {
                "seed": args.seed,
                "database": args.db,
                "load seconds": round(load_seconds, 1),
                "quiescence seconds": round(quiet_seconds, 1),
                "left at quiescence": left,
                "kills": len(fault_log.kills),
                "database restarts": len(fault_log.db_restarts),
                "accepted requests": len(tally.accepted),
                "rejected": dict(tally.rejected),
                "statuses": dict(sorted(tally.statuses.items())),
                "transport errors": dict(tally.transport_errors),
                "PayNexus requests (sent once) without an answer": len(tally.unanswered_once),
                "load average before/after": [load_before, os.getloadavg()],
            }
        )
        failed = _report(figures, stats, as_json=args.json)
    finally:
        if args.keep_logs or failed:
            print(f"logs kept in {logs}")
        else:
            shutil.rmtree(logs, ignore_errors=True)
    return 1 if failed else 0


def _request_figures(
    tally: load.Tally, log: faults.FaultLog, tracebacks: dict[str, int], dead: list[str]
) -> list[checks.Figure]:
    Figure = checks.Figure
    return [
        Figure(
            "responses with status 500",
            str(tally.statuses.get(500, 0)),
            not tally.statuses.get(500),
            "; ".join(tally.server_errors[:5]),
        ),
        Figure(
            "tracebacks in the logs",
            str(sum(tracebacks.values())),
            not tracebacks,
            json.dumps(tracebacks),
        ),
        Figure(
            "requests never answered",
            str(len(tally.unanswered)),
            not tally.unanswered,
            ", ".join(tally.unanswered[:10]),
        ),
        Figure(
            "same Idempotency-Key, different payment",
            str(len(tally.replay_mismatches)),
            not tally.replay_mismatches,
            "; ".join(tally.replay_mismatches[:5]),
        ),
        Figure(
            "same key, other body, not 422",
            str(len(tally.other_body_not_422)),
            not tally.other_body_not_422,
            "; ".join(tally.other_body_not_422[:5]),
        ),
        Figure(
            "API processes restarted after a kill",
            f"{len(log.api_not_restarted)} not",
            not log.api_not_restarted,
            "; ".join(log.api_not_restarted),
        ),
        Figure("processes dead at the end", str(len(dead)), not dead, ", ".join(dead)),
    ]


def _report(figures: list[checks.Figure], stats: dict[str, Any], *, as_json: bool) -> bool:
    failed = [f for f in figures if not f.ok]
    if as_json:
        shown = [
            {"name": f.name, "value": f.value, "ok": f.ok, "detail": f.detail} for f in figures
        ]
        print(json.dumps({"figures": shown, "stats": stats}, indent=2, default=str))
        return bool(failed)
    for key, value in stats.items():
        print(f"  {key}: {value}")
    for figure in figures:
        mark = "ok  " if figure.ok else "FAIL"
        print(f"{mark} {figure.name}: {figure.value}")
        if not figure.ok and figure.detail:
            print(f"       {figure.detail[:1500]}")
    print("chaos: FAILED" if failed else "chaos: all checks passed", flush=True)
    return bool(failed)


def _stop_on_sigterm(_signum: int, _frame: object) -> None:
    # Unwind like Ctrl-C, so that running_stack stops every process it started.
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    return run(parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
