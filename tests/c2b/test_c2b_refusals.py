"""Bad input on every C2B endpoint: a clear 4xx (problem+json on our API, Daraja's own
shape where Daraja calls), recorded where Daraja called, and nothing else changed."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from pesaswitch.accounts import service as accounts
from pesaswitch.accounts.models import ChannelKind
from pesaswitch.c2b.models import C2BNotification
from pesaswitch.db import create_engine, create_sessionmaker, transaction
from tests.c2b.helpers import (
    add_channel,
    c2b_payments,
    fresh_shortcode,
    notifications,
    set_up_channel,
)
from tests.conftest import Gateway, Merchant, create_merchant, problem


def _notice(shortcode: str, **kw: Any) -> dict[str, Any]:
    body = {
        "TransactionType": "Pay Bill", "TransID": "UAB1C2D3E4", "TransTime": "20261203101010",
        "TransAmount": "10.00", "BusinessShortCode": shortcode, "BillRefNumber": "X",
        "InvoiceNumber": "", "OrgAccountBalance": "", "ThirdPartyTransID": "",
        "MSISDN": "2547 ***** 149", "FirstName": "A", "MiddleName": "", "LastName": "",
    }  # fmt: skip
    body.update(kw)
    return body


def _urls(gateway: Gateway, shortcode: str) -> tuple[str, str]:
    registration = gateway.app.state.runtime.simulator.c2b.registrations[shortcode]
    return registration.confirmation_url, registration.validation_url


async def _stored(gateway: Gateway, outcome: str) -> list[C2BNotification]:
    engine = create_engine(gateway.settings)
    try:
        async with create_sessionmaker(engine)() as session:
            rows = await session.scalars(
                select(C2BNotification).where(C2BNotification.outcome == outcome)
            )
            return list(rows)
    finally:
        await engine.dispose()


class TestDarajaSide:
    async def test_unknown_token_is_refused_and_recorded(self, gateway: Gateway) -> None:
        marker = "UNKNOWNTOK1"
        for kind in ("confirmation", "validation"):
            response = await gateway.client.post(
                f"/daraja/c2b/not-a-token/{kind}", json=_notice("600100", TransID=marker)
            )
            assert response.status_code == 404
            assert response.json() == {"ResultCode": "C2B00015", "ResultDesc": "Rejected"}
        stored = [n for n in await _stored(gateway, "unknown_token") if marker in n.body]
        assert {n.kind for n in stored} == {"confirmation", "validation"}
        assert all(n.account_id is None for n in stored)

    async def test_shortcode_the_token_does_not_own(
        self, gateway: Gateway, merchant: Merchant
    ) -> None:
        channel = await set_up_channel(gateway, merchant)
        confirmation_url, validation_url = _urls(gateway, channel["shortcode"])
        response = await gateway.client.post(confirmation_url, json=_notice("600999"))
        assert response.status_code == 400
        assert response.json()["ResultCode"] == "C2B00015"
        response = await gateway.client.post(validation_url, json=_notice("600999"))
        assert response.json() == {"ResultCode": "C2B00015", "ResultDesc": "Rejected"}
        assert await c2b_payments(gateway, merchant) == []
        outcomes = [n["outcome"] for n in await notifications(gateway, merchant)]
        assert outcomes == ["unknown_shortcode", "unknown_shortcode"]

    @pytest.mark.parametrize(
        "change",
        [
            {"TransAmount": "5.50"},
            {"TransAmount": "0"},
            {"TransAmount": "ten"},
            {"TransID": ""},
            {"TransID": "AB-12"},
            {"BusinessShortCode": None},
            {"BillRefNumber": "x" * 101},
            {"FirstName": {"nested": True}},
        ],
    )
    async def test_unreadable_confirmation(
        self, gateway: Gateway, merchant: Merchant, change: dict[str, Any]
    ) -> None:
        channel = await set_up_channel(gateway, merchant)
        confirmation_url, _ = _urls(gateway, channel["shortcode"])
        body = _notice(channel["shortcode"], **change)
        if change.get("BusinessShortCode", "") is None:
            del body["BusinessShortCode"]
        response = await gateway.client.post(confirmation_url, json=body)
        assert response.status_code == 400
        assert response.json() == {"ResultCode": "C2B00016", "ResultDesc": "Rejected"}
        assert await c2b_payments(gateway, merchant) == []
        assert [n["outcome"] for n in await notifications(gateway, merchant)] == ["invalid"]

    async def test_not_json(self, gateway: Gateway, merchant: Merchant) -> None:
        channel = await set_up_channel(gateway, merchant)
        confirmation_url, validation_url = _urls(gateway, channel["shortcode"])
        for url in (confirmation_url, validation_url):
            response = await gateway.client.post(url, content=b"{not json")
            assert response.status_code == 400
            assert response.json()["ResultCode"] == "C2B00016"
        assert await c2b_payments(gateway, merchant) == []


class TestNativeApi:
    async def test_bad_settings(self, gateway: Gateway, merchant: Merchant) -> None:
        channel_id = await add_channel(gateway.settings, merchant, ChannelKind.PAYBILL)
        url = f"/v1/channels/{channel_id}/c2b"
        cases: list[tuple[dict[str, Any], str]] = [
            ({"account_pattern": "INV-("}, "validation_error"),
            ({"min_amount": 0}, "validation_error"),
            ({"min_amount": "10"}, "validation_error"),
            ({"max_amount": 250_001}, "validation_error"),
            ({"default_action": "maybe"}, "validation_error"),
            ({"validation_url": "ftp://example.com/x"}, "validation_error"),
            ({"surprise": 1}, "validation_error"),
            ({"min_amount": 500, "max_amount": 100}, "c2b_invalid_range"),
        ]
        for body, code in cases:
            response = await gateway.client.put(url, json=body, headers=merchant.auth)
            assert response.status_code == 422, (body, response.text)
            assert problem(response)["code"] == code
        response = await gateway.client.get(url, headers=merchant.auth)
        assert problem(response)["code"] == "c2b_not_configured"

    async def test_bank_channel_cannot_register(self, gateway: Gateway, merchant: Merchant) -> None:
        channel_id = await add_channel(gateway.settings, merchant, ChannelKind.BANK)
        for response in (
            await gateway.client.put(f"/v1/channels/{channel_id}/c2b", json={},
                                     headers=merchant.auth),
            await gateway.client.post(f"/v1/channels/{channel_id}/c2b/register",
                                      headers=merchant.auth),
        ):  # fmt: skip
            assert response.status_code == 422
            assert problem(response)["code"] == "c2b_unsupported_channel"

    async def test_private_validation_url_refused_without_the_sandbox_setting(
        self, gateway: Gateway, merchant: Merchant
    ) -> None:
        channel_id = await add_channel(gateway.settings, merchant, ChannelKind.PAYBILL)
        response = await gateway.client.put(
            f"/v1/channels/{channel_id}/c2b",
            json={"validation_enabled": True, "validation_url": "http://127.0.0.1:9/check"},
            headers=merchant.auth,
        )
        assert response.status_code == 422
        assert problem(response)["code"] == "unsafe_url"

    async def test_scoped_to_the_account(self, gateway: Gateway, merchant: Merchant) -> None:
        channel = await set_up_channel(gateway, merchant)
        other = await create_merchant(gateway.settings, name="Other shop")
        base = f"/v1/channels/{channel['channel_id']}/c2b"
        assert (await gateway.client.get(base, headers=other.auth)).status_code == 404
        for method, path in (("PUT", base), ("POST", f"{base}/register"),
                             ("POST", f"{base}/sweep")):  # fmt: skip
            response = await gateway.client.request(method, path, json={}, headers=other.auth)
            assert response.status_code == 404, (method, path)
            assert problem(response)["code"] in {"channel_not_found", "c2b_not_configured"}
        assert await notifications(gateway, other) == []
        # Reading is for public keys too; writing is not.
        assert (await gateway.client.get(base, headers=merchant.read_auth)).status_code == 200
        response = await gateway.client.post(f"{base}/register", headers=merchant.read_auth)
        assert response.status_code == 403

    async def test_shortcode_held_by_another_channel(
        self, gateway: Gateway, merchant: Merchant
    ) -> None:
        # Two accounts' paybill channels naming one shortcode: Daraja keeps one pair of
        # URLs per shortcode, so the second registration is refused.
        shortcode = fresh_shortcode()
        second = await create_merchant(gateway.settings)
        channels = []
        for owner in (merchant, second):
            engine = create_engine(gateway.settings)
            try:
                async with transaction(create_sessionmaker(engine)) as session:
                    channel = await accounts.add_channel(
                        session, account_id=owner.account_id, kind=ChannelKind.PAYBILL,
                        shortcode=shortcode,
                    )  # fmt: skip
                    channels.append(channel.id)
            finally:
                await engine.dispose()
        url = "/v1/channels/{}/c2b/register"
        ok = await gateway.client.post(url.format(channels[0]), headers=merchant.auth)
        assert ok.status_code == 200, ok.text
        taken = await gateway.client.post(url.format(channels[1]), headers=second.auth)
        assert taken.status_code == 409
        assert problem(taken)["code"] == "c2b_shortcode_taken"


class TestSimulatorPay:
    @pytest.mark.parametrize(
        ("body", "code"),
        [
            ({"shortcode": "12", "amount": 1, "msisdn": "0708374149"}, "invalid_shortcode"),
            ({"shortcode": "600100", "amount": 0, "msisdn": "0708374149"}, "invalid_amount"),
            ({"shortcode": "600100", "amount": 1.5, "msisdn": "0708374149"}, "invalid_amount"),
            ({"shortcode": "600100", "amount": 1, "msisdn": "12345"}, "invalid_msisdn"),
            ({"shortcode": "600100", "amount": 1, "msisdn": "0708374149", "kind": "x"},
             "invalid_kind"),
            ({"shortcode": "600100", "amount": 1, "msisdn": "0708374149", "confirm": "x"},
             "invalid_confirm"),
        ],
    )  # fmt: skip
    async def test_bad_input(self, gateway: Gateway, body: dict[str, Any], code: str) -> None:
        response = await gateway.client.post("/simulator/c2b/pay", json=body)
        assert response.status_code == 422
        assert problem(response)["code"] == code

    async def test_not_json(self, gateway: Gateway) -> None:
        response = await gateway.client.post("/simulator/c2b/pay", content=b"[")
        assert problem(response)["code"] == "invalid_json"
