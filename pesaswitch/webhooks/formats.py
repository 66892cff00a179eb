"""Wire formats for outbound notifications other than the native event.

Vendor dialects register how their callbacks and webhooks look; the outbox stores the
rendered body on the delivery so every retry sends the same bytes. The domain never
imports a dialect: it asks this registry by name.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

# (event_type, the object as the native API renders it) -> the body to send, or None when
# the format has no shape for that object (a vendor's webhook knows payments only): the
# native event is sent instead.
Renderer = Callable[[str, dict[str, Any]], str | None]

# (the endpoint's secret, the exact body) -> headers a vendor's receivers check
Signer = Callable[[str, str], dict[str, str]]

# (the secret that signs this delivery, the stored body) -> the body to send; for vendors
# whose callbacks carry their own MAC inside the body (Pokea Pay's ``hash``).
Finalizer = Callable[[str, str], str]

_callback_renderers: dict[str, Renderer] = {}
_callback_finalizers: dict[str, Finalizer] = {}
_endpoint_renderers: dict[str, Renderer] = {}
_endpoint_signers: dict[str, Signer] = {}

NATIVE = "native"
STANDARD = "standard"


def register_callback_format(
    dialect: str, renderer: Renderer, finalizer: Finalizer | None = None
) -> None:
    """How objects created through ``dialect`` notify their per-request callback URL."""
    _callback_renderers[dialect] = renderer
    if finalizer is not None:
        _callback_finalizers[dialect] = finalizer


def register_endpoint_format(style: str, renderer: Renderer, signer: Signer) -> None:
    """How webhook endpoints registered through a dialect (``style``) receive events, and
    the vendor's own signature header, sent alongside the Standard Webhooks ones."""
    _endpoint_renderers[style] = renderer
    _endpoint_signers[style] = signer


def render_callback(dialect: str, event_type: str, data: dict[str, Any]) -> str | None:
    """The dialect's callback body, or None to send the native event itself."""
    renderer = _callback_renderers.get(dialect)
    return None if renderer is None else renderer(event_type, data)


def render_for_endpoint(style: str, event_type: str, data: dict[str, Any]) -> str | None:
    renderer = _endpoint_renderers.get(style)
    return None if renderer is None else renderer(event_type, data)


def vendor_headers(style: str, secret: str, body: str) -> dict[str, str]:
    signer = _endpoint_signers.get(style)
    return {} if signer is None else signer(secret, body)


def finalize(dialect: str | None, secret: str, body: str) -> str:
    finalizer = _callback_finalizers.get(dialect or "")
    return body if finalizer is None else finalizer(secret, body)
