"""Events and the outbox. Writing an event in the caller's transaction is what makes the
outbox transactional: the state change and its notifications commit or vanish together."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, cast

from sqlalchemy import Select, Table, bindparam, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from pesaswitch.accounts.models import Account, Environment
from pesaswitch.db import transient
from pesaswitch.errors import NotFound, ValidationFailed
from pesaswitch.kit import crypto
from pesaswitch.kit.clock import isoformat, utcnow
from pesaswitch.kit.ids import new_id
from pesaswitch.kit.pagination import PageParams
from pesaswitch.webhooks import formats, signing
from pesaswitch.webhooks.models import (
    Delivery,
    DeliveryAttempt,
    DeliveryStatus,
    Event,
    EventType,
    WebhookEndpoint,
)
from pesaswitch.webhooks.ssrf import check_url

# Plain Core INSERTs on the tables, built once (record_event runs for every payment).
_INSERT_EVENT = insert(cast(Table, Event.__table__))
_INSERT_DELIVERY = insert(cast(Table, Delivery.__table__))

_EndpointRow = tuple[str, str, str, list[str] | None]
# The account's live endpoints, built once and run with the account bound.
_ENDPOINTS: Select[_EndpointRow] = select(
    WebhookEndpoint.id, WebhookEndpoint.url, WebhookEndpoint.style, WebhookEndpoint.event_types
).where(
    WebhookEndpoint.account_id == bindparam("account_id"),
    WebhookEndpoint.enabled,
    WebhookEndpoint.deleted_at.is_(None),
)
EVENT_COLUMNS = ("id", "account_id", "type", "object_id", "payload", "created_at")
# On PostgreSQL the event's INSERT rides in the same statement as a data-modifying CTE:
# one round trip for both, and PostgreSQL runs a WITH's INSERT exactly once whether or
# not the query reads it. SQLite has no INSERT in a WITH, and no round trip to save.
_EVENT_AND_ENDPOINTS: Select[_EndpointRow] = _ENDPOINTS.add_cte(
    _INSERT_EVENT.values({name: bindparam(f"e_{name}") for name in EVENT_COLUMNS}).cte("new_event")
)

# A rotated-out secret keeps signing alongside the new one for a day (as Stripe does).
ROTATION_OVERLAP = timedelta(hours=24)


async def record_event(
    session: AsyncSession,
    *,
    account_id: str,
    event_type: EventType,
    object_id: str,
    data: dict[str, Any],
    callback_url: str | None = None,
    callback_dialect: str = formats.NATIVE,
) -> Event:
    """Write the event and one delivery per destination, in the caller's transaction.

    Core INSERTs and a SELECT of the endpoints' columns, not ORM objects and a flush: this
    runs once per settled payment, and the unit of work cost more CPU than the three
    statements themselves. On PostgreSQL the event's INSERT and the SELECT are one
    statement. The returned event is not in the session.
    """
    event = new_event(account_id=account_id, event_type=event_type, object_id=object_id, data=data)
    row = event_row(event)
    together = session.get_bind().dialect.name == "postgresql"
    if together:
        params = {f"e_{name}": value for name, value in row.items()}
        endpoints = await session.execute(
            _EVENT_AND_ENDPOINTS, {"account_id": account_id, **params}
        )
    else:
        endpoints = await session.execute(_ENDPOINTS, {"account_id": account_id})
    deliveries = delivery_rows(
        event, data, endpoints.tuples(), callback_url=callback_url,
        callback_dialect=callback_dialect,
    )  # fmt: skip
    if not together:
        await session.execute(_INSERT_EVENT, row)
    if deliveries:
        await session.execute(_INSERT_DELIVERY, deliveries)
    return event


def new_event(
    *, account_id: str, event_type: EventType, object_id: str, data: dict[str, Any]
) -> Event:
    """The event as it is stored: its payload is the JSON every destination signs."""
    now = utcnow()
    event_id = new_id("evt")
    payload = json.dumps(
        {"id": event_id, "type": event_type.value, "created_at": isoformat(now), "data": data},
        separators=(",", ":"),
    )
    return transient(Event, {
        "id": event_id, "account_id": account_id, "type": event_type.value,
        "object_id": object_id, "payload": payload, "created_at": now,
    })  # fmt: skip


def event_row(event: Event) -> dict[str, Any]:
    return {name: getattr(event, name) for name in EVENT_COLUMNS}


def delivery_rows(
    event: Event,
    data: dict[str, Any],
    endpoints: Iterable[Sequence[Any]],
    *,
    callback_url: str | None,
    callback_dialect: str,
) -> list[dict[str, Any]]:
    """One outbox row per destination: each live endpoint (id, url, style, event types)
    subscribed to the event, and the payment's own callback URL in its dialect."""
    deliveries = [
        _delivery_row(event, url, endpoint_id, formats.render_for_endpoint(style, event.type, data))
        for endpoint_id, url, style, event_types in endpoints
        if event_types is None or event.type in event_types
    ]
    if callback_url:
        body = formats.render_callback(callback_dialect, event.type, data)
        delivery = _delivery_row(event, callback_url, None, body)
        delivery["format"] = None if body is None else callback_dialect
        deliveries.append(delivery)
    return deliveries


