"""The Node and PHP verifiers the webhooks page shows accept what pesaswitch signs and
refuse a tampered body, a wrong secret and a stale timestamp."""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from pesaswitch.webhooks.signing import new_secret, sign_headers

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
VERIFIERS = {"node": ["node", str(EXAMPLES / "verify_webhook.js")],
             "php": ["php", str(EXAMPLES / "verify_webhook.php")]}  # fmt: skip


def run(
    verifier: str, body: str, headers: dict[str, str], secret: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        VERIFIERS[verifier],
        input=json.dumps({"body": body, "headers": headers, "secret": secret}),
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip


@pytest.mark.parametrize("verifier", sorted(VERIFIERS))
def test_a_signed_event_verifies_and_a_forged_one_does_not(verifier: str) -> None:
    secret, old = new_secret(), new_secret()
    event = {"id": "evt_1", "type": "payment.completed", "data": {"id": "pay_1"}}
    body = json.dumps(event)
    # Signed with the current and a rotated-out secret, as during a rotation.
    headers = sign_headers(webhook_id="evt_1", body=body, secrets_=[old, secret])
    accepted = run(verifier, body, headers, secret)
    assert accepted.returncode == 0, accepted.stderr
    assert json.loads(accepted.stdout) == event

    assert run(verifier, body.replace("pay_1", "pay_2"), headers, secret).returncode == 1
    assert run(verifier, body, headers, new_secret()).returncode == 1
    stale = sign_headers(
        webhook_id="evt_1", body=body, secrets_=[secret],
        now=datetime.now(UTC) - timedelta(minutes=10),
    )  # fmt: skip
    refused = run(verifier, body, stale, secret)
    assert refused.returncode == 1
    assert "timestamp" in refused.stderr
