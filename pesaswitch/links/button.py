"""The payment button: one ``<script>`` snippet per payment link, or a plain link, that
opens the hosted page ``/pay/{slug}``. ``/pay/button.js`` is a single static file served
by the gateway itself (no build step, no third-party assets); the button finds the
gateway's address from its own ``src``, so the snippet works wherever the page is."""

from __future__ import annotations

from html import escape
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import Response

from pesaswitch.links.models import PaymentLink

router = APIRouter(include_in_schema=False)

BUTTON_JS = Path(__file__).parent / "static" / "button.js"
DEFAULT_LABEL = "Pay with M-Pesa"


def pay_url(public_url: str, link: PaymentLink) -> str:
    return f"{public_url.rstrip('/')}/pay/{link.slug}"


def button_snippet(public_url: str, link: PaymentLink, label: str = DEFAULT_LABEL) -> str:
    """What a merchant pastes into its site; the <noscript> link works without JavaScript."""
    base = escape(public_url.rstrip("/"), quote=True)
    slug = escape(link.slug, quote=True)
    text = escape(label, quote=True)
    return (
        f'<script src="{base}/pay/button.js" data-pesaswitch-link="{slug}" '
        f'data-label="{text}" async></script>\n'
        f'<noscript><a href="{base}/pay/{slug}">{text}</a></noscript>'
    )


@router.api_route("/pay/button.js", methods=["GET", "HEAD"])
async def button_js() -> Response:
    return Response(
        BUTTON_JS.read_bytes(),
        media_type="text/javascript; charset=utf-8",
        # Loaded from merchants' sites: cacheable, and not to be sniffed as anything else.
        headers={"Cache-Control": "public, max-age=3600", "X-Content-Type-Options": "nosniff"},
    )
