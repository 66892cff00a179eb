"""Payment links. Services never commit."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from pesaswitch.accounts.models import Account, Environment, KeyKind
from pesaswitch.accounts.service import AuthContext, resolve_channel
from pesaswitch.errors import NotFound, ValidationFailed
from pesaswitch.kit.ids import new_id, new_token
from pesaswitch.links.models import PaymentLink

MAX_DESCRIPTION = 200


async def create_link(
    session: AsyncSession,
    *,
    account_id: str,
    description: str,
    amount: int | None,
    min_amount: int,
    max_amount: int,
) -> PaymentLink:
    description = description.strip()
    if not description or len(description) > MAX_DESCRIPTION:
        raise ValidationFailed(f"A description of 1 to {MAX_DESCRIPTION} characters is needed")
    if amount is not None and not min_amount <= amount <= max_amount:
        raise ValidationFailed(f"The amount must be between {min_amount} and {max_amount} KES")
    # Fails now, not in front of a customer, when the account has no channel to collect on.
    channel = await resolve_channel(session, account_id=account_id, channel_id=None)
    link = PaymentLink(
        id=new_id("plink"),
        account_id=account_id,
        slug=new_token(12),
        amount=amount,
        description=description,
        channel_id=channel.id,
    )
    session.add(link)
    await session.flush()
    return link


async def list_links(session: AsyncSession, *, account_id: str) -> list[PaymentLink]:
    rows = await session.scalars(
        select(PaymentLink)
        .where(PaymentLink.account_id == account_id)
        .order_by(PaymentLink.id.desc())
        .limit(200)
    )
    return list(rows)


async def get_link(session: AsyncSession, *, account_id: str, link_id: str) -> PaymentLink:
    link = await session.scalar(
        select(PaymentLink).where(PaymentLink.id == link_id, PaymentLink.account_id == account_id)
    )
    if link is None:
        raise NotFound(f"No payment link {link_id}")
    return link


async def set_active(
    session: AsyncSession, *, account_id: str, link_id: str, active: bool
) -> PaymentLink:
    link = await get_link(session, account_id=account_id, link_id=link_id)
    link.is_active = active
    return link


async def open_link(session: AsyncSession, *, slug: str) -> tuple[PaymentLink, Account]:
    """The active link behind a public slug, and its merchant."""
    row = (
        await session.execute(
            select(PaymentLink, Account)
            .join(Account, Account.id == PaymentLink.account_id)
            .where(PaymentLink.slug == slug, PaymentLink.is_active)
        )
    ).one_or_none()
    if row is None:
        raise NotFound("This payment link does not exist or was switched off")
    return row[0], row[1]


def link_auth(link: PaymentLink, account: Account) -> AuthContext:
    """The hosted page acts for the merchant, as a secret key would, on one link only."""
    return AuthContext(account.id, Environment(account.environment), link.id, KeyKind.SECRET)
