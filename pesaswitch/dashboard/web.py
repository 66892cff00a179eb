"""Rendering and the request plumbing every page shares: templates, the signed-in
viewer, CSRF-checked forms, and HTML error pages for the dashboard's paths."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup
from sqlalchemy import select
from starlette.datastructures import FormData

from pesaswitch.accounts.models import Account
from pesaswitch.dashboard import security, users
from pesaswitch.dashboard.queries import EAT
from pesaswitch.dashboard.security import Viewer
from pesaswitch.db import read_sessions
from pesaswitch.errors import PesaswitchError, problem_response
from pesaswitch.kit.phones import mask_phone
from pesaswitch.runtime import Runtime, RuntimeDep

TEMPLATES = Path(__file__).parent / "templates"
HTML_PREFIXES = ("/dashboard", "/pay/")


def _money(amount: int | None, currency: str = "KES") -> str:
    return "—" if amount is None else f"{currency} {amount:,}"


def _local(moment: datetime | None) -> str:
    return "—" if moment is None else (moment + EAT).strftime("%Y-%m-%d %H:%M:%S")


environment = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)
environment.filters["money"] = _money
environment.filters["local"] = _local
environment.filters["mask"] = mask_phone


def render(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    context.setdefault("viewer", None)
    context.setdefault("notice", request.query_params.get("notice"))
    body = environment.get_template(template).render(request=request, **context)
    return HTMLResponse(body, status_code=status_code, headers=_NO_STORE)


# Pages show money and secrets: never cached by the browser or a proxy, never framed.
_NO_STORE = {
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "default-src 'self'; style-src 'self'; img-src 'self' data:; "
    "script-src 'self'; frame-ancestors 'none'; form-action 'self'",
    "Referrer-Policy": "same-origin",
}


def svg(markup: str) -> Markup:
    """Trusted SVG built by ``charts`` from numbers only."""
    # ruff S704 / bandit B704: numbers and escaped labels only.
    return Markup(markup)  # noqa: S704  # nosec B704


class LoginRequired(Exception):
    """No valid session: send the browser to the sign-in page."""


async def current_viewer(request: Request, runtime: RuntimeDep) -> Viewer:
    secret = runtime.settings.secret_key
    token = security.unseal(secret, request.cookies.get(security.SESSION_COOKIE))
    if token is None:
        raise LoginRequired
    async with read_sessions(runtime.sessionmaker)() as session:
        found = await users.session_user(session, token=token)
    if found is None:
        raise LoginRequired
    dashboard_session, user = found
    return Viewer(user, dashboard_session, token, security.csrf_token_for(secret, token))


ViewerDep = Annotated[Viewer, Depends(current_viewer)]


class CsrfRejected(PesaswitchError):
    status_code = 403
    code = "csrf_failed"
    title = "The form expired or did not come from this site; reload the page and try again"


async def checked_form(request: Request, runtime: Runtime, viewer: Viewer) -> FormData:
    form = await request.form()
    presented = form.get(security.CSRF_FIELD)
    if not security.csrf_valid(
        runtime.settings.secret_key, viewer.token, presented if isinstance(presented, str) else None
    ):
        raise CsrfRejected
    return form


def anonymous_form(
    request: Request, runtime: Runtime, template: str, status_code: int = 200, **context: Any
) -> HTMLResponse:
    """A form for someone not signed in (sign-in, the hosted payment page), with its CSRF
    token bound to the ``ps_csrf`` cookie, issued here when the browser has none."""
    basis, fresh = security.anonymous_basis(request)
    token = security.csrf_token_for(runtime.settings.secret_key, basis)
    response = render(request, template, status_code=status_code, csrf_token=token, **context)
    if fresh:
        security.set_cookie(
            response, request, runtime.settings.public_url, security.ANON_COOKIE, basis
        )
    return response


async def checked_anonymous_form(request: Request, runtime: Runtime) -> FormData:
    form = await request.form()
    presented = form.get(security.CSRF_FIELD)
    if not security.csrf_valid(
        runtime.settings.secret_key,
        request.cookies.get(security.ANON_COOKIE),
        presented if isinstance(presented, str) else None,
    ):
        raise CsrfRejected
    return form


def field(form: FormData, name: str, limit: int = 500) -> str:
    value = form.get(name)
    return value.strip()[:limit] if isinstance(value, str) else ""


def back_to(path: str, notice: str | None = None) -> RedirectResponse:
    """Post/redirect/get: a reload after an action does not repeat the action."""
    from urllib.parse import quote

    target = f"{path}?notice={quote(notice)}" if notice else path
    return RedirectResponse(target, status_code=303)


def install_page_handlers(app: FastAPI) -> None:
    """Errors on the dashboard's and the hosted page's paths render as pages; the API
    keeps its problem+json."""

    async def on_login_required(request: Request, _exc: Exception) -> Response:
        return RedirectResponse("/dashboard/login", status_code=303)

    async def on_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, PesaswitchError)
        if not request.url.path.startswith(HTML_PREFIXES):
            return problem_response(exc, exc.headers)
        response = render(
            request, "error.html", status_code=exc.status_code, error=exc,
            viewer=None, now=datetime.now(UTC),
        )  # fmt: skip
        for name, value in (exc.headers or {}).items():
            response.headers[name] = value
        return response

    app.add_exception_handler(LoginRequired, on_login_required)
    app.add_exception_handler(PesaswitchError, on_error)


async def chrome(session: Any, viewer: Viewer) -> dict[str, Any]:
    """What the layout shows around every signed-in page: who, which account, and for
    staff the accounts to switch between."""
    account = await session.get(Account, viewer.account_id) if viewer.account_id else None
    accounts: list[Account] = []
    if viewer.is_staff:
        accounts = list(await session.scalars(select(Account).order_by(Account.name).limit(500)))
    return {"viewer": viewer, "account": account, "accounts": accounts}


class AccountNeeded(PesaswitchError):
    status_code = 409
    code = "account_needed"
    title = "Choose an account at the top of the page first"


def own_account(viewer: Viewer) -> str:
    """The account a page that changes things acts on; staff must pick one."""
    if viewer.account_id is None:
        raise AccountNeeded
    return viewer.account_id
