"""C2B: a channel's registration and rules, and what a validation or confirmation does.

A confirmation claims its TransID in ``c2b_transactions`` (INSERT … ON CONFLICT DO
NOTHING) before anything else; only the claimant writes the payment, the event and the
wallet credit, all in the caller's transaction. So a duplicated, replayed or racing
confirmation — or the sweep finding one already confirmed — changes nothing.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import structlog
from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from pesaswitch.accounts.models import Channel, ChannelKind
from pesaswitch.c2b.models import (
    C2BNotification,
    C2BRegistration,
    C2BTransaction,
    DefaultAction,
    NotificationKind,
)
from pesaswitch.c2b.schemas import C2BSettingsIn
from pesaswitch.daraja.c2b import C2BNotice, ValidationCode
from pesaswitch.db import insert_ignoring_conflict
from pesaswitch.errors import Conflict, NotFound, ValidationFailed
from pesaswitch.kit.clock import utcnow
from pesaswitch.kit.ids import is_row_id, new_id, new_reference, new_token
from pesaswitch.kit.patterns import UnsafePattern, full_match
from pesaswitch.ledger.flows import credit_payment
from pesaswitch.payments.models import Payment, PaymentStatus
from pesaswitch.payments.schemas import PaymentOut
from pesaswitch.webhooks.models import EventType
from pesaswitch.webhooks.service import record_event

log = structlog.get_logger(__name__)

# How far back a C2B confirmation may be the echo of an STK payment.
STK_ECHO_WINDOW = timedelta(days=1)


class C2BNotConfigured(NotFound):
    code = "c2b_not_configured"
    title = "The channel has no C2B settings"


class C2BUnsupportedChannel(ValidationFailed):
    code = "c2b_unsupported_channel"
    title = "This channel cannot receive C2B payments"


class C2BShortcodeTaken(Conflict):
    code = "c2b_shortcode_taken"
    title = "Another channel holds this shortcode's C2B URLs"


class C2BInvalidRange(ValidationFailed):
    code = "c2b_invalid_range"
    title = "min_amount is above max_amount"


def shortcode_for(channel: Channel, *, gateway_shortcode: str) -> str:
    """The shortcode customers pay: the gateway's own for wallet channels. A bank's
    paybill belongs to the bank, which alone can register its URLs."""
    kind = ChannelKind(channel.kind)
    if kind is ChannelKind.WALLET:
        return gateway_shortcode
    if kind is ChannelKind.BANK or not channel.shortcode:
        raise C2BUnsupportedChannel(
            "A bank channel's paybill belongs to the bank: C2B URLs are registered for "
            "wallet, till and paybill channels"
        )
    return channel.shortcode


async def get_registration(
    session: AsyncSession, *, account_id: str, channel_id: int
) -> C2BRegistration:
    if not is_row_id(channel_id):  # beyond INTEGER: PostgreSQL would refuse the query
        raise C2BNotConfigured(f"Channel {channel_id} has no C2B settings")
    row = await session.scalar(
        select(C2BRegistration).where(
            C2BRegistration.account_id == account_id, C2BRegistration.channel_id == channel_id
        )
    )
    if row is None:
        raise C2BNotConfigured(f"Channel {channel_id} has no C2B settings")
    return row


async def configure(
    session: AsyncSession, *, channel: Channel, data: C2BSettingsIn, gateway_shortcode: str
) -> C2BRegistration:
    """Create or replace the channel's C2B rules; the token is made once and kept."""
    if (
        data.min_amount is not None
        and data.max_amount is not None
        and (data.min_amount > data.max_amount)
    ):
        raise C2BInvalidRange(f"min_amount {data.min_amount} > max_amount {data.max_amount}")
    shortcode = shortcode_for(channel, gateway_shortcode=gateway_shortcode)
    holder = await session.scalar(
        select(C2BRegistration).where(C2BRegistration.shortcode == shortcode)
    )
    if holder is not None and holder.channel_id != channel.id:
        # Daraja keeps one pair of URLs per shortcode.
        raise C2BShortcodeTaken(f"Shortcode {shortcode} is registered for another channel")
    row = await session.get(C2BRegistration, channel.id, with_for_update=True)
    now = utcnow()
    if row is None:
        row = C2BRegistration(
            channel_id=channel.id, account_id=channel.account_id, token=new_token(24),
            created_at=now,
        )  # fmt: skip
        session.add(row)
    row.shortcode = shortcode
    row.validation_enabled = data.validation_enabled
    row.account_pattern = data.account_pattern
    row.min_amount = data.min_amount
    row.max_amount = data.max_amount
    row.validation_url = data.validation_url
    row.default_action = data.default_action
    row.updated_at = now
    await session.flush()
    return row


