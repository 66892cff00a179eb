"""A client that closes the connection while its request body is read (its own timeout,
a killed process) gets a quiet 400 nobody reads, not a 500 with a traceback.

Found by the chaos run (SQLite, seed 20261204): ``ClientDisconnect`` from Starlette's
body read ended as ``http.unhandled_error`` / ``compat.unhandled_error`` tracebacks.
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI, Request

from pesaswitch.compat.common import install_vendor_errors
from pesaswitch.errors import install_handlers


def app_reading_json(*, vendor: bool) -> FastAPI:
    app = FastAPI()
    if vendor:
        install_vendor_errors(app, lambda error: {"success": False, "error": error.code})
    else:
        install_handlers(app)

    @app.post("/read")
    async def read(request: Request) -> dict[str, Any]:
        body: dict[str, Any] = await request.json()
        return body

    return app


@pytest.mark.parametrize("vendor", [False, True])
async def test_a_client_gone_mid_body_is_a_quiet_400(vendor: bool) -> None:
    scope = {"type": "http", "method": "POST", "path": "/read", "raw_path": b"/read",
             "query_string": b"", "headers": [(b"content-type", b"application/json")],
             "http_version": "1.1", "scheme": "http", "server": ("t", 80),
             "client": ("c", 1), "root_path": ""}  # fmt: skip
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    # An exception re-raised to the server (which logs a traceback) fails the test here.
    await app_reading_json(vendor=vendor)(scope, receive, send)
    assert sent[0]["type"] == "http.response.start"
    assert sent[0]["status"] == 400
    assert b"client_disconnected" in sent[1]["body"]
