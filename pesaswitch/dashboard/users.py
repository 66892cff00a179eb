"""Dashboard users and sessions. Services never commit.

Passwords are argon2id hashes (argon2-cffi's defaults, RFC 9106's second choice). Five
wrong passwords in a row lock the user out for fifteen minutes: enough for a person who
mistyped, too slow for guessing.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import case, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from pesaswitch.accounts.models import Account
from pesaswitch.dashboard.models import DashboardSession, LoginThrottle, User
from pesaswitch.db import insert_ignoring_conflict
from pesaswitch.errors import AuthenticationFailed, Conflict, TooManyRequests, ValidationFailed
from pesaswitch.kit.clock import utcnow
from pesaswitch.kit.ids import new_id, new_token

MAX_FAILED_LOGINS = 5
LOCKOUT = timedelta(minutes=15)
# Per client address, whatever the email: enough for an office behind one NAT.
MAX_FAILURES_PER_CLIENT = 20
SESSION_LIFETIME = timedelta(hours=12)
MIN_PASSWORD_LENGTH = 10

_hasher = PasswordHasher()
# Verified against when the email is unknown, so both answers cost the same time.
_UNKNOWN_USER_HASH = _hasher.hash("pesaswitch-no-such-user")


class LoginLocked(TooManyRequests):
    code = "login_locked"
    title = "Too many wrong passwords; try again later"


@dataclass(frozen=True, slots=True)
class SignedIn:
    user: User
    token: str


def _normalize_email(email: str) -> str:
    email = email.strip().lower()
    local, _, domain = email.partition("@")
    if not local or "." not in domain or len(email) > 254:
        raise ValidationFailed("Enter an email address such as owner@shop.co.ke")
    return email


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def create_user(
    session: AsyncSession,
    *,
    email: str,
    password: str,
    account_id: str | None,
    is_staff: bool = False,
) -> User:
    email = _normalize_email(email)
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValidationFailed(f"A password has at least {MIN_PASSWORD_LENGTH} characters")
    if is_staff == (account_id is not None):
        raise ValidationFailed("A user is either staff or belongs to one account")
    if account_id is not None and await session.get(Account, account_id) is None:
        raise ValidationFailed(f"No account {account_id}")
    if await session.scalar(select(User.id).where(User.email == email)) is not None:
        raise Conflict(f"A user with the email {email} exists")
    user = User(
        id=new_id("usr"),
        email=email,
        password_hash=_hasher.hash(password),
        account_id=account_id,
        is_staff=is_staff,
    )
    session.add(user)
    await session.flush()
    return user


def _password_matches(stored_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(stored_hash, password)
    except (VerificationError, InvalidHashError):
        return False


async def sign_in(
    session: AsyncSession, *, email: str, password: str, client: str = "unknown"
) -> SignedIn:
    """A new session for the right password; wrong ones count towards a lockout of the
    user and a throttle of the client address.

    The counters are bumped by UPDATEs in the caller's transaction, which must be
    committed even when this raises (see ``auth_pages.login``)."""
    now = utcnow()
    throttle_key = f"client:{client}"[:80]
    blocked_until = await _client_blocked_until(session, key=throttle_key, now=now)
    if blocked_until is not None:
        raise LoginLocked(headers={"Retry-After": str(_seconds_until(blocked_until, now))})
    user = await session.scalar(select(User).where(User.email == email.strip().lower()))
    if user is None:
        _password_matches(_UNKNOWN_USER_HASH, password)
        await _count_client_failure(session, key=throttle_key, now=now)
        raise AuthenticationFailed("Wrong email or password")
    if user.locked_until is not None and user.locked_until > now:
        raise LoginLocked(headers={"Retry-After": str(_seconds_until(user.locked_until, now))})
    if not _password_matches(user.password_hash, password):
        await _count_client_failure(session, key=throttle_key, now=now)
        failures = user.failed_logins + 1
        locked = now + LOCKOUT if failures >= MAX_FAILED_LOGINS else None
        await session.execute(
            update(User)
            .where(User.id == user.id)
            .values(
                failed_logins=0 if locked else User.failed_logins + 1,
                locked_until=locked,
            )
        )
        if locked is not None:
            raise LoginLocked(headers={"Retry-After": str(int(LOCKOUT.total_seconds()))})
        raise AuthenticationFailed("Wrong email or password")
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
    user.failed_logins = 0
    user.locked_until = None
    user.last_login_at = now
    token = new_token(32)
    # Expired sessions are refused anyway; sweeping them here keeps the table small
    # without another background job.
    await purge_expired_sessions(session)
    session.add(
        DashboardSession(
            token_hash=token_hash(token),
            user_id=user.id,
            account_id=user.account_id,
            expires_at=now + SESSION_LIFETIME,
        )
    )
    await session.flush()
    return SignedIn(user, token)


async def _client_blocked_until(
    session: AsyncSession, *, key: str, now: datetime
) -> datetime | None:
    row = await session.get(LoginThrottle, key, populate_existing=True)
    if row is None or row.failures < MAX_FAILURES_PER_CLIENT:
        return None
    until = row.window_started_at + LOCKOUT
    return until if until > now else None


async def _count_client_failure(session: AsyncSession, *, key: str, now: datetime) -> None:
    """One more failure in the client's window, or the first of a new window; a single
    UPDATE, so racing wrong passwords are all counted."""
    if await insert_ignoring_conflict(
        session, LoginThrottle, key=key, failures=1, window_started_at=now
    ):
        return
    stale = LoginThrottle.window_started_at <= now - LOCKOUT
    await session.execute(
        update(LoginThrottle)
        .where(LoginThrottle.key == key)
        .values(
            failures=case((stale, 1), else_=LoginThrottle.failures + 1),
            window_started_at=case((stale, now), else_=LoginThrottle.window_started_at),
        )
    )


def _seconds_until(moment: datetime, now: datetime) -> int:
    return max(1, int((moment - now).total_seconds()))


async def session_user(
    session: AsyncSession, *, token: str
) -> tuple[DashboardSession, User] | None:
    row = (
        await session.execute(
            select(DashboardSession, User)
            .join(User, User.id == DashboardSession.user_id)
            .where(DashboardSession.token_hash == token_hash(token))
        )
    ).one_or_none()
    if row is None or row[0].expires_at <= utcnow():
        return None
    return row[0], row[1]


async def sign_out(session: AsyncSession, *, token: str) -> None:
    await session.execute(
        delete(DashboardSession).where(DashboardSession.token_hash == token_hash(token))
    )


async def choose_account(
    session: AsyncSession, *, token: str, user: User, account_id: str | None
) -> None:
    """Staff look at one account (or all); a merchant's user always sees its own."""
    if not user.is_staff:
        raise ValidationFailed("Only staff switch accounts")
    if account_id is not None and await session.get(Account, account_id) is None:
        raise ValidationFailed(f"No account {account_id}")
    await session.execute(
        update(DashboardSession)
        .where(DashboardSession.token_hash == token_hash(token))
        .values(account_id=account_id)
    )


async def purge_expired_sessions(session: AsyncSession) -> int:
    result = await session.execute(
        delete(DashboardSession).where(DashboardSession.expires_at <= utcnow())
    )
    return int(getattr(result, "rowcount", 0) or 0)


async def count_users(session: AsyncSession) -> int:
    return int(await session.scalar(select(func.count()).select_from(User)) or 0)
