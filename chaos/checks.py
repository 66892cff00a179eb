"""After the load: wait for quiescence, then judge the run from the database, the
simulator's own record of what happened, the receiver's record and the logs.

Each check gives a figure and passes or fails; the harness prints them all and exits 1
if any failed. Nothing here trusts the gateway's own account of itself where an
independent one exists: statuses are compared with the simulator's truth, wallets with
the sum of settled payments and payouts, deliveries with what the receiver answered.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from pesaswitch.config import Settings
from pesaswitch.daraja.result_codes import outcome_for_result_code
from pesaswitch.db import create_engine, create_sessionmaker
from pesaswitch.ledger.checks import check_invariants
from pesaswitch.ledger.fees import Tariff
from pesaswitch.ledger.models import EntryKind, JournalEntry, LedgerAccount, LedgerAccountKind
from pesaswitch.payments.models import DarajaCallback, Payment, PaymentStatus
from pesaswitch.payments.service import ResultSource
from pesaswitch.payments.statement import NO_TRANSACTION
from pesaswitch.payouts.models import OPEN_STATUSES, Payout, PayoutStatus
from pesaswitch.webhooks.models import (
    Delivery,
    DeliveryStatus,
    Event,
    EventType,
    WebhookEndpoint,
)


@dataclass(frozen=True, slots=True)
class Figure:
    name: str
    value: str
    ok: bool
    detail: str = ""


async def _open_work(session: AsyncSession) -> tuple[int, int, int]:
    """Pending payments, open payouts, pending deliveries."""
    pending = await session.scalar(
        select(func.count()).where(Payment.status == PaymentStatus.PENDING.value)
    )
    open_payouts = await session.scalar(
        select(func.count()).where(Payout.status.in_(OPEN_STATUSES))
    )
    deliveries = await session.scalar(
        select(func.count()).where(Delivery.status == DeliveryStatus.PENDING.value)
    )
    return int(pending or 0), int(open_payouts or 0), int(deliveries or 0)


async def wait_quiet(settings: Settings, seconds: float) -> tuple[float, tuple[int, int, int]]:
    """Poll until nothing is pending (payments, payouts, deliveries) or ``seconds`` pass.
    Orphaned pushes are among the pending payments: the statement settles them once
    their prompt is over (the run's ``orphan_after``, about a minute)."""
    engine = create_engine(settings)
    started = time.monotonic()
    try:
        sessions = create_sessionmaker(engine)
        while True:
            try:
                async with sessions() as session:
                    left = await _open_work(session)
            except Exception:  # the database may be restarting
                left = (-1, -1, -1)
            now = time.monotonic()
            if left == (0, 0, 0) or now - started > seconds:
                return now - started, left
            await asyncio.sleep(1.0)
    finally:
        await engine.dispose()


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _expected_payment(payment: Payment, truth: dict[str, Any]) -> tuple[str, str]:
    """(expected status, why) from the simulator's record for this payment's callback URL."""
    url = truth["by_token"].get(payment.callback_token)
    if url is not None:
        code, receipt = truth["pushes"][url][1], truth["pushes"][url][2]
        return outcome_for_result_code(code).value, f"push answered {code} ({receipt})"
    if payment.callback_token in truth["refused_tokens"]:
        return PaymentStatus.FAILED.value, "push refused"
    return PaymentStatus.FAILED.value, "push never reached Daraja"


def _status_agrees(payment: Payment, expected: str) -> bool:
    """A payment the statement showed unpaid (``no_transaction``) claims only that: it
    agrees with every truth but "paid", whatever the customer did (or the push never
    reached Daraja). Any other final status must be the truth's own."""
    if payment.result_code == NO_TRANSACTION:
        return expected != PaymentStatus.COMPLETED.value
    return payment.status == expected


def _pending_reason(payment: Payment, taken: set[str]) -> str:
    if payment.checkout_request_id is not None:
        return "CheckoutRequestID, no final answer"
    callback = "a callback taken" if payment.id in taken else "no callback taken"
    return f"no CheckoutRequestID (push {payment.push_state}), {callback}"


def _truth_index(raw: dict[str, Any]) -> dict[str, Any]:
    by_token = {url.rsplit("/", 1)[-1]: url for url in raw["pushes"]}
    refused = {url.rsplit("/", 1)[-1] for url in raw["refused"]}
    return {**raw, "by_token": by_token, "refused_tokens": refused}


async def judge(
    settings: Settings, simulator_url: str, receiver_url: str
) -> tuple[list[Figure], dict[str, Any]]:
    async with httpx.AsyncClient(timeout=60) as http:
        truth = _truth_index((await http.get(f"{simulator_url}/simulator/chaos/truth")).json())
        received = set((await http.get(f"{receiver_url}/ok")).json())
    engine = create_engine(settings)
    try:
        async with create_sessionmaker(engine)() as session:
            return await _judge(session, settings, truth, received)
    finally:
        await engine.dispose()


async def _judge(
    session: AsyncSession, settings: Settings, truth: dict[str, Any], received: set[str]
) -> tuple[list[Figure], dict[str, Any]]:
    figures: list[Figure] = []
    payments = list(await session.scalars(select(Payment)))
    payouts = list(await session.scalars(select(Payout)))
    pending = [p for p in payments if p.status == PaymentStatus.PENDING.value]
    # Every payment must be final: an orphan (no CheckoutRequestID, no callback) is
    # settled from the statement. Those still pending are counted by why.
    taken = set(
        await session.scalars(
            select(DarajaCallback.payment_id).where(DarajaCallback.outcome != "mismatch")
        )
    )
    reasons = Counter(_pending_reason(p, taken) for p in pending)
    open_payouts = [p for p in payouts if p.status in OPEN_STATUSES]
    figures.append(
        Figure(
            "payments final",
            f"{len(payments) - len(pending)} / {len(payments)}",
            not pending,
            "; ".join(f"{n} {why}" for why, n in reasons.most_common())
            + (
                ": " + ", ".join(f"{p.id} ({p.push_state})" for p in pending[:10])
                if pending
                else ""
            ),
        )
    )
    figures.append(
        Figure(
            "payouts final",
            f"{len(payouts) - len(open_payouts)} / {len(payouts)}",
            not open_payouts,
            ", ".join(p.id for p in open_payouts[:10]),
        )
    )

    wrong: list[str] = []
    why_counts: Counter[str] = Counter()
    for payment in payments:
        expected, why = _expected_payment(payment, truth)
        why_counts[why.split(" (")[0].rsplit(" ", 1)[0] if "answered" in why else why] += 1
        if payment.status != PaymentStatus.PENDING.value and not _status_agrees(payment, expected):
            wrong.append(
                f"{payment.id} is {payment.status} ({payment.result_code}), simulator: {why}"
            )
        url = truth["by_token"].get(payment.callback_token)
        if url and payment.status == PaymentStatus.COMPLETED.value:
            receipt, amount = truth["pushes"][url][2], truth["pushes"][url][3]
            # A payment settled by STK Query has no receipt (the query does not give one).
            if payment.mpesa_receipt not in (receipt, None) or payment.amount != amount:
                wrong.append(
                    f"{payment.id} receipt/amount {payment.mpesa_receipt}/"
                    f"{payment.amount}, simulator {receipt}/{amount}"
                )
    for payout in payouts:
        record = truth["payouts"].get(payout.originator_conversation_id)
        paid = record is not None and record[0] == 0 and record[2]
        expected = PayoutStatus.COMPLETED.value if paid else PayoutStatus.FAILED.value
        if payout.status not in OPEN_STATUSES and payout.status != expected:
            wrong.append(f"{payout.id} is {payout.status}, simulator: {record}")
    figures.append(
        Figure(
            "final statuses equal to the simulator's truth",
            f"{len(wrong)} differ",
            not wrong,
            "; ".join(wrong[:10]),
        )
    )

    collections = Counter(
        await session.scalars(
            select(JournalEntry.reference).where(JournalEntry.kind == EntryKind.COLLECTION.value)
        )
    )
    doubles = [str(ref) for ref, n in collections.items() if n > 1]
    completed = [p for p in payments if p.status == PaymentStatus.COMPLETED.value]
    uncredited = [p.id for p in completed if collections.get(p.id, 0) == 0]
    figures.append(
        Figure("double credits", str(len(doubles)), not doubles, ", ".join(doubles[:10]))
    )
    figures.append(
        Figure(
            "completed payments without a credit",
            str(len(uncredited)),
            not uncredited,
            ", ".join(uncredited[:10]),
        )
    )
    breaches = await check_invariants(session)
    figures.append(
        Figure("ledger check", f"{len(breaches)} breaches", not breaches, "; ".join(breaches[:5]))
    )

    tariff = Tariff.parse(settings.collection_fee_tiers, settings.payout_fee_tiers)
    collected = sum(p.amount for p in completed)
    fees = sum(tariff.collection_fee(p.amount) for p in completed)
    paid_out = sum(
        p.kes_amount + p.fee for p in payouts if p.status == PayoutStatus.COMPLETED.value
    )
    held = sum(p.kes_amount + p.fee for p in open_payouts)
    wallets = await session.scalar(
        select(func.coalesce(func.sum(LedgerAccount.balance), 0)).where(
            LedgerAccount.kind.in_(
                (LedgerAccountKind.WALLET.value, LedgerAccountKind.PAYOUT_HOLD.value)
            )
        )
    )
    expected_wallets = collected - fees - paid_out
    figures.append(
        Figure(
            "wallets + holds = collections - fees - payouts",
            f"{int(wallets or 0):,} = {collected:,} - {fees:,} - {paid_out:,} "
            f"(= {expected_wallets:,}; {held:,} held)",
            int(wallets or 0) == expected_wallets,
        )
    )

    events = list(await session.execute(select(Event.id, Event.object_id, Event.type)))
    statuses: dict[str, set[str]] = {}
    for event_id, status in await session.execute(select(Delivery.event_id, Delivery.status)):
        statuses.setdefault(event_id, set()).add(status)
    # An account whose endpoint answered 410 is disabled: its later events get no
    # delivery (they stay replayable), which is not a lost event.
    silenced = set(
        await session.scalars(
            select(Event.id).where(
                Event.account_id.not_in(
                    select(WebhookEndpoint.account_id).where(WebhookEndpoint.enabled.is_(True))
                ),
                Event.id.not_in(select(Delivery.event_id)),
            )
        )
    )
    final = {DeliveryStatus.SUCCEEDED.value, DeliveryStatus.FAILED.value}
    undelivered = [
        e
        for e, _, _ in events
        if e not in silenced
        and (not statuses.get(e, set()) & final or DeliveryStatus.PENDING.value in statuses[e])
    ]
    figures.append(
        Figure(
            "events with a successful delivery or a recorded final failure",
            f"{len(events) - len(undelivered)} / {len(events)} "
            f"({len(silenced)} for a disabled endpoint only)",
            not undelivered,
            ", ".join(undelivered[:10]),
        )
    )
    claimed = [e for e, s in statuses.items() if DeliveryStatus.SUCCEEDED.value in s]
    unseen = [e for e in claimed if e not in received]
    figures.append(
        Figure(
            "deliveries marked succeeded that the receiver answered with 2xx",
            f"{len(claimed) - len(unseen)} / {len(claimed)}",
            not unseen,
            ", ".join(unseen[:10]),
        )
    )
    # payment.updated is not a final event: it carries a receipt learnt after the final
    # status (STK settled by query, receipt by Transaction Status), and comes at most once.
    updated = EventType.PAYMENT_UPDATED.value
    per_object = Counter(o for _, o, kind in events if kind != updated)
    twice = [o for o, n in per_object.items() if n > 1]
    figures.append(
        Figure(
            "objects with more than one final event",
            str(len(twice)),
            not twice,
            ", ".join(twice[:10]),
        )
    )
    per_payment = Counter(o for _, o, kind in events if kind == updated)
    updated_twice = [o for o, n in per_payment.items() if n > 1]
    figures.append(
        Figure(
            "payments with more than one payment.updated (receipt recorded once)",
            f"{len(updated_twice)} of {len(per_payment)} updated",
            not updated_twice,
            ", ".join(updated_twice[:10]),
        )
    )

    to_final = [(p.finalized_at - p.created_at).total_seconds() for p in payments if p.finalized_at]
    payout_final = [
        (p.finalized_at - p.created_at).total_seconds() for p in payouts if p.finalized_at
    ]
    no_receipt = sum(1 for p in completed if p.mpesa_receipt is None)
    by_statement = Counter(
        f"{p.status} ({p.result_code}), push {p.push_state}"
        for p in payments
        if p.settled_by == ResultSource.STATEMENT.value
    )
    stats = {
        "pending payments by reason": dict(reasons),
        "orphans settled from the statement": dict(sorted(by_statement.items())),
        "completed payments without a receipt (settled by STK Query)": no_receipt,
        "payments": len(payments),
        "payouts": len(payouts),
        "payment statuses": dict(Counter(p.status for p in payments)),
        "payout statuses": dict(Counter(p.status for p in payouts)),
        "simulator record of payments": dict(why_counts),
        "time to final, payments p50/p99/max s": [
            round(_percentile(to_final, q), 2) for q in (0.5, 0.99, 1.0)
        ],
        "time to final, payouts p50/p99/max s": [
            round(_percentile(payout_final, q), 2) for q in (0.5, 0.99, 1.0)
        ],
        "events": len(events),
    }
    return figures, stats
