"""A minimal ASGI webhook receiver for benchmarks: records deliveries, answers 204.

    GET /count     {"unique": distinct webhook-ids, "total": deliveries}  (any other GET path too)
    GET /arrivals  [[webhook_id, event_type, data_id, arrived_at], ...] in arrival order

``arrived_at`` is ``time.monotonic()``: on Linux that clock is system-wide, so the harness
(another process) can subtract its own ``time.monotonic()`` readings from it.
"""

from __future__ import annotations

import json
import time
from typing import Any

received: set[str] = set()
total = 0
# One entry per delivery (duplicates included): webhook-id, event type, data.id, arrival.
arrivals: list[tuple[str, str, str, float]] = []


async def _reply_json(send: Any, value: object) -> None:
    body = json.dumps(value).encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json")]})  # fmt: skip
    await send({"type": "http.response.body", "body": body})


def _describe(body: bytes) -> tuple[str, str]:
    """The event's type and data.id, or empty strings when the body is not an event."""
    try:
        event = json.loads(body)
    except ValueError:
        return "", ""
    if not isinstance(event, dict):
        return "", ""
    data = event.get("data")
    data_id = data.get("id", "") if isinstance(data, dict) else ""
    return str(event.get("type", "")), str(data_id)


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    global total
    if scope["type"] != "http":
        return
    if scope["method"] == "GET":
        if scope["path"] == "/arrivals":
            await _reply_json(send, arrivals)
        else:
            await _reply_json(send, {"unique": len(received), "total": total})
        return
    chunks: list[bytes] = []
    more = True
    while more:
        message = await receive()
        chunks.append(message.get("body", b""))
        more = message.get("more_body", False)
    arrived = time.monotonic()
    headers = dict(scope["headers"])
    webhook_id = headers.get(b"webhook-id", b"").decode()
    received.add(webhook_id)
    total += 1
    event_type, data_id = _describe(b"".join(chunks))
    arrivals.append((webhook_id, event_type, data_id, arrived))
    await send({"type": "http.response.start", "status": 204, "headers": []})
    await send({"type": "http.response.body", "body": b""})
