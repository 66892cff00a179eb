"""The sandbox phone: a page where a person answers the STK prompts the simulator holds.

Mounted at ``/simulator`` on the simulator's own app and, when the simulator is embedded,
on the gateway too. The page works without JavaScript (a GET form to pick the number,
POST forms for the actions, a refresh link); ``/simulator/phone/api/…`` are JSON twins
for scripts and tests. No CSRF token: this is the sandbox's fake handset, not the
merchant's dashboard, and it never exists next to real Daraja.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from pesaswitch.kit.phones import check_phone
from pesaswitch.simulator.prompts import (
    PromptAction,
    PromptAlreadyEnded,
    PromptDesk,
    PromptError,
    PromptNotFound,
    prompt_json,
)
from pesaswitch.simulator.scenarios import describe

TEMPLATES = Jinja2Templates(directory=Path(__file__).parent / "templates")

# Messages the page may show after an action, chosen by key so that nothing from the
# query string is echoed into the page.
NOTICES = {
    "pin": "PIN accepted: the payment went through (ResultCode 0).",
    "wrong_pin": "Wrong PIN: the payment failed (ResultCode 2001).",
    "cancelled": "Cancelled: ResultCode 1032.",
    "timed_out": "Left to time out: ResultCode 1037.",
    "expired": "The prompt had already timed out: ResultCode 1037.",
    "prompt_already_ended": "That prompt has already ended; nothing more was sent.",
    "prompt_not_found": "There is no such prompt on this phone.",
    "pin_required": "Enter the M-PESA PIN first.",
    "c2b_completed": "Paid: M-PESA sent the business its confirmation.",
    "c2b_rejected": "The business declined the payment (validation): nothing was paid.",
    "c2b_cancelled": "The business did not answer in time and the payment was cancelled.",
    "c2b_invalid": "Enter a 5-7 digit till or paybill number and a whole amount of 1 to 250,000.",
}


def _error(status_code: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"code": code, "message": message}, status_code=status_code)


def _normalize(raw: str) -> str | None:
    # Any Kenyan mobile spelling (07…, 2547…, +2547…); the simulator itself checks networks.
    return check_phone(raw).normalized if raw.strip() else None


def _action(raw: str) -> PromptAction | None:
    try:
        return PromptAction(raw)
    except ValueError:
        return None


def create_phone_app(
    desk: PromptDesk, c2b_recent: Callable[[str], list[Any]] | None = None
) -> FastAPI:
    """``c2b_recent``: the number's recent till/paybill payments (``simulator/c2b.py``),
    whose form posts to ``/phone/c2b``."""
    app = FastAPI(title="pesaswitch sandbox phone", openapi_url=None, docs_url=None)

    def page_url(request: Request, msisdn: str | None, notice: str | None = None) -> str:
        path = request.url_for("phone_page").path
        query = {k: v for k, v in (("msisdn", msisdn), ("notice", notice)) if v}
        return f"{path}?{urlencode(query)}" if query else path

    async def phone_page(request: Request) -> Response:
        raw = request.query_params.get("msisdn", "")
        msisdn = _normalize(raw)
        invalid = bool(raw.strip()) and msisdn is None
        notice_key = request.query_params.get("notice", "")
        held = desk.held_for(msisdn) if msisdn else []
        context = {
            "interactive": desk.interactive,
            "msisdn": msisdn,
            "typed": raw,
            "invalid": invalid,
            "notice": NOTICES.get(notice_key),
            "notice_key": notice_key if notice_key in NOTICES else None,
            "page": request.url_for("phone_page").path,
            "refresh": page_url(request, msisdn),
            "held": [(p, int(desk.seconds_left(p))) for p in held],
            "recent": [(p, describe(p.result_code, for_query=False))
                       for p in (desk.recent_for(msisdn) if msisdn else [])],
            "timeout": desk.settings.timeout,
            "c2b_recent": c2b_recent(msisdn) if c2b_recent and msisdn else [],
        }  # fmt: skip
        return TEMPLATES.TemplateResponse(
            request, "phone.html", context, status_code=400 if invalid else 200
        )

    async def act_form(request: Request, checkout_request_id: str, action: str) -> Response:
        chosen = _action(action)
        if chosen is None:
            return Response("Unknown action", status_code=404, media_type="text/plain")
        form = await request.form()
        pin = form.get("pin")
        fallback = _normalize(str(form.get("msisdn") or ""))
        try:
            push = desk.act(checkout_request_id, chosen, pin if isinstance(pin, str) else None)
        except PromptAlreadyEnded as exc:
            return RedirectResponse(page_url(request, exc.push.msisdn, exc.code), 303)
        except PromptNotFound as exc:
            return RedirectResponse(page_url(request, fallback, exc.code), 303)
        except PromptError as exc:
            held = desk.get(checkout_request_id)
            msisdn = held.msisdn if held is not None else fallback
            return RedirectResponse(page_url(request, msisdn, exc.code), 303)
        assert push.ended_by is not None
        return RedirectResponse(page_url(request, push.msisdn, push.ended_by.value), 303)

    async def list_prompts(request: Request) -> JSONResponse:
        raw = request.query_params.get("msisdn", "")
        msisdn = _normalize(raw)
        if msisdn is None:
            return _error(400, "invalid_msisdn", "Pass ?msisdn= a Kenyan mobile number")
        return JSONResponse(
            {
                "mode": desk.settings.mode.value,
                "msisdn": msisdn,
                "waiting": [prompt_json(p, desk.seconds_left(p)) for p in desk.held_for(msisdn)],
                "recent": [prompt_json(p) for p in desk.recent_for(msisdn)],
            }
        )

    async def act_json(request: Request, checkout_request_id: str, action: str) -> JSONResponse:
        chosen = _action(action)
        if chosen is None:
            return _error(404, "unknown_action", "The action is one of pin, cancel, timeout")
        pin: Any = None
        if chosen is PromptAction.PIN:
            try:
                body = json.loads(await request.body() or b"null")
            except ValueError:
                return _error(400, "invalid_json", "The body is not JSON")
            pin = body.get("pin") if isinstance(body, dict) else None
            if not isinstance(pin, str):
                return _error(422, "pin_required", 'Send {"pin": "…"} as a string')
        try:
            push = desk.act(checkout_request_id, chosen, pin)
        except PromptError as exc:
            return _error(exc.status_code, exc.code, exc.message)
        return JSONResponse({"prompt": prompt_json(push)})

    app.add_api_route("/phone", phone_page, methods=["GET"], name="phone_page")
    app.add_api_route("/phone/prompts/{checkout_request_id}/{action}", act_form, methods=["POST"])
    app.add_api_route("/phone/api/prompts", list_prompts, methods=["GET"])
    app.add_api_route(
        "/phone/api/prompts/{checkout_request_id}/{action}", act_json, methods=["POST"]
    )
    return app
