"""The API benchmark: gateway, worker(s), simulator and webhook receiver as real processes.

    python -m bench.run --db sqlite --api-procs 1 --workers 1
    python -m bench.run --db postgres --api-procs 2 --workers 2 --duration 8 --payments 1500
    make bench BENCH_ARGS='--db postgres --json'      (or: pesaswitch bench --db postgres)

Scenarios: the load generator's own ceiling (GET on the bare receiver), baseline
(GET /healthz), initiate (POST /v1/payments), status (GET /v1/payments/{id}) and
end-to-end (POST → simulator → callback → worker → signed webhook at the receiver).
Everything binds 127.0.0.1, stops by itself, and is removed afterwards, failures included.
PESASWITCH_* variables in the environment reach every process (the harness's own settings
win) and are printed in the reproduce line, e.g. PESASWITCH_WEBHOOK_DESTINATION_CONCURRENCY=32.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from types import FrameType
from urllib.parse import urlsplit

from bench.monitor import Monitor, PgWaits, find_postmaster
from bench.preload import run_explain, run_preload
from bench.report import Report, inherited_settings
from bench.scenarios import Options, Runner
from bench.soak import soak
from bench.stack import SECRET, running_stack
from bench.statements import count_statements
from pesaswitch.config import Settings
from tests.support.pg_cluster import throwaway_cluster

ROOT = Path(__file__).resolve().parent.parent


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="bench.run",
        description=__doc__.splitlines()[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--api-procs", type=int, default=1, help="pesaswitch serve processes")
    parser.add_argument("--workers", type=int, default=1, help="pesaswitch worker processes")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per scenario")
    parser.add_argument("--concurrency", type=int, default=32, help="requests in flight")
    parser.add_argument("--payments", type=int, default=2000, help="end-to-end payments")
    parser.add_argument("--clients", type=int, default=1,
                        help="load generator processes sharing the concurrency")  # fmt: skip
    parser.add_argument("--e2e-timeout", type=float, default=180.0,
                        help="seconds the end-to-end scenario may take in all")  # fmt: skip
    parser.add_argument("--one-port", action="store_true",
                        help="with --api-procs N: one `serve --workers N` (callbacks spread "
                             "too) instead of N processes on N ports")  # fmt: skip
    parser.add_argument("--preload", type=int, default=0,
                        help="historical payments written in bulk first")  # fmt: skip
    parser.add_argument("--soak", type=float, default=0.0,
                        help="instead of the scenarios: SECONDS of mixed load with RSS "
                             "sampled per process (start/peak/end, slope)")  # fmt: skip
    parser.add_argument("--only", choices=("end-to-end",), default=None,
                        help="run only this scenario (e.g. while profiling it)")  # fmt: skip
    parser.add_argument("--json", action="store_true", help="print JSON instead of tables")
    parser.add_argument("--keep-logs", action="store_true", help="keep the temp dir and logs")
    args = parser.parse_args(argv)
    for name in ("api_procs", "workers", "concurrency", "payments", "clients"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.duration <= 0 or args.e2e_timeout <= 0:
        parser.error("--duration and --e2e-timeout must be positive")
    if args.preload < 0 or args.soak < 0:
        parser.error("--preload and --soak cannot be negative")
    return args


def _revision() -> str:
    """The commit measured, and whether the working tree differs from it."""
    git = shutil.which("git")

    def out(*args: str) -> str:
        assert git is not None
        done = subprocess.run([git, *args], capture_output=True, text=True, cwd=ROOT, check=True)  # noqa: S603
        return done.stdout.strip()

    try:
        head = out("rev-parse", "--short", "HEAD")
        dirty = out("status", "--porcelain", "--untracked-files=no")
    except (OSError, AssertionError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"
    return head + (" with uncommitted changes" if dirty else "")


def _log_summary(logs: Path) -> dict[str, dict[str, int]]:
    summary = {}
    for path in sorted(logs.glob("*.log")):
        text = path.read_text(errors="replace")
        lower = text.lower()
        summary[path.name] = {
            "lines": len(text.splitlines()),
            "tracebacks": text.count("Traceback (most recent call last)"),
            "errors": lower.count("[error") + lower.count("error:") + lower.count('"error"'),
        }
    return summary


def measure(args: argparse.Namespace, logs: Path) -> Report:
    setup = {
        "code": _revision(),
        "database": "throwaway PostgreSQL cluster (fsync=off, synchronous_commit=on)"
        if args.db == "postgres" else "SQLite file in the temp dir (WAL, synchronous=FULL)",
        "processes": f"{args.api_procs} x `pesaswitch serve` (PESASWITCH_EMBEDDED_WORKER=false), "
        f"{args.workers} x `pesaswitch worker`, `pesaswitch simulator` (delay 0), "
        "bench/receiver.py under uvicorn",
        "load generator": f"{args.clients} process(es), asyncio + aiohttp (a session per "
        f"gateway), concurrency {args.concurrency} in all; {args.duration:g} s per "
        f"scenario after a warm-up; end-to-end: {args.payments} payments",
    }  # fmt: skip
    if inherited_settings():
        setup["inherited settings"] = " ".join(f"{k}={v}" for k, v in inherited_settings().items())
    if args.api_procs > 1 and args.one_port:
        setup["api procs"] = (
            f"one `pesaswitch serve --workers {args.api_procs}` on one port: the kernel "
            "spreads connections, Daraja callbacks included, over the processes (measured "
            "as gateway0..N-1; the supervisor is not counted)"
        )
    elif args.api_procs > 1:
        setup["api procs"] = (
            f"`pesaswitch serve` has no multi-process option: {args.api_procs} serve processes "
            "on as many ports; the load generator spreads requests round-robin across them. "
            "Daraja callbacks all go to gateway0 (PESASWITCH_PUBLIC_URL)."
        )
    with ExitStack() as stack:
        if args.db == "postgres":
            database_url = stack.enter_context(throwaway_cluster())
            postmaster = find_postmaster(urlsplit(database_url).port or 5432)
        else:
            database_url, postmaster = f"sqlite+aiosqlite:///{logs / 'bench.db'}", None
        running = stack.enter_context(
            running_stack(database_url, logs, args.api_procs, args.workers, one_port=args.one_port)
        )
        if args.preload:
            took = run_preload(
                Settings(database_url=database_url, secret_key=SECRET),
                account_id=running.account_id, channel_id=running.channel_id,
                count=args.preload,
            )  # fmt: skip
            setup["preload"] = (
                f"{args.preload:,} historical completed payments (with their events, "
                f"deliveries and ledger entries) written in bulk in {took:.0f} s, then ANALYZE"
            )
            if args.db == "postgres":
                plans = run_explain(
                    Settings(database_url=database_url, secret_key=SECRET),
                    account_id=running.account_id,
                )
                for name, plan in plans.items():
                    setup[f"EXPLAIN {name}"] = plan
        monitor = Monitor(running.pids(), postmaster)
        monitor.start()
        stack.callback(monitor.stop)  # before the processes stop (LIFO), so VmHWM is there
        options = Options(args.duration, args.concurrency, args.payments, args.clients,
                          args.e2e_timeout)  # fmt: skip
        pg = PgWaits(database_url) if args.db == "postgres" else None
        if pg is not None:
            pg.start()
            stack.callback(pg.stop)
        runner = Runner(running, options, monitor, pg)
        soaked: dict[str, dict[str, float]] = {}
        try:
            if args.soak:
                soaked = soak(runner, args.soak)
            elif args.only == "end-to-end":
                runner.end_to_end([])
            else:
                runner.ceiling()
                runner.baseline()
                runner.wrk_healthz()
                ids = runner.initiate()
                runner.wrk_initiate()
                runner.status(ids)
                runner.end_to_end(ids)
        except Exception as exc:  # report what was measured, and why it stopped
            runner.check(False, f"harness stopped: {type(exc).__name__}: {exc}")
        dead = running.dead()
        runner.check(not dead, "processes alive at the end" + (f": died {dead}" if dead else ""))
        monitor.stop()
        statements: dict[str, float] = {}
        if not args.soak:
            try:
                statements = count_statements(database_url, SECRET)
            except Exception as exc:  # a diagnostic; the run's figures stand without it
                runner.checks.append(f"INFO statements per payment not counted: {exc!r}")
        any_errors = any(row.errors for row in runner.rows)
        report = Report(
            command=sys.argv[1:], setup=setup, rows=runner.rows, checks=runner.checks,
            rss={name: {"hwm_kib": monitor.hwm.get(name, 0),
                        "max_rss_kib": monitor.max_rss.get(name, 0)} for name in monitor.pids},
            log_summary=_log_summary(logs),
            log_tails=running.log_tails() if runner.failed or any_errors else {},
            failed=runner.failed, clients=args.clients, soak=soaked, statements=statements,
        )  # fmt: skip
        own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
        report.rss["loadgen (this process)"] = {"hwm_kib": own, "max_rss_kib": own}
        report.annotate()
    return report


def _terminate(signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")  # unwinds through every cleanup


def main(argv: list[str] | None = None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    os.chdir(ROOT)  # uvicorn imports bench.receiver from here
    signal.signal(signal.SIGTERM, _terminate)
    logs = Path(tempfile.mkdtemp(prefix="pesaswitch-bench-"))
    started = time.monotonic()
    try:
        report = measure(args, logs)
    except KeyboardInterrupt as exc:
        print(f"interrupted ({str(exc) or 'Ctrl-C'}); every process was stopped", file=sys.stderr)
        return 130
    finally:
        if args.keep_logs:
            print(f"logs kept in {logs}", file=sys.stderr)
        else:
            shutil.rmtree(logs, ignore_errors=True)
    print(report.as_json() if args.json else report.as_text())
    print(f"(benchmark took {time.monotonic() - started:.0f} s)", file=sys.stderr)
    return 1 if report.failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
