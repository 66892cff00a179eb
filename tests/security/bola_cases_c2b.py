"""BOLA cases for C2B: a channel's C2B settings, registration, sweep and recovery, and the
notifications list. A names B's channels (``bola_world_c2b``) and gets 404; B still sees
them; B's rules, Daraja's registrations, B's payments and notifications are unchanged.

Registered into ``bola_cases.CASES`` and ``EXEMPT`` (``test_bola.py`` imports this).
"""

from __future__ import annotations

import asyncio
from typing import Any

from tests.c2b.helpers import c2b_payments, notifications
from tests.dashboard.helpers import post_form
from tests.security.bola_cases import EXEMPT, case, gone, seen, unchanged_after
from tests.security.bola_world import World
from tests.security.bola_world_c2b import RULES, C2BTheirs, c2b_world, simulator_registrations

_TOKEN = (
    "its unguessable per-channel token is the credential (tests/security/"
    "test_daraja_tokens_c2b.py: a wrong token is refused and changes nothing)"
)
_RECEIPT_TOKEN = (
    "its unguessable per-payment token is the credential (tests/security/"
    "test_daraja_tokens_c2b.py: a wrong token is refused and changes nothing)"
)
EXEMPT.update({
    "POST /daraja/c2b/{token}/validation": f"Daraja's C2B validation; {_TOKEN}",
    "POST /daraja/c2b/{token}/confirmation": f"Daraja's C2B confirmation; {_TOKEN}",
    "POST /daraja/c2b/{token}/status": f"Daraja's Transaction Status result; {_TOKEN}",
    "POST /daraja/c2b/{token}/status-timeout": f"Daraja's status queue timeout; {_TOKEN}",
    "POST /daraja/receipts/{token}": f"Daraja's STK receipt result; {_RECEIPT_TOKEN}",
    "POST /daraja/receipts/{token}/timeout": f"Daraja's receipt timeout; {_RECEIPT_TOKEN}",
})  # fmt: skip


def _settings(c: C2BTheirs) -> str:
    return f"/v1/channels/{c.channel_id}/c2b"


class _Untouched:
    """``async with _Untouched(w, c)``: B's rules, payments and notifications, and what
    Daraja holds for B's shortcodes, are the same after (and B's bare channel still has
    no C2B settings)."""

    def __init__(self, w: World, c: C2BTheirs) -> None:
        self.w, self.c = w, c
        self.guard = unchanged_after(w, _settings(c), "/v1/payments", "/v1/c2b/notifications")

    async def __aenter__(self) -> None:
        self.registrations = simulator_registrations(self.w)
        assert self.c.shortcode in self.registrations
        assert self.c.bare_shortcode not in self.registrations
        await self.guard.__aenter__()

    async def __aexit__(self, *exc: object) -> None:
        await self.guard.__aexit__(*exc)
        if exc[0] is None:
            assert simulator_registrations(self.w) == self.registrations
            await gone(self.w.http.get(
                f"/v1/channels/{self.c.bare_channel_id}/c2b", headers=self.w.b.merchant.auth
            ))  # fmt: skip


@case("GET /v1/channels/{channel_id}/c2b")
async def _read_settings(w: World) -> None:
    """And A's notifications list (no id, so no case of its own) holds none of B's."""
    c = await c2b_world(w)
    for channel_id in (c.channel_id, c.bare_channel_id):
        for headers in (w.a.merchant.auth, w.a.merchant.read_auth):
            await gone(w.http.get(f"/v1/channels/{channel_id}/c2b", headers=headers))
    await seen(w.http.get(_settings(c), headers=w.b.merchant.auth))
    theirs = (await w.http.get(_settings(c), headers=w.b.merchant.auth)).json()
    assert {key: theirs[key] for key in RULES} == RULES, theirs
    ours = await notifications(w.gateway, w.a.merchant)
    assert not {n["id"] for n in ours} & set(c.notification_ids), ours
    assert {n["channel_id"] for n in ours} <= {c.a_channel_id}, ours
    assert set(c.notification_ids) <= {
        n["id"] for n in await notifications(w.gateway, w.b.merchant)
    }


