"""Cookies, CSRF tokens and who is looking.

* The session cookie is ``<token>.<HMAC(token)>``, HttpOnly and SameSite=Lax (Secure over
  HTTPS): the signature turns away forged cookies before the database is asked, and the
  token's hash finds the server-side session that logout deletes.
* CSRF tokens are HMACs of the session token (signed in) or of a random ``ps_csrf``
  cookie (signed out: the login form and the hosted payment page). A cross-site form
  cannot read either, so it cannot send the matching field.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from fastapi import Request, Response

from pesaswitch.dashboard.models import DashboardSession, User
from pesaswitch.kit import crypto
from pesaswitch.kit.ids import new_token

SESSION_COOKIE = "ps_session"
ANON_COOKIE = "ps_csrf"
CSRF_FIELD = "csrf_token"


def mac(secret_key: str, label: str, value: str) -> str:
    """HMAC-SHA256 of ``value`` under a key derived for ``label``: one key per use."""
    key = hashlib.sha256(f"pesaswitch-dashboard:{label}:{secret_key}".encode()).digest()
    return hmac.new(key, value.encode(), hashlib.sha256).hexdigest()


def seal(secret_key: str, token: str) -> str:
    return f"{token}.{mac(secret_key, 'cookie', token)}"


def unseal(secret_key: str, cookie: str | None) -> str | None:
    token, _, signature = (cookie or "").rpartition(".")
    if not token or not crypto.secrets_equal(signature, mac(secret_key, "cookie", token)):
        return None
    return token


def csrf_token_for(secret_key: str, basis: str) -> str:
    return mac(secret_key, "csrf", basis)


def csrf_valid(secret_key: str, basis: str | None, presented: str | None) -> bool:
    if not basis or not presented:
        return False
    return crypto.secrets_equal(presented, csrf_token_for(secret_key, basis))


def is_https(request: Request, public_url: str) -> bool:
    return request.url.scheme == "https" or public_url.startswith("https://")


def set_cookie(response: Response, request: Request, public_url: str, name: str, value: str,
               max_age: int | None = None) -> None:  # fmt: skip
    response.set_cookie(
        name, value, max_age=max_age, httponly=True, samesite="lax", path="/",
        secure=is_https(request, public_url),
    )  # fmt: skip


def anonymous_basis(request: Request) -> tuple[str, bool]:
    """The signed-out CSRF basis and whether the cookie must be (re)issued."""
    current = request.cookies.get(ANON_COOKIE)
    if current and len(current) >= 32:
        return current, False
    return new_token(24), True


@dataclass(frozen=True, slots=True)
class Viewer:
    """A signed-in user and the account the pages are about (None: staff, all accounts)."""

    user: User
    session: DashboardSession
    token: str
    csrf_token: str

    @property
    def is_staff(self) -> bool:
        return self.user.is_staff

    @property
    def account_id(self) -> str | None:
        return self.user.account_id if not self.user.is_staff else self.session.account_id
