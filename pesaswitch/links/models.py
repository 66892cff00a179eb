"""Payment links: a hosted page at ``/pay/{slug}`` where a customer pays by STK Push."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from pesaswitch.db import Base
from pesaswitch.kit.clock import utcnow


class PaymentLink(Base):
    __tablename__ = "payment_links"
    __table_args__ = (Index("ix_payment_links_account_id_id", "account_id", "id"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"))
    # Public and unguessable: whoever has the link may pay, nobody may list links.
    slug: Mapped[str] = mapped_column(String(32), unique=True)
    # None lets the customer enter the amount.
    amount: Mapped[int | None] = mapped_column(default=None)
    description: Mapped[str] = mapped_column(String(200))
    channel_id: Mapped[int | None] = mapped_column(ForeignKey("channels.id"), default=None)
    is_active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
