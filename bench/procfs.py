"""Memory and CPU of the measured processes, read from /proc (no psutil).

`Monitor` polls VmRSS of every process in the background and keeps the maximum; at the
end it also reads VmHWM (the kernel's own peak, start-up included). `cpu()` gives CPU
seconds per process so a scenario's CPU share can be computed from two snapshots.
PostgreSQL counts as one "process": the postmaster, its live backends, and (through the
postmaster's cutime/cstime) the backends that have already exited.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

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
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="rss-monitor", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def sample(self) -> None:
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
        """CPU seconds used so far by each process (and by PostgreSQL as a whole)."""
        used = {name: cpu_seconds(pid) for name, pid in self.pids.items()}
        if self.postmaster is not None:
            used["postgres"] = cpu_seconds(self.postmaster, children=True) + sum(
                cpu_seconds(pid) for pid in child_pids(self.postmaster)
            )
        return used


def cpu_share(before: dict[str, float], after: dict[str, float], wall: float) -> dict[str, float]:
    """Average CPU use between two snapshots, in percent of one core."""
    return {name: 100 * (after[name] - before.get(name, 0.0)) / max(wall, 1e-9) for name in after}
