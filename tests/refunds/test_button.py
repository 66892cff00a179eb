"""The payment button: the links page shows a <script> snippet and a plain link with copy
buttons; /pay/button.js is the gateway's own static script; the snippet's link opens the
hosted page."""

from __future__ import annotations

import html
import re
from typing import Any

from tests.dashboard.helpers import browser, make_user, post_form, sign_in
from tests.refunds.helpers import shop


async def test_links_page_shows_a_button_snippet(gateway_factory: Any) -> None:
    gateway, merchant = await shop(gateway_factory)
    base = gateway.settings.effective_public_url
    email = f"owner-{merchant.account_id.lower()}@example.com"
    await make_user(gateway, email=email, account_id=merchant.account_id)
    async with browser(gateway) as client:
        assert (await sign_in(client, email)).status_code == 303
        created = await post_form(
            client, "/dashboard/links", "/dashboard/links",
            {"description": "Deposit", "amount": "500"},
        )  # fmt: skip
        assert created.status_code == 303, created.text
        slug = re.search(r"/pay/([\w-]+)", created.headers["location"])
        assert slug
        page = (await client.get("/dashboard/links")).text
    snippet = re.search(r'<textarea id="(snippet-[^"]+)"[^>]*>([^<]*)</textarea>', page)
    assert snippet, page
    assert f'data-copy="{snippet.group(1)}"' in page
    code = html.unescape(snippet.group(2))
    assert code == (
        f'<script src="{base}/pay/button.js" '
        f'data-pesaswitch-link="{slug.group(1)}" data-label="Pay with M-Pesa" async></script>\n'
        f'<noscript><a href="{base}/pay/{slug.group(1)}">'
        "Pay with M-Pesa</a></noscript>"
    )
    assert f'value="{base}/pay/{slug.group(1)}"' in page
    assert '<script src="/dashboard/static/copy.js" defer></script>' in page
    # The page's own script is served (its CSP allows only 'self' scripts)...
    copy = await gateway.client.get("/dashboard/static/copy.js")
    assert copy.status_code == 200
    assert "data-copy" in copy.text
    # ...and the link in the snippet is the hosted page.
    hosted = await gateway.client.get(f"/pay/{slug.group(1)}")
    assert hosted.status_code == 200
    assert "Deposit" in hosted.text


async def test_button_js_is_a_self_contained_static_script(gateway_factory: Any) -> None:
    gateway, _merchant = await shop(gateway_factory)
    script = await gateway.client.get("/pay/button.js")
    assert script.status_code == 200
    assert script.headers["content-type"].startswith("text/javascript")
    assert script.headers["x-content-type-options"] == "nosniff"
    assert "document.currentScript" in script.text
    assert '"/pay/"' in script.text
    head = await gateway.client.head("/pay/button.js")
    assert head.status_code == 200
    assert head.headers["content-type"] == script.headers["content-type"]
    # No third-party assets: it loads nothing, and names no other host.
    assert not re.search(r"https?://(?!GATEWAY)", script.text)
    assert "import " not in script.text
    assert "fetch(" not in script.text
