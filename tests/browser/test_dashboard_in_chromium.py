"""The dashboard, the hosted payment page and the sandbox phone in a real browser:
Debian's Chromium driven by Playwright against a real ``pesaswitch serve`` process.

Sign in, create a key, add a webhook endpoint, make a payment link, pay through it on a
phone-sized screen, approve the prompt on the sandbox phone, see the payment completed
in the list, and redeliver its webhook. Screenshots of the main pages go to
``docs/screenshots/`` (the README shows them).
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, async_playwright, expect

from tests.conftest import TEST_SECRET_KEY, Merchant
from tests.e2e.conftest import create_account_via_cli
from tests.support.processes import PESASWITCH, Process, free_port
from tests.support.receiver import Receiver, running_receiver

CHROMIUM = "/usr/bin/chromium"
PASSWORD = "a long sandbox password"
# What the machine's closed network needs (no background calls home, no sandbox as root).
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
SHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


class Site:
    def __init__(self, url: str, env: dict[str, str], merchant: Merchant, email: str) -> None:
        self.url = url
        self.env = env
        self.merchant = merchant
        self.email = email


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    with running_receiver() as running:
        yield running


@pytest.fixture(scope="module")
def site(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    port = free_port()
    env = {
        "PESASWITCH_DATABASE_URL": database_url,
        "PESASWITCH_SECRET_KEY": TEST_SECRET_KEY,
        "PESASWITCH_LOG_LEVEL": "warning",
        "PESASWITCH_PORT": str(port),
        "PESASWITCH_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "PESASWITCH_SIMULATOR_MODE": "interactive",
        "PESASWITCH_SIMULATOR_DELAY": "0",
        "PESASWITCH_SANDBOX_ALLOW_PRIVATE_URLS": "true",
        "PESASWITCH_WEBHOOK_INTERVAL": "0.1",
    }
    logs = tmp_path_factory.mktemp("browser")
    server = Process([PESASWITCH, "serve"], env, logs / "serve.log")
    try:
        server.wait_http(f"http://127.0.0.1:{port}/healthz")
        cli_env = {**os.environ, **env}
        merchant = create_account_via_cli(cli_env, "Kibanda Coffee")
        email = f"owner-{merchant.account_id.lower()}@kibanda.example"
        subprocess.run(
            [PESASWITCH, "users", "create", "--email", email, "--account", merchant.account_id],
            env={**cli_env, "PESASWITCH_NEW_USER_PASSWORD": PASSWORD},
            check=True, capture_output=True, text=True,
        )  # fmt: skip
        yield Site(f"http://127.0.0.1:{port}", env, merchant, email)
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


async def _shot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


async def _sign_in(page: Page, site: Site) -> None:
    await page.goto(f"{site.url}/dashboard/login")
    await page.get_by_label("Email").fill(site.email)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.locator(".account-name")).to_have_text("Kibanda Coffee")


async def test_a_merchant_takes_a_payment_end_to_end_in_the_browser(
    site: Site, browser: Browser, receiver: Receiver
) -> None:
    desk = await browser.new_page(viewport={"width": 1280, "height": 860})
    await _sign_in(desk, site)

    # An API key, shown once.
    await desk.get_by_role("link", name="API keys").click()
    await desk.get_by_role("button", name="Create key").click()
    key = await desk.locator("#new-key-value").inner_text()
    assert re.fullmatch(r"sk_test_[\w-]+", key)
    await _shot(desk, "keys")

    # A webhook endpoint on a real receiver.
    await desk.get_by_role("link", name="Webhooks").click()
    await desk.get_by_label("URL").fill(f"{receiver.url}/hooks")
    await desk.get_by_role("button", name="Add endpoint").click()
    await expect(desk.locator("#new-endpoint")).to_be_visible()

    # A payment link the customer enters the amount on.
    await desk.get_by_role("link", name="Payment links").click()
    await desk.get_by_label("Description").fill("Two flat whites")
    await desk.get_by_label("Amount (KES)").fill("380")
    await desk.get_by_role("button", name="Create link").click()
    pay_path = await desk.locator("a.pay-link").first.get_attribute("href")
    assert pay_path is not None
    assert pay_path.startswith("/pay/")

    # The customer, on a phone-sized screen.
    phone_context = await browser.new_context(
        viewport={"width": 390, "height": 780}, is_mobile=True, has_touch=True
    )
    customer = await phone_context.new_page()
    await customer.goto(f"{site.url}{pay_path}")
    await expect(customer.locator("#amount")).to_have_text("KES 380")
    await _shot(customer, "pay-page")
    await customer.get_by_label("M-Pesa phone number").fill("0708 374 149")
    await customer.get_by_role("button", name="Pay with M-Pesa").click()
    await expect(customer.locator("#payment")).to_have_attribute("data-status", "pending")
    await expect(customer.locator("#headline")).to_have_text("Waiting for your PIN…")

    # The sandbox phone holds the prompt until a PIN is entered.
    handset = await phone_context.new_page()
    await handset.goto(f"{site.url}/simulator/phone?msisdn=0708374149")
    prompt = handset.locator("article.prompt").first
    await expect(prompt.locator("p.prompt-text")).to_contain_text("Ksh 380")
    await _shot(handset, "sandbox-phone")
    checkout_id = await prompt.get_attribute("data-checkout-request-id")
    await handset.locator(f"#pin-{checkout_id}").fill("1234")
    await handset.locator(f"#send-{checkout_id}").click()

    # The payment page follows the payment by itself (pay.js) to its end.
    await expect(customer.locator("#payment")).to_have_attribute(
        "data-status", "completed", timeout=15_000
    )
    await expect(customer.locator("#headline")).to_have_text("Paid")
    receipt = await customer.locator("#receipt").inner_text()
    assert re.fullmatch(r"[A-Z0-9]{10}", receipt)
    await _shot(customer, "pay-completed")

    # The merchant sees it completed in the list, and its story on the detail page.
    await desk.get_by_role("link", name="Payments").click()
    row = desk.locator("tr[data-payment-id]").filter(has_text=receipt)
    await expect(row.locator(".status")).to_have_text("completed")
    await _shot(desk, "payments")
    await row.locator("a").first.click()
    await expect(desk.locator("#payment-status")).to_have_text("completed")
    await expect(desk.locator(".deliveries")).to_contain_text("succeeded", timeout=10_000)
    await _shot(desk, "payment-detail")

    # Its webhook arrived once; redeliver it from the endpoint's page.
    for _ in range(100):
        if receiver.received:
            break
        await asyncio.sleep(0.1)
    assert len(receiver.received) == 1
    first_id = receiver.ids()[0]
    await desk.get_by_role("link", name="Webhooks").click()
    await desk.locator("tr[data-endpoint-id] a").first.click()
    await desk.locator("button.redeliver").first.click()
    await expect(desk.locator(".notice")).to_have_text("Queued 1 new delivery")
    for _ in range(100):
        if len(receiver.received) == 2:
            break
        await asyncio.sleep(0.1)
    assert receiver.ids() == [first_id, first_id]  # same webhook-id: receivers dedupe
    await desk.reload()
    await expect(desk.locator("tr[data-delivery-id]")).to_have_count(2)
    await _shot(desk, "webhook-deliveries")

    await desk.get_by_role("link", name="Overview").click()
    await expect(desk.locator("#tile-1 .big")).to_contain_text("KES 380")
    await _shot(desk, "overview")
    await desk.get_by_role("link", name="Wallet").click()
    await _shot(desk, "wallet")
    await phone_context.close()


async def test_a_wrong_pin_fails_the_payment_and_the_page_says_so(
    site: Site, browser: Browser
) -> None:
    context = await browser.new_context(viewport={"width": 390, "height": 780}, is_mobile=True)
    customer = await context.new_page()
    desk = await browser.new_page()
    await _sign_in(desk, site)
    await desk.get_by_role("link", name="Payment links").click()
    await desk.get_by_label("Description").fill("Mandazi")
    await desk.get_by_label("Amount (KES)").fill("50")
    await desk.get_by_role("button", name="Create link").click()
    pay_path = await desk.locator("a.pay-link").first.get_attribute("href")
    await customer.goto(f"{site.url}{pay_path}")
    await customer.get_by_label("M-Pesa phone number").fill("0722000111")
    await customer.get_by_role("button", name="Pay with M-Pesa").click()
    handset = await context.new_page()
    await handset.goto(f"{site.url}/simulator/phone?msisdn=254722000111")
    prompt = handset.locator("article.prompt").first
    checkout_id = await prompt.get_attribute("data-checkout-request-id")
    await handset.locator(f"#pin-{checkout_id}").fill("9999")
    await handset.locator(f"#send-{checkout_id}").click()
    await expect(customer.locator("#payment")).to_have_attribute(
        "data-status", "failed", timeout=15_000
    )
    await expect(customer.locator("#message")).to_have_text("The M-Pesa PIN was wrong.")
    await expect(customer.get_by_role("link", name="Try again")).to_be_visible()
    await context.close()


async def test_sign_out_and_wrong_passwords_in_the_browser(site: Site, browser: Browser) -> None:
    page = await browser.new_page()
    await page.goto(f"{site.url}/dashboard/login")
    await page.get_by_label("Email").fill(site.email)
    await page.get_by_label("Password").fill("not the password")
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.locator(".error")).to_have_text("Wrong email or password")
    await _sign_in(page, site)
    await page.get_by_role("button", name="Sign out").click()
    await expect(page).to_have_url(f"{site.url}/dashboard/login")
    await page.goto(f"{site.url}/dashboard/payments")
    await expect(page).to_have_url(f"{site.url}/dashboard/login")
