"""Imports every model so that metadata (Alembic, tests) sees all tables."""

from pesaswitch.accounts.models import Account, ApiKey, Channel, Credential
from pesaswitch.payments.models import DarajaCallback, Payment
from pesaswitch.protection.models import IdempotencyKey

__all__ = [
    "Account",
    "ApiKey",
    "Channel",
    "Credential",
    "DarajaCallback",
    "IdempotencyKey",
    "Payment",
]
