"""db.transient: an object built without the ORM's attribute events acts as a constructed
one, on either database."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from pesaswitch.db import create_engine, create_sessionmaker, transaction, transient
from pesaswitch.kit.clock import utcnow
from pesaswitch.kit.ids import new_id
from pesaswitch.webhooks.models import Event
from tests.conftest import Gateway, Merchant


def event_values(merchant: Merchant) -> dict[str, object]:
    return {
        "id": new_id("evt"), "account_id": merchant.account_id, "type": "payment.completed",
        "object_id": new_id("pay"), "payload": '{"a":1}', "created_at": utcnow(),
    }  # fmt: skip


def test_an_unknown_attribute_is_refused_as_the_constructor_refuses_it() -> None:
    with pytest.raises(TypeError, match="colour"):
        transient(Event, {"id": "evt_1", "colour": "red"})
    with pytest.raises(TypeError):
        Event(id="evt_1", colour="red")


def test_it_reads_as_a_constructed_object_and_is_in_no_session() -> None:
    from sqlalchemy import inspect

    built = transient(Event, {"id": "evt_1", "type": "payment.failed"})
    assert (built.id, built.type, built.object_id) == ("evt_1", "payment.failed", None)
    assert inspect(built).transient


async def test_added_it_is_inserted_and_merged_it_is_copied(
    gateway: Gateway, merchant: Merchant
) -> None:
    engine = create_engine(gateway.settings)
    sessions = create_sessionmaker(engine)
    try:
        added, merged = event_values(merchant), event_values(merchant)
        async with transaction(sessions) as session:
            session.add(transient(Event, added))
        async with transaction(sessions) as session:
            await session.merge(transient(Event, merged))
        async with sessions() as session:
            rows = {
                row.id: row
                for row in await session.scalars(
                    select(Event).where(Event.id.in_([added["id"], merged["id"]]))
                )
            }
        for values in (added, merged):
            row = rows[str(values["id"])]
            assert (row.account_id, row.type, row.object_id, row.payload) == (
                values["account_id"], values["type"], values["object_id"], values["payload"],
            )  # fmt: skip
    finally:
        await engine.dispose()
