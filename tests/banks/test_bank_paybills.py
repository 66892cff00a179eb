"""Bank paybills: the shipped list, searchable natively and in the PayHero/UpesiPay
dialect, and the check every bank channel passes."""

from __future__ import annotations

from typing import Any

import pytest

from pesaswitch.accounts import service as accounts
from pesaswitch.accounts.models import ChannelKind
from pesaswitch.banks.paybills import UnknownBankPaybill, bank_paybills
from pesaswitch.db import transaction
from tests.compat.test_payhero import basic
from tests.conftest import Gateway, Merchant, problem


def test_the_data_file_is_sound() -> None:
    known = bank_paybills()
    assert known.source.startswith("M-Pesa to bank paybill list published at https://")
    assert known.retrieved == "2026-12-03"
    paybills = [b.paybill for b in known.banks]
    assert len(paybills) == len(set(paybills)) >= 20
    assert all(p.isdigit() and 5 <= len(p) <= 7 for p in paybills)
    equity = known.by_paybill("247247")
    assert equity is not None
    assert equity.name == "Equity Bank"


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("equity", ["247247"]),
        ("EQUITY bank", ["247247"]),
        ("522", ["522522"]),
        ("barclays", ["303030"]),  # a former name finds the bank's current one
        ("ncba", ["880100", "488488"]),
        ("no such bank", []),
    ],
)
async def test_search(
    gateway: Gateway, merchant: Merchant, query: str, expected: list[str]
) -> None:
    answer = await gateway.client.get(
        "/v1/bank-paybills", params={"q": query}, headers=merchant.read_auth
    )
    assert answer.status_code == 200, answer.text
    assert [b["paybill"] for b in answer.json()["data"]] == expected


async def test_the_whole_list_with_its_source(gateway: Gateway, merchant: Merchant) -> None:
    body = (await gateway.client.get("/v1/bank-paybills", headers=merchant.read_auth)).json()
    assert len(body["data"]) == len(bank_paybills().banks)
    assert body["retrieved"] == "2026-12-03"
    assert "acrab.co.ke" in body["source"]


async def test_bad_requests(gateway: Gateway, merchant: Merchant) -> None:
    long = await gateway.client.get(
        "/v1/bank-paybills", params={"q": "x" * 101}, headers=merchant.read_auth
    )
    assert long.status_code == 422
    assert problem(long)["code"] == "validation_error"
    anonymous = await gateway.client.get("/v1/bank-paybills")
    assert anonymous.status_code == 401
    assert problem(anonymous)["code"] == "invalid_api_key"


async def test_the_payhero_dialect_path(gateway: Gateway, merchant: Merchant) -> None:
    answer = await gateway.client.get(
        "/api/v2/bank_paybills", params={"q": "kcb"}, headers=basic(merchant)
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["success"] is True
    assert body["data"] == [{"bank_name": "KCB Bank Kenya", "short_code": "522522"}]


async def test_a_bank_channel_needs_a_known_paybill_and_an_account(
    gateway: Gateway, merchant: Merchant
) -> None:
    headers = basic(merchant)

    async def register(**fields: Any) -> Any:
        return await gateway.client.post(
            "/api/v2/payment_channels", headers=headers,
            json={"channel_type": "bank", "description": "KCB Bank", **fields},
        )  # fmt: skip

    good = await register(short_code="522522", account_number="1280 006-242")
    assert good.status_code == 201, good.text
    assert (good.json()["short_code"], good.json()["account_number"]) == ("522522", "1280006242")
    for fields, code in (
        ({"short_code": "123456", "account_number": "1280006242"}, "unknown_bank_paybill"),
        ({"short_code": "522522"}, "invalid_bank_account"),
        ({"short_code": "522522", "account_number": "12/34"}, "invalid_bank_account"),
    ):
        refused = await register(**fields)
        assert refused.status_code == 422, refused.text
        assert refused.json()["error_code"] == code
    channels = (await gateway.client.get("/api/v2/payment_channels", headers=headers)).json()
    assert sorted(c["channel_type"] for c in channels["data"]) == ["bank", "wallet"]


async def test_the_service_refuses_an_unknown_bank(gateway: Gateway, merchant: Merchant) -> None:
    with pytest.raises(UnknownBankPaybill):
        async with transaction(gateway.app.state.runtime.sessionmaker) as session:
            await accounts.add_channel(
                session, account_id=merchant.account_id, kind=ChannelKind.BANK,
                shortcode="654321", account_number="1",
            )  # fmt: skip
    async with gateway.app.state.runtime.sessionmaker() as session:
        rows = await accounts.list_channels(session, account_id=merchant.account_id)
    assert [c.kind for c in rows] == ["wallet"]
