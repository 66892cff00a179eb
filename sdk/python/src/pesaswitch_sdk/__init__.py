"""pesaswitch-sdk: the Python client for the pesaswitch M-Pesa gateway.

from pesaswitch_sdk import Pesaswitch

client = Pesaswitch(api_key="sk_test_…", base_url="http://127.0.0.1:8000")
payment = client.payments.create(amount=10, phone="254708374149", reference="order-1")
"""

from pesaswitch_sdk import webhooks
from pesaswitch_sdk._client import AsyncPesaswitch, Pesaswitch
from pesaswitch_sdk._errors import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    AuthenticationError,
    ConflictError,
    IdempotencyError,
    InsufficientFundsError,
    InvalidRequestError,
    MpesaError,
    MpesaRejectedError,
    MpesaUnavailableError,
    NotFoundError,
    PermissionDeniedError,
    PesaswitchError,
    RateLimitError,
    ServerError,
    ValidationError,
    WaitTimeoutError,
)
from pesaswitch_sdk._events import Event, EventType, PaymentEvent, PayoutEvent, UnknownEvent
from pesaswitch_sdk._models import (
    Amount,
    Balance,
    BankPaybill,
    BankPaybillList,
    C2BNotification,
    C2BRecovery,
    C2BSettings,
    C2BSweep,
    CallbackSecret,
    Delivery,
    DeliveryAttempt,
    LedgerEntry,
    Payment,
    PaymentDetail,
    PaymentStatus,
    Payout,
    PayoutStatus,
    PhoneValidation,
    Posting,
    Refund,
    Reversal,
    WebhookEndpoint,
)
from pesaswitch_sdk._pagination import AsyncPage, SyncPage
from pesaswitch_sdk._retry import NO_RETRIES, RetryPolicy
from pesaswitch_sdk._version import VERSION

__version__ = VERSION

__all__ = [
    "NO_RETRIES",
    "APIConnectionError",
    "APIError",
    "APITimeoutError",
    "Amount",
    "AsyncPage",
    "AsyncPesaswitch",
    "AuthenticationError",
    "Balance",
    "BankPaybill",
    "BankPaybillList",
    "C2BNotification",
    "C2BRecovery",
    "C2BSettings",
    "C2BSweep",
    "CallbackSecret",
    "ConflictError",
    "Delivery",
    "DeliveryAttempt",
    "Event",
    "EventType",
    "IdempotencyError",
    "InsufficientFundsError",
    "InvalidRequestError",
    "LedgerEntry",
    "MpesaError",
    "MpesaRejectedError",
    "MpesaUnavailableError",
    "NotFoundError",
    "Payment",
    "PaymentDetail",
    "PaymentEvent",
    "PaymentStatus",
    "Payout",
    "PayoutEvent",
    "PayoutStatus",
    "PermissionDeniedError",
    "Pesaswitch",
    "PesaswitchError",
    "PhoneValidation",
    "Posting",
    "RateLimitError",
    "Refund",
    "RetryPolicy",
    "Reversal",
    "ServerError",
    "SyncPage",
    "UnknownEvent",
    "ValidationError",
    "WaitTimeoutError",
    "WebhookEndpoint",
    "__version__",
    "webhooks",
]
