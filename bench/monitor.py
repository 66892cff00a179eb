"""What the measured processes use while a scenario runs: CPU and memory from /proc
(no psutil), and what PostgreSQL's sessions are doing (pg_stat_activity).

`Monitor` polls VmRSS of every process in the background and keeps the maximum; at the
end it also reads VmHWM (the kernel's own peak, start-up included). It samples CPU seconds
per process too, so `share()` gives each one's CPU use over a scenario.
PostgreSQL counts as one "process": the postmaster, its live backends, and (through the
postmaster's cutime/cstime) the backends that have already exited.

`PgWaits`: every ``interval`` seconds a background thread reads the state and wait event
of every session of the benchmark's database (its own excepted). A scenario's summary is the
average number of sessions per (state, wait event) over the samples taken inside it, and
the statements most often seen waiting on a lock. "idle in transaction / ClientRead" is a
transaction that waits for the gateway to send its next statement (its locks held).
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]

TICKS = os.sysconf("SC_CLK_TCK")


def _status_kib(pid: int, key: str) -> int | None:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return None


def _stat_fields(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat after the command name (field 3 onwards)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rfind(")") + 2 :].split()


def cpu_seconds(pid: int, *, children: bool = False) -> float:
    fields = _stat_fields(pid)
    if fields is None:
        return 0.0
    # utime, stime, cutime, cstime are fields 14-17, i.e. indexes 11-14 here.
    ticks = int(fields[11]) + int(fields[12])
    if children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / TICKS


def machine_busy() -> float:
    """CPU seconds the whole machine has been busy (all cores), from /proc/stat."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(f) for f in fields[:8])
    return (user + nice + system + irq + softirq + steal) / TICKS


def child_pids(parent: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat_fields(int(entry.name))
            if fields is not None and int(fields[1]) == parent:
                found.append(int(entry.name))
    return found


def find_postmaster(port: int) -> int | None:
    """The PostgreSQL server started with ``-p <port>`` (the throwaway cluster)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            args = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if args and args[0].endswith(b"postgres") and b"-p" in args:
            at = args.index(b"-p")
            if at + 1 < len(args) and args[at + 1] == str(port).encode():
                return int(entry.name)
    return None


@dataclass
class Monitor:
    """Samples VmRSS of ``pids`` (name → pid) every ``interval`` seconds until stopped."""

    pids: dict[str, int]
    postmaster: int | None = None
    interval: float = 0.2
    max_rss: dict[str, int] = field(default_factory=dict)  # KiB
    hwm: dict[str, int] = field(default_factory=dict)  # KiB
    samples: list[tuple[float, dict[str, float]]] = field(default_factory=list)  # CPU seconds
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="rss-monitor", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def sample(self) -> None:
        self.samples.append((time.monotonic(), self.cpu()))
        for name, pid in self.pids.items():
            rss = _status_kib(pid, "VmRSS")
            if rss is not None:
                self.max_rss[name] = max(self.max_rss.get(name, 0), rss)

    def stop(self) -> None:
        """Stop sampling and read VmHWM; call it while the processes are still running."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.sample()
        for name, pid in self.pids.items():
            hwm = _status_kib(pid, "VmHWM")
            if hwm is not None:
                self.hwm[name] = hwm

    def cpu(self) -> dict[str, float]:
        """CPU seconds used so far by each process, PostgreSQL as a whole, the machine."""
        used = {name: cpu_seconds(pid) for name, pid in self.pids.items()}
        used["machine"] = machine_busy()
        if self.postmaster is not None:
            used["postgres"] = cpu_seconds(self.postmaster, children=True) + sum(
                cpu_seconds(pid) for pid in child_pids(self.postmaster)
            )
        return used

    def used(self, start: float, end: float) -> dict[str, float]:
        """CPU seconds each process used between two monotonic times (the samples inside)."""
        inside = [cpu for t, cpu in self.samples if start <= t <= end]
        if len(inside) < 2:
            return {}
        before, after = inside[0], inside[-1]
        return {name: after[name] - before.get(name, 0.0) for name in after if name != "machine"}

    def share(self, start: float, end: float) -> dict[str, float]:
        """Average CPU use between two monotonic times, in percent of one core.

        Uses the samples inside [start, end] (taken every ``interval`` s); "other" is what
        the rest of the machine used (the load generator included until the caller
        subtracts it).
        """
        inside = [(t, cpu) for t, cpu in self.samples if start <= t <= end]
        if len(inside) < 2:
            return {}
        (t0, before), (t1, after) = inside[0], inside[-1]
        wall = max(t1 - t0, 1e-9)
        used = {name: 100 * (after[name] - before.get(name, 0.0)) / wall for name in after}
        used["other"] = used.pop("machine") - sum(used.values())
        return used


QUERY = """
SELECT state, wait_event_type, wait_event, left(regexp_replace(query, '\\s+', ' ', 'g'), 70)
FROM pg_stat_activity
WHERE datname = current_database() AND pid <> pg_backend_pid() AND state IS NOT NULL
"""

Sample = tuple[float, list[tuple[str, str, str]], list[str]]  # time, sessions, lock waiters


@dataclass
class PgWaits:
    database_url: str
    interval: float = 0.1
    samples: list[Sample] = field(default_factory=list)
    error: str = ""
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="pg-waits", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        try:
            asyncio.run(self._loop())
        except Exception as exc:  # a diagnostic must never stop the benchmark
            self.error = f"{type(exc).__name__}: {exc}"

    async def _loop(self) -> None:
        dsn = self.database_url.replace("postgresql+asyncpg://", "postgresql://")
        conn: Any = await asyncpg.connect(dsn)
        try:
            while not self._stop.is_set():
                rows = await conn.fetch(QUERY)
                sessions = [(str(r[0]), str(r[1] or "-"), str(r[2] or "-")) for r in rows]
                waiting = [str(r[3]) for r in rows if r[1] == "Lock"]
                self.samples.append((time.monotonic(), sessions, waiting))
                await asyncio.sleep(self.interval)
        finally:
            await conn.close()

    def summary(self, start: float, end: float) -> dict[str, Any]:
        """Average sessions per "state: wait_type/wait_event" and the top lock waiters."""
        inside = [s for s in self.samples if start <= s[0] <= end]
        if not inside:
            return {}
        states: Counter[str] = Counter()
        locked: Counter[str] = Counter()
        for _, sessions, waiting in inside:
            states.update(f"{state}: {kind}/{event}" for state, kind, event in sessions)
            locked.update(waiting)
        n = len(inside)
        return {
            "samples": n,
            "sessions": {k: round(v / n, 1) for k, v in states.most_common() if v / n >= 0.05},
            "lock_waits": {k: round(v / n, 1) for k, v in locked.most_common(3) if v / n >= 0.05},
        }
