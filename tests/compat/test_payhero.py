"""The PayHero / UpesiPay dialect, in-process: auth, payments, status, channels, callbacks."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from sqlalchemy import update

from pesaswitch.accounts.models import ApiKey
from pesaswitch.accounts.service import revoke_api_key
from pesaswitch.compat.common import basic_credentials
from pesaswitch.db import transaction
from pesaswitch.kit.clock import utcnow
from pesaswitch.ledger.fees import Tariff
from tests.conftest import Gateway, Merchant, create_merchant
from tests.support.receiver import running_receiver

SETTINGS = {"sandbox_allow_private_urls": True, "webhook_interval": 0.05,
            "webhook_retry_schedule": "0.1"}  # fmt: skip


def basic(merchant: Merchant) -> dict[str, str]:
    creds = basic_credentials(merchant.secret_key_id, merchant.secret_key)
    return {"Authorization": creds["basic_auth_header"]}


def key_only(merchant: Merchant) -> dict[str, str]:
    token = base64.b64encode(f"{merchant.secret_key}:".encode()).decode()
    return {"Authorization": f"Basic {token}"}


async def setup(gateway_factory: Any, **overrides: Any) -> tuple[Gateway, Merchant]:
    gateway: Gateway = await gateway_factory(**{**SETTINGS, **overrides})
    return gateway, await create_merchant(gateway.settings)


async def pay(gateway: Gateway, merchant: Merchant, **fields: Any) -> Any:
    body = {"amount": 10, "phone_number": "0798766765", "channel_id": merchant.channel_id,
            "provider": "m-pesa", "external_reference": "INV-009", **fields}  # fmt: skip
    return await gateway.client.post("/api/v2/payments", headers=basic(merchant), json=body)


async def settled(gateway: Gateway, merchant: Merchant, reference: str) -> dict[str, Any]:
    """PayHero's status of ``reference`` (key-only Basic auth) once it is no longer
    QUEUED, or as it is after 10 s."""
    deadline = asyncio.get_running_loop().time() + 10
    while True:
        answer = await gateway.client.get(
            "/api/v2/transaction-status", headers=key_only(merchant),
            params={"reference": reference},
        )  # fmt: skip
        body: dict[str, Any] = answer.json()
        if body["status"] != "QUEUED" or asyncio.get_running_loop().time() > deadline:
            return body
        await asyncio.sleep(0.05)


async def test_initiate_answers_in_payheros_shape(gateway_factory: Any) -> None:
    # The prompt waits on the sandbox phone until the test enters the PIN, so the payment
    # is QUEUED for as long as the test reads it; and it settles by its callback, with
    # the receipt: no reconciler query (which knows no receipt) gets there first.
    gateway, merchant = await setup(
        gateway_factory, simulator_mode="interactive", reconcile_after=3600
    )
    response = await pay(gateway, merchant, customer_name="Jane")
    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"success", "status", "reference", "CheckoutRequestID"}
    assert body["success"] is True
    assert body["status"] == "QUEUED"
    assert len(body["reference"]) == 10
    assert body["CheckoutRequestID"].startswith("ws_CO_")

    status = await gateway.client.get(
        "/api/v2/transaction-status",
        headers=basic(merchant),
        params={"reference": body["reference"]},
    )
    assert status.json()["status"] == "QUEUED"
    pin = await gateway.client.post(
        f"/simulator/phone/prompts/{body['CheckoutRequestID']}/pin", data={"pin": "1234"}
    )
    assert pin.status_code == 303
    done = await settled(gateway, merchant, body["reference"])
    assert done["status"] == "SUCCESS"
    assert len(done["provider_reference"]) == 10
    assert done["external_reference"] == "INV-009"
    # The same payment is visible through the native API.
    native = await gateway.client.get(
        "/v1/payments", headers=merchant.auth, params={"reference": "INV-009"}
    )
    assert native.json()["data"][0]["gateway_reference"] == body["reference"]


@pytest.mark.parametrize(
    ("phone", "status", "code", "flag"),
    [
        ("0708374149", "Success", 0, True),
        ("0711001032", "Cancelled", 1032, False),
        ("0711000001", "Failed", 1, False),
    ],
)
async def test_callback_has_the_seeds_exact_shape(
    gateway_factory: Any, phone: str, status: str, code: int, flag: bool
) -> None:
    gateway, merchant = await setup(gateway_factory)
    with running_receiver() as receiver:
        created = await pay(gateway, merchant, phone_number=phone, callback_url=receiver.url)
        assert created.status_code == 201, created.text
        for _ in range(200):
            if receiver.received:
                break
            await asyncio.sleep(0.05)
        assert receiver.received, "no callback"
        callback = json.loads(receiver.received[0].body)
    assert set(callback) == {"forward_url", "response", "status"}
    assert callback["forward_url"] == ""
    assert callback["status"] is flag
    response = callback["response"]
    assert set(response) == {
        "Amount", "CheckoutRequestID", "ExternalReference", "MerchantRequestID",
        "MpesaReceiptNumber", "Phone", "ResultCode", "ResultDesc", "Status",
    }  # fmt: skip
    assert response["Amount"] == 10
    assert response["CheckoutRequestID"] == created.json()["CheckoutRequestID"]
    assert response["ExternalReference"] == "INV-009"
    assert response["Phone"] == "+254" + phone[1:]
    assert response["ResultCode"] == code
    assert isinstance(response["ResultDesc"], str)
    assert response["Status"] == status
    assert (len(response["MpesaReceiptNumber"]) == 10) is flag


async def test_basic_auth_forms(gateway_factory: Any) -> None:
    gateway, merchant = await setup(gateway_factory)
    other = await create_merchant(gateway.settings, "Other")
    assert (await pay(gateway, merchant)).status_code == 201
    mixed = basic_credentials(other.secret_key_id, merchant.secret_key)["basic_auth_header"]
    for headers in (
        {"Authorization": mixed},
        {"Authorization": "Basic !!notbase64"},
        {"Authorization": f"Bearer {merchant.secret_key}"},
        {},
    ):
        response = await gateway.client.post(
            "/api/v2/payments", headers=headers, json={"amount": 10, "phone_number": "0712345678"}
        )
        assert response.status_code == 401
        assert response.json()["success"] is False
        assert response.headers["content-type"] == "application/json"
    public = base64.b64encode(f"{merchant.public_key}:".encode()).decode()
    refused = await gateway.client.post(
        "/api/v2/payments", headers={"Authorization": f"Basic {public}"},
        json={"amount": 10, "phone_number": "0712345678"},
    )  # fmt: skip
    assert refused.status_code == 403


@pytest.mark.parametrize(
    "body",
    [
        {"amount": "ten", "phone_number": "0712345678"},
        {"amount": 10.5, "phone_number": "0712345678"},
        {"phone_number": "0712345678"},
        {"amount": 10, "phone_number": "0733123456"},
        {"amount": 0, "phone_number": "0712345678"},
        {"amount": 10, "phone_number": "0712345678", "provider": "sasapay"},
        {"amount": 10, "phone_number": "0712345678", "channel_id": 987654},
        {"amount": 10, "phone_number": "0712345678", "callback_url": "ftp://x"},
        [1, 2],
    ],
)
async def test_bad_bodies_get_vendor_errors(gateway_factory: Any, body: Any) -> None:
    gateway, merchant = await setup(gateway_factory)
    response = await gateway.client.post("/api/v2/payments", headers=basic(merchant), json=body)
    assert 400 <= response.status_code < 500, response.text
    answer = response.json()
    assert answer["success"] is False
    assert answer["message"]
    listed = await gateway.client.get("/v1/payments", headers=merchant.auth)
    assert listed.json()["data"] == []


async def test_malformed_json_gets_a_vendor_error(gateway_factory: Any) -> None:
    gateway, merchant = await setup(gateway_factory)
    response = await gateway.client.post(
        "/api/v2/payments", headers={**basic(merchant), "Content-Type": "application/json"},
        content=b"{nope",
    )  # fmt: skip
    assert response.status_code == 400
    assert response.json()["success"] is False


async def test_channels_wallet_transactions_and_withdraw(gateway_factory: Any) -> None:
    gateway, merchant = await setup(gateway_factory)
    headers = basic(merchant)
    registered = await gateway.client.post(
        "/api/v2/payment_channels", headers=headers,
        json={"channel_type": "till", "short_code": "5432101", "description": "Shop till"},
    )  # fmt: skip
    assert registered.status_code == 201
    till = registered.json()
    assert till["transaction_type"] == "CustomerBuyGoodsOnline"
    assert till["is_active"] is True
    channels = (await gateway.client.get("/api/v2/payment_channels", headers=headers)).json()
    assert {c["channel_type"] for c in channels["data"]} == {"wallet", "till"}
    bad = await gateway.client.post(
        "/api/v2/payment_channels", headers=headers, json={"channel_type": "x", "short_code": "1"}
    )
    assert bad.status_code == 422
    assert bad.json()["success"] is False

    created = [
        await pay(gateway, merchant, amount=20 + i, phone_number=f"071234560{i}") for i in range(3)
    ]
    assert [c.status_code for c in created] == [201] * 3
    created.append(await pay(gateway, merchant, phone_number="0711001032", amount=5))
    via_till = await pay(
        gateway, merchant, channel_id=till["id"], amount=7, phone_number="0712345699"
    )
    assert via_till.status_code == 201
    finals = [await settled(gateway, merchant, c.json()["reference"]) for c in created]
    assert [f["status"] for f in finals] == ["SUCCESS"] * 3 + ["FAILED"]  # PayHero: cancelled
    assert (await settled(gateway, merchant, via_till.json()["reference"]))["status"] == "SUCCESS"
    wallet = (await gateway.client.get("/api/v2/wallets", headers=headers)).json()
    # Only completed wallet-channel payments count, less the collection fee; the till's
    # money is the merchant's own.
    fee = Tariff().collection_fee
    expected = sum(a - fee(a) for a in (20, 21, 22))
    assert wallet["available_balance"] == expected
    channel = await gateway.client.get(
        f"/api/v2/payment_channels/{merchant.channel_id}", headers=headers
    )
    assert channel.json()["balance_plain"] == expected

    page = (
        await gateway.client.get("/api/v2/transactions", headers=headers, params={"per": 2})
    ).json()
    assert page["pagination"] == {"page": 1, "per": 2, "total": 5, "pages": 3}
    assert len(page["data"]) == 2
    last = (
        await gateway.client.get(
            "/api/v2/transactions", headers=headers, params={"per": 2, "page": 3}
        )
    ).json()
    assert [t["status"] for t in last["data"]] == ["SUCCESS"]

    # The wallet holds the completed wallet collections less fees; withdraw some of it.
    available = (await gateway.client.get("/v1/balance", headers=merchant.auth)).json()
    kes = next(a["amount"] for a in available["available"] if a["currency"] == "KES")
    withdraw = await gateway.client.post(
        "/api/v2/withdraw", headers=headers,
        json={"amount": 30, "phone_number": "254712345678", "network_code": "63902",
              "channel": "mobile"},
    )  # fmt: skip
    assert withdraw.status_code == 201, withdraw.text
    assert withdraw.json()["status"] == "QUEUED"
    too_much = await gateway.client.post(
        "/api/v2/withdraw", headers=headers,
        json={"amount": kes + 1, "phone_number": "254712345678", "channel": "mobile"},
    )  # fmt: skip
    assert too_much.status_code == 422
    assert too_much.json()["error_code"] == "insufficient_funds"
    bank = await gateway.client.post(
        "/api/v2/withdraw", headers=headers,
        json={"amount": 30, "phone_number": "254712345678", "channel": "bank"},
    )  # fmt: skip
    assert bank.status_code == 422


async def test_another_accounts_payment_is_not_found(gateway_factory: Any) -> None:
    gateway, merchant = await setup(gateway_factory)
    other = await create_merchant(gateway.settings, "Other")
    created = (await pay(gateway, merchant)).json()
    response = await gateway.client.get(
        "/api/v2/transaction-status",
        headers=basic(other),
        params={"reference": created["reference"]},
    )
    assert response.status_code == 404
    assert response.json()["success"] is False
    foreign_channel = await gateway.client.get(
        f"/api/v2/payment_channels/{merchant.channel_id}", headers=basic(other)
    )
    assert foreign_channel.status_code == 404


async def test_credential_id_pushes_with_the_merchants_own_app(gateway_factory: Any) -> None:
    from pesaswitch.accounts.service import add_credential
    from pesaswitch.db import transaction

    gateway, merchant = await setup(gateway_factory)
    other = await create_merchant(gateway.settings, "Other")
    runtime = gateway.app.state.runtime
    async with transaction(runtime.sessionmaker) as session:
        mine = await add_credential(
            session, secret_key=gateway.settings.secret_key, account_id=merchant.account_id,
            name="own app", shortcode="600999", consumer_key="own-key",
            consumer_secret="own-secret", passkey="own-passkey",
        )  # fmt: skip
        theirs = await add_credential(
            session, secret_key=gateway.settings.secret_key, account_id=other.account_id,
            name="theirs", shortcode="600998", consumer_key="k", consumer_secret="s",
            passkey="p",
        )  # fmt: skip
    # The simulator knows no passkey for 600999 but Safaricom's public sandbox one, so a
    # push signed with this credential's passkey is refused: proof the credential was used.
    used = await pay(gateway, merchant, credential_id=str(mine.id))
    assert used.status_code == 502
    assert used.json()["error_code"] == "daraja_credentials_rejected"
    foreign = await pay(gateway, merchant, credential_id=theirs.id)
    assert foreign.status_code == 404
    assert foreign.json()["success"] is False
    stored = await gateway.client.get("/v1/payments", headers=merchant.auth)
    assert [p["result_code"] for p in stored.json()["data"]] == ["500.001.1001"]


# The dialects share the native API's key cache: a key verified once is trusted for the
# cache's TTL without a lookup, and a revocation through this process evicts it at once.

Call = Callable[[Gateway, Merchant], Awaitable[httpx.Response]]


async def _payhero_channels(gateway: Gateway, merchant: Merchant) -> httpx.Response:
    return await gateway.client.get("/api/v2/payment_channels", headers=basic(merchant))


async def _paynexus_validate(gateway: Gateway, merchant: Merchant) -> httpx.Response:
    return await gateway.client.post(
        "/api/mpesa/validate-phone", headers={"X-API-Key": merchant.secret_key},
        json={"phone": "0712345678"},
    )  # fmt: skip


DIALECTS = pytest.mark.parametrize(
    "call", [_payhero_channels, _paynexus_validate], ids=["payhero", "paynexus"]
)


@DIALECTS
@pytest.mark.parametrize(
    ("cache_seconds", "after_revocation"),
    [(300, 200), (0, 401)],
    ids=["cached-within-ttl", "no-cache-looks-up-every-time"],
)
async def test_revocation_by_another_process_waits_for_the_cache_ttl(
    gateway_factory: Callable[..., Any], call: Call, cache_seconds: int, after_revocation: int
) -> None:
    gateway: Gateway = await gateway_factory(api_key_cache_seconds=cache_seconds)
    merchant = await create_merchant(gateway.settings)
    assert (await call(gateway, merchant)).status_code == 200
    # Revoked by another process (a plain UPDATE this one never hears of): a cached
    # verification still answers, which a lookup per request would not.
    async with transaction(gateway.app.state.runtime.sessionmaker) as session:
        await session.execute(
            update(ApiKey).where(ApiKey.id == merchant.secret_key_id).values(revoked_at=utcnow())
        )
    assert (await call(gateway, merchant)).status_code == after_revocation


@DIALECTS
async def test_revoking_in_this_process_is_immediate_despite_the_cache(
    gateway_factory: Callable[..., Any], call: Call
) -> None:
    gateway: Gateway = await gateway_factory(api_key_cache_seconds=300)
    merchant = await create_merchant(gateway.settings)
    assert (await call(gateway, merchant)).status_code == 200
    async with transaction(gateway.app.state.runtime.sessionmaker) as session:
        await revoke_api_key(session, key_id=merchant.secret_key_id)
    assert (await call(gateway, merchant)).status_code == 401
