"""A complete pesaswitch webhook receiver using only the standard library and pesaswitch.

    PESASWITCH_WEBHOOK_SECRET=whsec_... python examples/webhook_receiver.py 8081

It verifies every request, answers 2xx quickly, and treats ``webhook-id`` as the
idempotency key: deliveries are at least once, so the same event can arrive twice.
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
        if event["id"] not in seen:
            seen.add(event["id"])
            payment = event["data"]
            # Fulfil the order here, e.g. mark payment["reference"] paid on "payment.completed".
            print(json.dumps({"type": event["type"], "payment": payment["id"],
                              "status": payment["status"]}), flush=True)  # fmt: skip
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        return


if __name__ == "__main__":
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8081
    ThreadingHTTPServer(("127.0.0.1", port), Receiver).serve_forever()
