"""Sign-in, sign-out and the staff's account switcher."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from pesaswitch.dashboard import security, users
from pesaswitch.dashboard.web import (
    ViewerDep,
    anonymous_form,
    back_to,
    checked_anonymous_form,
    checked_form,
    field,
)
from pesaswitch.db import transaction
from pesaswitch.errors import AuthenticationFailed, TooManyRequests, ValidationFailed
from pesaswitch.runtime import RuntimeDep

router = APIRouter(prefix="/dashboard", include_in_schema=False)


def _login_page(request: Request, runtime: RuntimeDep, *, error: str | None = None,
                email: str = "", status_code: int = 200) -> Response:  # fmt: skip
    return anonymous_form(
        request, runtime, "login.html", status_code=status_code, error=error, email=email
    )


@router.get("/login")
async def login_form(request: Request, runtime: RuntimeDep) -> Response:
    return _login_page(request, runtime)


@router.post("/login")
async def login(request: Request, runtime: RuntimeDep) -> Response:
    form = await checked_anonymous_form(request, runtime)
    email = field(form, "email", 254)
    password = form.get("password")
    if not email or not isinstance(password, str) or not password:
        return _login_page(
            request, runtime, error="Enter your email and password", email=email, status_code=422
        )
    failure: AuthenticationFailed | TooManyRequests | None = None
    # The failure counter must be committed even when the password is wrong.
    async with transaction(runtime.sessionmaker) as session:
        try:
            signed = await users.sign_in(
                session, email=email, password=password[:1024],
                client=request.client.host if request.client else "unknown",
            )  # fmt: skip
        except (AuthenticationFailed, TooManyRequests) as exc:
            failure = exc
    if failure is not None:
        response = _login_page(
            request, runtime, error=failure.detail, email=email, status_code=failure.status_code
        )
        response.headers.update(failure.headers or {})
        return response
    redirect = RedirectResponse("/dashboard", status_code=303)
    security.set_cookie(
        redirect, request, runtime.settings.public_url, security.SESSION_COOKIE,
        security.seal(runtime.settings.secret_key, signed.token),
        max_age=int(users.SESSION_LIFETIME.total_seconds()),
    )  # fmt: skip
    return redirect


@router.post("/logout")
async def logout(request: Request, runtime: RuntimeDep, viewer: ViewerDep) -> Response:
    await checked_form(request, runtime, viewer)
    async with transaction(runtime.sessionmaker) as session:
        await users.sign_out(session, token=viewer.token)
    redirect = RedirectResponse("/dashboard/login", status_code=303)
    redirect.delete_cookie(security.SESSION_COOKIE, path="/")
    return redirect


@router.post("/account")
async def switch_account(request: Request, runtime: RuntimeDep, viewer: ViewerDep) -> Response:
    form = await checked_form(request, runtime, viewer)
    account_id = field(form, "account_id", 40) or None
    async with transaction(runtime.sessionmaker) as session:
        try:
            await users.choose_account(
                session, token=viewer.token, user=viewer.user, account_id=account_id
            )
        except ValidationFailed as exc:
            return back_to("/dashboard", exc.detail)
    return back_to("/dashboard")
