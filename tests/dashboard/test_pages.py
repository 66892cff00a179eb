"""What the pages show: totals, chart, lists with search and pages, a payment's story,
CSV, keys shown once, redelivery, re-query, wallet."""

from __future__ import annotations

import csv
import io
import re
from datetime import timedelta
from typing import Any

from sqlalchemy import event, insert, select

from pesaswitch.db import create_engine, create_sessionmaker, transaction
from pesaswitch.kit.clock import utcnow
from pesaswitch.kit.ids import new_id
from pesaswitch.payments.models import Payment
from pesaswitch.webhooks.models import Delivery
from tests.conftest import Gateway
from tests.dashboard.conftest import Shop
from tests.dashboard.helpers import post_form


async def _pay(gateway: Gateway, shop: Shop, amount: int, phone: str) -> dict[str, Any]:
    response = await gateway.client.post(
        "/v1/payments", json={"amount": amount, "phone": phone}, headers=shop.merchant.auth
    )
    assert response.status_code == 201, response.text
    return await gateway.wait_for_status(shop.merchant, response.json()["id"])


async def test_overview_counts_today_and_draws_the_chart(
    dashboard: Gateway, shops: tuple[Shop, Shop]
) -> None:
    shop, other = shops
    assert (await _pay(dashboard, shop, 10, "0708374149"))["status"] == "completed"
    assert (await _pay(dashboard, shop, 20, "0708374150"))["status"] == "completed"
    assert (await _pay(dashboard, shop, 30, "254711001032"))["status"] == "cancelled"
    await _pay(dashboard, other, 999, "0708374151")  # another account's: not counted
    page = (await shop.client.get("/dashboard")).text
    today = page.split('id="tile-1"')[1].split('id="tile-2"')[0]
    assert 'data-volume="30"' in today
    assert "2 completed · 1 failed · 0 pending" in today
    assert "66.7%" in today
    assert re.search(r'class="bar-completed" data-day="[\d-]+" data-count="2"', page)
    assert re.search(r'class="bar-failed" data-day="[\d-]+" data-count="1"', page)
    assert "<svg" in page


