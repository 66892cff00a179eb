"""B's C2B objects for the BOLA battery, made beside ``bola_world.build_world``'s.

B owns two paybill channels: one with C2B rules, registered with the simulator, paid once
(confirmed: a payment and a notification) and once more with the confirmation lost (only
a sweep or a recovery by receipt would find it); and one bare channel, never configured.
A owns a registered paybill channel of its own, to name B's receipts from.

The cases ask for these through ``c2b_world(w)``: the first asks builds them, the others
get the same objects.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pesaswitch.accounts.models import Channel, ChannelKind
from pesaswitch.db import create_engine, create_sessionmaker
from tests.c2b.helpers import add_channel, c2b_payments, notifications, pay, set_up_channel
from tests.security.bola_world import World

# B's rules: each differs from the defaults, so a write that got through would show.
RULES: dict[str, Any] = {
    "validation_enabled": True,
    "account_pattern": "INV-[0-9]+",
    "min_amount": 20,
    "max_amount": 90_000,
    "default_action": "reject",
}


@dataclass
class C2BTheirs:
    """B's C2B objects, and A's own registered channel."""

    channel_id: int  # configured and registered
    shortcode: str
    bare_channel_id: int  # no C2B settings, never registered
    bare_shortcode: str
    receipt: str  # confirmed: a payment of B's
    payment_id: str
    lost_receipt: str  # paid, its confirmation lost
    notification_ids: list[int]
    a_channel_id: int


_built: list[tuple[World, C2BTheirs]] = []


async def c2b_world(w: World) -> C2BTheirs:
    for world, theirs in _built:
        if world is w:
            return theirs
    theirs = await _build(w)
    _built[:] = [(w, theirs)]  # one world per test run of the battery
    return theirs


async def _build(w: World) -> C2BTheirs:
    gateway, b = w.gateway, w.b.merchant
    settings = await set_up_channel(gateway, b, ChannelKind.PAYBILL, **RULES)
    shortcode = settings["shortcode"]
    confirmed = await pay(gateway, shortcode, amount=150, bill_ref="INV-7")
    assert confirmed["confirmations_sent"] == [200], confirmed
    # 254711990002: paid, but the confirmation never arrives.
    lost = await pay(gateway, shortcode, amount=60, bill_ref="INV-8", msisdn="254711990002")
    assert (lost["status"], lost["confirmations_sent"]) == ("completed", []), lost
    [payment] = await c2b_payments(gateway, b)
    assert payment["mpesa_receipt"] == confirmed["trans_id"], payment
    noted = await notifications(gateway, b)
    # Both were validated (by B's rules); only one confirmation came.
    assert sorted((n["kind"], n["trans_id"]) for n in noted) == sorted(
        [
            ("validation", confirmed["trans_id"]),
            ("confirmation", confirmed["trans_id"]),
            ("validation", lost["trans_id"]),
        ]
    ), noted
    bare = await add_channel(gateway.settings, b, ChannelKind.PAYBILL)
    ours = await set_up_channel(gateway, w.a.merchant, ChannelKind.PAYBILL)
    return C2BTheirs(
        channel_id=settings["channel_id"], shortcode=shortcode, bare_channel_id=bare,
        bare_shortcode=await _shortcode_of(w, bare), receipt=confirmed["trans_id"],
        payment_id=payment["id"], lost_receipt=lost["trans_id"],
        notification_ids=[n["id"] for n in noted], a_channel_id=ours["channel_id"],
    )  # fmt: skip


async def _shortcode_of(w: World, channel_id: int) -> str:
    engine = create_engine(w.gateway.settings)
    try:
        async with create_sessionmaker(engine)() as session:
            channel = await session.get(Channel, channel_id)
    finally:
        await engine.dispose()
    assert channel is not None
    assert channel.shortcode
    return channel.shortcode


def simulator_registrations(w: World) -> dict[str, Any]:
    """The C2B URLs the simulator holds, by shortcode (what Daraja was told)."""
    registrations: dict[str, Any] = w.gateway.app.state.runtime.simulator.c2b.registrations
    return dict(registrations)
