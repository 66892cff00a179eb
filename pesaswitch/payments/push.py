"""From a payment and its channel to the STK Push (and Query) Daraja must receive."""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from pesaswitch.accounts.models import Channel, ChannelKind, Credential
from pesaswitch.config import Settings
from pesaswitch.daraja.client import DarajaApp
from pesaswitch.daraja.wire import StkPushRequest
from pesaswitch.errors import NotFound
from pesaswitch.kit import crypto
from pesaswitch.kit.ids import is_row_id
from pesaswitch.payments.models import Payment

# Daraja's documented limits: AccountReference 12, TransactionDesc 13 characters, and
# special characters cause silent failures (daraja.md §2, §12).
ACCOUNT_REFERENCE_MAX = 12
TRANSACTION_DESC_MAX = 13
_UNSAFE = re.compile(r"[^A-Za-z0-9 ]+")


def _clean(text: str | None, limit: int) -> str:
    return _UNSAFE.sub("", text or "").strip()[:limit].strip()


@dataclass(frozen=True, slots=True)
class ShortcodeAuth:
    """Which Daraja app, shortcode and passkey speak for a channel."""

    app: DarajaApp | None  # None: the gateway's own app
    business_shortcode: str
    passkey: str


async def shortcode_auth(
    session: AsyncSession, settings: Settings, channel: Channel, credential_id: int | None = None
) -> ShortcodeAuth:
    """``credential_id`` (PayHero's per-request choice) overrides the channel's credential."""
    chosen = credential_id if credential_id is not None else channel.credential_id
    if chosen is not None:
        credential = await session.get(Credential, chosen) if is_row_id(chosen) else None
        if credential is None or credential.account_id != channel.account_id:
            raise NotFound(f"No credential {chosen}")
        key = settings.secret_key
        return ShortcodeAuth(
            app=DarajaApp(
                crypto.decrypt(key, credential.consumer_key_enc),
                crypto.decrypt(key, credential.consumer_secret_enc),
            ),
            business_shortcode=credential.shortcode,
            passkey=crypto.decrypt(key, credential.passkey_enc),
        )
    return gateway_app_auth(settings, channel)


def gateway_app_auth(settings: Settings, channel: Channel) -> ShortcodeAuth:
    """How a channel without a credential of its own is pushed: with the gateway's app."""
    if channel.kind == ChannelKind.WALLET.value:
        return ShortcodeAuth(None, settings.daraja_shortcode, settings.daraja_passkey)
    assert channel.shortcode is not None
    return ShortcodeAuth(None, channel.shortcode, settings.daraja_passkey)


def account_reference(*, channel: Channel, payment: Payment) -> str:
    """The AccountReference the payment's push sends: what the customer sees on the
    prompt, and what Daraja echoes as BillRefNumber when it also confirms the payment
    through C2B (c2b/service.py matches the echo on it)."""
    match ChannelKind(channel.kind):
        case ChannelKind.WALLET:
            # Money lands in the gateway's paybill; our own code attributes it.
            return payment.reference
        case ChannelKind.BANK:
            assert channel.account_number is not None
            return channel.account_number
        case ChannelKind.TILL | ChannelKind.PAYBILL:
            return _clean(payment.external_reference, ACCOUNT_REFERENCE_MAX) or payment.reference


def stk_request(
    *, settings: Settings, channel: Channel, auth: ShortcodeAuth, payment: Payment
) -> StkPushRequest:
    kind = ChannelKind(channel.kind)
    if kind is ChannelKind.WALLET:
        party_b = settings.daraja_shortcode
    else:
        assert channel.shortcode is not None
        party_b = channel.shortcode
    return StkPushRequest(
        business_shortcode=auth.business_shortcode,
        passkey=auth.passkey,
        buy_goods=kind is ChannelKind.TILL,
        amount=payment.amount,
        phone=payment.phone,
        party_b=party_b,
        callback_url=f"{settings.effective_public_url}/daraja/stk/{payment.callback_token}",
        account_reference=account_reference(channel=channel, payment=payment),
        description=_clean(payment.description, TRANSACTION_DESC_MAX) or "Payment",
    )
