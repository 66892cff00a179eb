"""Verify a webhook from pesaswitch and read it as a typed event.

The gateway signs with Standard Webhooks (https://www.standardwebhooks.com):

    webhook-id:        evt_…, the same on every retry (deduplicate on it)
    webhook-timestamp: Unix seconds of this attempt
    webhook-signature: v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}"> [v1,<…> …]

keyed with the endpoint's ``whsec_<base64>`` secret. During a rotation the gateway sends
one signature per valid secret, so either secret verifies.

    event = webhooks.verify(request_body, request_headers, secret)

Pass the body exactly as received (bytes): parsing and re-serialising JSON changes it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from collections.abc import Mapping

from pesaswitch_sdk._errors import PesaswitchError
from pesaswitch_sdk._events import Event, construct_event

SECRET_PREFIX = "whsec_"
# Standard Webhooks' recommended window; a captured delivery replayed later is refused.
DEFAULT_TOLERANCE = 300.0

__all__ = ["DEFAULT_TOLERANCE", "WebhookVerificationError", "sign", "verify"]


class WebhookVerificationError(PesaswitchError):
    """Missing headers, a bad signature, or a timestamp outside the tolerance."""


def _secret_bytes(secret: str) -> bytes:
    encoded = secret.removeprefix(SECRET_PREFIX)
    try:
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except binascii.Error as error:
        raise ValueError("A webhook secret is whsec_ followed by base64") from error
    if not key:
        raise ValueError("The webhook secret is empty")
    return key


def sign(secret: str, *, webhook_id: str, timestamp: int, body: bytes | str) -> str:
    """The ``v1,<base64>`` signature the gateway sends: for tests of your own receiver."""
    data = body.encode() if isinstance(body, str) else body
    message = f"{webhook_id}.{timestamp}.".encode() + data
    digest = hmac.new(_secret_bytes(secret), message, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def verify(
    payload: bytes | str,
    headers: Mapping[str, str],
    secret: str,
    *,
    tolerance: float = DEFAULT_TOLERANCE,
    now: float | None = None,
) -> Event:
    """The typed event (``PaymentEvent``, ``PayoutEvent`` or ``UnknownEvent``) when
    ``payload`` carries a valid signature by ``secret`` made within ``tolerance`` seconds of
    ``now`` (default: the current time); raises ``WebhookVerificationError`` otherwise."""
    lowered = {name.lower(): value for name, value in headers.items()}
    webhook_id = lowered.get("webhook-id")
    timestamp_header = lowered.get("webhook-timestamp")
    signatures = lowered.get("webhook-signature")
    if not (webhook_id and timestamp_header and signatures):
        raise WebhookVerificationError(
            "Missing webhook-id, webhook-timestamp or webhook-signature header"
        )
    try:
        timestamp = int(timestamp_header)
    except ValueError as error:
        raise WebhookVerificationError("webhook-timestamp is not a Unix time") from error
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance:
        raise WebhookVerificationError(
            f"webhook-timestamp is {current - timestamp:+.0f} s from now, beyond {tolerance:g} s"
        )
    data = payload.encode() if isinstance(payload, str) else payload
    expected = sign(secret, webhook_id=webhook_id, timestamp=timestamp, body=data)
    # Space-separated "version,signature" pairs; versions other than v1 (e.g. v1a,
    # ed25519) are not ours to check and are skipped, not failed.
    offered = [s for s in signatures.split(" ") if s.startswith("v1,")]
    if not any(hmac.compare_digest(expected, candidate) for candidate in offered):
        raise WebhookVerificationError("No webhook-signature matches this secret")
    try:
        body = json.loads(data)
    except ValueError as error:
        raise WebhookVerificationError("The signed payload is not JSON") from error
    if not isinstance(body, dict):
        raise WebhookVerificationError("The signed payload is not a JSON object")
    return construct_event(body)