def _delivery_row(
    event: Event, url: str, endpoint_id: str | None, body: str | None
) -> dict[str, Any]:
    now = utcnow()
    return {
        "id": new_id("dlv"), "account_id": event.account_id, "event_id": event.id,
        "endpoint_id": endpoint_id, "url": url, "body": body, "format": None,
        "status": DeliveryStatus.PENDING.value, "attempt_count": 0, "next_attempt_at": now,
        "last_status_code": None, "created_at": now, "updated_at": now,
    }  # fmt: skip


def _delivery(event: Event, url: str, endpoint_id: str | None, body: str | None) -> Delivery:
    now = utcnow()
    return Delivery(
        id=new_id("dlv"), account_id=event.account_id, event_id=event.id, endpoint_id=endpoint_id,
        url=url, body=body, status=DeliveryStatus.PENDING.value, next_attempt_at=now,
        created_at=now, updated_at=now,
    )  # fmt: skip


def allow_private_urls(environment: Environment, sandbox_allow_private: bool) -> bool:
    return environment is Environment.SANDBOX and sandbox_allow_private


def _check_event_types(event_types: list[str] | None) -> list[str] | None:
    if event_types is None or event_types == ["*"]:
        return None
    known = {t.value for t in EventType}
    unknown = sorted(set(event_types) - known)
    if unknown or not event_types:
        raise ValidationFailed(
            f"Unknown event types: {', '.join(unknown) or '(empty list)'}",
            allowed=sorted(known),
        )
    return sorted(set(event_types))


@dataclass(frozen=True, slots=True)
class CreatedEndpoint:
    endpoint: WebhookEndpoint
    secret: str


async def create_endpoint(
    session: AsyncSession,
    *,
    secret_key: str,
    account_id: str,
    environment: Environment,
    url: str,
    event_types: list[str] | None,
    description: str,
    allow_private: bool,
    style: str = formats.STANDARD,
) -> CreatedEndpoint:
    await check_url(
        url,
        allow_private=allow_private,
        require_https=environment is Environment.LIVE,
        must_resolve=not allow_private,
    )
    secret = signing.new_secret()
    endpoint = WebhookEndpoint(
        id=new_id("we"), account_id=account_id, url=url, description=description,
        event_types=_check_event_types(event_types), secret_enc=crypto.encrypt(secret_key, secret),
        style=style, enabled=True,
    )  # fmt: skip
    session.add(endpoint)
    await session.flush()
    return CreatedEndpoint(endpoint, secret)


async def get_endpoint(
    session: AsyncSession, *, account_id: str, endpoint_id: str
) -> WebhookEndpoint:
    endpoint = await session.scalar(
        select(WebhookEndpoint).where(
            WebhookEndpoint.id == endpoint_id,
            WebhookEndpoint.account_id == account_id,
            WebhookEndpoint.deleted_at.is_(None),
        )
    )
    if endpoint is None:
        raise NotFound(f"No webhook endpoint {endpoint_id}")
    return endpoint


async def list_endpoints(session: AsyncSession, *, account_id: str) -> list[WebhookEndpoint]:
    rows = await session.scalars(
        select(WebhookEndpoint)
        .where(WebhookEndpoint.account_id == account_id, WebhookEndpoint.deleted_at.is_(None))
        .order_by(WebhookEndpoint.id)
    )
    return list(rows)


async def delete_endpoint(session: AsyncSession, *, account_id: str, endpoint_id: str) -> None:
    endpoint = await get_endpoint(session, account_id=account_id, endpoint_id=endpoint_id)
    # Soft delete: its delivery history stays; pending deliveries to it stop.
    endpoint.deleted_at = utcnow()
    endpoint.enabled = False
    await _stop_pending(session, endpoint.id, "endpoint deleted")


async def set_enabled(
    session: AsyncSession, *, account_id: str, endpoint_id: str, enabled: bool, reason: str = ""
) -> WebhookEndpoint:
    endpoint = await get_endpoint(session, account_id=account_id, endpoint_id=endpoint_id)
    endpoint.enabled = enabled
    endpoint.disabled_reason = None if enabled else (reason or "disabled by the merchant")
    return endpoint


async def rotate_secret(
    session: AsyncSession, *, secret_key: str, account_id: str, endpoint_id: str
) -> CreatedEndpoint:
    endpoint = await get_endpoint(session, account_id=account_id, endpoint_id=endpoint_id)
    secret = signing.new_secret()
    endpoint.previous_secret_enc = endpoint.secret_enc
    endpoint.previous_secret_expires_at = utcnow() + ROTATION_OVERLAP
    endpoint.secret_enc = crypto.encrypt(secret_key, secret)
    return CreatedEndpoint(endpoint, secret)


