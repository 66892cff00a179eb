"""Outbound webhooks. Merchants verify them with ``pesaswitch.webhooks.verify``."""

from pesaswitch.webhooks.signing import WebhookVerificationError, verify

__all__ = ["WebhookVerificationError", "verify"]
