"""The load generator: C asyncio workers on aiohttp, optionally in K processes.

A `Plan` describes the requests (picklable, so client processes can rebuild them); request
number ``i`` goes to ``urls[i % len(urls)]`` (round-robin over the gateway processes), and a
payment body uses the phone number ``0712`` + ``phone_base + i`` (distinct numbers, so no
Daraja rule applies). Requests that start during the warm-up are sent but not counted.

The generator shares the machine's two cores with the system it measures, so it is as lean
as a Python client gets: aiohttp alone. Until issue 11's twelfth round it used httpx (an
``AsyncClient`` per 4 connections), which spent ~0.9 ms of CPU per end-to-end payment,
about half of what the gateway spends; aiohttp spends a third of that
(bench/issue-11-rounds-2.md, "The load generator").
"""

from __future__ import annotations

import asyncio
import json
import math
import multiprocessing
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import aiohttp

PHONES = 1_000_000  # 0712000000 … 0712999999


@dataclass(frozen=True)
class Plan:
    method: str
    urls: tuple[str, ...]
    path: str  # may contain "{id}", filled from `ids` round-robin
    expect: int  # the status code that counts as success
    headers: tuple[tuple[str, str], ...] = ()
    ids: tuple[str, ...] = ()
    payment_body: bool = False
    phone_base: int = 0
    collect_ids: bool = False  # keep (start time, payment id) of every success

    def request(self, i: int) -> tuple[str, dict[str, Any] | None]:
        path = self.path.format(id=self.ids[i % len(self.ids)]) if self.ids else self.path
        body = None
        if self.payment_body:
            n = self.phone_base + i
            if n >= PHONES:
                raise RuntimeError("ran out of distinct phone numbers; lower the duration")
            body = {"amount": 10, "phone": f"0712{n:06d}", "reference": f"BENCH-{n}"}
        return self.urls[i % len(self.urls)] + path, body


@dataclass
class Result:
    latencies: list[float] = field(default_factory=list)  # seconds, successes only
    statuses: Counter[str] = field(default_factory=Counter)  # every counted answer or error
    elapsed: float = 0.0  # seconds from the end of the warm-up to the last answer
    wall: float = 0.0  # seconds from the first request to the last answer
    cpu: float = 0.0  # CPU seconds the generator itself used
    first: float = float("inf")  # monotonic time of the first request
    last: float = 0.0  # … and of the last answer
    started: list[tuple[float, str]] = field(default_factory=list)  # (monotonic, id)
    issued: int = 0  # requests sent, warm-up included (the next phone index starts here)

    @property
    def ok(self) -> int:
        return len(self.latencies)

    @property
    def errors(self) -> dict[str, int]:
        return {k: v for k, v in sorted(self.statuses.items()) if k != "ok"}

    def merge(self, other: Result) -> None:
        self.latencies.extend(other.latencies)
        self.statuses.update(other.statuses)
        self.elapsed = max(self.elapsed, other.elapsed)
        self.wall = max(self.wall, other.wall)
        self.cpu += other.cpu
        self.first = min(self.first, other.first)
        self.last = max(self.last, other.last)
        self.started.extend(other.started)
        self.issued = max(self.issued, other.issued)


@dataclass(frozen=True)
class Bounds:
    concurrency: int
    duration: float | None  # stop issuing after this many seconds (warm-up included) …
    count: int | None  # … or after this many requests, whichever comes first
    warmup: float = 0.0
    timeout: float = 30.0  # per request


async def _drive(plan: Plan, bounds: Bounds, offset: int, stride: int, start_at: float) -> Result:
    """Send requests ``offset, offset + stride, …`` from ``start_at`` (a monotonic time)."""
    await asyncio.sleep(max(0.0, start_at - time.monotonic()))
    result = Result()
    cpu0 = time.process_time()
    t0 = time.monotonic()
    measure_from = t0 + bounds.warmup
    stop_at = t0 + bounds.duration if bounds.duration is not None else None
    next_local = 0
    last_answer = t0
    headers = dict(plan.headers)
    timeout = aiohttp.ClientTimeout(total=bounds.timeout)
    # One session per gateway, each with a connection per worker: aiohttp's pool does not
    # slow down as it grows (httpx's did, encode/httpx#3215, hence its pools of 4 before).
    sessions = [
        aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=bounds.concurrency, limit_per_host=0),
            timeout=timeout, auto_decompress=False, skip_auto_headers=("User-Agent",),
        )
        for _ in plan.urls
    ]  # fmt: skip

    async def worker() -> None:
        nonlocal next_local, last_answer
        while True:
            i = offset + next_local * stride
            if bounds.count is not None and i >= bounds.count:
                return
            start = time.monotonic()
            if stop_at is not None and start >= stop_at:
                return
            next_local += 1
            result.issued = max(result.issued, i + 1)
            url, body = plan.request(i)
            session = sessions[i % len(plan.urls)]
            sent = headers
            if body is not None:
                # As merchants do: each payment with its own Idempotency-Key (the reference
                # is unique per run and payment), so the claim and the stored response are
                # part of what is measured.
                sent = {**headers, "Idempotency-Key": str(body["reference"])}
            answered: Any = None
            try:
                async with session.request(plan.method, url, json=body, headers=sent) as response:
                    payload = await response.read()
                    ok = response.status == plan.expect
                    outcome = "ok" if ok else str(response.status)
                    if ok and plan.collect_ids:
                        answered = json.loads(payload)["id"]
            except (aiohttp.ClientError, TimeoutError) as exc:
                outcome = type(exc).__name__
            end = time.monotonic()
            last_answer = max(last_answer, end)
            if answered is not None:
                result.started.append((start, str(answered)))
            if start < measure_from:
                continue
            result.statuses[outcome] += 1
            if outcome == "ok":
                result.latencies.append(end - start)

    try:
        await asyncio.gather(*(worker() for _ in range(bounds.concurrency)))
    finally:
        for session in sessions:
            await session.close()
    result.elapsed = max(1e-9, last_answer - measure_from)
    result.wall = max(1e-9, last_answer - t0)
    result.cpu = time.process_time() - cpu0
    result.first, result.last = t0, last_answer
    return result


def _child(args: tuple[Plan, Bounds, int, int, float]) -> Result:
    return asyncio.run(_drive(*args))


def run(plan: Plan, bounds: Bounds, clients: int = 1) -> Result:
    """Drive ``plan`` from this process, or from ``clients`` processes sharing the load."""
    if clients <= 1:
        return asyncio.run(_drive(plan, bounds, 0, 1, time.monotonic()))
    shares = [
        Bounds(
            concurrency=max(1, bounds.concurrency // clients + (k < bounds.concurrency % clients)),
            duration=bounds.duration,
            count=bounds.count,
            warmup=bounds.warmup,
            timeout=bounds.timeout,
        )
        for k in range(clients)
    ]
    start_at = time.monotonic() + 2.0  # spawned processes import aiohttp first; start together
    with multiprocessing.get_context("spawn").Pool(clients) as pool:
        parts = pool.map(_child, [(plan, shares[k], k, clients, start_at) for k in range(clients)])
    total = Result()
    for part in parts:
        total.merge(part)
    return total


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile in milliseconds (0 when there is nothing to rank)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, math.ceil(q / 100 * len(ordered)) - 1))
    return ordered[rank] * 1000
