"""The orphan sweep: pending STK payments without a CheckoutRequestID, settled from the
statement of the shortcode they paid once their prompt can no longer be answered
(``payments/statement.py`` has the rules).

Each payment is scheduled at creation (``next_query_at``, ``Settings.orphan_after``
later); a push answer, accepted or refused, replaces that. Claims are leases on
``next_query_at``, as the reconciler's are. Per tick: claim a batch, read what each
payment's push sent, pull every statement window once (outside any transaction; windows
of one shortcode that overlap are merged), then settle each payment in a transaction
of its own.

Which statement: a wallet channel's money lands in the gateway's own paybill
(``PESASWITCH_DARAJA_SHORTCODE``), pulled with the gateway's app; a merchant's paybill
channel with registered C2B URLs is pulled as its C2B sweep is (c2b/flows.py). A till
(whether its statement shows an STK payment's AccountReference is not known), a bank's
paybill (the bank's statement) and a paybill never registered cannot be pulled: those
payments stay pending and visible, as before.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import timedelta

import structlog
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from pesaswitch.accounts.models import Channel, ChannelKind
from pesaswitch.c2b.models import C2BRegistration
from pesaswitch.daraja.c2b import PULL_PAGE, PulledTransaction
from pesaswitch.daraja.client import DarajaApp
from pesaswitch.daraja.errors import DarajaError
from pesaswitch.db import transaction
from pesaswitch.kit.clock import utcnow
from pesaswitch.payments import push, statement
from pesaswitch.payments.models import Payment, PaymentStatus
from pesaswitch.payments.statement import Verdict, Window
from pesaswitch.payments.tasks import claim_due
from pesaswitch.runtime import Runtime

log = structlog.get_logger(__name__)

# Pages per statement window before the sweep gives up on it for this tick (10,000 rows):
# a bound, so one busy shortcode cannot hold a worker.
MAX_PAGES = 100
# Windows of one shortcode are merged while the result stays this short.
MAX_MERGED = timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class Orphan:
    payment_id: str
    amount: int
    phone: str
    account_reference: str
    window: Window
    source: tuple[str, DarajaApp | None]  # (shortcode, app) whose statement tells


async def claim_orphans(runtime: Runtime) -> list[str]:
    # Long enough for a few pages of statement, each bounded by the client's timeout.
    lease = timedelta(seconds=runtime.settings.daraja_timeout * 10 + 5)
    return await claim_due(
        runtime, Payment.checkout_request_id.is_(None), Payment.source == "stk", lease=lease
    )


async def _statement_source(
    runtime: Runtime, session: AsyncSession, channel: Channel
) -> tuple[str, DarajaApp | None] | None:
    """The (shortcode, app) whose statement shows this channel's STK payments, or None."""
    settings = runtime.settings
    match ChannelKind(channel.kind):
        case ChannelKind.WALLET:
            return settings.daraja_shortcode, None
        case ChannelKind.PAYBILL:
            registration = await session.get(C2BRegistration, channel.id)
            if registration is None or registration.registered_at is None:
                return None
            auth = await push.shortcode_auth(session, settings, channel)
            return registration.shortcode, auth.app
        case _:
            return None


async def _plan(runtime: Runtime, ids: list[str]) -> list[Orphan]:
    """What each claimed payment's push sent; the ones no statement can settle are taken
    off the schedule (pending and visible, as before)."""
    settings = runtime.settings
    orphans: list[Orphan] = []
    unverifiable: list[str] = []
    async with runtime.sessionmaker() as session:
        for payment_id in ids:
            payment = await session.get(Payment, payment_id)
            if payment is None or payment.status != PaymentStatus.PENDING.value:
                continue
            channel = await session.get(Channel, payment.channel_id)
            assert channel is not None
            source = await _statement_source(runtime, session, channel)
            if source is None:
                unverifiable.append(payment_id)
                continue
            auth = await push.shortcode_auth(session, settings, channel)
            sent = push.stk_request(settings=settings, channel=channel, auth=auth, payment=payment)
            orphans.append(
                Orphan(
                    payment_id, payment.amount, payment.phone, sent.account_reference,
                    statement.window_for(settings, payment.created_at), source,
                )
            )  # fmt: skip
    if unverifiable:
        async with transaction(runtime.sessionmaker) as session:
            await session.execute(
                update(Payment)
                .where(Payment.id.in_(unverifiable), Payment.status == PaymentStatus.PENDING.value)
                .values(next_query_at=None)
            )
        log.warning("payments.orphan.unverifiable", count=len(unverifiable), ids=unverifiable[:10])
    return orphans


