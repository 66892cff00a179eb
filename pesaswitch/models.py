"""Imports every model so that metadata (Alembic, tests) sees all tables."""

from pesaswitch.accounts.models import Account, ApiKey, Channel, Credential
from pesaswitch.payments.models import DarajaCallback, Payment
from pesaswitch.protection.models import IdempotencyKey
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
    "IdempotencyKey",
    "Payment",
    "WebhookEndpoint",
]
