"""Typed objects of the native v1 API, one per schema in the gateway's ``/openapi.json``.

Amounts are whole units of their currency (integer KES unless ``currency`` says otherwise).
Statuses are plain strings with the known values as constants (``PaymentStatus``): a
gateway that learns a new status must not make older SDKs fail to read its payments.
Unknown fields are ignored for the same reason.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class ApiObject(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class PaymentStatus(StrEnum):
    PENDING = "pending"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    FAILED = "failed"


class PayoutStatus(StrEnum):
    PENDING = "pending"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"


# Only Daraja's answer moves a payment out of these; a final status never changes again.
NON_FINAL_PAYMENT_STATUSES = frozenset({PaymentStatus.PENDING})
NON_FINAL_PAYOUT_STATUSES = frozenset({PayoutStatus.PENDING, PayoutStatus.PROCESSING})


class Payment(ApiObject):
    """A collection (``pay_…``): an STK Push, or a C2B payment the customer made unprompted."""

    object: str = "payment"
    id: str
    status: str
    direction: str = "inbound"
    source: str = Field(default="stk", description="stk (we prompted) or c2b (paid unprompted).")
    amount: int
    currency: str
    phone: str
    channel_id: int
    reference: str = Field(description="Your reference, or the gateway reference if none.")
    gateway_reference: str
    description: str | None = None
    customer_name: str | None = None
    callback_url: str | None = None
    metadata: dict[str, Any] | None = None
    checkout_request_id: str | None = None
    merchant_request_id: str | None = None
    mpesa_receipt: str | None = None
    result_code: str | None = None
    result_desc: str | None = None
    created_at: datetime
    updated_at: datetime
    finalized_at: datetime | None = None
    duplicate_of: str | None = Field(
        default=None,
        description="Another payment holds this one's M-Pesa transaction (its receipt and "
        "credit): count the money once.",
    )

    @property
    def is_final(self) -> bool:
        return self.status not in NON_FINAL_PAYMENT_STATUSES


class Refund(ApiObject):
    """Money paid back to a payment's payer by B2C from the wallet (``re_…``)."""

    object: str = "refund"
    id: str
    payment_id: str
    payout_id: str = Field(description="The payout that carries the refund.")
    status: str
    amount: int
    fee: int = Field(description="The payout fee, charged to the wallet on top of amount.")
    reason: str
    created_at: datetime | None = None
    updated_at: datetime | None = None
    finalized_at: datetime | None = None

    @property
    def is_final(self) -> bool:
        return self.status not in NON_FINAL_PAYOUT_STATUSES


class Reversal(ApiObject):
    """M-Pesa's Transaction Reversal of a whole payment (``rv_…``)."""

    object: str = "reversal"
    id: str
    payment_id: str
    status: str
    amount: int
    wallet_amount: int = Field(description="What the wallet gives back.")
    fee: int = Field(description="The collection fee, returned by the operator.")
    receipt: str
    reason: str
    originator_conversation_id: str
    conversation_id: str | None = None
    transaction_id: str | None = None
    result_code: str | None = None
    result_desc: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    finalized_at: datetime | None = None

    @property
    def is_final(self) -> bool:
        return self.status not in NON_FINAL_PAYOUT_STATUSES


class PaymentDetail(Payment):
    """A payment as ``GET /v1/payments/{id}`` shows it: with what went back."""

    amount_refunded: int = 0
    amount_refundable: int = 0
    reversed: bool = False
    refunds: list[Refund] = Field(default_factory=list)
    reversal: Reversal | None = None


class BankPaybill(ApiObject):
    object: str = "bank_paybill"
    name: str
    paybill: str
    aliases: list[str]


class BankPaybillList(ApiObject):
    object: str = "list"
    data: list[BankPaybill]
    source: str = Field(description="Where the gateway's list comes from.")
    retrieved: str = Field(description="When it was read (YYYY-MM-DD).")


class Payout(ApiObject):
    """A B2C disbursement (``po_…``) from the account's wallet."""

    object: str = "payout"
    id: str
    status: str
    amount: int
    currency: str
    kes_amount: int
    fx_rate: Decimal | None = None
    fee: int
    phone: str
    name: str
    reference: str
    description: str
    originator_conversation_id: str
    conversation_id: str | None = None
    transaction_id: str | None = None
    result_code: str | None = None
    result_desc: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    finalized_at: datetime | None = None

    @property
    def is_final(self) -> bool:
        return self.status not in NON_FINAL_PAYOUT_STATUSES


class Amount(ApiObject):
    currency: str
    amount: int


class Balance(ApiObject):
    object: str = "balance"
    available: list[Amount] = Field(description="Funds in the wallet, free to pay out.")
    reserved: list[Amount] = Field(description="Funds held for payouts in flight.")

    def available_in(self, currency: str = "KES") -> int:
        return sum(a.amount for a in self.available if a.currency == currency)


class Posting(ApiObject):
    account: str = Field(description="wallet or payout_hold")
    currency: str
    amount: int = Field(description="Positive: into the account; negative: out of it.")


class LedgerEntry(ApiObject):
    object: str = "ledger_entry"
    id: str
    kind: str
    description: str
    reference: str | None = Field(description="The payment or payout the entry is about.")
    created_at: datetime | None = None
    postings: list[Posting]


class PhoneValidation(ApiObject):
    original: str
    normalized: str | None = None
    valid: bool
    network: str | None = None


class WebhookEndpoint(ApiObject):
    object: str = "webhook_endpoint"
    id: str
    url: str
    description: str
    events: list[str]
    enabled: bool
    disabled_reason: str | None = None
    created_at: datetime | None = None
    secret: str | None = Field(default=None, description="Only when created or rotated.")


class DeliveryAttempt(ApiObject):
    number: int
    attempted_at: datetime | None = None
    status_code: int | None = None
    duration_ms: int
    response_body: str | None = None
    error: str | None = None


class Delivery(ApiObject):
    object: str = "delivery"
    id: str
    event_id: str
    endpoint_id: str | None = None
    url: str
    status: str
    attempt_count: int
    next_attempt_at: datetime | None = None
    last_status_code: int | None = None
    attempts: list[DeliveryAttempt]


class CallbackSecret(ApiObject):
    """Signs the native events sent to a payment's own ``callback_url``."""

    object: str = "callback_secret"
    secret: str


class C2BSettings(ApiObject):
    """A channel's C2B rules and registration (``/v1/channels/{id}/c2b``)."""

    object: str = "c2b_settings"
    channel_id: int
    shortcode: str = Field(description="The till or paybill customers pay.")
    validation_enabled: bool
    account_pattern: str | None
    min_amount: int | None
    max_amount: int | None
    validation_url: str | None
    default_action: str = Field(description="accept or reject, when validation is late.")
    registered_at: datetime | None
    swept_until: datetime | None


class C2BSweep(ApiObject):
    """What a sweep (Pull Transactions) saw, and the receipts it recorded."""

    object: str = "c2b_sweep"
    channel_id: int
    seen: int
    recovered: list[str]


class C2BRecovery(ApiObject):
    """A receipt looked up by Transaction Status: ``known`` (its payment is
    ``payment_id``) or ``asked`` (M-Pesa's answer records it, if it is this channel's)."""

    object: str = "c2b_recovery"
    receipt: str
    status: str
    payment_id: str | None


class C2BNotification(ApiObject):
    """A call from M-Pesa about C2B (validation, confirmation, status) and its outcome."""

    id: int
    kind: str
    channel_id: int | None
    trans_id: str | None
    outcome: str
    result_code: str | None
    received_at: datetime | None
