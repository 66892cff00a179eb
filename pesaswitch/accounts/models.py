"""Merchants (accounts), their API keys, payment channels and Daraja credentials."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from pesaswitch.db import Base
from pesaswitch.kit.clock import utcnow


class Environment(StrEnum):
    SANDBOX = "sandbox"
    LIVE = "live"


class KeyKind(StrEnum):
    # bandit B105: a key kind, not a password.
    SECRET = "secret"  # nosec B105
    PUBLIC = "public"


class ChannelKind(StrEnum):
    WALLET = "wallet"
    TILL = "till"
    PAYBILL = "paybill"
    BANK = "bank"


class Account(Base):
    __tablename__ = "accounts"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    environment: Mapped[str] = mapped_column(String(10))
    # Signs notifications to per-request callback URLs (encrypted; made on first use).
    callback_secret_enc: Mapped[str | None] = mapped_column(String(500), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    kind: Mapped[str] = mapped_column(String(10))
    # HMAC-SHA256 of the full key; the key itself is shown once and never stored.
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    last4: Mapped[str] = mapped_column(String(4))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)
    last_used_at: Mapped[datetime | None] = mapped_column(default=None)


class Credential(Base):
    """A merchant's own Daraja app; secrets encrypted with the operator's key."""

    __tablename__ = "credentials"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    shortcode: Mapped[str] = mapped_column(String(10))
    consumer_key_enc: Mapped[str] = mapped_column(String(500))
    consumer_secret_enc: Mapped[str] = mapped_column(String(500))
    passkey_enc: Mapped[str] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Channel(Base):
    __tablename__ = "channels"
    __table_args__ = (
        # At most one default channel per account, enforced by the database.
        Index(
            "uq_channels_default_per_account",
            "account_id",
            unique=True,
            sqlite_where=text("is_default"),
            postgresql_where=text("is_default"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    kind: Mapped[str] = mapped_column(String(10))
    # Till number, paybill number or the bank's paybill; empty for the gateway wallet.
    shortcode: Mapped[str | None] = mapped_column(String(10), default=None)
    account_number: Mapped[str | None] = mapped_column(String(40), default=None)
    description: Mapped[str] = mapped_column(String(200), default="")
    credential_id: Mapped[int | None] = mapped_column(ForeignKey("credentials.id"), default=None)
    is_default: Mapped[bool] = mapped_column(default=False)
    is_active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class SigningKey(Base):
    """A merchant's RSA public key, for request signatures (Pokea Pay's ``signature``)."""

    __tablename__ = "signing_keys"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    public_key_pem: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)
