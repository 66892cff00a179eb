"""``--soak SECONDS``: mixed load for that long, with memory sampled per process.

The load alternates ``ROUND`` seconds of payment initiation with ``ROUND`` seconds of
status reads of the payments just created, at the run's concurrency, while the
simulator calls back and the worker delivers a webhook for every payment (an endpoint on
the receiver is registered first). Every ``interval`` seconds VmRSS of every process is
recorded. The report gives per process the RSS at the start of the measured window
(after the first ``WARMUP`` share of the run: imports, pools and caches filling up), its
peak and its end, and the least-squares slope over the window in MiB per minute: a leak
shows as a steady positive slope, a plateau as roughly zero.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import httpx

from bench import loadgen
from bench.loadgen import Bounds, Plan, Result
from bench.monitor import _status_kib
from bench.scenarios import Row, Runner

ROUND = 15.0  # seconds per initiate or status round
WARMUP = 0.1  # share of the run left out of start/slope


@dataclass
class RssSeries:
    pids: dict[str, int]
    interval: float = 5.0
    samples: list[tuple[float, dict[str, int]]] = field(default_factory=list)  # KiB
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="rss-series", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while True:
            self.sample()
            if self._stop.wait(self.interval):
                return

    def sample(self) -> None:
        now = time.monotonic()
        values = {name: _status_kib(pid, "VmRSS") for name, pid in self.pids.items()}
        self.samples.append((now, {k: v for k, v in values.items() if v is not None}))

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.sample()

    def summary(self) -> dict[str, dict[str, float]]:
        """Per process: start/peak/end MiB and slope in MiB/min over the measured window."""
        if len(self.samples) < 3:
            return {}
        t0, t_end = self.samples[0][0], self.samples[-1][0]
        window = [s for s in self.samples if s[0] >= t0 + WARMUP * (t_end - t0)]
        out: dict[str, dict[str, float]] = {}
        for name in self.pids:
            points = [(t, kib / 1024) for t, values in window if (kib := values.get(name))]
            if len(points) < 2:
                continue
            out[name] = {
                "start_mib": points[0][1],
                "peak_mib": max(v for _, v in points),
                "end_mib": points[-1][1],
                "slope_mib_per_min": 60 * _slope(points),
                "samples": len(points),
                "minutes": (points[-1][0] - points[0][0]) / 60,
            }
        return out


def _slope(points: list[tuple[float, float]]) -> float:
    n = len(points)
    mean_t = sum(t for t, _ in points) / n
    mean_v = sum(v for _, v in points) / n
    var = sum((t - mean_t) ** 2 for t, _ in points)
    if var == 0:
        return 0.0
    return sum((t - mean_t) * (v - mean_v) for t, v in points) / var


def _row(name: str, results: list[Result], cpu: dict[str, float]) -> Row:
    latencies = [x for r in results for x in r.latencies]
    errors: dict[str, int] = {}
    for r in results:
        for k, v in r.errors.items():
            errors[k] = errors.get(k, 0) + v
    elapsed = sum(r.elapsed for r in results) or 1e-9
    return Row(
        name, len(latencies) / elapsed, loadgen.percentile(latencies, 50),
        loadgen.percentile(latencies, 95), loadgen.percentile(latencies, 99), errors,
        len(latencies), cpu=cpu,
    )  # fmt: skip


def soak(runner: Runner, seconds: float) -> dict[str, dict[str, float]]:
    """Run the mixed load; add a row per kind of request and return the RSS summary."""
    stack, o = runner.stack, runner.options
    with httpx.Client(base_url=stack.gateways[0], headers=dict(stack.auth), timeout=30,
                      trust_env=False) as api:  # fmt: skip
        hook = api.post("/v1/webhook-endpoints", json={"url": f"{stack.receiver_url}/hook"})
    runner.check(hook.status_code == 201, f"soak: webhook endpoint created ({hook.status_code})")
    series = RssSeries(stack.pids())
    series.start()
    initiated: list[Result] = []
    read: list[Result] = []
    started = time.monotonic()
    deadline = started + seconds
    try:
        while time.monotonic() < deadline:
            left = deadline - time.monotonic()
            plan = runner._payments_plan()
            result = loadgen.run(plan, Bounds(o.concurrency, min(ROUND, left), None), o.clients)
            runner.phones_used += result.issued
            initiated.append(result)
            ids = tuple(pid for _, pid in result.started)
            left = deadline - time.monotonic()
            if ids and left > 1:
                status = Plan("GET", tuple(stack.gateways), "/v1/payments/{id}", 200,
                              stack.auth, ids=ids)  # fmt: skip
                read.append(loadgen.run(status, Bounds(o.concurrency, min(ROUND, left), None),
                                        o.clients))  # fmt: skip
    finally:
        series.stop()
    cpu = runner.cpu(started, time.monotonic(), sum(r.cpu for r in initiated + read))
    runner.rows.append(_row("soak initiate", initiated, cpu))
    runner.rows.append(_row("soak status", read, {}))
    runner.rows[-2].notes.append(f"{seconds:g} s mixed: {ROUND:g} s initiate / {ROUND:g} s status")
    summary = series.summary()
    for name, rss in summary.items():
        runner.checks.append(
            f"INFO soak RSS {name}: start {rss['start_mib']:.0f} MiB, peak "
            f"{rss['peak_mib']:.0f}, end {rss['end_mib']:.0f}, slope "
            f"{rss['slope_mib_per_min']:+.2f} MiB/min over {rss['minutes']:.1f} min"
        )
    return summary
