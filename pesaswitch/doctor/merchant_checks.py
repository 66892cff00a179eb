"""The merchants' own Daraja apps (``pesaswitch credentials add``): each stored credential
must decrypt with this PESASWITCH_SECRET_KEY, get a token, and form a valid password
for its shortcode, the same three questions the gateway's own app is asked.

A secret key changed since the credentials were stored shows up here first: every one
of them stops decrypting, and every push on those channels would fail.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from sqlalchemy import select

from pesaswitch.accounts.models import Credential
from pesaswitch.daraja import diagnostics
from pesaswitch.daraja.client import DarajaApp
from pesaswitch.daraja.diagnostics import PasswordVerdict, Unreachable
from pesaswitch.db import create_sessionmaker
from pesaswitch.doctor.context import DoctorContext
from pesaswitch.doctor.report import CheckResult, failed, mask, passed, skipped, warned
from pesaswitch.errors import PesaswitchError
from pesaswitch.kit import crypto

# Two Daraja requests per credential; a handful at once keeps clear of Daraja's
# unpublished rate limits (daraja.md §8) while a long list still finishes.
CREDENTIAL_CONCURRENCY = 4


@dataclass(frozen=True, slots=True)
class _Verdict:
    line: str
    ok: bool
    inconclusive: bool = False


async def _judge(ctx: DoctorContext, credential: Credential) -> _Verdict:
    key = ctx.settings.secret_key
    label = (
        f"credential {credential.id} ({credential.account_id}, shortcode {credential.shortcode})"
    )
    try:
        app = DarajaApp(
            crypto.decrypt(key, credential.consumer_key_enc),
            crypto.decrypt(key, credential.consumer_secret_enc),
        )
        passkey = crypto.decrypt(key, credential.passkey_enc)
    except PesaswitchError:
        return _Verdict(f"{label}: cannot be decrypted with this PESASWITCH_SECRET_KEY", ok=False)
    try:
        token, answer = await diagnostics.request_token(ctx.daraja_http, app)
        if token is None:
            said = f"{answer.error_code or f'HTTP {answer.status}'} {answer.error_message}"
            return _Verdict(
                f"{label}: Daraja refused consumer key {mask(app.consumer_key)} ({said.strip()})",
                ok=False,
            )
        query = await diagnostics.query_unknown_checkout(
            ctx.daraja_http, token=token, shortcode=credential.shortcode, passkey=passkey
        )
    except Unreachable as exc:
        return _Verdict(f"{label}: no answer from Daraja: {exc}", ok=False)
    match diagnostics.judge_password(query):
        case PasswordVerdict.VALID:
            return _Verdict(f"{label}: token and password valid", ok=True)
        case PasswordVerdict.INCONCLUSIVE:
            return _Verdict(f"{label}: Daraja's answer proves nothing", ok=True, inconclusive=True)
        case _:
            said = f"{query.error_code} {query.error_message}"
            return _Verdict(f"{label}: the password is refused ({said})", ok=False)


async def check_merchant_credentials(ctx: DoctorContext) -> CheckResult:
    if not ctx.database_at_head:
        return skipped("merchant_credentials", "needs the database at head (see database)")
    async with create_sessionmaker(ctx.engine)() as session:
        credentials = list(
            await session.scalars(select(Credential).order_by(Credential.account_id, Credential.id))
        )
    if not credentials:
        return passed("merchant_credentials", "no merchant Daraja apps stored")
    limit = asyncio.Semaphore(CREDENTIAL_CONCURRENCY)

    async def judge(credential: Credential) -> _Verdict:
        async with limit:
            return await _judge(ctx, credential)

    verdicts = await asyncio.gather(*(judge(c) for c in credentials))
    bad = [v.line for v in verdicts if not v.ok]
    unsure = [v.line for v in verdicts if v.inconclusive]
    noun = "app" if len(credentials) == 1 else "apps"
    if bad:
        return failed(
            "merchant_credentials",
            f"{len(bad)} of {len(credentials)} merchant Daraja {noun} would fail every push",
            *bad,
            *unsure,
        )
    if unsure:
        return warned(
            "merchant_credentials", f"{len(unsure)} could not be confirmed; run again", *unsure
        )
    return passed(
        "merchant_credentials",
        f"{len(credentials)} merchant Daraja {noun}: each decrypts, gets a token and "
        "forms a valid password",
    )
