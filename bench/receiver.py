"""A minimal ASGI webhook receiver for benchmarks: counts deliveries, answers 204."""

from __future__ import annotations

import json
from typing import Any

received: set[str] = set()
total = 0


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    global total
    if scope["type"] != "http":
        return
    if scope["method"] == "GET":
        body = json.dumps({"unique": len(received), "total": total}).encode()
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json")]})  # fmt: skip
        await send({"type": "http.response.body", "body": body})
        return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    headers = dict(scope["headers"])
    received.add(headers.get(b"webhook-id", b"").decode())
    total += 1
    await send({"type": "http.response.start", "status": 204, "headers": []})
    await send({"type": "http.response.body", "body": b""})
