"""C2B: a channel's registration and rules, the notifications Daraja posted, and the
verdict of a validation (what a confirmation records: ``confirmations.py``)."""

from __future__ import annotations

import secrets
from collections.abc import Collection

import structlog
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from pesaswitch.accounts.models import Channel, ChannelKind
from pesaswitch.c2b.models import (
    C2BNotification,
    C2BRegistration,
    DefaultAction,
    NotificationKind,
)
from pesaswitch.c2b.schemas import C2BSettingsIn
from pesaswitch.daraja.c2b import C2BNotice, ValidationCode
from pesaswitch.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from pesaswitch.kit.clock import utcnow
from pesaswitch.kit.ids import is_row_id
from pesaswitch.kit.patterns import UnsafePattern, full_match

log = structlog.get_logger(__name__)


class C2BNotConfigured(NotFound):
    code = "c2b_not_configured"
    title = "The channel has no C2B settings"


class C2BUnsupportedChannel(ValidationFailed):
    code = "c2b_unsupported_channel"
    title = "This channel cannot receive C2B payments"


class C2BShortcodeTaken(Conflict):
    code = "c2b_shortcode_taken"
    title = "Another channel holds this shortcode's C2B URLs"


class C2BSharedShortcode(PermissionDenied):
    code = "c2b_shared_shortcode"
    title = "The gateway's own shortcode is given to an account by the operator"


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
    session: AsyncSession,
    *,
    channel: Channel,
    data: C2BSettingsIn,
    gateway_shortcode: str,
    reserved: Collection[str] = (),
    operator: bool = False,
) -> C2BRegistration:
    """Create or replace the channel's C2B rules; the token is made once and kept.

    The gateway's own shortcodes (``gateway_shortcode``, its paybill where every wallet
    payment lands, and ``reserved``, e.g. its B2C shortcode) are the operator's: only an
    ``operator`` (dashboard staff, the CLI) gives one to a channel. Whoever holds a
    shortcode's registration receives every C2B payment to it, so a merchant's key that
    could take one would take other merchants' money. The channel it was given to then
    manages its rules like any other channel's."""
    if (
        data.min_amount is not None
        and data.max_amount is not None
        and (data.min_amount > data.max_amount)
    ):
        raise C2BInvalidRange(f"min_amount {data.min_amount} > max_amount {data.max_amount}")
    shortcode = shortcode_for(channel, gateway_shortcode=gateway_shortcode)
    if (shortcode == gateway_shortcode or shortcode in reserved) and not operator:
        given = await session.scalar(
            select(C2BRegistration.channel_id).where(
                C2BRegistration.channel_id == channel.id, C2BRegistration.shortcode == shortcode
            )
        )
        if given is None:
            raise C2BSharedShortcode(
                f"Shortcode {shortcode} is the gateway's own: the operator gives its C2B to "
                "an account (dashboard staff, or `pesaswitch c2b assign CHANNEL`)"
            )
    holder = await session.scalar(
        select(C2BRegistration).where(C2BRegistration.shortcode == shortcode)
    )
    if holder is not None and holder.channel_id != channel.id:
        # Daraja keeps one pair of URLs per shortcode.
        raise C2BShortcodeTaken(f"Shortcode {shortcode} is registered for another channel")
    row = await session.get(C2BRegistration, channel.id, with_for_update=True)
    now = utcnow()
    if row is None:
        # Hex, not new_token's URL-safe alphabet: Daraja refuses URLs with words such as
        # "sql", "cmd" or "exec" in them (the simulator too), and about one URL-safe token
        # in 500 spelled one, so that channel could never register. Hex spells none.
        row = C2BRegistration(
            channel_id=channel.id, account_id=channel.account_id, token=secrets.token_hex(24),
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
