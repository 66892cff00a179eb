"""Starting what the benchmark measures, each as its own process on 127.0.0.1.

The simulator (no callback delay, Daraja's same-amount and subscriber-lock rules off), the
webhook receiver (bench/receiver.py under uvicorn), N ``pesaswitch serve`` processes on N
ports (``serve`` has no multi-process option) and M ``pesaswitch worker`` processes.
Every log goes to the run's temp dir; `running_stack` stops everything on the way out.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]

from bench.monitor import child_pids
from tests.support.processes import PESASWITCH, Process, free_port

SECRET = "benchmark-secret-key-0123456789"
HOST = "127.0.0.1"


@dataclass
class Stack:
    database_url: str
    logs: Path
    gateways: list[str] = field(default_factory=list)  # base URLs, the first gets callbacks
    simulator_url: str = ""
    receiver_url: str = ""
    api_key: str = ""
    account_id: str = ""
    channel_id: int = 0
    processes: dict[str, Process] = field(default_factory=dict)
    # With one port: the API processes `serve --workers N` forked, measured one by one
    # in place of their supervisor (which only watches them).
    workers_of: dict[str, list[int]] = field(default_factory=dict)
    # Starts the named process again with its first arguments and environment (the chaos
    # harness restarts the workers it kills); set by `running_stack`.
    restart: Callable[[str], Process] = field(default_factory=lambda: _no_restart)

    @property
    def auth(self) -> tuple[tuple[str, str], ...]:
        return (("Authorization", f"Bearer {self.api_key}"),)

    def db_sessions(self) -> int | None:
        """PostgreSQL's count of sessions ever opened on the database (None for SQLite).

        Backends report it lazily (within about a second), so differences are approximate.
        """
        if not self.database_url.startswith("postgresql"):
            return None

        async def query() -> int:
            dsn = self.database_url.replace("postgresql+asyncpg://", "postgresql://")
            conn = await asyncpg.connect(dsn)
            try:
                sql = "SELECT sessions FROM pg_stat_database WHERE datname = current_database()"
                return int(await conn.fetchval(sql))
            finally:
                await conn.close()

        return asyncio.run(query())

    def pids(self) -> dict[str, int]:
        pids = {}
        for name, p in self.processes.items():
            children = self.workers_of.get(name)
            if children:
                pids.update({f"gateway{n}": pid for n, pid in enumerate(children)})
            else:
                pids[name] = p.popen.pid
        return pids

    def dead(self) -> list[str]:
        """Processes that have exited (with their exit code)."""
        return [
            f"{name} (exit {p.popen.returncode})"
            for name, p in self.processes.items()
            if p.popen.poll() is not None
        ]

    def log_tails(self, lines: int = 15) -> dict[str, str]:
        """The last lines of every non-empty log, for the report."""
        tails = {}
        for path in sorted(self.logs.glob("*.log")):
            if path.name == "setup.log":  # holds the account's (throwaway) keys
                continue
            text = path.read_text(errors="replace").strip()
            if text:
                tails[path.name] = "\n".join(text.splitlines()[-lines:])
        return tails


def _no_restart(name: str) -> Process:
    raise RuntimeError(f"{name}: the stack is not running")


def _cli(args: list[str], env: dict[str, str], log: Path) -> str:
    done = subprocess.run(  # noqa: S603 (our own executable, our own arguments)
        [PESASWITCH, *args], env={**os.environ, **env}, capture_output=True, text=True,
        timeout=120, check=False,
    )  # fmt: skip
    with log.open("a") as out:
        out.write(f"$ pesaswitch {' '.join(args)}\n{done.stdout}{done.stderr}\n")
    if done.returncode != 0:
        raise RuntimeError(f"pesaswitch {' '.join(args)} failed:\n{done.stderr[-3000:]}")
    return done.stdout


def _api_workers(supervisor: int) -> list[int]:
    """The API processes uvicorn spawned (``spawn_main`` in their command line), not its
    multiprocessing helpers (the resource tracker)."""
    found = []
    for pid in child_pids(supervisor):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if b"spawn_main" in cmdline:
            found.append(pid)
    return found


def _wait_started(process: Process, seconds: float) -> None:
    """For processes without an HTTP port (workers): still alive after ``seconds``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.popen.poll() is not None:
            raise RuntimeError(f"{process.args} exited early:\n{process.output()}")
        time.sleep(0.1)


