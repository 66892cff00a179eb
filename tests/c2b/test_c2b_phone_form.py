"""The sandbox phone's "Pay a till/paybill" form, as a browser without JavaScript posts it."""

from __future__ import annotations

from urllib.parse import parse_qs, urlparse

from pesaswitch.accounts.models import ChannelKind
from tests.c2b.helpers import c2b_payments, set_up_channel
from tests.conftest import Gateway, Merchant


async def test_pay_a_till_from_the_phone(gateway: Gateway, merchant: Merchant) -> None:
    channel = await set_up_channel(gateway, merchant, ChannelKind.TILL)
    form = {"msisdn": "0708374149", "kind": "till", "shortcode": channel["shortcode"],
            "amount": "120", "bill_ref": ""}  # fmt: skip
    response = await gateway.client.post("/simulator/phone/c2b", data=form)
    assert response.status_code == 303
    query = parse_qs(urlparse(response.headers["location"]).query)
    assert query == {"msisdn": ["254708374149"], "notice": ["c2b_completed"]}
    [payment] = await c2b_payments(gateway, merchant)
    assert (payment["amount"], payment["description"]) == (120, "Buy Goods")

    page = await gateway.client.get(response.headers["location"])
    assert 'id="c2b-form"' in page.text
    assert f'data-trans-id="{payment["mpesa_receipt"]}"' in page.text
    assert "Paid: M-PESA sent the business its confirmation." in page.text


async def test_bad_form_changes_nothing(gateway: Gateway, merchant: Merchant) -> None:
    channel = await set_up_channel(gateway, merchant)
    for bad in ({"amount": "12.5"}, {"amount": "0"}, {"shortcode": "12"}, {"msisdn": "123"}):
        form = {"msisdn": "0708374149", "kind": "paybill", "shortcode": channel["shortcode"],
                "amount": "10", "bill_ref": "A1", **bad}  # fmt: skip
        response = await gateway.client.post("/simulator/phone/c2b", data=form)
        assert response.status_code == 303
        assert "notice=c2b_invalid" in response.headers["location"]
    assert await c2b_payments(gateway, merchant) == []
