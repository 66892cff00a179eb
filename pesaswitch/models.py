"""Imports every model so that metadata (Alembic, tests) sees all tables."""

from pesaswitch.accounts.models import Account, ApiKey, Channel, Credential, SigningKey
from pesaswitch.c2b.models import C2BNotification, C2BRegistration, C2BTransaction, ReceiptQuery
from pesaswitch.dashboard.models import DashboardSession, LoginThrottle, User
from pesaswitch.ledger.models import JournalEntry, LedgerAccount, Posting
from pesaswitch.links.models import PaymentLink
from pesaswitch.payments.models import DarajaCallback, Payment
from pesaswitch.payouts.models import FxRate, Payout, PayoutCallback
from pesaswitch.protection.models import IdempotencyKey, StkAccountGuard, StkPhoneGuard
from pesaswitch.refunds.models import PaymentReturn, Refund, Reversal, ReversalCallback
from pesaswitch.webhooks.models import Delivery, DeliveryAttempt, Event, WebhookEndpoint

__all__ = [
    "Account",
    "ApiKey",
    "C2BNotification",
    "C2BRegistration",
    "C2BTransaction",
    "Channel",
    "Credential",
    "DarajaCallback",
    "DashboardSession",
    "Delivery",
    "DeliveryAttempt",
    "Event",
    "FxRate",
    "IdempotencyKey",
    "JournalEntry",
    "LedgerAccount",
    "LoginThrottle",
    "Payment",
    "PaymentLink",
    "PaymentReturn",
    "Payout",
    "PayoutCallback",
    "Posting",
    "ReceiptQuery",
    "Refund",
    "Reversal",
    "ReversalCallback",
    "SigningKey",
    "StkAccountGuard",
    "StkPhoneGuard",
    "User",
    "WebhookEndpoint",
]
