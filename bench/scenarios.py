"""The scenarios: the generator's ceiling, baseline, initiate, status and end-to-end."""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field

import httpx

from bench import loadgen
from bench.loadgen import Bounds, Plan, Result
from bench.procfs import Monitor, cpu_share
from bench.stack import Stack


@dataclass(frozen=True)
class Options:
    duration: float
    concurrency: int
    payments: int
    clients: int
    e2e_timeout: float

    @property
    def warmup(self) -> float:
        return min(1.0, self.duration / 5)


@dataclass
class Row:
    scenario: str
    rate: float  # successes per second
    p50: float  # milliseconds
    p95: float
    p99: float
    errors: dict[str, int]
    count: int  # successes counted
    notes: list[str] = field(default_factory=list)
    cpu: dict[str, float] = field(default_factory=dict)  # % of one core, per process

    @classmethod
    def of(cls, scenario: str, result: Result, cpu: dict[str, float]) -> Row:
        lat = result.latencies
        return cls(
            scenario, result.ok / result.elapsed, loadgen.percentile(lat, 50),
            loadgen.percentile(lat, 95), loadgen.percentile(lat, 99), result.errors,
            result.ok, cpu=cpu,
        )  # fmt: skip


@dataclass
class Runner:
    stack: Stack
    options: Options
    monitor: Monitor
    phones_used: int = 0  # the next distinct phone number index
    rows: list[Row] = field(default_factory=list)
    checks: list[str] = field(default_factory=list)  # "PASS …" / "FAIL …" lines
    failed: bool = False

    def drive(self, plan: Plan, bounds: Bounds) -> tuple[Result, dict[str, float]]:
        before, t0 = self.monitor.cpu(), time.monotonic()
        result = loadgen.run(plan, bounds, self.options.clients)
        cpu = cpu_share(before, self.monitor.cpu(), time.monotonic() - t0)
        cpu["loadgen"] = 100 * result.cpu / result.wall  # all client processes together
        if plan.payment_body:
            self.phones_used += result.issued
        return result, cpu

    def timed(self, warmup: bool = True) -> Bounds:
        o = self.options
        return Bounds(o.concurrency, o.duration + (o.warmup if warmup else 0), None,
                      o.warmup if warmup else 0.0)  # fmt: skip

    def check(self, ok: bool, text: str) -> None:
        self.checks.append(("PASS " if ok else "FAIL ") + text)
        self.failed = self.failed or not ok

    def _payments_plan(self) -> Plan:
        return Plan(
            "POST", tuple(self.stack.gateways), "/v1/payments", 201, self.stack.auth,
            payment_body=True, phone_base=self.phones_used, collect_ids=True,
        )  # fmt: skip

    def ceiling(self) -> Row:
        plan = Plan("GET", (self.stack.receiver_url,), "/count", 200)
        result, cpu = self.drive(plan, self.timed())
        row = Row.of("generator ceiling", result, cpu)
        row.notes.append("GET receiver /count (bare ASGI app)")
        self.rows.append(row)
        return row

    def baseline(self) -> Row:
        plan = Plan("GET", tuple(self.stack.gateways), "/healthz", 200)
        result, cpu = self.drive(plan, self.timed())
        self.rows.append(Row.of("baseline", result, cpu))
        return self.rows[-1]

    def initiate(self) -> list[str]:
        plan = self._payments_plan()
        result, cpu = self.drive(plan, self.timed())
        self.rows.append(Row.of("initiate", result, cpu))
        return [pid for _, pid in result.started]

    def status(self, ids: list[str]) -> None:
        if not ids:
            self.check(False, "status: initiate created no payment to read")
            return
        plan = Plan("GET", tuple(self.stack.gateways), "/v1/payments/{id}", 200,
                    self.stack.auth, ids=tuple(ids))  # fmt: skip
        result, cpu = self.drive(plan, self.timed())
        self.rows.append(Row.of("status", result, cpu))

    def end_to_end(self, initiated: list[str]) -> None:
        stack, n = self.stack, self.options.payments
        with httpx.Client(base_url=stack.gateways[0], headers=dict(stack.auth),
                          timeout=30, trust_env=False) as api:  # fmt: skip
            hook = api.post("/v1/webhook-endpoints", json={"url": f"{stack.receiver_url}/hook"})
            if hook.status_code != 201:
                self.check(False, f"end-to-end: webhook endpoint refused: {hook.status_code} "
                                  f"{hook.text[:300]}")  # fmt: skip
                return
            plan = self._payments_plan()
            bounds = Bounds(self.options.concurrency, self.options.e2e_timeout, n)
            before, t0 = self.monitor.cpu(), time.monotonic()
            posted, _ = self.drive(plan, bounds)
            started = dict((pid, t) for t, pid in posted.started)
            arrivals = self._wait_webhooks(set(started), t0 + self.options.e2e_timeout)
            cpu = cpu_share(before, self.monitor.cpu(), time.monotonic() - t0)
            cpu["loadgen"] = 100 * posted.cpu / (time.monotonic() - t0)
            completed = _completed_ids(api)
        post_row = Row.of("end-to-end POST", posted, cpu)
        if posted.ok < n:
            post_row.notes.append(f"{posted.ok}/{n} created")
        self.rows.append(post_row)
        self._webhook_row(started, arrivals, completed, initiated, cpu)

    def _wait_webhooks(
        self, expected: set[str], deadline: float
    ) -> list[tuple[str, str, str, float]]:
        arrivals: list[tuple[str, str, str, float]] = []
        with httpx.Client(timeout=30, trust_env=False) as client:
            while True:
                rows = client.get(f"{self.stack.receiver_url}/arrivals").json()
                arrivals = [(str(a), str(b), str(c), float(d)) for a, b, c, d in rows]
                seen = {data_id for _, _, data_id, _ in arrivals}
                if expected <= seen or time.monotonic() > deadline:
                    return arrivals
                time.sleep(0.25)

    def _webhook_row(
        self,
        started: dict[str, float],
        arrivals: list[tuple[str, str, str, float]],
        completed: Counter[str],
        initiated: list[str],
        cpu: dict[str, float],
    ) -> None:
        n = self.options.payments
        first: dict[str, float] = {}
        events: defaultdict[str, set[str]] = defaultdict(set)
        types: Counter[str] = Counter()
        deliveries = 0
        for webhook_id, event_type, data_id, arrived in arrivals:
            if data_id not in started:
                continue
            deliveries += 1
            events[data_id].add(webhook_id)
            types[event_type] += 1
            if event_type == "payment.completed":
                first[data_id] = min(first.get(data_id, arrived), arrived)
        latencies = [first[pid] - started[pid] for pid in first]
        span = (max(first.values()) - min(started.values())) if first else 1e-9
        row = Row("end-to-end webhook", len(first) / span, loadgen.percentile(latencies, 50),
                  loadgen.percentile(latencies, 95), loadgen.percentile(latencies, 99),
                  {}, len(first), cpu=cpu)  # fmt: skip
        row.notes.append("completed payments/s; POST start → payment.completed at receiver")
        missing = len(started) - len(first)
        if missing:
            row.errors["no webhook"] = missing
        self.rows.append(row)
        duplicates = deliveries - sum(len(ids) for ids in events.values())
        self.check(len(started) == n, f"end-to-end: {len(started)}/{n} payments created")
        self.check(not missing, f"end-to-end: payment.completed webhook received for "
                                f"{len(first)}/{len(started)} payments")  # fmt: skip
        twice = [pid for pid, ids in events.items() if len(ids) > 1]
        self.check(not twice, f"end-to-end: {len(twice)} payments with more than one event "
                              f"(event types seen: {dict(types)})")  # fmt: skip
        once = sum(1 for pid in started if completed[pid] == 1)
        listed = f"{once}/{len(started)} payments listed once under ?status=completed"
        self.check(once == len(started), f"end-to-end: {listed}")
        done = sum(1 for pid in initiated if completed[pid] == 1)
        self.check(done == len(initiated),
                   f"initiate: {done}/{len(initiated)} of its payments completed")  # fmt: skip
        self.checks.append(f"INFO end-to-end: {deliveries} deliveries for "
                           f"{sum(len(i) for i in events.values())} events "
                           f"({duplicates} redelivered duplicates)")  # fmt: skip


def _completed_ids(api: httpx.Client) -> Counter[str]:
    """Every payment id listed under status=completed, with how often it was listed."""
    seen: Counter[str] = Counter()
    cursor: str | None = None
    for _ in range(10_000):  # bounded: 1,000,000 payments at 100 a page
        params: dict[str, str | int] = {"status": "completed", "limit": 100}
        if cursor:
            params["starting_after"] = cursor
        page = api.get("/v1/payments", params=params)
        page.raise_for_status()
        body = page.json()
        seen.update(str(p["id"]) for p in body["data"])
        cursor = body.get("next_cursor")
        if not body.get("has_more") or not cursor:
            break
    return seen
