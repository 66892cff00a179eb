"""Native API shapes for refunds and reversals, and the payment as GET shows it."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt

from pesaswitch.kit.clock import isoformat
from pesaswitch.payments.schemas import PaymentOut
from pesaswitch.refunds.models import Refund, Reversal


class RefundCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    amount: StrictInt | None = Field(
        default=None, description="Whole KES; the whole refundable remainder if left out."
    )
    reason: str = Field(default="", max_length=200)


class ReversalCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(default="", max_length=200)


class RefundOut(BaseModel):
    object: Literal["refund"] = "refund"
    id: str
    payment_id: str
    payout_id: str = Field(description="The B2C payout that carries the refund.")
    status: str
    amount: int
    fee: int = Field(description="The payout fee, charged to the wallet on top of amount.")
    reason: str
    created_at: str | None
    updated_at: str | None
    finalized_at: str | None

    @classmethod
    def render(cls, refund: Refund) -> RefundOut:
        return cls(
            id=refund.id, payment_id=refund.payment_id, payout_id=refund.payout_id,
            status=refund.status, amount=refund.amount, fee=refund.fee, reason=refund.reason,
            created_at=isoformat(refund.created_at), updated_at=isoformat(refund.updated_at),
            finalized_at=isoformat(refund.finalized_at),
        )  # fmt: skip


class ReversalOut(BaseModel):
    object: Literal["reversal"] = "reversal"
    id: str
    payment_id: str
    status: str
    amount: int
    wallet_amount: int = Field(description="What the wallet gives back: amount less its fee.")
    fee: int = Field(description="The collection fee, returned by the operator.")
    receipt: str = Field(description="The M-Pesa receipt that is reversed.")
    reason: str
    originator_conversation_id: str
    conversation_id: str | None
    transaction_id: str | None
    result_code: str | None
    result_desc: str | None
    created_at: str | None
    updated_at: str | None
    finalized_at: str | None

    @classmethod
    def render(cls, reversal: Reversal) -> ReversalOut:
        return cls(
            id=reversal.id, payment_id=reversal.payment_id, status=reversal.status,
            amount=reversal.amount, wallet_amount=reversal.wallet_amount, fee=reversal.fee,
            receipt=reversal.receipt, reason=reversal.reason,
            originator_conversation_id=reversal.originator_conversation_id,
            conversation_id=reversal.conversation_id, transaction_id=reversal.transaction_id,
            result_code=reversal.result_code, result_desc=reversal.result_desc,
            created_at=isoformat(reversal.created_at),
            updated_at=isoformat(reversal.updated_at),
            finalized_at=isoformat(reversal.finalized_at),
        )  # fmt: skip


class PaymentDetailOut(PaymentOut):
    """``GET /v1/payments/{id}``: the payment with what went back to the customer."""

    amount_refunded: int = Field(default=0, description="Completed refunds, whole KES.")
    amount_refundable: int = Field(default=0, description="What a refund may still take.")
    reversed: bool = False
    refunds: list[RefundOut] = Field(default_factory=list)
    reversal: ReversalOut | None = Field(
        default=None, description="The latest reversal asked for, if any."
    )