def merged_windows(orphans: list[Orphan]) -> list[tuple[Window, list[Orphan]]]:
    """The orphans' windows, overlapping ones as one (none longer than MAX_MERGED unless
    alone), each with the orphans whose own window it contains."""
    merged: list[tuple[Window, list[Orphan]]] = []
    for orphan in sorted(orphans, key=lambda o: o.window.start):
        window = orphan.window
        if merged:
            last, members = merged[-1]
            if window.start <= last.end and window.end - last.start <= MAX_MERGED:
                merged[-1] = (Window(last.start, max(last.end, window.end)), [*members, orphan])
                continue
        merged.append((window, [orphan]))
    return merged


async def _pull(
    runtime: Runtime, shortcode: str, app: DarajaApp | None, window: Window
) -> list[PulledTransaction]:
    """Every page of the statement over ``window``; DarajaError if any page fails."""
    client = runtime.daraja.for_app(app)
    rows: list[PulledTransaction] = []
    for page_number in range(MAX_PAGES):
        page = await client.pull_transactions(
            shortcode=shortcode, start=window.start, end=window.end,
            offset=page_number * PULL_PAGE,
        )  # fmt: skip
        rows.extend(page)
        if len(page) < PULL_PAGE:
            return rows
    raise DarajaError(f"more than {MAX_PAGES} pages of statement for {shortcode}")


async def _reschedule(runtime: Runtime, payment_ids: list[str]) -> None:
    """The statement did not answer: ask again on the reconciler's backoff."""
    settings = runtime.settings
    async with transaction(runtime.sessionmaker) as session:
        for payment_id in payment_ids:
            payment = await session.get(Payment, payment_id)
            if payment is None or payment.status != PaymentStatus.PENDING.value:
                continue
            attempts = payment.query_attempts + 1
            next_at = settings.next_query_at(
                attempts=attempts, created_at=payment.created_at, now=utcnow()
            )
            if next_at is None:
                log.warning("payments.orphan.gave_up", payment_id=payment_id, attempts=attempts)
            payment.query_attempts = attempts
            payment.next_query_at = next_at


async def _settle(runtime: Runtime, orphan: Orphan, rows: list[PulledTransaction]) -> None:
    async with transaction(runtime.sessionmaker) as session:
        taken = await statement.taken_receipts(session, (row.trans_id for row in rows))
        decision = statement.decide(
            account_reference=orphan.account_reference, amount=orphan.amount,
            phone=orphan.phone, window=orphan.window, rows=rows, taken=taken,
        )  # fmt: skip
        now = utcnow()
        match decision.verdict:
            case Verdict.PAID:
                assert decision.row is not None
                outcome = await statement.record_paid(
                    session, payment_id=orphan.payment_id, row=decision.row, now=now
                )
            case Verdict.UNPAID:
                outcome = await statement.record_no_transaction(
                    session, payment_id=orphan.payment_id, now=now
                )
            case Verdict.UNDECIDED:
                # The statement will not change its mind: pending and visible, for a person.
                await session.execute(
                    update(Payment)
                    .where(
                        Payment.id == orphan.payment_id,
                        Payment.status == PaymentStatus.PENDING.value,
                    )
                    .values(next_query_at=None)
                )
                log.warning(
                    "payments.orphan.undecided", payment_id=orphan.payment_id, why=decision.why
                )
                return
    log.info(
        "payments.orphan.settled", payment_id=orphan.payment_id,
        verdict=decision.verdict.value, outcome=outcome.value,
    )  # fmt: skip


async def settle_orphans_once(runtime: Runtime) -> int:
    """One tick: how many orphans were claimed (0: none due, or the check is off)."""
    if not runtime.settings.checks_statement:
        return 0
    ids = await claim_orphans(runtime)
    if not ids:
        return 0
    by_source: dict[tuple[str, DarajaApp | None], list[Orphan]] = defaultdict(list)
    for orphan in await _plan(runtime, ids):
        by_source[orphan.source].append(orphan)
    for (shortcode, app), orphans in by_source.items():
        rows_of: dict[str, list[PulledTransaction]] = {}
        failed: list[str] = []
        for window, inside in merged_windows(orphans):
            try:
                rows = await _pull(runtime, shortcode, app, window)
            except DarajaError as exc:
                log.info("payments.orphan.pull_failed", shortcode=shortcode, error=str(exc))
                failed.extend(o.payment_id for o in inside)
                continue
            for orphan in inside:
                rows_of[orphan.payment_id] = rows
        if failed:
            await _reschedule(runtime, failed)
        for orphan in orphans:
            if orphan.payment_id in rows_of:
                await _settle(runtime, orphan, rows_of[orphan.payment_id])
    return len(ids)
