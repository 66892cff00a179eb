"""A webhook receiver that misbehaves on purpose, seeded: ``python -m chaos.receiver``.

A plain asyncio HTTP/1.1 server rather than an ASGI app, because one of its faults is
resetting the connection, which an ASGI app cannot do. Per delivery attempt (decided
from the seed, the ``webhook-id`` and how many times that id has come) it answers 204,
500, 200 after a pause shorter than the gateway's webhook timeout, hangs past that
timeout, or resets the connection. After ``MAX_FAULTS`` faults for one id it always
answers 204, so every event can be delivered within the run's shortened retry schedule.
Paths under ``/gone/`` always answer 410 (the endpoint asks to be disabled).

    GET /count   {"unique": ids answered with 2xx, "total": requests}
    GET /ok      the webhook-ids answered with 2xx (each once)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import socket
import struct

MAX_FAULTS = 3
FAULT_RATE = float(os.environ.get("CHAOS_RECEIVER_FAULT_RATE", "0.3"))
SEED = os.environ.get("CHAOS_SEED", "0")
SLOW_SECONDS = float(os.environ.get("CHAOS_RECEIVER_SLOW_SECONDS", "1.5"))
HANG_SECONDS = float(os.environ.get("CHAOS_RECEIVER_HANG_SECONDS", "12"))
FAULTS = ("500", "slow", "hang", "reset")

seen: dict[str, int] = {}  # webhook-id -> requests so far
faults: dict[str, int] = {}  # webhook-id -> faults served so far
ok: set[str] = set()
total = 0


def choose(webhook_id: str) -> str:
    """What to do with this attempt: "ok" or one of FAULTS."""
    n = seen[webhook_id] = seen.get(webhook_id, 0) + 1
    if faults.get(webhook_id, 0) >= MAX_FAULTS or not webhook_id:
        return "ok"
    rng = random.Random(f"{SEED}:{webhook_id}:{n}")
    if rng.random() >= FAULT_RATE:
        return "ok"
    fault = rng.choice(FAULTS)
    if fault != "slow":  # a slow 200 is still a success
        faults[webhook_id] = faults.get(webhook_id, 0) + 1
    return fault


def _response(status: int, body: bytes = b"", kind: str = "application/json") -> bytes:
    reason = {200: "OK", 204: "No Content", 410: "Gone", 500: "Internal Server Error"}[status]
    head = f"HTTP/1.1 {status} {reason}\r\ncontent-length: {len(body)}\r\n"
    if body:
        head += f"content-type: {kind}\r\n"
    return (head + "\r\n").encode() + body


def _reset(writer: asyncio.StreamWriter) -> None:
    sock = writer.get_extra_info("socket")
    if sock is not None:  # SO_LINGER 0: close() sends RST instead of FIN
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


async def _answer(method: str, path: str, headers: dict[str, str]) -> bytes | str:
    """The bytes to send, or "reset" / "hang"."""
    global total
    if method == "GET":
        if path == "/ok":
            return _response(200, json.dumps(sorted(ok)).encode())
        return _response(200, json.dumps({"unique": len(ok), "total": total}).encode())
    total += 1
    if path.startswith("/gone/"):
        return _response(410)
    webhook_id = headers.get("webhook-id", "")
    match choose(webhook_id):
        case "500":
            return _response(500, b'{"error": "chaos"}')
        case "hang":
            return "hang"
        case "reset":
            return "reset"
        case "slow":
            await asyncio.sleep(SLOW_SECONDS)
    ok.add(webhook_id)
    return _response(204)


async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, path, _ = lines[0].split(" ", 2)
            headers = {}
            for line in lines[1:]:
                name, sep, value = line.partition(":")
                if sep:
                    headers[name.strip().lower()] = value.strip()
            length = int(headers.get("content-length", "0"))
            if length:
                await reader.readexactly(length)
            answer = await _answer(method, path, headers)
            if answer == "reset":
                _reset(writer)
                return
            if answer == "hang":
                await asyncio.sleep(HANG_SECONDS)
                _reset(writer)
                return
            assert isinstance(answer, bytes)
            writer.write(answer)
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError, ValueError, asyncio.LimitOverrunError):
        pass
    finally:
        with contextlib.suppress(Exception):
            writer.close()


async def serve(host: str, port: int) -> None:
    server = await asyncio.start_server(handle, host, port, limit=1 << 20)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args, _ = parser.parse_known_args()
    asyncio.run(serve(args.host, args.port))


if __name__ == "__main__":
    main()
