"""Imports every model so that metadata (Alembic, tests) sees all tables."""

from pesaswitch.accounts.models import Account, ApiKey, Channel, Credential, SigningKey
from pesaswitch.ledger.models import JournalEntry, LedgerAccount, Posting
from pesaswitch.payments.models import DarajaCallback, Payment
from pesaswitch.payouts.models import FxRate, Payout, PayoutCallback
from pesaswitch.protection.models import IdempotencyKey, StkAccountGuard, StkPhoneGuard
from pesaswitch.webhooks.models import Delivery, DeliveryAttempt, Event, WebhookEndpoint

__all__ = [
    "Account",
    "ApiKey",
    "Channel",
    "Credential",
    "DarajaCallback",
    "Delivery",
    "DeliveryAttempt",
    "Event",
    "FxRate",
    "IdempotencyKey",
    "JournalEntry",
    "LedgerAccount",
    "Payment",
    "Payout",
    "PayoutCallback",
    "Posting",
    "SigningKey",
    "StkAccountGuard",
    "StkPhoneGuard",
    "WebhookEndpoint",
]
