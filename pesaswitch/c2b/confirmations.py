"""A C2B confirmation recorded once per TransID, and matched to the STK payment it may
be the echo of.

A confirmation claims its TransID in ``c2b_transactions`` (INSERT … ON CONFLICT DO
NOTHING) before anything else; only the claimant writes the payment, the event and the
wallet credit, all in the caller's transaction. So a duplicated, replayed or racing
confirmation — or the sweep finding one already confirmed — changes nothing.

Daraja also confirms an STK payment through C2B when its shortcode has registered URLs,
with the push's AccountReference as BillRefNumber. That echo is the same money: matched
to the push (``_stk_payment_for``), it becomes no payment of its own. It is matched on
what the push really sent (``payments.push.account_reference``: a merchant's reference
is cleaned and cut to 12 characters), the amount, a payer compatible with the prompted
number and the day since the push. On the gateway's own paybill (wallet channels) the
push sent the gateway reference, unique across accounts, so the echo of any account's
wallet payment is matched there, whichever account holds the paybill's registration.

An echo that cannot be matched becomes a C2B payment holding the receipt; when the
STK payment's callback then brings that receipt, ``payments.duplicates`` settles it as
that payment's duplicate, with no second credit.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import structlog
from sqlalchemy import exists, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from pesaswitch.accounts.models import Channel, ChannelKind
from pesaswitch.c2b.models import C2BRegistration, C2BTransaction
from pesaswitch.c2b.service import mask_name
from pesaswitch.daraja.c2b import C2BNotice
from pesaswitch.db import insert_ignoring_conflict
from pesaswitch.kit.clock import utcnow
from pesaswitch.kit.ids import new_id, new_reference, new_token
from pesaswitch.kit.phones import payer_could_be
from pesaswitch.ledger.flows import credit_payment
from pesaswitch.payments.models import Payment, PaymentStatus
from pesaswitch.payments.push import account_reference
from pesaswitch.payments.receipts import receipt_holder, record_late_receipt
from pesaswitch.payments.schemas import PaymentOut
from pesaswitch.webhooks.models import EventType
from pesaswitch.webhooks.service import record_event

log = structlog.get_logger(__name__)

# How far back a C2B confirmation may be the echo of an STK payment: longer than the
# sweep's window (Pull Transactions, at most 48 hours), so that an echo only the sweep
# finds still finds its push. Candidates are few whatever the window: a push's own
# callback usually gives it its receipt, which takes it out of the match.
STK_ECHO_WINDOW = timedelta(hours=72)
# STK payments of one amount on one channel considered per confirmation, newest first.
ECHO_CANDIDATES = 50


async def record_confirmation(
    session: AsyncSession,
    *,
    registration: C2BRegistration,
    notice: C2BNotice,
    source: str,
    now: datetime | None = None,
) -> str:
    """Record a confirmed C2B payment once per TransID; the outcome says what happened:
    ``applied`` (new payment), ``duplicate`` (TransID known) or ``matched_stk`` (the echo
    of an STK payment, or a receipt an STK payment already holds)."""
    now = now or utcnow()
    channel = await session.get(Channel, registration.channel_id)
    assert channel is not None
    payer = mask_name(notice.first_name, notice.middle_name, notice.last_name)
    claimed = await insert_ignoring_conflict(
        session, C2BTransaction, trans_id=notice.trans_id, account_id=registration.account_id,
        channel_id=channel.id, shortcode=notice.shortcode, amount=notice.amount,
        bill_ref=notice.bill_ref, msisdn=notice.msisdn, payer_name=payer,
        trans_time=notice.trans_time or None, source=source, created_at=now,
    )  # fmt: skip
    if not claimed:
        return "duplicate"
    stk = await receipt_holder(session, receipt=notice.trans_id)
    if stk is None:
        stk = await _stk_payment_for(session, registration, channel, notice, now)
    if stk is not None:
        await _matched(session, registration, channel, notice, stk)
        return "matched_stk"
    payment_id = new_id("pay")
    # ON CONFLICT DO NOTHING: an STK callback with this receipt may commit between the
    # read above and this INSERT (PostgreSQL waits for it, then skips the row).
    inserted = await insert_ignoring_conflict(
        session, Payment, id=payment_id, account_id=registration.account_id,
        channel_id=channel.id, amount=notice.amount, currency="KES", phone=notice.msisdn,
        reference=new_reference(), external_reference=notice.bill_ref or None,
        description=notice.transaction_type or "C2B payment", customer_name=payer or None,
        dialect="native", source="c2b", status=PaymentStatus.COMPLETED.value,
        push_state="none", result_code="0", result_desc="C2B confirmation",
        mpesa_receipt=notice.trans_id, transaction_date=notice.trans_time or None,
        callback_token=new_token(24), settled_by=source[:10], query_attempts=0,
        created_at=now, updated_at=now, finalized_at=now,
    )  # fmt: skip
    if not inserted:
        stk = await receipt_holder(session, receipt=notice.trans_id)
        assert stk is not None, "only the receipt can collide: the other keys are new"
        await _matched(session, registration, channel, notice, stk)
        return "matched_stk"
    payment = await session.get(Payment, payment_id)
    assert payment is not None
    await _link(session, notice.trans_id, payment)
    await record_event(
        session, account_id=payment.account_id, event_type=EventType.PAYMENT_COMPLETED,
        object_id=payment.id, data=PaymentOut.render(payment).model_dump(mode="json"),
    )  # fmt: skip
    # Wallet channels credit the wallet, once per receipt (the ledger's key).
    await credit_payment(session, payment=payment, channel_kind=channel.kind)
    log.info("c2b.recorded", trans_id=notice.trans_id, payment_id=payment.id, source=source)
    return "applied"


async def _matched(
    session: AsyncSession, registration: C2BRegistration, channel: Channel, notice: C2BNotice,
    stk: Payment,
) -> None:  # fmt: skip
    """The confirmation is the echo of ``stk``: linked to it, and its receipt given to it
    if a query settled it without one."""
    if stk.account_id == registration.account_id or await _shared_wallet(session, channel, stk):
        await _link(session, notice.trans_id, stk)
        if stk.status == PaymentStatus.COMPLETED.value and stk.mpesa_receipt is None:
            await record_late_receipt(
                session, payment_id=stk.id, receipt=notice.trans_id,
                transaction_date=notice.trans_time or None,
            )  # fmt: skip
        # A pending one is left to its callback, or to its query, which takes this
        # receipt from the link (payments.receipts.echo_receipt).
    log.info("c2b.matched_stk", trans_id=notice.trans_id, payment_id=stk.id)


async def _shared_wallet(session: AsyncSession, channel: Channel, stk: Payment) -> bool:
    """A confirmation on the gateway's paybill (a wallet channel's registration) for
    another account's wallet payment: that account's money."""
    if channel.kind != ChannelKind.WALLET.value:
        return False
    kind = await session.scalar(select(Channel.kind).where(Channel.id == stk.channel_id))
    return kind == ChannelKind.WALLET.value


async def _stk_payment_for(
    session: AsyncSession, registration: C2BRegistration, channel: Channel, notice: C2BNotice,
    now: datetime,
) -> Payment | None:  # fmt: skip
    """The STK payment this confirmation is the echo of, if any. Without this match, a
    confirmation arriving before the STK callback would become a second payment (and a
    second wallet credit) for the same money."""
    bill_ref = notice.bill_ref.strip().upper()
    if not bill_ref:
        return None
    echoed_elsewhere = exists().where(
        C2BTransaction.payment_id == Payment.id, C2BTransaction.trans_id != notice.trans_id
    )
    query = (
        select(Payment, Channel)
        .join(Channel, Channel.id == Payment.channel_id)
        .where(
            Payment.source == "stk",
            Payment.amount == notice.amount,
            Payment.status.in_([PaymentStatus.PENDING.value, PaymentStatus.COMPLETED.value]),
            or_(Payment.mpesa_receipt.is_(None), Payment.mpesa_receipt == notice.trans_id),
            Payment.duplicate_of.is_(None),
            Payment.created_at >= now - STK_ECHO_WINDOW,
            ~echoed_elsewhere,
        )
    )
    if channel.kind == ChannelKind.WALLET.value:
        # The gateway's paybill: every wallet push sent its gateway reference.
        query = query.where(Channel.kind == ChannelKind.WALLET.value, Payment.reference == bill_ref)
    else:
        query = query.where(
            Payment.account_id == registration.account_id, Payment.channel_id == channel.id
        )
    rows = (
        await session.execute(query.order_by(Payment.created_at.desc()).limit(ECHO_CANDIDATES))
    ).all()
    for payment, pushed_on in rows:
        sent = account_reference(channel=pushed_on, payment=payment)
        if sent.strip().upper() == bill_ref and payer_could_be(notice.msisdn, payment.phone):
            matched: Payment = payment
            return matched
    return None


async def _link(session: AsyncSession, trans_id: str, payment: Payment) -> None:
    """The confirmation is this payment's; it is listed in that payment's account."""
    await session.execute(
        update(C2BTransaction)
        .where(C2BTransaction.trans_id == trans_id)
        .values(payment_id=payment.id, account_id=payment.account_id)
    )
