"""Webhook delivery, retries, redelivery and signing, in-process with a real receiver."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from standardwebhooks.webhooks import Webhook

from pesaswitch.config import Settings
from pesaswitch.webhooks import WebhookVerificationError, verify
from tests.conftest import Gateway, Merchant, create_merchant, problem, settings_maker
from tests.support.receiver import Receiver, running_receiver

FAST_WEBHOOKS = {
    "webhook_retry_schedule": "0.1,0.1,0.1",
    "webhook_interval": 0.05,
    "webhook_timeout": 2.0,
    "sandbox_allow_private_urls": True,
}


@pytest.fixture
def make_settings(isolated_database_url: str) -> Callable[..., Settings]:
    """Each test's gateway on a database of its own. The dispatcher claims every due
    delivery in its database, oldest first, and these tests count attempts 0.1 s apart: in
    the suite's shared database, deliveries that earlier tests left pending (22 to closed
    ports when this module starts on PostgreSQL, due minutes later on the backoff of the
    gateway that made them) come due among them and share the dispatcher."""
    return settings_maker(isolated_database_url)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver() as running:
        yield running


async def wait_until(check: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def setup(gateway_factory: Any, **overrides: Any) -> tuple[Gateway, Merchant]:
    gateway: Gateway = await gateway_factory(**{**FAST_WEBHOOKS, **overrides})
    return gateway, await create_merchant(gateway.settings)


async def add_endpoint(
    gateway: Gateway, merchant: Merchant, url: str, **fields: Any
) -> dict[str, Any]:
    response = await gateway.client.post(
        "/v1/webhook-endpoints", headers=merchant.auth, json={"url": url, **fields}
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def pay(gateway: Gateway, merchant: Merchant, phone: str, **fields: Any) -> dict[str, Any]:
    created = await gateway.client.post(
        "/v1/payments", headers=merchant.auth, json={"amount": 10, "phone": phone, **fields}
    )
    assert created.status_code == 201, created.text
    return await gateway.wait_for_status(merchant, created.json()["id"])


async def test_completed_payment_sends_one_signed_event_per_endpoint(
    gateway_factory: Any, receiver: Receiver
) -> None:
    gateway, merchant = await setup(gateway_factory)
    everything = await add_endpoint(gateway, merchant, receiver.url + "/all")
    completed_only = await add_endpoint(
        gateway, merchant, receiver.url + "/ok", events=["payment.completed"]
    )
    await add_endpoint(gateway, merchant, receiver.url + "/failed", events=["payment.failed"])
    assert everything["secret"].startswith("whsec_")

    payment = await pay(gateway, merchant, "0708374149")
    assert payment["status"] == "completed"
    await wait_until(lambda: len(receiver.received) == 2)
    await asyncio.sleep(0.3)
    assert sorted(r.path for r in receiver.received) == ["/hooks/all", "/hooks/ok"]

    secrets = {"/hooks/all": everything["secret"], "/hooks/ok": completed_only["secret"]}
    for request in receiver.received:
        event = Webhook(secrets[request.path]).verify(request.body, request.headers)
        assert event["type"] == "payment.completed"
        assert event["data"]["id"] == payment["id"]
        assert event["data"]["mpesa_receipt"] == payment["mpesa_receipt"]
        assert request.headers["webhook-id"] == event["id"]
        # The package's own helper agrees, and a wrong secret is refused.
        assert verify(request.body, request.headers, secrets[request.path])["id"] == event["id"]
        with pytest.raises(WebhookVerificationError):
            verify(request.body, request.headers, "whsec_" + "A" * 44)

    events = (await gateway.client.get("/v1/events", headers=merchant.auth)).json()["data"]
    assert [e["type"] for e in events] == ["payment.completed"]
    one = await gateway.client.get(f"/v1/events/{events[0]['id']}", headers=merchant.read_auth)
    assert one.json()["data"]["id"] == payment["id"]


async def test_each_final_status_has_its_event(gateway_factory: Any, receiver: Receiver) -> None:
    gateway, merchant = await setup(gateway_factory)
    await add_endpoint(gateway, merchant, receiver.url)
    for phone in ("0711001032", "0711001037", "0711002001"):
        await pay(gateway, merchant, phone)
    await wait_until(lambda: len(receiver.received) == 3)
    types = sorted(json.loads(r.body)["type"] for r in receiver.received)
    assert types == ["payment.cancelled", "payment.expired", "payment.failed"]


async def test_500_three_times_then_200_is_delivered_on_the_fourth_attempt(
    gateway_factory: Any, receiver: Receiver
) -> None:
    gateway, merchant = await setup(gateway_factory)
    endpoint = await add_endpoint(gateway, merchant, receiver.url)
    receiver.script = [500, 500, 500]
    await pay(gateway, merchant, "0708374149")
    await wait_until(lambda: len(receiver.received) == 4)
    assert len(set(receiver.ids())) == 1  # the same webhook-id on every retry
    timestamps = [r.headers["webhook-timestamp"] for r in receiver.received]
    assert all(t.isdigit() for t in timestamps)

    async def delivery() -> dict[str, Any]:
        page = await gateway.client.get(
            f"/v1/webhook-endpoints/{endpoint['id']}/deliveries", headers=merchant.auth
        )
        data: dict[str, Any] = page.json()["data"][0]
        return data

    for _ in range(100):
        found = await delivery()
        if found["status"] == "succeeded":
            break
        await asyncio.sleep(0.05)
    assert found["status"] == "succeeded"
    assert [a["status_code"] for a in found["attempts"]] == [500, 500, 500, 200]
    assert [a["number"] for a in found["attempts"]] == [1, 2, 3, 4]
    assert found["attempts"][0]["response_body"] == "answered 500"
    assert all(a["duration_ms"] >= 0 for a in found["attempts"])


async def test_receiver_down_for_the_whole_schedule_fails_then_redelivery_succeeds(
    gateway_factory: Any, receiver: Receiver
) -> None:
    gateway, merchant = await setup(gateway_factory)
    endpoint = await add_endpoint(gateway, merchant, receiver.url)
    receiver.default_status = 503
    payment = await pay(gateway, merchant, "0708374149")

    async def deliveries() -> list[dict[str, Any]]:
        page = await gateway.client.get(
            f"/v1/webhook-endpoints/{endpoint['id']}/deliveries", headers=merchant.auth
        )
        data: list[dict[str, Any]] = page.json()["data"]
        return data

    for _ in range(200):
        found = await deliveries()
        if found and found[0]["status"] == "failed":
            break
        await asyncio.sleep(0.05)
    assert found[0]["status"] == "failed"
    assert found[0]["attempt_count"] == 4  # first try + the 3 retries of the schedule
    assert len(receiver.received) == 4

    receiver.default_status = 200
    event_id = receiver.received[0].headers["webhook-id"]
    redo = await gateway.client.post(f"/v1/events/{event_id}/redeliver", headers=merchant.auth)
    assert redo.status_code == 202
    await wait_until(lambda: len(receiver.received) == 5)
    assert receiver.received[-1].headers["webhook-id"] == event_id
    assert json.loads(receiver.received[-1].body)["data"]["id"] == payment["id"]


async def test_410_disables_the_endpoint(gateway_factory: Any, receiver: Receiver) -> None:
    gateway, merchant = await setup(gateway_factory)
    endpoint = await add_endpoint(gateway, merchant, receiver.url)
    receiver.default_status = 410
    await pay(gateway, merchant, "0708374149")
    await wait_until(lambda: len(receiver.received) == 1)
    for _ in range(100):
        current = (
            await gateway.client.get(
                f"/v1/webhook-endpoints/{endpoint['id']}", headers=merchant.auth
            )
        ).json()
        if not current["enabled"]:
            break
        await asyncio.sleep(0.05)
    assert current["enabled"] is False
    assert "410" in current["disabled_reason"]
    await asyncio.sleep(0.4)
    assert len(receiver.received) == 1  # no retries to a receiver that said Gone


async def test_rotated_secret_signs_with_both_for_a_day(
    gateway_factory: Any, receiver: Receiver
) -> None:
    gateway, merchant = await setup(gateway_factory)
    endpoint = await add_endpoint(gateway, merchant, receiver.url)
    rotated = await gateway.client.post(
        f"/v1/webhook-endpoints/{endpoint['id']}/rotate-secret", headers=merchant.auth
    )
    new_secret = rotated.json()["secret"]
    assert new_secret != endpoint["secret"]
    await pay(gateway, merchant, "0708374149")
    await wait_until(lambda: len(receiver.received) == 1)
    request = receiver.received[0]
    assert len(request.headers["webhook-signature"].split(" ")) == 2
    Webhook(new_secret).verify(request.body, request.headers)
    Webhook(endpoint["secret"]).verify(request.body, request.headers)


async def test_callback_url_gets_the_native_event(gateway_factory: Any, receiver: Receiver) -> None:
    gateway, merchant = await setup(gateway_factory)
    payment = await pay(gateway, merchant, "0708374149", callback_url=receiver.url + "/order-9")
    await wait_until(lambda: len(receiver.received) == 1)
    secret = (await gateway.client.get("/v1/callback-secret", headers=merchant.auth)).json()
    event = Webhook(secret["secret"]).verify(
        receiver.received[0].body, receiver.received[0].headers
    )
    assert receiver.received[0].path == "/hooks/order-9"
    assert event["data"]["id"] == payment["id"]


async def test_endpoint_management_and_scoping(gateway_factory: Any, receiver: Receiver) -> None:
    gateway, merchant = await setup(gateway_factory)
    other = await create_merchant(gateway.settings, "Other")
    endpoint = await add_endpoint(gateway, merchant, receiver.url, description="orders")
    listed = (await gateway.client.get("/v1/webhook-endpoints", headers=merchant.auth)).json()
    assert [e["id"] for e in listed] == [endpoint["id"]]
    assert listed[0]["secret"] is None  # shown once only
    for method, path in [
        ("GET", f"/v1/webhook-endpoints/{endpoint['id']}"),
        ("DELETE", f"/v1/webhook-endpoints/{endpoint['id']}"),
        ("POST", f"/v1/webhook-endpoints/{endpoint['id']}/disable"),
        ("POST", f"/v1/webhook-endpoints/{endpoint['id']}/rotate-secret"),
        ("GET", f"/v1/webhook-endpoints/{endpoint['id']}/deliveries"),
    ]:
        response = await gateway.client.request(method, path, headers=other.auth)
        assert response.status_code == 404, (method, path)
    assert (await gateway.client.get("/v1/webhook-endpoints", headers=other.auth)).json() == []

    disabled = await gateway.client.post(
        f"/v1/webhook-endpoints/{endpoint['id']}/disable", headers=merchant.auth
    )
    assert disabled.json()["enabled"] is False
    await pay(gateway, merchant, "0708374149")
    await asyncio.sleep(0.3)
    assert receiver.received == []
    enabled = await gateway.client.post(
        f"/v1/webhook-endpoints/{endpoint['id']}/enable", headers=merchant.auth
    )
    assert enabled.json()["enabled"] is True
    deleted = await gateway.client.delete(
        f"/v1/webhook-endpoints/{endpoint['id']}", headers=merchant.auth
    )
    assert deleted.status_code == 204
    gone = await gateway.client.get(
        f"/v1/webhook-endpoints/{endpoint['id']}", headers=merchant.auth
    )
    assert gone.status_code == 404

    bad = await gateway.client.post(
        "/v1/webhook-endpoints", headers=merchant.auth, json={"url": receiver.url, "events": ["x"]}
    )
    assert bad.status_code == 422
    assert problem(bad)["code"] == "validation_error"
    read_only = await gateway.client.post(
        "/v1/webhook-endpoints", headers=merchant.read_auth, json={"url": receiver.url}
    )
    assert read_only.status_code == 403
    events = (await gateway.client.get("/v1/events", headers=merchant.auth)).json()["data"]
    foreign = await gateway.client.get(f"/v1/events/{events[0]['id']}", headers=other.auth)
    assert foreign.status_code == 404
    foreign_redeliver = await gateway.client.post(
        f"/v1/events/{events[0]['id']}/redeliver", headers=other.auth
    )
    assert foreign_redeliver.status_code == 404


async def test_a_slow_receiver_does_not_hold_up_others(gateway_factory: Any) -> None:
    """A receiver that does not answer, with many deliveries queued, cannot take every
    slot: another merchant's webhook still goes out while the slow sends are all held."""
    import threading

    from pesaswitch.accounts.models import Environment
    from pesaswitch.db import transaction
    from pesaswitch.webhooks import service as webhooks
    from pesaswitch.webhooks.models import EventType

    gateway, slow_shop = await setup(gateway_factory, webhook_concurrency=8)
    fast_shop = await create_merchant(gateway.settings, "Fast shop")
    gate = threading.Event()
    held = 0
    with running_receiver() as slow, running_receiver() as fast:
        original = slow.next_status

        def slowly() -> int:
            nonlocal held
            with slow.lock:
                held += 1
            # Held until the fast receiver has its webhook; far longer than the wait below
            # if that webhook were queued behind these.
            gate.wait(20)
            return original()

        slow.next_status = slowly  # type: ignore[method-assign]
        runtime = gateway.app.state.runtime
        async with transaction(runtime.sessionmaker) as session:
            for shop, url in ((slow_shop, slow.url), (fast_shop, fast.url)):
                await webhooks.create_endpoint(
                    session, secret_key=gateway.settings.secret_key, account_id=shop.account_id,
                    environment=Environment.SANDBOX, url=url, event_types=None, description="",
                    allow_private=True,
                )  # fmt: skip
            for i in range(30):
                await webhooks.record_event(
                    session, account_id=slow_shop.account_id,
                    event_type=EventType.PAYMENT_COMPLETED, object_id=f"pay_slow_{i}", data={},
                )  # fmt: skip
        # The slow sends take their slots first (their events are older)...
        await wait_until(lambda: held > 0)
        async with transaction(runtime.sessionmaker) as session:
            await webhooks.record_event(
                session, account_id=fast_shop.account_id, event_type=EventType.PAYMENT_COMPLETED,
                object_id="pay_fast", data={},
            )  # fmt: skip
        try:
            # ...and the fast one goes out while they are still held.
            await wait_until(lambda: len(fast.received) == 1, timeout=10)
            assert slow.received == []
            assert 0 < held <= gateway.settings.webhook_destination_cap
        finally:
            gate.set()
