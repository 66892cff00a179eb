"""webhooks.verify on deliveries the real gateway made to a local receiver, and on signed
bytes made here (tampering, tolerance, rotation); client.webhook_endpoints and events."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest

from pesaswitch_sdk import (
    NotFoundError,
    PaymentEvent,
    Pesaswitch,
    UnknownEvent,
    WebhookEndpoint,
    webhooks,
)
from pesaswitch_sdk.webhooks import WebhookVerificationError

from local_servers import LocalServer, Recorded, webhook_receiver

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
OTHER_SECRET = "whsec_aGVsbG8gdGhpcyBpcyBhbm90aGVyIHNlY3JldA=="


@pytest.fixture(scope="module")
def receiver() -> Iterator[LocalServer]:
    with webhook_receiver() as running:
        yield running


@pytest.fixture
def endpoint(client: Pesaswitch, receiver: LocalServer) -> Iterator[WebhookEndpoint]:
    created = client.webhook_endpoints.create(
        url=receiver.url, events=["payment.completed", "payment.cancelled"], description="sdk"
    )
    yield created
    client.webhook_endpoints.delete(created.id)


def delivery_of(receiver: LocalServer, payment_id: str, timeout: float = 20) -> Recorded:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with receiver.lock:
            for request in receiver.requests:
                if json.loads(request.body)["data"]["id"] == payment_id:
                    return request
        time.sleep(0.1)
    raise AssertionError(f"no delivery for {payment_id} in {timeout} s")


def arrivals_of(receiver: LocalServer, event_id: str, *, count: int) -> list[Recorded]:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with receiver.lock:
            arrived = [r for r in receiver.requests if r.headers["webhook-id"] == event_id]
        if len(arrived) >= count:
            return arrived
        time.sleep(0.1)
    raise AssertionError(f"{event_id} did not arrive {count} times in 20 s")


class TestRealDeliveries:
    def test_a_completed_payment_verifies_as_a_typed_event(
        self, client: Pesaswitch, receiver: LocalServer, endpoint: WebhookEndpoint
    ) -> None:
        assert endpoint.secret is not None
        assert endpoint.secret.startswith("whsec_")
        payment = client.payments.create(amount=21, phone="254708374149")
        delivered = delivery_of(receiver, payment.id)

        event = webhooks.verify(delivered.body, delivered.headers, endpoint.secret)
        assert isinstance(event, PaymentEvent)
        assert event.type == "payment.completed"
        assert event.id == delivered.headers["webhook-id"]
        assert event.data.id == payment.id
        assert event.data.mpesa_receipt is not None
        # The same event, read back from the API.
        listed = client.events.get(event.id)
        assert isinstance(listed, PaymentEvent)
        assert listed.data == event.data

    def test_the_wrong_secret_or_a_changed_body_fails(
        self, client: Pesaswitch, receiver: LocalServer, endpoint: WebhookEndpoint
    ) -> None:
        assert endpoint.secret is not None
        payment = client.payments.create(amount=22, phone="254711001032")
        delivered = delivery_of(receiver, payment.id)
        with pytest.raises(WebhookVerificationError):
            webhooks.verify(delivered.body, delivered.headers, OTHER_SECRET)
        forged = delivered.body.replace(b'"cancelled"', b'"completed"')
        assert forged != delivered.body
        with pytest.raises(WebhookVerificationError):
            webhooks.verify(forged, delivered.headers, endpoint.secret)

    def test_endpoints_and_deliveries_through_the_client(
        self, client: Pesaswitch, receiver: LocalServer, endpoint: WebhookEndpoint
    ) -> None:
        assert endpoint.id in {e.id for e in client.webhook_endpoints.list()}
        assert client.webhook_endpoints.get(endpoint.id).secret is None  # shown once
        payment = client.payments.create(amount=23, phone="254708374149")
        delivered = delivery_of(receiver, payment.id)
        event_id = delivered.headers["webhook-id"]
        deliveries = list(client.events.deliveries(event_id))
        assert [d.endpoint_id for d in deliveries] == [endpoint.id]

        assert client.webhook_endpoints.disable(endpoint.id).enabled is False
        assert client.webhook_endpoints.enable(endpoint.id).enabled is True
        rotated = client.webhook_endpoints.rotate_secret(endpoint.id)
        assert rotated.secret is not None
        assert rotated.secret != endpoint.secret

        again = client.events.redeliver(event_id, endpoint_id=endpoint.id)
        assert len(again) == 1
        redelivered = arrivals_of(receiver, event_id, count=2)[-1]
        # While both secrets are valid the gateway signs with each, so both verify.
        for secret in (endpoint.secret, rotated.secret):
            assert secret is not None
            assert webhooks.verify(redelivered.body, redelivered.headers, secret).id == event_id

    def test_a_deleted_endpoint_is_gone(self, client: Pesaswitch, receiver: LocalServer) -> None:
        created = client.webhook_endpoints.create(url=receiver.url)
        client.webhook_endpoints.delete(created.id)
        with pytest.raises(NotFoundError):
            client.webhook_endpoints.get(created.id)


def signed(body: bytes, *, at: int, secret: str = SECRET) -> dict[str, str]:
    signature = webhooks.sign(secret, webhook_id="evt_1", timestamp=at, body=body)
    return {"Webhook-Id": "evt_1", "Webhook-Timestamp": str(at), "Webhook-Signature": signature}


class TestVerifyOffline:
    BODY = json.dumps({"id": "evt_1", "type": "refund.completed", "data": {"id": "re_1"}}).encode()

    def test_an_unknown_event_type_is_read_not_refused(self) -> None:
        event = webhooks.verify(self.BODY, signed(self.BODY, at=int(time.time())), SECRET)
        assert isinstance(event, UnknownEvent)
        assert event.data == {"id": "re_1"}

    def test_the_tolerance_is_applied_both_ways(self) -> None:
        now = 1_800_000_000
        headers = signed(self.BODY, at=now - 301)
        with pytest.raises(WebhookVerificationError, match="beyond 300"):
            webhooks.verify(self.BODY, headers, SECRET, now=now)
        assert webhooks.verify(self.BODY, headers, SECRET, now=now, tolerance=600).id == "evt_1"
        with pytest.raises(WebhookVerificationError):
            webhooks.verify(self.BODY, signed(self.BODY, at=now + 301), SECRET, now=now)

    def test_any_one_of_several_signatures_will_do(self) -> None:
        at = int(time.time())
        headers = signed(self.BODY, at=at, secret=OTHER_SECRET)
        mine = signed(self.BODY, at=at)["Webhook-Signature"]
        headers["Webhook-Signature"] = f"v1a,ZWQyNTUxOQ== {headers['Webhook-Signature']} {mine}"
        assert webhooks.verify(self.BODY, headers, SECRET).id == "evt_1"

    def test_missing_headers(self) -> None:
        with pytest.raises(WebhookVerificationError, match="Missing"):
            webhooks.verify(self.BODY, {"webhook-id": "evt_1"}, SECRET)
