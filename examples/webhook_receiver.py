"""A complete pesaswitch webhook receiver using only the standard library and pesaswitch.

    PESASWITCH_WEBHOOK_SECRET=whsec_... python examples/webhook_receiver.py 8081

It verifies every request, answers 2xx quickly, and treats ``webhook-id`` as the
idempotency key: deliveries are at least once, so the same event can arrive twice.

Per-request callbacks (``callback_url``, Pokea's ``result_url``) carry the same headers,
signed with the account's callback secret (``GET /v1/callback-secret``): run a second
receiver with that secret and it prints their bodies as they come.
"""

from __future__ import annotations

import json
import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from pesaswitch.webhooks import WebhookVerificationError, verify

SECRET = os.environ["PESASWITCH_WEBHOOK_SECRET"]
seen: set[str] = set()  # use your database in production


class Receiver(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        try:
            event = verify(body, dict(self.headers.items()), SECRET)
        except WebhookVerificationError:
            self.send_response(400)  # not from pesaswitch, or replayed: refuse it
            self.end_headers()
            return
        webhook_id = self.headers["webhook-id"]  # the same on every retry of one event
        if webhook_id not in seen:
            seen.add(webhook_id)
            if "type" in event and "data" in event:  # a native event
                payment = event["data"]
                # Fulfil the order here, e.g. mark payment["reference"] paid on completion.
                print(json.dumps({"type": event["type"], "payment": payment["id"],
                                  "status": payment["status"]}), flush=True)  # fmt: skip
            else:  # a per-request callback in a dialect's shape (PayHero, Pokea Pay)
                print(json.dumps({"path": self.path, "callback": event}), flush=True)
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        return


if __name__ == "__main__":
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8081
    ThreadingHTTPServer(("127.0.0.1", port), Receiver).serve_forever()