def endpoint_secrets(secret_key: str, endpoint: WebhookEndpoint) -> list[str]:
    secrets_ = [crypto.decrypt(secret_key, endpoint.secret_enc)]
    if (
        endpoint.previous_secret_enc is not None
        and endpoint.previous_secret_expires_at is not None
        and endpoint.previous_secret_expires_at > utcnow()
    ):
        secrets_.append(crypto.decrypt(secret_key, endpoint.previous_secret_enc))
    return secrets_


async def callback_secret(session: AsyncSession, *, secret_key: str, account_id: str) -> str:
    """The secret that signs per-request callback_url notifications; made on first use.

    Read without a lock; only making it locks the row, FOR NO KEY UPDATE. A FOR UPDATE
    on the account, which every event, delivery and payment row references, waits for the
    KEY SHARE locks their INSERTs take: the dispatcher's FOR UPDATE here, queued behind a
    callback's statement, deadlocked it in the PostgreSQL chaos run (seed 20261207)."""
    account = await session.get(Account, account_id)
    if account is None:
        raise NotFound(f"No account {account_id}")
    if account.callback_secret_enc is None:
        account = await session.get(
            Account, account_id, with_for_update={"key_share": True}, populate_existing=True
        )
        assert account is not None
    if account.callback_secret_enc is None:
        account.callback_secret_enc = crypto.encrypt(secret_key, signing.new_secret())
        await session.flush()
    return crypto.decrypt(secret_key, account.callback_secret_enc)


async def _stop_pending(session: AsyncSession, endpoint_id: str, reason: str) -> None:
    await session.execute(
        update(Delivery)
        .where(
            Delivery.endpoint_id == endpoint_id,
            Delivery.status == DeliveryStatus.PENDING.value,
        )
        .values(status=DeliveryStatus.FAILED.value, next_attempt_at=None, updated_at=utcnow())
    )


async def get_event(session: AsyncSession, *, account_id: str, event_id: str) -> Event:
    event = await session.scalar(
        select(Event).where(Event.id == event_id, Event.account_id == account_id)
    )
    if event is None:
        raise NotFound(f"No event {event_id}")
    return event


async def list_events(
    session: AsyncSession, *, account_id: str, page: PageParams, event_type: str | None = None
) -> list[Event]:
    query = select(Event).where(Event.account_id == account_id)
    if event_type is not None:
        query = query.where(Event.type == event_type)
    if page.starting_after is not None:
        query = query.where(Event.id < page.starting_after)
    rows = await session.scalars(query.order_by(Event.id.desc()).limit(page.limit + 1))
    return list(rows)


async def redeliver(
    session: AsyncSession, *, account_id: str, event_id: str, endpoint_id: str | None = None
) -> list[Delivery]:
    """Fresh deliveries of an old event, with the same webhook-id as the first time."""
    event = await get_event(session, account_id=account_id, event_id=event_id)
    if endpoint_id is not None:
        endpoints = [await get_endpoint(session, account_id=account_id, endpoint_id=endpoint_id)]
    else:
        endpoints = [e for e in await list_endpoints(session, account_id=account_id) if e.enabled]
    data = json.loads(event.payload)["data"]
    deliveries = [
        _delivery(event, e.url, e.id, formats.render_for_endpoint(e.style, event.type, data))
        for e in endpoints
        if e.wants(event.type)
    ]
    if endpoint_id is None:
        # Re-send to the per-request callback_url too, in the shape it had the first time.
        original = (
            await session.execute(
                select(Delivery.url, Delivery.body, Delivery.format)
                .where(Delivery.event_id == event.id, Delivery.endpoint_id.is_(None))
                .limit(1)
            )
        ).first()
        if original is not None:
            again = _delivery(event, original.url, None, original.body)
            again.format = original.format
            deliveries.append(again)
    if not deliveries:
        raise ValidationFailed("No enabled endpoint subscribes to this event type")
    session.add_all(deliveries)
    await session.flush()
    return deliveries


async def list_deliveries(
    session: AsyncSession, *, account_id: str, page: PageParams, endpoint_id: str | None = None,
    event_id: str | None = None,
) -> list[tuple[Delivery, list[DeliveryAttempt]]]:  # fmt: skip
    query = select(Delivery).where(Delivery.account_id == account_id)
    if endpoint_id is not None:
        query = query.where(Delivery.endpoint_id == endpoint_id)
    if event_id is not None:
        query = query.where(Delivery.event_id == event_id)
    if page.starting_after is not None:
        query = query.where(Delivery.id < page.starting_after)
    deliveries = list(
        await session.scalars(query.order_by(Delivery.id.desc()).limit(page.limit + 1))
    )
    attempts: dict[str, list[DeliveryAttempt]] = {d.id: [] for d in deliveries}
    if deliveries:
        rows = await session.scalars(
            select(DeliveryAttempt)
            .where(DeliveryAttempt.delivery_id.in_(list(attempts)))
            .order_by(DeliveryAttempt.delivery_id, DeliveryAttempt.number)
        )
        for attempt in rows:
            attempts[attempt.delivery_id].append(attempt)
    return [(d, attempts[d.id]) for d in deliveries]
