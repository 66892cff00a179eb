"""People who sign in to the dashboard, and their sessions."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from pesaswitch.db import Base
from pesaswitch.kit.clock import utcnow


class User(Base):
    """A merchant's user (``account_id`` set) or an operator's staff (``is_staff``)."""

    __tablename__ = "users"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    # argon2id, with its parameters and salt in the string.
    password_hash: Mapped[str] = mapped_column(String(200))
    account_id: Mapped[str | None] = mapped_column(
        ForeignKey("accounts.id"), index=True, default=None
    )
    is_staff: Mapped[bool] = mapped_column(default=False)
    # Wrong passwords in a row; at the limit the user is locked out for a while.
    failed_logins: Mapped[int] = mapped_column(default=0)
    locked_until: Mapped[datetime | None] = mapped_column(default=None)
    last_login_at: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class DashboardSession(Base):
    """A signed-in browser. The cookie holds a random token; only its hash is stored,
    so a leaked database does not sign anybody in, and logout really ends it."""

    __tablename__ = "dashboard_sessions"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), index=True)
    # The account a staff user is looking at (None: all accounts, read-only lists).
    account_id: Mapped[str | None] = mapped_column(ForeignKey("accounts.id"), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]


class LoginThrottle(Base):
    """Wrong passwords from one client address in the current window: the per-user
    lockout alone would let one address try a password against many emails."""

    __tablename__ = "login_throttles"

    key: Mapped[str] = mapped_column(String(80), primary_key=True)
    failures: Mapped[int] = mapped_column(default=0)
    window_started_at: Mapped[datetime]
