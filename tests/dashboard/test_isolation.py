"""A merchant's user cannot see or touch another account's objects by changing an id
in a URL or a form: every page and every action answers 'not found'."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest
from sqlalchemy import select

from pesaswitch.accounts.models import ApiKey
from pesaswitch.db import create_engine, create_sessionmaker
from pesaswitch.links.models import PaymentLink
from pesaswitch.webhooks.models import Event, WebhookEndpoint
from tests.conftest import Gateway
from tests.dashboard.conftest import Shop
from tests.dashboard.helpers import post_form


@dataclass
class Theirs:
    payment_id: str
    pending_payment_id: str
    key_id: str
    endpoint_id: str
    event_id: str
    link_id: str


@pytest.fixture
async def theirs(dashboard: Gateway, shops: tuple[Shop, Shop]) -> Theirs:
    """Shop B's objects: a completed and a pending payment, a key, an endpoint, an event,
    a payment link."""
    _, b = shops
    created = await post_form(
        b.client, "/dashboard/webhooks", "/dashboard/webhooks", {"url": "http://127.0.0.1:9/h"}
    )
    assert created.status_code == 201, created.text
    await post_form(b.client, "/dashboard/links", "/dashboard/links", {"description": "B only"})
    paid = await dashboard.client.post(
        "/v1/payments", json={"amount": 15, "phone": "0708374149"}, headers=b.merchant.auth
    )
    assert paid.status_code == 201
    await dashboard.wait_for_status(b.merchant, paid.json()["id"])
    # 254711990002: no callback ever arrives, so the payment stays pending for a while.
    pending = await dashboard.client.post(
        "/v1/payments", json={"amount": 16, "phone": "254711990002"}, headers=b.merchant.auth
    )
    assert pending.status_code == 201
    engine = create_engine(dashboard.settings)
    async with create_sessionmaker(engine)() as session:
        account = b.merchant.account_id
        endpoint_id = await session.scalar(
            select(WebhookEndpoint.id).where(WebhookEndpoint.account_id == account)
        )
        event_id = await session.scalar(
            select(Event.id).where(Event.object_id == paid.json()["id"])
        )
        link_id = await session.scalar(
            select(PaymentLink.id).where(PaymentLink.account_id == account)
        )
    await engine.dispose()
    assert endpoint_id
    assert event_id
    assert link_id
    return Theirs(
        paid.json()["id"], pending.json()["id"], b.merchant.secret_key_id, endpoint_id,
        event_id, link_id,
    )  # fmt: skip


async def test_pages_of_another_account_are_not_found(
    shops: tuple[Shop, Shop], theirs: Theirs
) -> None:
    a, b = shops
    for path in (
        f"/dashboard/payments/{theirs.payment_id}",
        f"/dashboard/payments/{theirs.pending_payment_id}",
        f"/dashboard/webhooks/{theirs.endpoint_id}",
    ):
        assert (await a.client.get(path)).status_code == 404, path
        assert (await b.client.get(path)).status_code == 200, path


async def test_lists_search_and_export_show_only_the_own_account(
    shops: tuple[Shop, Shop], theirs: Theirs
) -> None:
    a, b = shops
    for path in (
        "/dashboard",
        "/dashboard/payments",
        "/dashboard/payments.csv",
        "/dashboard/webhooks",
        "/dashboard/links",
        "/dashboard/keys",
    ):
        mine = (await a.client.get(path)).text
        for their_id in (theirs.payment_id, theirs.endpoint_id, theirs.link_id, theirs.key_id):
            assert their_id not in mine, (path, their_id)
    # Searching for their payment's id finds nothing (the box echoes the query only).
    found = (await a.client.get(f"/dashboard/payments?q={theirs.payment_id}")).text
    assert f'data-payment-id="{theirs.payment_id}"' not in found
    assert "No payments yet" in found
    assert theirs.payment_id in (await b.client.get("/dashboard/payments.csv")).text
    searched = (await b.client.get(f"/dashboard/payments?q={theirs.payment_id}")).text
    assert f'data-payment-id="{theirs.payment_id}"' in searched


async def test_actions_on_another_account_are_not_found_and_change_nothing(
    dashboard: Gateway, shops: tuple[Shop, Shop], theirs: Theirs
) -> None:
    a, b = shops
    actions = [
        (f"/dashboard/payments/{theirs.pending_payment_id}/requery", {}),
        (f"/dashboard/keys/{theirs.key_id}/revoke", {}),
        (f"/dashboard/webhooks/{theirs.endpoint_id}/enabled", {"enabled": "false"}),
        (f"/dashboard/events/{theirs.event_id}/redeliver", {}),
        (
            f"/dashboard/events/{theirs.event_id}/redeliver",
            {"endpoint_id": theirs.endpoint_id},
        ),
        (f"/dashboard/links/{theirs.link_id}/active", {"active": "false"}),
    ]
    for action, data in actions:
        response = await post_form(a.client, "/dashboard", action, data)
        assert response.status_code == 404, (action, response.text)
    # B's key still works, its endpoint is still enabled, its link still takes payments.
    still = await dashboard.client.get(f"/v1/payments/{theirs.payment_id}", headers=b.merchant.auth)
    assert still.status_code == 200
    engine = create_engine(dashboard.settings)
    async with create_sessionmaker(engine)() as session:
        key = await session.get(ApiKey, theirs.key_id)
        endpoint = await session.get(WebhookEndpoint, theirs.endpoint_id)
        link = await session.get(PaymentLink, theirs.link_id)
    await engine.dispose()
    assert key is not None
    assert key.revoked_at is None
    assert endpoint is not None
    assert endpoint.enabled
    assert link is not None
    assert link.is_active
    page = await b.client.get(f"/dashboard/webhooks/{theirs.endpoint_id}")
    # One delivery of that event; nothing redelivered by A.
    assert len(re.findall(f'data-event-id="{theirs.event_id}"', page.text)) == 1


async def test_staff_see_every_account_and_act_on_the_chosen_one(
    dashboard: Gateway, shops: tuple[Shop, Shop], theirs: Theirs
) -> None:
    from tests.dashboard.helpers import browser, make_user, sign_in

    a, _b = shops
    email = f"staff-{theirs.key_id.lower()}@operator.example"
    await make_user(dashboard, email=email, account_id=None, staff=True)
    async with browser(dashboard) as staff:
        assert (await sign_in(staff, email)).status_code == 303
        everything = (await staff.get("/dashboard/payments")).text
        assert theirs.payment_id in everything
        assert (await staff.get(f"/dashboard/payments/{theirs.payment_id}")).status_code == 200
        # Acting needs a chosen account.
        refused = await post_form(staff, "/dashboard", "/dashboard/keys", {"kind": "public"})
        assert refused.status_code == 409
        switched = await post_form(
            staff, "/dashboard", "/dashboard/account", {"account_id": a.merchant.account_id}
        )
        assert switched.status_code == 303
        assert theirs.payment_id not in (await staff.get("/dashboard/payments")).text
        assert (await staff.get(f"/dashboard/payments/{theirs.payment_id}")).status_code == 404
        created = await post_form(staff, "/dashboard/keys", "/dashboard/keys", {"kind": "public"})
        assert created.status_code == 200
        assert "pk_test_" in created.text
    # A merchant's user cannot switch accounts.
    response = await post_form(
        a.client, "/dashboard", "/dashboard/account", {"account_id": theirs.link_id}
    )
    assert response.status_code == 303
    assert "Only staff" in (await a.client.get(response.headers["location"])).text
