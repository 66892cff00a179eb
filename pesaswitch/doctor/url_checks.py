"""The checks on addresses: PESASWITCH_PUBLIC_URL (where Daraja calls back) and every
account's webhook endpoints, both through the SSRF guard the gateway itself applies
(``webhooks/ssrf.py``): decided on the resolved addresses, never on the host string.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from urllib.parse import urlsplit

from sqlalchemy import select

from pesaswitch.accounts.models import Account, Environment
from pesaswitch.db import create_sessionmaker
from pesaswitch.doctor.context import DoctorContext
from pesaswitch.doctor.report import CheckResult, failed, passed, skipped, warned
from pesaswitch.webhooks.models import WebhookEndpoint
from pesaswitch.webhooks.service import allow_private_urls
from pesaswitch.webhooks.ssrf import Target, UnsafeUrl, check_url

# A resolver that does not answer in this long counts as "cannot be resolved".
RESOLVE_TIMEOUT = 10.0
# Endpoints resolved at once: enough to finish thousands quickly, few enough for any DNS.
RESOLVE_CONCURRENCY = 16
# Daraja's docs advise against these in callback URLs; tunnels are blocked (daraja.md §2).
DISCOURAGED_WORDS = ("mpesa", "m-pesa", "safaricom", "sql", "exec", "cmd", "query")
TUNNEL_HOSTS = ("ngrok", "mockbin", "requestbin")


async def _guard(url: str, *, allow_private: bool, require_https: bool) -> Target | str:
    """What the URL resolved to when it passes, else the guard's reason (which names
    only the host, never the path: a path can carry a token)."""
    try:
        return await asyncio.wait_for(
            check_url(
                url, allow_private=allow_private, require_https=require_https,
                must_resolve=not allow_private,
            ),
            RESOLVE_TIMEOUT,
        )  # fmt: skip
    except UnsafeUrl as exc:
        return exc.detail
    except TimeoutError:
        return f"DNS gave no answer for {urlsplit(url).hostname} within {RESOLVE_TIMEOUT:.0f} s"


def _hints(url: str) -> list[str]:
    parts = urlsplit(url)
    lowered = url.lower()
    hints = [
        f"Daraja's docs advise against {word!r} in callback URLs"
        for word in DISCOURAGED_WORDS
        if word in lowered
    ]
    host = parts.netloc.rsplit("@", 1)[-1]
    if any(tunnel in host.lower() for tunnel in TUNNEL_HOSTS):
        hints.append("Daraja blocks tunnel hosts such as ngrok")
    if host != host.lower():
        hints.append("an uppercase host has been refused by Daraja: write it in lowercase")
    return hints


async def check_public_url(ctx: DoctorContext) -> CheckResult:
    settings = ctx.settings
    if not settings.public_url:
        return failed(
            "public_url",
            "PESASWITCH_PUBLIC_URL is not set: callbacks would name "
            f"{settings.effective_public_url}, which Daraja cannot reach",
        )
    url = settings.effective_public_url
    scheme = urlsplit(url).scheme
    if scheme != "https":
        return failed("public_url", f"{url} is {scheme or 'not a URL'}: Daraja calls back https")
    target = await _guard(url, allow_private=False, require_https=True)
    if isinstance(target, str):
        return failed("public_url", f"{url}: {target}")
    summary = f"{url} resolves to public {', '.join(target.addresses)}"
    hints = _hints(url)
    if hints:
        return warned("public_url", summary, *hints)
    return passed("public_url", summary)


@dataclass(frozen=True, slots=True)
class _Endpoint:
    id: str
    account_id: str
    environment: Environment
    url: str
    enabled: bool


async def _endpoints(ctx: DoctorContext) -> list[_Endpoint]:
    async with create_sessionmaker(ctx.engine)() as session:
        rows = await session.execute(
            select(
                WebhookEndpoint.id, WebhookEndpoint.account_id, Account.environment,
                WebhookEndpoint.url, WebhookEndpoint.enabled,
            )
            .join(Account, Account.id == WebhookEndpoint.account_id)
            .where(WebhookEndpoint.deleted_at.is_(None))
            .order_by(WebhookEndpoint.account_id, WebhookEndpoint.id)
        )  # fmt: skip
        return [
            _Endpoint(row.id, row.account_id, Environment(row.environment), row.url, row.enabled)
            for row in rows
        ]


async def check_webhook_endpoints(ctx: DoctorContext) -> CheckResult:
    if not ctx.database_at_head:
        return skipped("webhook_endpoints", "needs the database at head (see database)")
    endpoints = await _endpoints(ctx)
    if not endpoints:
        return passed("webhook_endpoints", "no webhook endpoints registered yet")
    allow_sandbox_private = ctx.settings.sandbox_allow_private_urls
    limit = asyncio.Semaphore(RESOLVE_CONCURRENCY)

    async def judge(endpoint: _Endpoint) -> str | None:
        async with limit:
            # Exactly the rule deliveries apply (webhooks/sending.py).
            result = await _guard(
                endpoint.url,
                allow_private=allow_private_urls(endpoint.environment, allow_sandbox_private),
                require_https=endpoint.environment is Environment.LIVE,
            )
        return result if isinstance(result, str) else None

    reasons = await asyncio.gather(*(judge(e) for e in endpoints))
    live_bad: list[str] = []
    sandbox_bad: list[str] = []
    for endpoint, reason in zip(endpoints, reasons, strict=True):
        if reason is None:
            continue
        state = endpoint.environment.value + ("" if endpoint.enabled else ", disabled")
        line = f"{endpoint.id} ({endpoint.account_id}, {state}): {reason}"
        (live_bad if endpoint.environment is Environment.LIVE else sandbox_bad).append(line)
    live = sum(e.environment is Environment.LIVE for e in endpoints)
    noun = "endpoint" if len(endpoints) == 1 else "endpoints"
    counted = f"{len(endpoints)} {noun} ({live} live, {len(endpoints) - live} sandbox)"
    if live_bad:
        return failed(
            "webhook_endpoints",
            f"{len(live_bad)} of {live} live endpoints fail the SSRF guard; deliveries to "
            "them are refused",
            *live_bad, *sandbox_bad,
        )  # fmt: skip
    if sandbox_bad:
        return warned(
            "webhook_endpoints",
            f"{counted}: every live one passes; {len(sandbox_bad)} sandbox ones fail the guard",
            *sandbox_bad,
        )
    return passed("webhook_endpoints", f"{counted} pass the SSRF guard")