async def mark_registered(session: AsyncSession, *, channel_id: int) -> None:
    await session.execute(
        update(C2BRegistration)
        .where(C2BRegistration.channel_id == channel_id)
        # The first sweep comes a sweep interval after registering.
        .values(registered_at=utcnow(), swept_until=utcnow())
    )


async def registrations_by_channel(
    session: AsyncSession, *, account_id: str
) -> dict[int, C2BRegistration]:
    rows = await session.scalars(
        select(C2BRegistration).where(C2BRegistration.account_id == account_id)
    )
    return {row.channel_id: row for row in rows}


async def find_by_token(session: AsyncSession, *, token: str) -> C2BRegistration | None:
    row: C2BRegistration | None = await session.scalar(
        select(C2BRegistration).where(C2BRegistration.token == token[:64])
    )
    return row


async def record_notification(
    session: AsyncSession,
    *,
    kind: NotificationKind,
    body: str,
    outcome: str,
    registration: C2BRegistration | None = None,
    trans_id: str | None = None,
    result_code: str | None = None,
    source_ip: str | None = None,
) -> None:
    session.add(
        C2BNotification(
            account_id=registration.account_id if registration else None,
            channel_id=registration.channel_id if registration else None,
            kind=kind.value,
            trans_id=(trans_id or None) and trans_id[:20],
            # As received, but PostgreSQL's text cannot hold NUL: U+FFFD in its place.
            body=body[:32768].replace("\x00", "\ufffd"),
            source_ip=source_ip,
            outcome=outcome,
            result_code=result_code,
            received_at=utcnow(),
        )
    )
    await session.flush()


def rule_verdict(registration: C2BRegistration, notice: C2BNotice) -> ValidationCode:
    """The merchant's own rules, before any validation webhook is asked."""
    if notice.shortcode != registration.shortcode:
        return ValidationCode.INVALID_SHORTCODE
    if registration.min_amount is not None and notice.amount < registration.min_amount:
        return ValidationCode.INVALID_AMOUNT
    if registration.max_amount is not None and notice.amount > registration.max_amount:
        return ValidationCode.INVALID_AMOUNT
    if registration.account_pattern:
        try:
            matches = full_match(registration.account_pattern, notice.bill_ref)
        except UnsafePattern:
            # Saved before patterns were checked with RE2, and RE2 cannot run it: Python's
            # re never runs a merchant's pattern, so the rule cannot decide.
            log.warning("c2b.validation.pattern_unusable", channel_id=registration.channel_id)
            return fallback_verdict(registration)
        if not matches:
            return ValidationCode.INVALID_ACCOUNT
    return ValidationCode.ACCEPTED


def fallback_verdict(registration: C2BRegistration) -> ValidationCode:
    """Daraja's own fallback when we answer late: the registered ResponseType."""
    if registration.default_action == DefaultAction.REJECT.value:
        return ValidationCode.OTHER
    return ValidationCode.ACCEPTED


def mask_name(first: str, middle: str, last: str) -> str:
    """``JOHN`` ``KAMAU`` ``DOE`` → ``JOHN K. D.``: enough to recognise a payer."""
    initials = [f"{part[0].upper()}." for part in (middle, last) if part]
    return " ".join([first.strip().title(), *initials]).strip()[:200]


