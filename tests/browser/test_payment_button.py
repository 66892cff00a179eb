"""The payment button in a real browser: the links page's copy button copies the snippet,
and the snippet pasted into another site's page shows a button that opens the hosted
page. Debian's Chromium, as the dashboard's browser tests."""

from __future__ import annotations

from playwright.async_api import Browser, expect

from tests.browser.test_dashboard_in_chromium import (  # the same server and browser
    Site,
    _sign_in,
    browser,  # noqa: F401
    site,  # noqa: F401
)


async def test_the_snippet_is_copied_and_works_on_another_site(
    site: Site,  # noqa: F811
    browser: Browser,  # noqa: F811
) -> None:
    context = await browser.new_context(permissions=["clipboard-read", "clipboard-write"])
    desk = await context.new_page()
    await _sign_in(desk, site)
    await desk.get_by_role("link", name="Payment links").click()
    await desk.get_by_label("Description").fill("Chapati and beans")
    await desk.get_by_label("Amount (KES)").fill("120")
    await desk.get_by_role("button", name="Create link").click()
    row = desk.locator("tr.button-snippet").first
    snippet = await row.locator("textarea").input_value()
    assert f'src="{site.url}/pay/button.js"' in snippet
    await row.get_by_role("button", name="Copy snippet").click()
    await expect(row.get_by_role("button", name="Copied")).to_be_visible()
    assert await desk.evaluate("navigator.clipboard.readText()") == snippet
    slug = snippet.split('data-pesaswitch-link="')[1].split('"')[0]

    shop = await context.new_page()
    await shop.set_content(f"<html><body><h1>Mama Oliech's</h1><p>{snippet}</p></body></html>")
    button = shop.locator("a.pesaswitch-pay-button")
    await expect(button).to_have_text("Pay with M-Pesa")
    assert await button.get_attribute("href") == f"{site.url}/pay/{slug}"
    async with context.expect_page() as opened:
        await button.click()
    hosted = await opened.value
    await hosted.wait_for_load_state()
    assert hosted.url == f"{site.url}/pay/{slug}"
    await expect(hosted.get_by_text("Chapati and beans")).to_be_visible()
    await context.close()
