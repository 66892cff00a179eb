"""Accounts, API keys, channels and credentials. Services never commit."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from pesaswitch.accounts.models import (
    Account,
    ApiKey,
    Channel,
    ChannelKind,
    Credential,
    Environment,
    KeyKind,
    SigningKey,
)
from pesaswitch.banks.paybills import check_bank_channel
from pesaswitch.errors import (
    ApiKeyRevoked,
    AuthenticationFailed,
    ChannelNotFound,
    NotFound,
    ValidationFailed,
)
from pesaswitch.kit import crypto
from pesaswitch.kit.clock import utcnow
from pesaswitch.kit.ids import new_id, new_token

KEY_PREFIXES = {
    (KeyKind.SECRET, Environment.SANDBOX): "sk_test_",
    (KeyKind.SECRET, Environment.LIVE): "sk_live_",
    (KeyKind.PUBLIC, Environment.SANDBOX): "pk_test_",
    (KeyKind.PUBLIC, Environment.LIVE): "pk_live_",
}


@dataclass(frozen=True, slots=True)
class IssuedKey:
    """A key as shown once, at creation."""

    id: str
    kind: KeyKind
    key: str


@dataclass(frozen=True, slots=True)
class NewAccount:
    account: Account
    secret_key: IssuedKey
    public_key: IssuedKey
    default_channel: Channel


@dataclass(frozen=True, slots=True)
class AuthContext:
    account_id: str
    environment: Environment
    key_id: str
    kind: KeyKind

    @property
    def can_write(self) -> bool:
        return self.kind is KeyKind.SECRET


async def create_account(
    session: AsyncSession, *, secret_key: str, name: str, environment: Environment
) -> NewAccount:
    account = Account(id=new_id("acct"), name=name, environment=environment.value)
    session.add(account)
    await session.flush()
    sk = await create_api_key(session, secret_key=secret_key, account=account, kind=KeyKind.SECRET)
    pk = await create_api_key(session, secret_key=secret_key, account=account, kind=KeyKind.PUBLIC)
    channel = await add_channel(
        session, account_id=account.id, kind=ChannelKind.WALLET, description="Wallet"
    )
    return NewAccount(account, sk, pk, channel)


async def get_account(session: AsyncSession, *, account_id: str) -> Account:
    account = await session.get(Account, account_id)
    if account is None:
        raise NotFound(f"No account {account_id}")
    return account


async def create_api_key(
    session: AsyncSession, *, secret_key: str, account: Account, kind: KeyKind
) -> IssuedKey:
    prefix = KEY_PREFIXES[(kind, Environment(account.environment))]
    key = prefix + new_token(24)
    row = ApiKey(
        id=new_id("key"),
        account_id=account.id,
        kind=kind.value,
        key_hash=crypto.keyed_hash(secret_key, key),
        prefix=prefix,
        last4=key[-4:],
    )
    session.add(row)
    await session.flush()
    return IssuedKey(row.id, kind, key)


async def revoke_api_key(
    session: AsyncSession, *, key_id: str, account_id: str | None = None
) -> ApiKey:
    """Revoke a key; with ``account_id``, only a key of that account (else 'not found')."""
    row = await session.get(ApiKey, key_id)
    if row is None or (account_id is not None and row.account_id != account_id):
        raise NotFound(f"No API key {key_id}")
    if row.revoked_at is None:
        row.revoked_at = utcnow()
    return row


async def list_api_keys(session: AsyncSession, *, account_id: str) -> list[ApiKey]:
    rows = await session.scalars(
        select(ApiKey).where(ApiKey.account_id == account_id).order_by(ApiKey.id.desc())
    )
    return list(rows)


async def authenticate(session: AsyncSession, *, secret_key: str, presented: str) -> AuthContext:
    if not presented.startswith(("sk_", "pk_")):
        raise AuthenticationFailed("Use 'Authorization: Bearer sk_…' or 'pk_…'")
    digest = crypto.keyed_hash(secret_key, presented)
    row = (
        await session.execute(
            select(ApiKey, Account.environment)
            .join(Account, Account.id == ApiKey.account_id)
            .where(ApiKey.key_hash == digest)
        )
    ).one_or_none()
    if row is None:
        raise AuthenticationFailed("The API key is not valid")
    key, environment = row
    if key.revoked_at is not None:
        raise ApiKeyRevoked(f"The API key ending {key.last4} was revoked")
    return AuthContext(key.account_id, Environment(environment), key.id, KeyKind(key.kind))


async def add_channel(
    session: AsyncSession,
    *,
    account_id: str,
    kind: ChannelKind,
    shortcode: str | None = None,
    account_number: str | None = None,
    description: str = "",
    credential_id: int | None = None,
    make_default: bool = False,
) -> Channel:
    if kind is ChannelKind.WALLET:
        if shortcode or account_number:
            raise ValidationFailed("A wallet channel takes no shortcode or account number")
    elif not (shortcode and shortcode.isdigit() and 5 <= len(shortcode) <= 7):
        raise ValidationFailed(f"A {kind.value} channel needs a 5-7 digit shortcode")
    if kind is ChannelKind.BANK:
        # One of Kenya's banks' paybills and an account there (banks/paybills.py).
        account_number = check_bank_channel(shortcode, account_number)
    if credential_id is not None:
        credential = await session.get(Credential, credential_id)
        if credential is None or credential.account_id != account_id:
            raise NotFound(f"No credential {credential_id}")
    has_default = await session.scalar(
        select(Channel.id).where(Channel.account_id == account_id, Channel.is_default).limit(1)
    )
    if make_default and has_default is not None:
        await session.execute(
            update(Channel).where(Channel.account_id == account_id).values(is_default=False)
        )
    channel = Channel(
        account_id=account_id,
        kind=kind.value,
        shortcode=shortcode,
        account_number=account_number,
        description=description,
        credential_id=credential_id,
        is_default=make_default or has_default is None,
    )
    session.add(channel)
    await session.flush()
    return channel


async def list_channels(session: AsyncSession, *, account_id: str) -> list[Channel]:
    rows = await session.scalars(
        select(Channel).where(Channel.account_id == account_id).order_by(Channel.id)
    )
    return list(rows)


async def resolve_channel(
    session: AsyncSession, *, account_id: str, channel_id: int | None
) -> Channel:
    """The requested channel of this account, or its default; another's is 'not found'."""
    query = select(Channel).where(Channel.account_id == account_id, Channel.is_active)
    if channel_id is None:
        query = query.where(Channel.is_default)
    else:
        query = query.where(Channel.id == channel_id)
    channel = await session.scalar(query)
    if channel is None:
        raise ChannelNotFound(
            f"No channel {channel_id}" if channel_id is not None else "The account has no channel"
        )
    return channel


async def add_credential(
    session: AsyncSession,
    *,
    secret_key: str,
    account_id: str,
    name: str,
    shortcode: str,
    consumer_key: str,
    consumer_secret: str,
    passkey: str,
) -> Credential:
    credential = Credential(
        account_id=account_id,
        name=name,
        shortcode=shortcode,
        consumer_key_enc=crypto.encrypt(secret_key, consumer_key),
        consumer_secret_enc=crypto.encrypt(secret_key, consumer_secret),
        passkey_enc=crypto.encrypt(secret_key, passkey),
    )
    session.add(credential)
    await session.flush()
    return credential


async def add_signing_key(
    session: AsyncSession, *, account_id: str, public_key_pem: str
) -> SigningKey:
    """Register an RSA public key that verifies this account's request signatures."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    try:
        key = serialization.load_pem_public_key(public_key_pem.encode())
    except ValueError as exc:
        raise ValidationFailed("Not a PEM public key") from exc
    if not isinstance(key, rsa.RSAPublicKey) or key.key_size < 2048:
        raise ValidationFailed("A signing key is an RSA public key of at least 2048 bits")
    row = SigningKey(account_id=account_id, public_key_pem=public_key_pem)
    session.add(row)
    await session.flush()
    return row
