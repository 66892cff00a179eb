"""The load: a seeded plan of payments and payouts in every dialect, sent as merchants do.

Each request that supports it carries an ``Idempotency-Key``; a request that gets no
answer (the API process was killed, the database restarting) or a 409/5xx is sent again
with the same key, as a careful merchant would, until it has an answer. Some requests are
repeated on purpose: after their answer (the same payment must come back), at the same
moment (one payment, the other answer a replay or a 409), or with another body (422).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import httpx

from chaos.merchants import Merchant

PAYMENT_DIALECTS = ("native", "native", "payhero", "paynexus")
PAYOUT_DIALECTS = ("native", "pokea")
# Test numbers (README "The simulator and its test numbers"): failures, and Daraja's quirks.
FAILING_NUMBERS = ("254711001032", "254711001037", "254711000001", "254711002001")
QUIRK_NUMBERS = ("254711990002", "254711990003", "254711990004", "254711990005", "254711990006")
B2C_FAILING = ("254711000001", "254711002001", "254711990007")
RETRIES = 12


@dataclass(frozen=True, slots=True)
class Job:
    n: int
    kind: str  # payment | payout
    dialect: str
    merchant: Merchant
    amount: int
    phone: str
    repeat: str  # none | after | concurrent | other_body

    @property
    def key(self) -> str:
        return f"chaos-{self.kind}-{self.n}"


@dataclass
class Tally:
    statuses: Counter[int] = field(default_factory=Counter)
    transport_errors: Counter[str] = field(default_factory=Counter)
    server_errors: list[str] = field(default_factory=list)  # 500s, with their bodies
    accepted: dict[str, str] = field(default_factory=dict)  # job key -> answer's id
    rejected: Counter[str] = field(default_factory=Counter)  # "kind status" -> count
    unanswered: list[str] = field(default_factory=list)  # keys never answered
    unanswered_once: list[str] = field(default_factory=list)  # PayNexus, sent once
    replay_mismatches: list[str] = field(default_factory=list)
    other_body_not_422: list[str] = field(default_factory=list)
    started: float = 0.0
    finished: float = 0.0


def make_plan(seed: int, payments: int, payouts: int, merchants: list[Merchant]) -> list[Job]:
    rng = random.Random(f"{seed}:plan")
    jobs: list[Job] = []
    for n in range(payments):
        dialect = rng.choice(PAYMENT_DIALECTS)
        draw = rng.random()
        phone = (
            rng.choice(FAILING_NUMBERS)
            if draw < 0.1
            else rng.choice(QUIRK_NUMBERS)
            if draw < 0.12
            else f"2547{12_000_000 + n:08d}"
        )
        top = 50 if dialect == "paynexus" else 3000  # PayNexus's sandbox cap is KES 50
        jobs.append(
            Job(
                n,
                "payment",
                dialect,
                rng.choice(merchants),
                rng.randint(10, top),
                phone,
                _repeat(rng),
            )
        )
    # Payouts spend what collections brought in: they start once a third has been sent.
    start = payments // 3
    for n in range(payouts):
        phone = rng.choice(B2C_FAILING) if rng.random() < 0.06 else f"2547{22_000_000 + n:08d}"
        job = Job(
            n,
            "payout",
            rng.choice(PAYOUT_DIALECTS),
            rng.choice(merchants),
            rng.randint(10, 200),
            phone,
            _repeat(rng),
        )
        jobs.insert(rng.randint(start, len(jobs)), job)
    return jobs


def _repeat(rng: random.Random) -> str:
    draw = rng.random()
    return (
        "after"
        if draw < 0.08
        else "concurrent"
        if draw < 0.12
        else ("other_body" if draw < 0.13 else "none")
    )


def _request(
    job: Job, receiver: str, body_tweak: int = 0
) -> tuple[str, dict[str, Any], dict[str, str]]:
    """Path, JSON body and headers of ``job`` in its dialect."""
    m, amount = job.merchant, job.amount + body_tweak
    callback = f"{receiver}/hooks/cb-{job.dialect}-{m.index}"
    idem = {"Idempotency-Key": job.key}
    match (job.kind, job.dialect):
        case ("payment", "native"):
            body = {"amount": amount, "phone": job.phone, "reference": job.key}
            return "/v1/payments", body, {**m.bearer, **idem}
        case ("payment", "payhero"):
            body = {
                "amount": amount,
                "phone_number": job.phone,
                "channel_id": m.channel_id,
                "provider": "m-pesa",
                "external_reference": job.key,
                "callback_url": callback,
            }
            return "/api/v2/payments", body, {"Authorization": m.basic_auth, **idem}
        case ("payment", "paynexus"):
            body = {
                "amount": amount,
                "phone": job.phone,
                "reference": job.key,
                "callback_url": callback,
            }
            return "/api/mpesa/payment/initiate", body, {"X-API-Key": m.secret_key}
        case ("payout", "native"):
            body = {
                "amount": amount,
                "phone": job.phone,
                "reference": job.key,
                "name": "Chaos Recipient",
            }
            return "/v1/payouts", body, {**m.bearer, **idem}
        case _:  # Pokea: the reference (≥ 6 digits, unique per account) is the idempotency
            reference, currency, account_no = str(100_000 + job.n), "KES", f"ACC{m.index}"
            body = {
                "source": {"customer_code": f"C{m.index}", "account_no": account_no},
                "destination": {
                    "country_code": "KE",
                    "name": "Chaos Recipient",
                    "mobile_number": job.phone,
                },
                "transfer": {
                    "reference": reference,
                    "currency": currency,
                    "amount": str(amount),
                    "date": date.today().isoformat(),
                    "description": "chaos payout",
                    "channel": "234432",
                },
                "result_url": callback,
            }
            signature = m.sign(f"{amount}{currency}{reference}{account_no}")
            return "/remittance/momo/mpesa", body, {**m.bearer, "signature": signature}


def _answer_id(job: Job, body: Any) -> str:
    if not isinstance(body, dict):
        return ""
    data = body.get("data") if isinstance(body.get("data"), dict) else body
    assert isinstance(data, dict)
    return str(data.get("id") or data.get("reference") or data.get("transaction_id") or "ok")


async def _send(
    client: httpx.AsyncClient, job: Job, tally: Tally, receiver: str, tweak: int = 0
) -> httpx.Response | None:
    """Send until answered with something other than 409/500 (bounded); None if never."""
    path, body, headers = _request(job, receiver, tweak)
    # PayNexus has no Idempotency-Key: a request without an answer may have been taken,
    # so it is not sent again (the run's checks find whatever it created).
    retries = 1 if job.dialect == "paynexus" else RETRIES
    for attempt in range(retries):
        try:
            answer = await client.post(path, json=body, headers=headers)
        except httpx.HTTPError as exc:
            tally.transport_errors[type(exc).__name__] += 1
        else:
            tally.statuses[answer.status_code] += 1
            if answer.status_code == 500 and len(tally.server_errors) < 50:
                tally.server_errors.append(f"{path} {answer.text[:300]}")
            # 409 idempotency_key_in_use: the first request with this key is still in
            # flight (or died holding it: the claim lapses). Other 409s are answers
            # (daraja_subscriber_locked carries the failed payment), and so are 502/503
            # (a payment that failed or stays pending: the same key would replay it).
            # 500: never expected.
            in_flight = answer.status_code == 409 and "idempotency" in answer.text.lower()
            # database_unavailable: nothing was decided (the database was restarting).
            outage = answer.status_code == 503 and "database_unavailable" in answer.text
            if not (in_flight or outage) and answer.status_code != 500:
                return answer
        await asyncio.sleep(min(0.25 * 2**attempt, 4.0))
    return None


async def _run_job(client: httpx.AsyncClient, job: Job, tally: Tally, receiver: str) -> None:
    if job.repeat == "concurrent" and job.dialect != "paynexus":
        answers = await asyncio.gather(*(_send(client, job, tally, receiver) for _ in range(2)))
    else:
        answers = [await _send(client, job, tally, receiver)]
    ids = {_answer_id(job, a.json()) for a in answers if a is not None and a.is_success}
    first = next((a for a in answers if a is not None), None)
    if first is None:
        # PayNexus requests are sent once (no Idempotency-Key): no answer is expected
        # now and then while API processes are killed; the checks judge what they made.
        (tally.unanswered_once if job.dialect == "paynexus" else tally.unanswered).append(job.key)
        return
    if not ids:
        tally.rejected[f"{job.kind} {job.dialect} {first.status_code}"] += 1
        return
    if len(ids) > 1:
        tally.replay_mismatches.append(f"{job.key}: {sorted(ids)}")
    tally.accepted[job.key] = ids.pop()
    if job.dialect in ("paynexus", "pokea"):
        return  # no Idempotency-Key to replay
    if job.repeat == "after":
        again = await _send(client, job, tally, receiver)
        if again is not None and _answer_id(job, again.json()) != tally.accepted[job.key]:
            tally.replay_mismatches.append(f"{job.key}: replay gave {again.text[:200]}")
    elif job.repeat == "other_body":
        other = await _send(client, job, tally, receiver, tweak=1)
        if other is not None and other.status_code != 422:
            tally.other_body_not_422.append(f"{job.key}: {other.status_code}")


async def drive(
    gateway: str, receiver: str, jobs: list[Job], concurrency: int, deadline: float
) -> Tally:
    """Send every job, ``concurrency`` at a time, until done or ``deadline`` (monotonic)."""
    tally = Tally(started=time.monotonic())
    queue: asyncio.Queue[Job] = asyncio.Queue()
    for job in jobs:
        queue.put_nowait(job)
    # A client per 4 workers: one AsyncClient with many connections is slow (bench/README).
    clients = [
        httpx.AsyncClient(base_url=gateway, timeout=30.0, limits=httpx.Limits(max_connections=8))
        for _ in range(max(1, concurrency // 4))
    ]

    async def worker(client: httpx.AsyncClient) -> None:
        while time.monotonic() < deadline:
            try:
                job = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            await _run_job(client, job, tally, receiver)

    try:
        await asyncio.gather(*(worker(clients[i % len(clients)]) for i in range(concurrency)))
    finally:
        for client in clients:
            await client.aclose()
    tally.unanswered += [job.key for job in _drain(queue)]
    tally.finished = time.monotonic()
    return tally


def _drain(queue: asyncio.Queue[Job]) -> list[Job]:
    left = []
    while not queue.empty():
        left.append(queue.get_nowait())
    return left
