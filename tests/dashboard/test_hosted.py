"""The hosted payment page: a customer pays through a link, without JavaScript."""

from __future__ import annotations

import re

import httpx
import pytest

from tests.conftest import Gateway
from tests.dashboard.conftest import Shop
from tests.dashboard.helpers import csrf_of, post_form


async def _link(shop: Shop, description: str, amount: str = "") -> str:
    response = await post_form(
        shop.client, "/dashboard/links", "/dashboard/links",
        {"description": description, "amount": amount},
    )  # fmt: skip
    assert response.status_code == 303, response.text
    found = re.search(r"/pay/([\w-]+)", response.headers["location"])
    assert found
    return found.group(1)


def _customer(gateway: Gateway) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=gateway.client._transport, base_url="http://gateway.test")


async def _submit(customer: httpx.AsyncClient, slug: str, **fields: str) -> httpx.Response:
    page = await customer.get(f"/pay/{slug}")
    assert page.status_code == 200
    nonce = re.search(r'name="nonce" value="([^"]+)"', page.text)
    assert nonce
    data = {"csrf_token": csrf_of(page.text), "nonce": nonce.group(1), **fields}
    return await customer.post(f"/pay/{slug}", data=data)


async def _follow(customer: httpx.AsyncClient, location: str, want: str) -> str:
    import asyncio

    for _ in range(100):
        page = await customer.get(location)
        status = re.search(r'data-status="(\w+)"', page.text)
        assert status
        if status.group(1) == want:
            return page.text
        await asyncio.sleep(0.05)
    raise AssertionError(f"never {want}: {page.text}")


async def test_a_customer_pays_a_fixed_amount_link(
    dashboard: Gateway, shops: tuple[Shop, Shop]
) -> None:
    shop, _ = shops
    slug = await _link(shop, "School fees deposit", "250")
    async with _customer(dashboard) as customer:
        page = await customer.get(f"/pay/{slug}")
        assert "School fees deposit" in page.text
        assert "KES 250" in page.text
        assert 'name="amount"' not in page.text  # fixed: the customer cannot change it
        response = await _submit(customer, slug, phone="0708 374 149", amount="1")
        assert response.status_code == 303
        location = response.headers["location"]
        done = await _follow(customer, location, "completed")
        assert "Paid" in done
        assert "2547*****149" in done
        assert "254708374149" not in done
        payment_id = location.split("/payments/")[1].split("?")[0]
    api = await dashboard.client.get(f"/v1/payments/{payment_id}", headers=shop.merchant.auth)
    assert api.json()["amount"] == 250
    assert api.json()["status"] == "completed"
    assert api.json()["description"] == "School fees deposit"
    listing = (await shop.client.get("/dashboard/payments")).text
    assert payment_id in listing


async def test_customer_entered_amount_and_failures_are_explained(
    dashboard: Gateway, shops: tuple[Shop, Shop]
) -> None:
    shop, _ = shops
    slug = await _link(shop, "Harambee")
    async with _customer(dashboard) as customer:
        missing = await _submit(customer, slug, phone="0708374149")
        assert missing.status_code == 422
        assert "Enter the amount" in missing.text
        airtel = await _submit(customer, slug, phone="0733123456", amount="50")
        assert airtel.status_code == 422
        assert "not Safaricom" in airtel.text
        assert 'value="0733123456"' in airtel.text  # the form keeps what was typed
        cancelled = await _submit(customer, slug, phone="254711001032", amount="75")
        assert cancelled.status_code == 303
        page = await _follow(customer, cancelled.headers["location"], "cancelled")
        assert "cancelled on the phone" in page
        assert f'href="/pay/{slug}"' in page  # try again


async def test_a_resubmitted_form_shows_the_same_payment(
    dashboard: Gateway, shops: tuple[Shop, Shop]
) -> None:
    shop, _ = shops
    slug = await _link(shop, "Once only", "60")
    async with _customer(dashboard) as customer:
        page = await customer.get(f"/pay/{slug}")
        nonce = re.search(r'name="nonce" value="([^"]+)"', page.text)
        assert nonce
        data = {"csrf_token": csrf_of(page.text), "nonce": nonce.group(1), "phone": "0708374149"}
        first = await customer.post(f"/pay/{slug}", data=data)
        second = await customer.post(f"/pay/{slug}", data=data)
    assert first.status_code == second.status_code == 303
    assert first.headers["location"] == second.headers["location"]


async def test_pending_page_follows_without_javascript(
    dashboard: Gateway, shops: tuple[Shop, Shop]
) -> None:
    shop, _ = shops
    slug = await _link(shop, "Slow one", "70")
    async with _customer(dashboard) as customer:
        # 254711990002: no callback, so the page shows pending until a query settles it.
        response = await _submit(customer, slug, phone="254711990002")
        page = await customer.get(response.headers["location"])
        if 'data-status="pending"' in page.text:
            assert '<noscript><meta http-equiv="refresh" content="3"></noscript>' in page.text
            assert "/dashboard/static/pay.js" in page.text
        status_url = re.search(r'data-poll="([^"]+)"', page.text)
        assert status_url
        body = (await customer.get(status_url.group(1).replace("&amp;", "&"))).json()
        assert body["status"] in {"pending", "completed"}
        await _follow(customer, response.headers["location"], "completed")


async def test_status_pages_need_the_signature_and_off_links_are_gone(
    dashboard: Gateway, shops: tuple[Shop, Shop]
) -> None:
    shop, _ = shops
    slug = await _link(shop, "Guarded", "80")
    async with _customer(dashboard) as customer:
        response = await _submit(customer, slug, phone="0708374149")
        location = response.headers["location"]
        forged = re.sub(r"t=\w+", "t=" + "0" * 32, location)
        assert (await customer.get(forged)).status_code == 404
        assert (await customer.get(location.split("?")[0])).status_code == 404
        no_csrf = await customer.post(f"/pay/{slug}", data={"phone": "0708374149"})
        assert no_csrf.status_code == 403
    links = (await shop.client.get("/dashboard/links")).text
    link_id = re.search(r'data-link-id="(plink_\w+)"', links)
    assert link_id
    off = await post_form(
        shop.client, "/dashboard/links", f"/dashboard/links/{link_id.group(1)}/active",
        {"active": "false"},
    )  # fmt: skip
    assert off.status_code == 303
    async with _customer(dashboard) as customer:
        gone = await customer.get(f"/pay/{slug}")
        assert gone.status_code == 404
        assert "switched off" in gone.text
        assert (await customer.get(location)).status_code == 404


@pytest.mark.parametrize("amount", ["0", "abc", "999999999"])
async def test_bad_link_amounts_are_refused(shops: tuple[Shop, Shop], amount: str) -> None:
    shop, _ = shops
    response = await post_form(
        shop.client, "/dashboard/links", "/dashboard/links",
        {"description": "Bad", "amount": amount},
    )  # fmt: skip
    assert response.status_code == 422
    assert 'data-link-id="' not in response.text
