"""Run every check in order and collect one report.

The order matters where a check reads what an earlier one found: the token (and the
``Date`` of its answer) before the password and the clock, the database before the
webhook endpoints and merchant credentials stored in it. A check that raises, or hangs
past its deadline, is reported as failed with the reason rather than ending the run.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

import structlog
from pydantic import ValidationError

from pesaswitch.config import Settings
from pesaswitch.doctor import daraja_checks, local_checks, url_checks
from pesaswitch.doctor.context import DoctorContext
from pesaswitch.doctor.merchant_checks import check_merchant_credentials
from pesaswitch.doctor.probe import check_callback_probe
from pesaswitch.doctor.report import CheckResult, Report, failed, scrub
from pesaswitch.kit.logging import configure_logging

Check = Callable[[DoctorContext], CheckResult | Awaitable[CheckResult]]

# (name, check) in the order they run and print.
CHECKS: tuple[tuple[str, Check], ...] = (
    ("daraja_mode", daraja_checks.check_daraja_mode),
    ("daraja_token", daraja_checks.check_daraja_token),
    ("stk_password", daraja_checks.check_stk_password),
    ("clock", daraja_checks.check_clock),
    ("certificate", daraja_checks.check_certificate),
    ("public_url", url_checks.check_public_url),
    ("callback_probe", check_callback_probe),
    ("database", local_checks.check_database),
    ("secret_key", local_checks.check_secret_key),
    ("webhook_endpoints", url_checks.check_webhook_endpoints),
    ("merchant_credentials", check_merchant_credentials),
)
CHECK_NAMES = tuple(name for name, _ in CHECKS)


def _target(settings: Settings) -> str:
    if settings.embedded_simulator:
        return "the embedded simulator"
    return f"{settings.daraja_mode.value} at {settings.effective_daraja_base_url}"


def secret_values(settings: Settings) -> list[str]:
    """Every configured value that must never appear in the doctor's output."""
    values = [
        settings.secret_key,
        settings.daraja_consumer_secret,
        settings.daraja_passkey,
        settings.daraja_initiator_password,
    ]
    # The consumer key is half a credential: shown masked, never whole.
    values.append(settings.daraja_consumer_key)
    password = urlsplit(settings.database_url).password
    if password:
        values.append(password)
    return values


async def _run_one(name: str, check: Check, ctx: DoctorContext, deadline: float) -> CheckResult:
    async def call() -> CheckResult:
        result = check(ctx)
        return await result if isinstance(result, Awaitable) else result

    try:
        return await asyncio.wait_for(call(), deadline)
    except TimeoutError:
        return failed(name, f"no result within {deadline:.0f} s")
    except Exception as exc:  # a broken check must not hide the others
        return failed(name, f"the check itself failed: {type(exc).__name__}: {exc}")


async def run_doctor(settings: Settings, *, probe: bool = False) -> Report:
    ctx = DoctorContext.open(settings, probe=probe)
    # Each check makes at most two Daraja requests, each bounded by the client's timeout.
    deadline = 2 * settings.daraja_timeout + 15.0
    report = Report(_target(settings))
    try:
        for name, check in CHECKS:
            report.results.append(await _run_one(name, check, ctx, deadline))
    finally:
        await ctx.aclose()
    return scrub(report, secret_values(settings))


def settings_refused(error: ValidationError) -> Report:
    """The report when the settings do not even load (e.g. the placeholder secret key
    outside simulator mode). pydantic's own text quotes the input; this never does."""
    reasons = []
    for item in error.errors(include_input=False, include_url=False):
        field = ".".join(str(part) for part in item["loc"])
        name = f"PESASWITCH_{field.upper()}: " if field else ""
        reasons.append(f"{name}{item['msg'].removeprefix('Value error, ')}")
    return Report("(settings refused)", [failed("settings", "the settings do not load", *reasons)])


def load_and_run(*, probe: bool) -> Report:
    try:
        settings = Settings()
    except ValidationError as exc:
        return settings_refused(exc)
    configure_logging(settings.log_level, json=settings.log_json)
    # The report is the output (and with --json, parsed): log lines go to stderr.
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(file=sys.stderr))
    return asyncio.run(run_doctor(settings, probe=probe))
