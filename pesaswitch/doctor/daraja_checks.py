"""The checks that talk to Daraja (or the simulator): mode, token, password, clock, and
the certificate the SecurityCredential is encrypted with.

None of them sends money or a prompt: an OAuth request, an STK Query for a
CheckoutRequestID that cannot exist, and (simulator only) a certificate download.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, timedelta
from pathlib import Path

import httpx
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa

from pesaswitch.config import DARAJA_BASE_URLS, DarajaMode
from pesaswitch.daraja import diagnostics
from pesaswitch.daraja.b2c import security_credential
from pesaswitch.daraja.client import DarajaApp
from pesaswitch.daraja.diagnostics import PasswordVerdict, Unreachable
from pesaswitch.doctor.context import DoctorContext
from pesaswitch.doctor.report import CheckResult, failed, mask, passed, skipped, warned
from pesaswitch.kit.clock import utcnow

# Standard Webhooks receivers refuse a webhook-timestamp more than five minutes from
# their own clock (standard-webhooks spec, "Verifying webhooks"; the reference library's
# tolerance). A gateway clock that far off has every webhook rejected.
WEBHOOK_TOLERANCE_SECONDS = 300
# Well inside the tolerance, but a clock drifting this far is not being kept in sync.
CLOCK_WARN_SECONDS = 30
CERTIFICATE_WARN_DAYS = 30
# Safaricom's published sandbox initiator (daraja.md §8): it cannot work in production.
SANDBOX_INITIATOR = "testapi"


def check_daraja_mode(ctx: DoctorContext) -> CheckResult:
    settings = ctx.settings
    url = settings.effective_daraja_base_url
    if settings.daraja_mode is DarajaMode.SIMULATOR:
        where = "the embedded simulator" if settings.embedded_simulator else f"a simulator at {url}"
        return warned(
            "daraja_mode",
            f"{where}, not Safaricom: set PESASWITCH_DARAJA_MODE=sandbox, later production",
        )
    overridden = url != DARAJA_BASE_URLS[settings.daraja_mode.value]
    note = " (PESASWITCH_DARAJA_BASE_URL overrides Safaricom's address)" if overridden else ""
    money = "real money" if settings.daraja_mode is DarajaMode.PRODUCTION else "no real money"
    return passed("daraja_mode", f"{settings.daraja_mode.value} at {url}{note}: {money}")


async def check_daraja_token(ctx: DoctorContext) -> CheckResult:
    settings = ctx.settings
    key = mask(settings.daraja_consumer_key)
    app = DarajaApp(settings.daraja_consumer_key, settings.daraja_consumer_secret)
    try:
        token, answer = await diagnostics.request_token(ctx.daraja_http, app)
    except Unreachable as exc:
        return failed("daraja_token", f"no answer from {settings.effective_daraja_base_url}: {exc}")
    ctx.token, ctx.token_answer = token, answer
    if token is not None:
        return passed("daraja_token", f"Daraja issued a token to consumer key {key}")
    if answer.error_code == "400.008.01":
        return failed(
            "daraja_token",
            f"Daraja refused consumer key {key} and its secret "
            f"({answer.error_code} {answer.error_message})",
            "check PESASWITCH_DARAJA_CONSUMER_KEY and _CONSUMER_SECRET, and that the app "
            f"belongs to {settings.daraja_mode.value} (sandbox and production apps differ)",
        )
    if answer.status == 400 and answer.body is None:
        return failed(
            "daraja_token",
            "HTTP 400 with an empty body, which is how production answers a sandbox app",
        )
    described = f"{answer.error_code} {answer.error_message}" if answer.error_code else "no token"
    return failed("daraja_token", f"HTTP {answer.status}: {described}")


async def check_stk_password(ctx: DoctorContext) -> CheckResult:
    settings = ctx.settings
    shortcode = settings.daraja_shortcode
    if ctx.token is None:
        return skipped("stk_password", "needs a Daraja token (see daraja_token)")
    try:
        answer = await diagnostics.query_unknown_checkout(
            ctx.daraja_http, token=ctx.token, shortcode=shortcode,
            passkey=settings.daraja_passkey,
        )  # fmt: skip
    except Unreachable as exc:
        return failed("stk_password", f"the STK Query got no answer: {exc}")
    said = f"{answer.error_code or f'HTTP {answer.status}'} {answer.error_message!r}"
    match diagnostics.judge_password(answer):
        case PasswordVerdict.VALID:
            return passed(
                "stk_password",
                f"shortcode {shortcode} and its passkey form a valid password (an STK Query "
                "for a made-up CheckoutRequestID got past the password to 'does not exist')",
            )
        case PasswordVerdict.WRONG:
            return failed(
                "stk_password",
                f"Daraja says the password is wrong for shortcode {shortcode} ({said})",
                "PESASWITCH_DARAJA_PASSKEY is not this shortcode's passkey: the sandbox "
                "passkey in production, another shortcode's, or stray whitespace",
            )
        case PasswordVerdict.UNKNOWN_SHORTCODE:
            return failed(
                "stk_password",
                f"Daraja does not know shortcode {shortcode} ({said})",
                "PESASWITCH_DARAJA_SHORTCODE must be the paybill or the till's HO/store "
                "number registered for M-Pesa Express in this environment",
            )
        case PasswordVerdict.REFUSED:
            return failed(
                "stk_password",
                f"Daraja refused the STK Query ({said}); does the app have M-Pesa Express?",
            )
        case PasswordVerdict.INCONCLUSIVE:
            return warned(
                "stk_password",
                f"Daraja's answer proves nothing either way ({said}); run the doctor again",
            )


def check_clock(ctx: DoctorContext) -> CheckResult:
    answer = ctx.token_answer
    if answer is None:
        return skipped("clock", "no answer from Daraja to compare with (see daraja_token)")
    measured = diagnostics.clock_skew(answer)
    if measured is None:
        if ctx.simulator is not None:
            return skipped("clock", "the embedded simulator's answers carry no Date header")
        return warned(
            "clock", "Daraja's answer had no Date header; check NTP (timedatectl) yourself"
        )
    skew, bound = measured
    direction = "ahead of" if skew > 0 else "behind"
    said = f"{abs(skew):.0f} s {direction} Daraja's (±{bound:.1f} s)"
    if abs(skew) - bound >= WEBHOOK_TOLERANCE_SECONDS:
        return failed(
            "clock",
            f"this clock is {said}",
            "webhook receivers refuse timestamps more than 5 minutes off (Standard "
            "Webhooks), so every webhook would be rejected: keep the clock synced by NTP",
        )
    if abs(skew) >= CLOCK_WARN_SECONDS:
        return warned("clock", f"this clock is {said}: within Standard Webhooks' 5 minutes")
    return passed("clock", f"within {abs(skew):.0f} s of Daraja's clock (±{bound:.1f} s)")


async def _certificate_bytes(ctx: DoctorContext) -> tuple[bytes, str] | CheckResult:
    settings = ctx.settings
    if settings.daraja_certificate_path:
        path = Path(settings.daraja_certificate_path)
        try:
            return await asyncio.to_thread(path.read_bytes), f"certificate {path}"
        except OSError as exc:
            return failed("certificate", f"cannot read {path}: {exc.strerror or exc}")
    if settings.daraja_mode is not DarajaMode.SIMULATOR:
        return warned(
            "certificate",
            "PESASWITCH_DARAJA_CERTIFICATE_PATH is not set: payouts (B2C), Transaction "
            "Status and Account Balance cannot be sent; collections are unaffected",
        )
    if ctx.simulator is not None:
        return ctx.simulator.certificate_pem, "the embedded simulator's certificate"
    try:
        response = await ctx.daraja_http.get("/simulator/certificate")
        response.raise_for_status()
    except httpx.HTTPError as exc:
        return failed("certificate", f"the simulator did not give its certificate: {exc}")
    return response.content, "the simulator's certificate"


async def check_certificate(ctx: DoctorContext) -> CheckResult:
    settings = ctx.settings
    found = await _certificate_bytes(ctx)
    if isinstance(found, CheckResult):
        return found
    data, source = found
    try:
        if b"-----BEGIN" in data:
            certificate = x509.load_pem_x509_certificate(data)
        else:
            certificate = x509.load_der_x509_certificate(data)
    except ValueError:
        return failed("certificate", f"{source} is not an X.509 certificate (PEM or DER)")
    public_key = certificate.public_key()
    if not isinstance(public_key, rsa.RSAPublicKey):
        return failed("certificate", f"{source} carries no RSA key; Daraja's certificates do")
    try:
        credential = security_credential(settings.daraja_initiator_password, data)
    except ValueError as exc:
        return failed("certificate", f"cannot encrypt with {source}: {exc}")
    now = utcnow().replace(tzinfo=UTC)
    until = certificate.not_valid_after_utc
    about = (
        f"{source} (RSA {public_key.key_size}, valid until {until:%Y-%m-%d}) "
        f"encrypts the initiator password into a SecurityCredential ({len(credential)} chars)"
    )
    # Daraja decrypts with its private key whatever the dates say, so dates only warn:
    # an expired file is most likely one Safaricom has since replaced.
    if until <= now:
        return warned(
            "certificate", about, f"it expired on {until:%Y-%m-%d}: download the current one"
        )
    if certificate.not_valid_before_utc > now:
        return warned(
            "certificate", about,
            f"it is not valid before {certificate.not_valid_before_utc:%Y-%m-%d}: is the "
            "clock right?",
        )  # fmt: skip
    if until - now < timedelta(days=CERTIFICATE_WARN_DAYS):
        return warned("certificate", about, "it expires within 30 days")
    if (
        settings.daraja_mode is DarajaMode.PRODUCTION
        and settings.daraja_initiator_name == SANDBOX_INITIATOR
    ):
        return warned(
            "certificate", about, "the initiator is Safaricom's sandbox 'testapi': set "
            "PESASWITCH_DARAJA_INITIATOR_NAME and _PASSWORD to your production API user",
        )  # fmt: skip
    return passed("certificate", about)
