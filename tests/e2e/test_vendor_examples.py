"""The vendors' documented examples (curl, PHP, Python requests) against running processes,
with only the base URL and the key changed. PHP comes from Debian (scripts/ensure-php.sh)."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tests.e2e.conftest import Stack, create_account_via_cli

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "vendors"


def run(args: list[str], env: dict[str, str]) -> str:
    done = subprocess.run(
        args, capture_output=True, text=True, env={**os.environ, **env}, timeout=60, check=True
    )
    return done.stdout


def curl(command: str, env: dict[str, str]) -> Any:
    return json.loads(run(["bash", "-c", command], env))


def basic_header(stack: Stack) -> str:
    # What `pesaswitch accounts create --json` printed as api_username / api_password.
    token = base64.b64encode(f"{stack.shop.secret_key_id}:{stack.shop.secret_key}".encode())
    return f"Basic {token.decode()}"


def test_payhero_php_example(stack: Stack) -> None:
    env = {
        "PAYHERO_BASE_URL": f"{stack.gateway_url}/api/v2",
        "PAYHERO_BASIC_AUTH": basic_header(stack),
        "PAYHERO_CHANNEL_ID": str(stack.shop.channel_id),
    }
    body = json.loads(run(["php", str(EXAMPLES / "payhero_stk.php")], env))
    assert body["success"] is True
    assert body["status"] == "QUEUED"
    assert isinstance(body["reference"], str)
    assert len(body["reference"]) == 10
    assert body["CheckoutRequestID"].startswith("ws_CO_")


def test_payhero_and_upesipay_curl(stack: Stack) -> None:
    env = {"BASE": stack.gateway_url, "AUTH": basic_header(stack)}
    payhero = curl(
        """curl -s -X POST "$BASE/api/v2/payments" -H 'Content-Type: application/json' \
        -H "Authorization: $AUTH" -d '{"amount": 11, "phone_number": "0798766700", \
        "channel_id": CHANNEL, "provider": "m-pesa", "external_reference": "INV-010", \
        "callback_url": "https://example.com/callback.php"}'""".replace(
            "CHANNEL", str(stack.shop.channel_id)
        ),
        env,
    )
    assert payhero["success"] is True
    status = curl(
        f"""curl -s "$BASE/api/v2/transaction-status?reference={payhero["reference"]}" \
        -H "Authorization: $AUTH" """,
        env,
    )
    assert status["status"] in ("QUEUED", "SUCCESS")
    # UpesiPay's sample number, 0787677677, is an Airtel line: M-Pesa cannot prompt it, and
    # the answer says so in the vendor's shape instead of queueing a doomed prompt.
    upesi = curl(
        """curl -s -X POST "$BASE/api/v2/payments" -H "Authorization: $AUTH" \
        -H 'Content-Type: application/json' -d '{"amount":100,"phone_number":"0787677677",\
        "channel_id":CHANNEL,"provider":"m-pesa","external_reference":"INV-009",\
        "customer_name":"John Doe","callback_url":""}'""".replace(
            "CHANNEL", str(stack.shop.channel_id)
        ),
        env,
    )
    assert upesi["success"] is False
    assert upesi["error_code"] == "unsupported_network"
    upesi_ok = curl(
        """curl -s -X POST "$BASE/api/v2/payments" -H "Authorization: $AUTH" \
        -H 'Content-Type: application/json' -d '{"amount":100,"phone_number":"0797677677",\
        "channel_id":CHANNEL,"provider":"m-pesa","external_reference":"INV-009",\
        "customer_name":"John Doe","callback_url":""}'""".replace(
            "CHANNEL", str(stack.shop.channel_id)
        ),
        env,
    )
    assert upesi_ok["status"] == "QUEUED"


def test_paynexus_curl_php_and_python(stack: Stack) -> None:
    # A live account: the sandbox cap (50 KES) would refuse the docs' 100 KES example.
    live = create_account_via_cli({**os.environ, **stack.base_env}, "Nexus shop", live=True)
    env = {
        "BASE": f"{stack.gateway_url}/api",
        "SK": live.secret_key,
        "PK": live.public_key,
        "PAYNEXUS_BASE_URL": f"{stack.gateway_url}/api",
        "PAYNEXUS_SECRET_KEY": live.secret_key,
    }
    assert live.secret_key.startswith("sk_live_")
    created = curl(
        """curl -s -X POST "$BASE/mpesa/payment/initiate" -H "X-API-Key: $SK" \
        -H "Content-Type: application/json" \
        -d '{"amount": 100, "phone": "0746990866", "description": "Order #12345"}'""",
        env,
    )
    assert created["success"] is True
    assert created["data"]["phone"] == "254746990866"
    assert created["data"]["status"] == "initiated"
    reference = created["data"]["reference"]
    checkout = created["data"]["checkout_request_id"]
    by_ref = curl(f'curl -s -X GET "$BASE/payments/{reference}" -H "X-API-Key: $PK"', env)
    assert by_ref["data"]["reference"] == reference
    by_checkout = curl(
        """curl -s -X POST "$BASE/payments/status-by-checkout-id" -H "X-API-Key: $PK" \
        -H "Content-Type: application/json" -d '{"checkout_request_id": "CHECKOUT"}'""".replace(
            "CHECKOUT", checkout
        ),
        env,
    )
    assert by_checkout["data"]["checkout_request_id"] == checkout
    phone = curl(
        """curl -s -X POST "$BASE/mpesa/validate-phone" -H "X-API-Key: $PK" \
        -H "Content-Type: application/json" -d '{"phone": "0746990866"}'""",
        env,
    )
    assert phone == {"success": True, "data": {"original": "0746990866",
                     "normalized": "254746990866", "valid": True, "provider": "mpesa"}}  # fmt: skip

    # Daraja refuses a second prompt while one is open on the number: let it settle first.
    time.sleep(0.6)
    php_reference = run(["php", str(EXAMPLES / "paynexus_stk.php")], env)
    assert len(php_reference) == 10
    assert php_reference != reference
    time.sleep(0.6)
    printed = run([sys.executable, str(EXAMPLES / "paynexus_stk.py")], env)
    answer = json.loads(printed)
    assert answer["success"] is True
    assert answer["data"]["amount"] == 30


def test_paynexus_php_example_fails_loudly_on_an_error(stack: Stack) -> None:
    env = {"PAYNEXUS_BASE_URL": f"{stack.gateway_url}/api", "PAYNEXUS_SECRET_KEY": "sk_test_nope"}
    done = subprocess.run(
        ["php", str(EXAMPLES / "paynexus_stk.php")],
        capture_output=True, text=True, env={**os.environ, **env}, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 1
    assert done.stdout == ""
    assert "PayNexus request failed" in done.stderr
    assert '"success":false' in done.stderr.replace(" ", "")


def test_the_sandbox_runs_the_paynexus_examples(stack: Stack) -> None:
    # Their amounts fit the sandbox cap (1-50 KES), so a sandbox key works as well.
    env = {
        "PAYNEXUS_BASE_URL": f"{stack.gateway_url}/api",
        "PAYNEXUS_SECRET_KEY": stack.shop.secret_key,
    }
    time.sleep(0.6)  # after the previous test's prompts to the same numbers
    assert len(run(["php", str(EXAMPLES / "paynexus_stk.php")], env)) == 10
    time.sleep(0.6)
    assert json.loads(run([sys.executable, str(EXAMPLES / "paynexus_stk.py")], env))["success"]
