"""Native API shapes for payouts."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt

from pesaswitch.kit.clock import isoformat
from pesaswitch.payouts.models import Payout


class PayoutCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    amount: StrictInt = Field(description="Whole units of `currency`.")
    currency: Literal["KES", "USD"] = "KES"
    phone: str = Field(min_length=1, max_length=32)
    name: str = Field(default="", max_length=200)
    reference: str = Field(min_length=1, max_length=100, description="Unique per account.")
    description: str = Field(default="", max_length=500)


class PayoutOut(BaseModel):
    object: Literal["payout"] = "payout"
    id: str
    status: str
    amount: int
    currency: str
    kes_amount: int
    fx_rate: str | None
    fee: int
    phone: str
    name: str
    reference: str
    description: str
    originator_conversation_id: str
    conversation_id: str | None
    transaction_id: str | None
    result_code: str | None
    result_desc: str | None
    created_at: str | None
    updated_at: str | None
    finalized_at: str | None

    @classmethod
    def render(cls, payout: Payout) -> PayoutOut:
        return cls(
            id=payout.id, status=payout.status, amount=payout.amount, currency=payout.currency,
            kes_amount=payout.kes_amount, fx_rate=payout.fx_rate, fee=payout.fee,
            phone=payout.phone, name=payout.name, reference=payout.reference,
            description=payout.description,
            originator_conversation_id=payout.originator_conversation_id,
            conversation_id=payout.conversation_id, transaction_id=payout.transaction_id,
            result_code=payout.result_code, result_desc=payout.result_desc,
            created_at=isoformat(payout.created_at), updated_at=isoformat(payout.updated_at),
            finalized_at=isoformat(payout.finalized_at),
        )  # fmt: skip