async def record_confirmation(
    session: AsyncSession,
    *,
    registration: C2BRegistration,
    notice: C2BNotice,
    source: str,
    now: datetime | None = None,
) -> str:
    """Record a confirmed C2B payment once per TransID; the outcome says what happened:
    ``applied`` (new payment), ``duplicate`` (TransID known) or ``matched_stk`` (an STK
    payment already carries this receipt)."""
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
    existing = await session.scalar(select(Payment).where(Payment.mpesa_receipt == notice.trans_id))
    if existing is None:
        existing = await _stk_payment_for(session, registration, channel, notice, now)
    if existing is not None:
        # An STK payment to this shortcode, confirmed through C2B too: one payment.
        if existing.account_id == registration.account_id:
            await _link(session, notice.trans_id, existing.id)
            await _give_receipt(session, existing, notice.trans_id, now)
        log.info("c2b.matched_stk", trans_id=notice.trans_id, payment_id=existing.id)
        return "matched_stk"
    payment = Payment(
        id=new_id("pay"), account_id=registration.account_id, channel_id=channel.id,
        amount=notice.amount, currency="KES", phone=notice.msisdn, reference=new_reference(),
        external_reference=notice.bill_ref or None,
        description=notice.transaction_type or "C2B payment", customer_name=payer or None,
        dialect="native", source="c2b", status=PaymentStatus.COMPLETED.value,
        push_state="none", result_code="0", result_desc="C2B confirmation",
        mpesa_receipt=notice.trans_id, transaction_date=notice.trans_time or None,
        callback_token=new_token(24), settled_by=source[:10], query_attempts=0,
        created_at=now, updated_at=now, finalized_at=now,
    )  # fmt: skip
    session.add(payment)
    await session.flush()
    await _link(session, notice.trans_id, payment.id)
    await record_event(
        session, account_id=payment.account_id, event_type=EventType.PAYMENT_COMPLETED,
        object_id=payment.id, data=PaymentOut.render(payment).model_dump(mode="json"),
    )  # fmt: skip
    # Wallet channels credit the wallet, once per receipt (the ledger's key).
    await credit_payment(session, payment=payment, channel_kind=channel.kind)
    log.info("c2b.recorded", trans_id=notice.trans_id, payment_id=payment.id, source=source)
    return "applied"


async def _stk_payment_for(
    session: AsyncSession, registration: C2BRegistration, channel: Channel, notice: C2BNotice,
    now: datetime,
) -> Payment | None:  # fmt: skip
    """The STK payment this confirmation is the C2B echo of, if any: Daraja also confirms
    STK payments to a shortcode with registered URLs, the BillRefNumber being the push's
    AccountReference (the gateway reference for wallet channels, else the merchant's).
    Without this, a confirmation arriving before the STK callback would become a second
    payment (and a second wallet credit) for the same money."""
    if not notice.bill_ref:
        return None
    payment: Payment | None = await session.scalar(
        select(Payment)
        .where(
            Payment.account_id == registration.account_id,
            Payment.channel_id == channel.id,
            Payment.source == "stk",
            Payment.amount == notice.amount,
            Payment.status.in_([PaymentStatus.PENDING.value, PaymentStatus.COMPLETED.value]),
            or_(Payment.reference == notice.bill_ref,
                Payment.external_reference == notice.bill_ref),
            or_(Payment.mpesa_receipt.is_(None), Payment.mpesa_receipt == notice.trans_id),
            Payment.created_at >= now - STK_ECHO_WINDOW,
        )
        .order_by(Payment.created_at.desc())
        .limit(1)
    )  # fmt: skip
    return payment


async def _give_receipt(
    session: AsyncSession, payment: Payment, receipt: str, now: datetime
) -> None:
    """A completed STK payment settled by query has no receipt: the confirmation has it.
    A pending one is left to its callback or query, which will carry the same receipt."""
    updated: Payment | None = await session.scalar(
        update(Payment)
        .where(
            Payment.id == payment.id,
            Payment.status == PaymentStatus.COMPLETED.value,
            Payment.mpesa_receipt.is_(None),
        )
        .values(mpesa_receipt=receipt, updated_at=now)
        .returning(Payment),
        execution_options={"populate_existing": True, "synchronize_session": False},
    )
    if updated is not None:
        await record_event(
            session, account_id=updated.account_id, event_type=EventType.PAYMENT_UPDATED,
            object_id=updated.id, data=PaymentOut.render(updated).model_dump(mode="json"),
            callback_url=updated.callback_url, callback_dialect=updated.dialect,
        )  # fmt: skip


async def _link(session: AsyncSession, trans_id: str, payment_id: str) -> None:
    await session.execute(
        update(C2BTransaction)
        .where(C2BTransaction.trans_id == trans_id)
        .values(payment_id=payment_id)
    )


async def list_notifications(
    session: AsyncSession, *, account_id: str, limit: int = 50
) -> list[C2BNotification]:
    rows = await session.scalars(
        select(C2BNotification)
        .where(C2BNotification.account_id == account_id)
        .order_by(C2BNotification.id.desc())
        .limit(limit)
    )
    return list(rows)
