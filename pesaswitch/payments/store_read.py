"""``GET /v1/payments/{id}``'s read on PostgreSQL: one round trip outside any transaction
(``read_route.py``), where the general path opens a read-only transaction and reads the
payment, its refunds' claim row and its channel's kind, through the ORM.

One statement reads the payment, its channel's kind and whether it has a claim row (any
refund or reversal ever asked for). A payment with one is left to the general path, which
reads its refunds and reversal; so is one not found (its 404 is the general path's).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from pesaswitch.accounts.models import ChannelKind
from pesaswitch.db import transient
from pesaswitch.payments.models import Payment, PaymentStatus
from pesaswitch.payments.store import PAYMENT_ATTRIBUTES, json_value
from pesaswitch.refunds.service import Claims, render_detail

# $1 the payment id, $2 the account it must belong to.
_DETAIL = """
SELECT p.*, c.kind AS channel_kind,
       EXISTS (SELECT 1 FROM payment_returns r WHERE r.payment_id = p.id) AS has_returns
  FROM payments p JOIN channels c ON c.id = p.channel_id
 WHERE p.id = $1 AND p.account_id = $2
"""


async def unreturned_detail(
    engine: AsyncEngine, *, account_id: str, payment_id: str
) -> dict[str, Any] | None:
    """The account's payment as ``GET /v1/payments/{id}`` answers it (JSON values), when
    nothing was ever refunded or reversed from it; None when it was, or when there is no
    such payment, for the general path to answer."""
    async with engine.connect() as connection:
        raw = await connection.get_raw_connection()
        driver: Any = raw.driver_connection
        row = await driver.fetchrow(_DETAIL, payment_id, account_id)
    if row is None or row["has_returns"]:
        return None
    values: dict[str, Any] = {attr: row[column] for column, attr in PAYMENT_ATTRIBUTES.items()}
    values["metadata_"] = json_value(values["metadata_"])
    payment = transient(Payment, values)
    # As refunds.service.payment_detail decides it for a payment without claims.
    wallet_refundable = (
        payment.status == PaymentStatus.COMPLETED.value
        and row["channel_kind"] == ChannelKind.WALLET.value
    )
    detail = render_detail(payment, refunds=[], reversal=None, claims=Claims(0, 0),
                           wallet_refundable=wallet_refundable)  # fmt: skip
    return detail.model_dump(mode="json")
