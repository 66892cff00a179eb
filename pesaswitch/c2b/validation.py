"""Validation: the merchant's rules first, then (optionally) the merchant's own URL,
asked within Daraja's time budget. Whatever cannot decide in time falls back to the
channel's default, as Daraja itself would with the registered ResponseType.

The merchant's URL passes the SSRF guard and is called on the address just checked
(``webhooks.sending.post_pinned``, as every webhook is), signed like a webhook with the
account's callback secret.
"""

from __future__ import annotations

import asyncio
import json

import httpx
import structlog

from pesaswitch.accounts.models import Account, Environment
from pesaswitch.c2b.models import C2BRegistration
from pesaswitch.c2b.service import fallback_verdict, mask_name, rule_verdict
from pesaswitch.daraja.c2b import C2BNotice, ValidationCode
from pesaswitch.db import transaction
from pesaswitch.kit.ids import new_id
from pesaswitch.runtime import Runtime
from pesaswitch.webhooks import service as webhooks
from pesaswitch.webhooks.sending import post_pinned
from pesaswitch.webhooks.service import allow_private_urls
from pesaswitch.webhooks.signing import sign_headers

log = structlog.get_logger(__name__)

# The merchant names a reason; Daraja only knows these codes.
REASONS = {
    "msisdn": ValidationCode.INVALID_MSISDN,
    "account": ValidationCode.INVALID_ACCOUNT,
    "amount": ValidationCode.INVALID_AMOUNT,
    "kyc": ValidationCode.INVALID_KYC,
    "shortcode": ValidationCode.INVALID_SHORTCODE,
    "other": ValidationCode.OTHER,
}


def merchant_answer(status: int | None, text: str | None) -> ValidationCode | None:
    """``{"accept": true}`` or ``{"accept": false, "reason": "account"}`` from a 2xx;
    None (undecided) for anything else."""
    if status is None or not 200 <= status < 300 or not text:
        return None
    try:
        body = json.loads(text)
    except ValueError:
        return None
    if not isinstance(body, dict) or not isinstance(body.get("accept"), bool):
        return None
    if body["accept"]:
        return ValidationCode.ACCEPTED
    return REASONS.get(str(body.get("reason", "other")), ValidationCode.OTHER)


async def ask_merchant(
    runtime: Runtime, registration: C2BRegistration, notice: C2BNotice
) -> ValidationCode | None:
    assert registration.validation_url is not None
    settings = runtime.settings
    async with transaction(runtime.sessionmaker) as session:
        secret = await webhooks.callback_secret(
            session, secret_key=settings.secret_key, account_id=registration.account_id
        )
        account = await session.get(Account, registration.account_id)
        assert account is not None
        environment = Environment(account.environment)
    body = json.dumps(
        {
            "type": "c2b.validation",
            "data": {
                "channel_id": registration.channel_id, "shortcode": notice.shortcode,
                "trans_id": notice.trans_id or None, "amount": notice.amount,
                "currency": "KES", "bill_ref": notice.bill_ref, "msisdn": notice.msisdn,
                "payer_name": mask_name(notice.first_name, notice.middle_name, notice.last_name),
                "transaction_type": notice.transaction_type,
            },
        },
        separators=(",", ":"),
    )  # fmt: skip
    headers = sign_headers(webhook_id=new_id("msg"), body=body, secrets_=[secret])
    budget = settings.c2b_validation_timeout
    try:
        async with asyncio.timeout(budget), httpx.AsyncClient(timeout=budget) as http:
            result = await post_pinned(
                http, registration.validation_url, headers=headers, body=body,
                allow_private=allow_private_urls(environment, settings.sandbox_allow_private_urls),
                require_https=environment is Environment.LIVE,
            )  # fmt: skip
    except TimeoutError:
        log.info("c2b.validation.merchant_timeout", channel_id=registration.channel_id)
        return None
    answer = merchant_answer(result.status_code, result.body)
    if answer is None:
        log.info("c2b.validation.merchant_undecided", channel_id=registration.channel_id,
                 status=result.status_code, error=result.error)  # fmt: skip
    return answer


async def decide(
    runtime: Runtime, registration: C2BRegistration, notice: C2BNotice
) -> ValidationCode:
    if not registration.validation_enabled:
        return ValidationCode.ACCEPTED
    verdict = rule_verdict(registration, notice)
    if verdict is not ValidationCode.ACCEPTED or registration.validation_url is None:
        return verdict
    answer = await ask_merchant(runtime, registration, notice)
    return answer if answer is not None else fallback_verdict(registration)
