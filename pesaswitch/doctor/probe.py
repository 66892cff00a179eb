"""``doctor --probe``: does PESASWITCH_PUBLIC_URL reach *this* gateway's callback path?

The gateway answers ``GET /daraja/doctor/<nonce>`` with an HMAC of the nonce under a key
derived from PESASWITCH_SECRET_KEY. The doctor sends a fresh nonce to the public URL
and recomputes the HMAC locally: a match proves the answer came from a gateway holding
the same secret key, through whatever proxy, DNS and TLS stand in front of it, on the
same ``/daraja/`` prefix Daraja's callbacks use. A health page cannot prove that: any
old deployment, or a proxy's own page, answers ``/healthz`` too.

The route reveals nothing: the key is derived under a label of its own (HKDF), so its
HMACs say nothing about API-key hashes or encrypted secrets, and a nonce is required.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from functools import lru_cache
from typing import TYPE_CHECKING

import httpx
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from fastapi import APIRouter
from fastapi.responses import JSONResponse

from pesaswitch.doctor.report import CheckResult, failed, passed, skipped
from pesaswitch.errors import NotFound
from pesaswitch.runtime import RuntimeDep

if TYPE_CHECKING:  # the app imports this router; the context imports the app
    from pesaswitch.doctor.context import DoctorContext

PROBE_PATH = "/daraja/doctor"
SERVICE_NAME = "pesaswitch"
NONCE = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
PROBE_TIMEOUT = 10.0

router = APIRouter(prefix=PROBE_PATH, include_in_schema=False)


@lru_cache(maxsize=8)
def _probe_key(secret_key: str) -> bytes:
    return HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"pesaswitch doctor probe v1"
    ).derive(secret_key.encode())


def proof(secret_key: str, nonce: str) -> str:
    return hmac.new(_probe_key(secret_key), nonce.encode(), hashlib.sha256).hexdigest()


@router.get("/{nonce}")
async def answer_probe(nonce: str, runtime: RuntimeDep) -> JSONResponse:
    if not NONCE.match(nonce):
        raise NotFound("Unknown path")
    return JSONResponse(
        {"service": SERVICE_NAME, "proof": proof(runtime.settings.secret_key, nonce)},
        headers={"Cache-Control": "no-store"},  # a cached answer would prove nothing
    )


async def check_callback_probe(ctx: DoctorContext) -> CheckResult:
    base = ctx.settings.effective_public_url
    if not ctx.probe:
        return skipped("callback_probe", f"not asked for: --probe fetches {base}{PROBE_PATH}/…")
    nonce = secrets.token_urlsafe(24)
    url = f"{base}{PROBE_PATH}/{nonce}"
    started = time.monotonic()
    try:
        # No redirects: Daraja's callback is a POST, which a redirect does not carry over.
        async with httpx.AsyncClient(timeout=PROBE_TIMEOUT, follow_redirects=False) as http:
            response = await http.get(url)
    except httpx.HTTPError as exc:
        return failed("callback_probe", f"no answer from {base}: {type(exc).__name__}: {exc}")
    elapsed_ms = (time.monotonic() - started) * 1000
    if response.is_redirect:
        return failed(
            "callback_probe",
            f"{base} redirects to {response.headers.get('location', '?')}: set "
            "PESASWITCH_PUBLIC_URL to the final address",
        )
    if response.status_code != 200:
        hint = "does the proxy forward /daraja/ to the gateway?"
        if response.status_code == 403:
            hint = "is /daraja/ open only to Safaricom's addresses? then probe from one of them"
        return failed(
            "callback_probe", f"HTTP {response.status_code} from {base}{PROBE_PATH}/…: {hint}"
        )
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict) or body.get("service") != SERVICE_NAME:
        return failed("callback_probe", f"{base} answers, but not as a pesaswitch gateway")
    if not hmac.compare_digest(str(body.get("proof", "")), proof(ctx.settings.secret_key, nonce)):
        return failed(
            "callback_probe",
            f"{base} reaches a pesaswitch gateway with another PESASWITCH_SECRET_KEY: "
            "a different installation, or this one runs with other settings",
        )
    return passed(
        "callback_probe",
        f"{base}{PROBE_PATH}/… reached this gateway in {elapsed_ms:.0f} ms "
        "(it proved it holds the same secret key)",
    )
