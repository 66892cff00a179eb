"""Refuse request bodies declared larger than the limit, before anything reads them.

A plain ASGI middleware: Starlette's ``BaseHTTPMiddleware`` (``@app.middleware``) wraps
every request and response in extra tasks and streams, about 4% of the gateway's CPU per
payment in a profile (bench/README.md), for a check of one header.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from pesaswitch.errors import PayloadTooLarge, problem_response


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, *, max_body: int) -> None:
        self.app = app
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            for name, value in scope["headers"]:
                if name == b"content-length":
                    if not value.isdigit() or int(value) > self.max_body:
                        refusal = PayloadTooLarge(f"At most {self.max_body} bytes are accepted")
                        await problem_response(refusal)(scope, receive, send)
                        return
                    break
        await self.app(scope, receive, send)
