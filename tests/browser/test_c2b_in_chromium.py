"""A customer pays a till from the sandbox phone and the merchant sees it on the
dashboard: Debian's Chromium driven by Playwright against a real ``pesaswitch serve``.

The merchant registers the till's C2B URLs with the channels page's button; the phone's
"Pay a till/paybill" form plays the customer (validation, then confirmation, over real
HTTP back into the gateway); the payment shows in the list with its receipt.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import pytest
from playwright.async_api import Browser, async_playwright, expect

from tests.browser.test_dashboard_in_chromium import CHROMIUM, CHROMIUM_ARGS
from tests.c2b.helpers import fresh_shortcode
from tests.conftest import TEST_SECRET_KEY
from tests.e2e.conftest import create_account_via_cli
from tests.support.processes import PESASWITCH, Process, free_port

PASSWORD = "a long sandbox password"


@dataclass
class Shop:
    url: str
    email: str
    till_id: int
    till: str


@pytest.fixture(scope="module")
def shop(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shop]:
    port = free_port()
    env = {
        "PESASWITCH_DATABASE_URL": database_url,
        "PESASWITCH_SECRET_KEY": TEST_SECRET_KEY,
        "PESASWITCH_LOG_LEVEL": "warning",
        "PESASWITCH_PORT": str(port),
        "PESASWITCH_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "PESASWITCH_SIMULATOR_DELAY": "0",
    }
    server = Process([PESASWITCH, "serve"], env, tmp_path_factory.mktemp("c2b") / "serve.log")
    try:
        server.wait_http(f"http://127.0.0.1:{port}/healthz")
        cli_env = {**os.environ, **env}
        merchant = create_account_via_cli(cli_env, "Duka la Mama")
        till = fresh_shortcode()
        added = subprocess.run(
            [PESASWITCH, "channels", "add", "--account", merchant.account_id, "--kind", "till",
             "--shortcode", till, "--description", "Counter till"],
            env=cli_env, check=True, capture_output=True, text=True,
        )  # fmt: skip
        till_id = json.loads(added.stdout[added.stdout.index("{") :])["id"]
        email = f"owner-{merchant.account_id.lower()}@duka.example"
        subprocess.run(
            [PESASWITCH, "users", "create", "--email", email, "--account", merchant.account_id],
            env={**cli_env, "PESASWITCH_NEW_USER_PASSWORD": PASSWORD},
            check=True, capture_output=True, text=True,
        )  # fmt: skip
        yield Shop(f"http://127.0.0.1:{port}", email, till_id, till)
    finally:
        server.stop()


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield launched
        finally:
            await launched.close()


async def test_a_customer_pays_a_till_from_the_sandbox_phone(shop: Shop, browser: Browser) -> None:
    desk = await browser.new_page(viewport={"width": 1280, "height": 860})
    await desk.goto(f"{shop.url}/dashboard/login")
    await desk.get_by_label("Email").fill(shop.email)
    await desk.get_by_label("Password").fill(PASSWORD)
    await desk.get_by_role("button", name="Sign in").click()
    await expect(desk.locator(".account-name")).to_have_text("Duka la Mama")

    await desk.get_by_role("link", name="Channels").click()
    await desk.locator(f"#register-c2b-{shop.till_id}").click()
    await expect(desk.locator(".notice")).to_contain_text("C2B URLs registered")
    row = desk.locator(f'tr[data-channel-id="{shop.till_id}"]')
    await expect(row.locator(".c2b-registered")).to_contain_text(shop.till)

    context = await browser.new_context(viewport={"width": 390, "height": 780}, is_mobile=True)
    phone = await context.new_page()
    await phone.goto(f"{shop.url}/simulator/phone?msisdn=0708374149")
    await phone.get_by_label("Pay to").select_option("till")
    await phone.get_by_label("Business number").fill(shop.till)
    await phone.get_by_label("Amount (Ksh)").fill("275")
    await phone.locator("#c2b-pay").click()
    await expect(phone.locator("#notice")).to_have_attribute("data-notice", "c2b_completed")
    paid = phone.locator("#c2b-history li").first
    await expect(paid).to_have_attribute("data-status", "completed")
    receipt = await paid.locator(".receipt").inner_text()
    assert re.fullmatch(r"[A-Z0-9]{10}", receipt)
    await context.close()

    await desk.get_by_role("link", name="Payments").click()
    payment = desk.locator("tr[data-payment-id]").filter(has_text=receipt)
    await expect(payment.locator(".status")).to_have_text("completed")
    await expect(payment).to_contain_text("275")