@case("PUT /v1/channels/{channel_id}/c2b")
async def _write_settings(w: World) -> None:
    c = await c2b_world(w)
    loose = {"validation_enabled": False, "default_action": "accept"}
    async with _Untouched(w, c):
        for channel_id in (c.channel_id, c.bare_channel_id):
            await gone(w.http.put(
                f"/v1/channels/{channel_id}/c2b", json=loose, headers=w.a.merchant.auth
            ))  # fmt: skip


@case("POST /v1/channels/{channel_id}/c2b/register")
async def _register(w: World) -> None:
    c = await c2b_world(w)
    async with _Untouched(w, c):
        for channel_id in (c.channel_id, c.bare_channel_id):
            await gone(w.http.post(
                f"/v1/channels/{channel_id}/c2b/register", headers=w.a.merchant.auth
            ))  # fmt: skip


@case("POST /dashboard/channels/{channel_id}/c2b/register")
async def _dashboard_register(w: World) -> None:
    c = await c2b_world(w)
    async with _Untouched(w, c):
        for channel_id in (c.channel_id, c.bare_channel_id):
            action = f"/dashboard/channels/{channel_id}/c2b/register"
            response = await post_form(w.a.client, "/dashboard/channels", action)
            assert response.status_code == 404, (action, response.text)


@case("POST /v1/channels/{channel_id}/c2b/sweep")
async def _sweep(w: World) -> None:
    """B's lost payment stays lost: a sweep of B's channel would have found it."""
    c = await c2b_world(w)
    async with _Untouched(w, c):
        for channel_id in (c.channel_id, c.bare_channel_id):
            await gone(w.http.post(
                f"/v1/channels/{channel_id}/c2b/sweep", headers=w.a.merchant.auth
            ))  # fmt: skip
    assert [p["mpesa_receipt"] for p in await c2b_payments(w.gateway, w.b.merchant)] == [c.receipt]


@case("POST /v1/channels/{channel_id}/c2b/recover")
async def _recover(w: World) -> None:
    """On B's channel: not found. On A's own channel, B's receipts are not A's to know:
    'asked' (never 'known' with B's payment), and Daraja's answer credits no one."""
    c = await c2b_world(w)
    async with _Untouched(w, c):
        for channel_id in (c.channel_id, c.bare_channel_id):
            await gone(w.http.post(
                f"/v1/channels/{channel_id}/c2b/recover", json={"receipt": c.lost_receipt},
                headers=w.a.merchant.auth,
            ))  # fmt: skip
        for receipt in (c.receipt, c.lost_receipt):
            asked = await w.http.post(
                f"/v1/channels/{c.a_channel_id}/c2b/recover", json={"receipt": receipt},
                headers=w.a.merchant.auth,
            )  # fmt: skip
            assert asked.status_code == 202, asked.text
            assert asked.json() == {"object": "c2b_recovery", "receipt": receipt,
                                    "status": "asked", "payment_id": None}  # fmt: skip
        answers = await _status_answers(w, {c.receipt, c.lost_receipt})
        assert sorted((n["trans_id"], n["outcome"]) for n in answers) == sorted(
            [(c.lost_receipt, "not_found"), (c.receipt, "not_found")]
        ), answers
    assert await c2b_payments(w.gateway, w.a.merchant) == []


async def _status_answers(w: World, receipts: set[str]) -> list[dict[str, Any]]:
    """A's Transaction Status notifications about ``receipts``, once each has one."""
    async with asyncio.timeout(10):
        while True:
            noted = await notifications(w.gateway, w.a.merchant)
            answers = [n for n in noted if n["kind"] == "status" and n["trans_id"] in receipts]
            if {n["trans_id"] for n in answers} == receipts:
                return answers
            await asyncio.sleep(0.05)
