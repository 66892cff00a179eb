"""The token in a channel's C2B URLs never spells a word Daraja refuses in a URL.

Found as a flaky test: a URL-safe token spelled "sql", "cmd", "exec"… about once in 500
registrations, and the simulator, like Daraja, answered "Invalid ConfirmationURL".
"""

from __future__ import annotations

import string
from typing import Any

from sqlalchemy import select

from pesaswitch.c2b.models import C2BRegistration
from pesaswitch.simulator.c2b import FORBIDDEN_URL_WORDS
from tests.c2b.helpers import fresh_shortcode, give_gateway_paybill
from tests.conftest import Gateway, create_merchant


def test_no_refused_word_can_be_spelled_in_hex() -> None:
    for word in FORBIDDEN_URL_WORDS:
        assert not set(word) <= set(string.hexdigits.lower()), word


async def test_registration_tokens_are_hex(gateway_factory: Any) -> None:
    gateway: Gateway = await gateway_factory(daraja_shortcode=fresh_shortcode())
    merchant = await create_merchant(gateway.settings)
    # The gateway's own paybill is the operator's to give (c2b_shared_shortcode).
    await give_gateway_paybill(gateway, merchant)
    async with gateway.app.state.runtime.sessionmaker() as session:
        token = await session.scalar(
            select(C2BRegistration.token).where(C2BRegistration.channel_id == merchant.channel_id)
        )
    assert token is not None
    assert len(token) == 48
    assert set(token) <= set(string.hexdigits.lower())