async def test_ten_thousand_payments_are_paged_in_the_database(
    dashboard: Gateway, shops: tuple[Shop, Shop]
) -> None:
    shop, _ = shops
    engine = create_engine(dashboard.settings)
    start = utcnow() - timedelta(days=40)
    rows = [
        {
            "id": new_id("pay", now_ms=int((start + timedelta(seconds=i)).timestamp() * 1000)),
            "account_id": shop.merchant.account_id,
            "channel_id": shop.merchant.channel_id,
            "amount": 1 + i % 500,
            "currency": "KES",
            "phone": f"2547{i:08d}",
            "reference": f"R{i:09d}",
            "callback_token": f"tok-{i}-{shop.merchant.account_id}",
            "status": "completed",
            "push_state": "accepted",
            "dialect": "native",
            "query_attempts": 0,
            "created_at": start + timedelta(seconds=i),
            "updated_at": start + timedelta(seconds=i),
        }
        for i in range(10_000)
    ]
    async with transaction(create_sessionmaker(engine)) as session:
        await session.execute(insert(Payment), rows)
    await engine.dispose()

    statements: list[str] = []
    runtime_engine = dashboard.app.state.runtime.engine

    def capture(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if "FROM payments" in statement:
            statements.append(statement)

    event.listen(runtime_engine.sync_engine, "before_cursor_execute", capture)
    try:
        seen: list[str] = []
        path = "/dashboard/payments"
        for _ in range(3):
            page = await shop.client.get(path)
            assert page.status_code == 200
            ids = re.findall(r'data-payment-id="(pay_\w+)"', page.text)
            assert len(ids) == 50
            assert ids == sorted(ids, reverse=True)
            assert not set(ids) & set(seen)
            seen += ids
            path = re.search(r'href="(\?after=pay_\w+)" rel="next"', page.text).group(1)  # type: ignore[union-attr]
            path = "/dashboard/payments" + path
    finally:
        event.remove(runtime_engine.sync_engine, "before_cursor_execute", capture)
    assert seen[0] == max(r["id"] for r in rows)
    assert all("LIMIT" in s for s in statements if "ORDER BY payments.id DESC" in s)
    # Searching one of them by its reference finds exactly that one.
    found = await shop.client.get("/dashboard/payments?q=R000004321")
    assert re.findall(r'data-payment-id="(pay_\w+)"', found.text) == [rows[4321]["id"]]
    # Date filters are Nairobi days.
    last_day = (rows[-1]["created_at"] + timedelta(hours=3)).date()
    filtered = await shop.client.get(
        f"/dashboard/payments?created_from={last_day}&created_to={last_day}"
    )
    assert rows[-1]["id"] in filtered.text
    before = (rows[0]["created_at"] + timedelta(hours=3)).date() - timedelta(days=1)
    empty = await shop.client.get(f"/dashboard/payments?created_to={before}")
    assert "No payments yet" in empty.text
    bad = await shop.client.get("/dashboard/payments?created_from=yesterday")
    assert bad.status_code == 422
    assert "must be a date" in bad.text


async def test_payment_detail_tells_its_story_and_masks_only_lists(
    dashboard: Gateway, shops: tuple[Shop, Shop]
) -> None:
    shop, _ = shops
    await post_form(
        shop.client, "/dashboard/webhooks", "/dashboard/webhooks", {"url": "http://127.0.0.1:9/x"}
    )
    paid = await _pay(dashboard, shop, 42, "0708374149")
    listing = (await shop.client.get("/dashboard/payments")).text
    assert "2547*****149" in listing
    assert "254708374149" not in listing
    detail = (await shop.client.get(f"/dashboard/payments/{paid['id']}")).text
    assert "254708374149" in detail
    assert paid["mpesa_receipt"] in detail
    assert "Daraja callback received" in detail
    assert "applied" in detail
    assert "payment.completed" in detail
    assert "http://127.0.0.1:9/x" in detail


async def test_csv_export_streams_the_filtered_payments(
    dashboard: Gateway, shops: tuple[Shop, Shop]
) -> None:
    shop, _ = shops
    done = await _pay(dashboard, shop, 11, "0708374149")
    failed = await _pay(dashboard, shop, 12, "254711001032")
    response = await shop.client.get("/dashboard/payments.csv?status=completed")
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    ids = {r["id"] for r in rows}
    assert done["id"] in ids
    assert failed["id"] not in ids
    assert all(r["status"] == "completed" for r in rows)
    assert rows[0]["mpesa_receipt"]


async def test_a_new_key_is_shown_once_and_works_then_revoked_it_stops(
    dashboard: Gateway, shops: tuple[Shop, Shop]
) -> None:
    shop, _ = shops
    created = await post_form(shop.client, "/dashboard/keys", "/dashboard/keys", {"kind": "secret"})
    key = re.search(r'id="new-key-value">(sk_test_[\w-]+)<', created.text).group(1)  # type: ignore[union-attr]
    listing = (await shop.client.get("/dashboard/keys")).text
    assert key not in listing
    assert key[-4:] in listing
    headers = {"Authorization": f"Bearer {key}"}
    assert (await dashboard.client.get("/v1/payments", headers=headers)).status_code == 200
    key_id = re.search(r'data-key-id="(key_\w+)"', created.text).group(1)  # type: ignore[union-attr]
    revoked = await post_form(
        shop.client, "/dashboard/keys", f"/dashboard/keys/{key_id}/revoke", {}
    )
    assert revoked.status_code == 303
    assert (await dashboard.client.get("/v1/payments", headers=headers)).status_code == 401


async def test_redeliver_queues_a_fresh_delivery_of_the_same_event(
    dashboard: Gateway, shops: tuple[Shop, Shop]
) -> None:
    shop, _ = shops
    await post_form(
        shop.client, "/dashboard/webhooks", "/dashboard/webhooks", {"url": "http://127.0.0.1:9/r"}
    )
    paid = await _pay(dashboard, shop, 13, "0708374149")
    endpoint_id = re.search(
        r'data-endpoint-id="(we_\w+)"', (await shop.client.get("/dashboard/webhooks")).text
    ).group(1)  # type: ignore[union-attr]
    page = (await shop.client.get(f"/dashboard/webhooks/{endpoint_id}")).text
    event_id = re.search(r'data-event-id="(evt_\w+)"', page).group(1)  # type: ignore[union-attr]
    response = await post_form(
        shop.client, f"/dashboard/webhooks/{endpoint_id}",
        f"/dashboard/events/{event_id}/redeliver",
        {"endpoint_id": endpoint_id, "back": f"/dashboard/webhooks/{endpoint_id}"},
    )  # fmt: skip
    assert response.status_code == 303
    assert "Queued 1 new delivery" in (await shop.client.get(response.headers["location"])).text
    engine = create_engine(dashboard.settings)
    async with create_sessionmaker(engine)() as session:
        deliveries = list(
            await session.scalars(select(Delivery).where(Delivery.event_id == event_id))
        )
    await engine.dispose()
    assert len(deliveries) == 2
    assert {d.endpoint_id for d in deliveries} == {endpoint_id}
    assert paid["id"]


async def test_requery_asks_mpesa_about_a_pending_payment(
    dashboard: Gateway, shops: tuple[Shop, Shop]
) -> None:
    shop, _ = shops
    # 254711990002: the callback never comes; only a status query learns the outcome.
    response = await dashboard.client.post(
        "/v1/payments", json={"amount": 14, "phone": "254711990002"}, headers=shop.merchant.auth
    )
    payment_id = response.json()["id"]
    page = await shop.client.get(f"/dashboard/payments/{payment_id}")
    if 'id="requery"' in page.text:
        done = await post_form(
            shop.client, f"/dashboard/payments/{payment_id}",
            f"/dashboard/payments/{payment_id}/requery",
        )  # fmt: skip
        assert done.status_code == 303
        assert "M-Pesa was asked" in (await shop.client.get(done.headers["location"])).text
    final = await dashboard.wait_for_status(shop.merchant, payment_id)
    assert final["status"] == "completed"
    assert 'id="requery"' not in (await shop.client.get(f"/dashboard/payments/{payment_id}")).text


async def test_wallet_shows_the_balance_and_entries(
    dashboard: Gateway, shops: tuple[Shop, Shop]
) -> None:
    shop, _ = shops
    paid = await _pay(dashboard, shop, 500, "0708374149")
    page = (await shop.client.get("/dashboard/wallet")).text
    balance = await dashboard.client.get("/v1/balance", headers=shop.merchant.auth)
    kes = next(a["amount"] for a in balance.json()["available"] if a["currency"] == "KES")
    assert 0 < kes <= 500  # the collection, less the operator's fee
    assert paid["id"] in page
    assert f'id="available-KES">KES {kes:,}<' in page
    # The collection's entry, one wallet line (however many shards the wallet has).
    assert page.count(f"wallet +{kes} KES") == 1
