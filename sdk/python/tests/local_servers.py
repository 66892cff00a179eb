"""Small real HTTP servers on 127.0.0.1 for the SDK's tests, each in its own thread.

- ``scripted_server``: answers each request with the next scripted reply (a status, headers
  and a JSON body, or a dropped connection), to drive the client's retries.
- ``webhook_receiver``: records what the gateway delivers and answers 200.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Reply:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    # Close the connection without answering: what a crashed proxy or gateway looks like.
    drop: bool = False


DROP = Reply(0, drop=True)


def problem(status: int, code: str, *, retry_after: str | None = None, **extra: Any) -> Reply:
    """A problem+json answer as the gateway shapes them (pesaswitch/errors.py)."""
    body = {"type": f"https://pesaswitch.dev/errors/{code}", "title": code, "status": status,
            "code": code, "detail": f"scripted {code}", **extra}  # fmt: skip
    headers = {"content-type": "application/problem+json"}
    if retry_after is not None:
        headers["retry-after"] = retry_after
    return Reply(status, body, headers)


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class LocalServer:
    url: str
    script: list[Reply] = field(default_factory=list)
    default: Reply = field(default_factory=lambda: Reply(200, {}))
    requests: list[Recorded] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def next_reply(self) -> Reply:
        with self.lock:
            return self.script.pop(0) if self.script else self.default

    def header_values(self, name: str) -> list[str | None]:
        with self.lock:
            return [r.headers.get(name.lower()) for r in self.requests]


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    state: LocalServer


class _Handler(BaseHTTPRequestHandler):
    def _answer(self) -> None:
        length = int(self.headers.get("content-length", "0"))
        body = self.rfile.read(length)
        assert isinstance(self.server, _Server)
        state = self.server.state
        with state.lock:
            state.requests.append(Recorded(
                self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body
            ))  # fmt: skip
        reply = state.next_reply()
        if reply.drop:
            self.close_connection = True
            self.connection.close()
            return
        payload = b"" if reply.body is None else json.dumps(reply.body).encode()
        self.send_response(reply.status)
        headers = {"content-type": "application/json", **reply.headers}
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("content-length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_DELETE = _answer

    def log_message(self, format: str, *args: object) -> None:
        return


@contextmanager
def _serving(path: str) -> Iterator[LocalServer]:
    server = _Server(("127.0.0.1", 0), _Handler)
    state = LocalServer(url=f"http://127.0.0.1:{server.server_address[1]}{path}")
    server.state = state
    # A short poll interval: shutdown() waits for the loop to notice, 0.5 s by default.
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def scripted_server(*replies: Reply) -> Iterator[LocalServer]:
    with _serving("") as state:
        state.script.extend(replies)
        yield state


@contextmanager
def webhook_receiver() -> Iterator[LocalServer]:
    with _serving("/hooks") as state:
        yield state