@contextmanager
def running_stack(
    database_url: str,
    logs: Path,
    api_procs: int,
    workers: int,
    *,
    one_port: bool = False,
    extra_env: Mapping[str, str] | None = None,
    receiver: list[str] | None = None,
    start_timeout: float = 60.0,
) -> Iterator[Stack]:
    """``extra_env`` reaches every started process (after the defaults below, so it can
    override them); ``receiver`` is a command run instead of bench/receiver.py under uvicorn,
    given ``--host`` and ``--port`` (it must answer ``GET /count`` with 200);
    ``start_timeout`` bounds each process's start (a loaded machine needs more)."""
    base_env = {
        "PESASWITCH_DATABASE_URL": database_url,
        "PESASWITCH_SECRET_KEY": SECRET,
        "PESASWITCH_LOG_LEVEL": "warning",
    }
    extra = dict(extra_env or {})
    stack = Stack(database_url, logs)
    _cli(["migrate"], base_env, logs / "setup.log")
    account = json.loads(_cli(["accounts", "create", "--name", "bench", "--json"], base_env,
                              logs / "setup.log"))  # fmt: skip
    stack.api_key = account["secret_key"]
    stack.account_id, stack.channel_id = account["account_id"], account["default_channel_id"]

    sim_port, receiver_port = free_port(), free_port()
    # One port: `serve --workers N`, the kernel spreads connections (the callbacks too)
    # over the processes, as a load balancer would. Else N serve processes on N ports.
    ports = [free_port() for _ in range(1 if one_port else api_procs)]
    stack.simulator_url = f"http://{HOST}:{sim_port}"
    stack.receiver_url = f"http://{HOST}:{receiver_port}"
    stack.gateways = [f"http://{HOST}:{port}" for port in ports]
    simulator_env = {
        **base_env,
        "PESASWITCH_SIMULATOR_DELAY": "0",
        "PESASWITCH_SIMULATOR_RULE_SAME_AMOUNT": "false",
        "PESASWITCH_SIMULATOR_RULE_SUBSCRIBER_LOCK": "false",
        **extra,
    }
    gateway_env = {
        **base_env,
        "PESASWITCH_HOST": HOST,
        "PESASWITCH_PUBLIC_URL": stack.gateways[0],
        "PESASWITCH_DARAJA_BASE_URL": stack.simulator_url,
        "PESASWITCH_EMBEDDED_WORKER": "false",
        "PESASWITCH_SANDBOX_ALLOW_PRIVATE_URLS": "true",
        "PESASWITCH_RECONCILE_AFTER": "30",
        "PESASWITCH_STK_PROTECTION": "false",
        **extra,
    }

    with ExitStack() as stopping:
        launched: dict[str, tuple[list[str], dict[str, str]]] = {}

        def start(name: str, args: list[str], env: dict[str, str]) -> Process:
            process = Process(args, env, logs / f"{name}.log")
            stopping.callback(process.stop)
            stack.processes[name] = process
            launched[name] = (args, env)
            return process

        stack.restart = lambda name: start(name, *launched[name])

        simulator = start(
            "simulator", [PESASWITCH, "simulator", "--host", HOST, "--port", str(sim_port)],
            simulator_env,
        )  # fmt: skip
        receiver_args = (
            [*receiver, "--host", HOST, "--port", str(receiver_port)] if receiver else
            [sys.executable, "-m", "uvicorn", "bench.receiver:app", "--host", HOST,
             "--port", str(receiver_port), "--log-level", "warning", "--no-access-log"]
        )  # fmt: skip
        receiver_process = start("receiver", receiver_args, extra)
        for n, port in enumerate(ports):
            many = ["--workers", str(api_procs)] if one_port else []
            start(f"gateway{n}", [PESASWITCH, "serve", "--host", HOST, "--port", str(port),
                                  *many], gateway_env)  # fmt: skip
        for n in range(workers):
            start(f"worker{n}", [PESASWITCH, "worker"], gateway_env)
        simulator.wait_http(f"{stack.simulator_url}/simulator/health", timeout=start_timeout)
        receiver_process.wait_http(f"{stack.receiver_url}/count", timeout=start_timeout)
        for n, url in enumerate(stack.gateways):
            stack.processes[f"gateway{n}"].wait_http(f"{url}/healthz", timeout=start_timeout)
        if one_port:
            supervisor = stack.processes["gateway0"].popen.pid
            deadline = time.monotonic() + start_timeout
            while len(found := _api_workers(supervisor)) < api_procs:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"serve --workers {api_procs} started {len(found)}")
                time.sleep(0.2)
            stack.workers_of["gateway0"] = sorted(found)
            # /healthz answered from one of them; the others start alongside it.
            time.sleep(3.0)
        for n in range(workers):
            _wait_started(stack.processes[f"worker{n}"], 1.0)
        yield stack
