"""Standard Webhooks signing (https://www.standardwebhooks.com), via the reference library.

Headers: ``webhook-id`` (the event id, the same on every retry), ``webhook-timestamp``
(fresh on every attempt) and ``webhook-signature: v1,<base64 HMAC-SHA256>`` — with one
signature per valid secret while a rotated-out secret is still honoured.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

# bandit B105: the prefix of every secret, not a secret.
SECRET_PREFIX = "whsec_"  # nosec B105

__all__ = ["WebhookVerificationError", "new_secret", "sign_headers", "verify"]


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def sign_headers(
    *, webhook_id: str, body: str, secrets_: Sequence[str], now: datetime | None = None
) -> dict[str, str]:
    moment = now or datetime.now(UTC)
    signatures = [Webhook(secret).sign(webhook_id, moment, body) for secret in secrets_]
    return {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(int(moment.timestamp())),
        "webhook-signature": " ".join(signatures),
        "content-type": "application/json",
        "user-agent": "pesaswitch-webhooks/1",
    }


def verify(payload: bytes | str, headers: Mapping[str, str], secret: str) -> Any:
    """Check a pesaswitch webhook in your receiver; returns the parsed event.

    Raises ``WebhookVerificationError`` when the signature does not match or the
    timestamp is more than five minutes away from now (replay protection).
    """
    return Webhook(secret).verify(payload, dict(headers))
