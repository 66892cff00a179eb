"""The SDK's models and create methods match the running gateway's ``/openapi.json``: a
field added to (or renamed in) the native API fails here until the SDK follows."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from pydantic import BaseModel

import pesaswitch_sdk as sdk
from pesaswitch_sdk.resources.c2b import C2B
from pesaswitch_sdk.resources.payments import Payments
from pesaswitch_sdk.resources.payouts import Payouts
from pesaswitch_sdk.resources.refunds import Refunds, Reversals
from pesaswitch_sdk.resources.webhook_endpoints import WebhookEndpoints

from gateway import Gateway

RESPONSE_MODELS: dict[str, type[BaseModel]] = {
    "PaymentOut": sdk.Payment,
    "PayoutOut": sdk.Payout,
    "BalanceOut": sdk.Balance,
    "Amount": sdk.Amount,
    "LedgerEntryOut": sdk.LedgerEntry,
    "PostingOut": sdk.Posting,
    "PhoneValidateOut": sdk.PhoneValidation,
    "EndpointOut": sdk.WebhookEndpoint,
    "DeliveryOut": sdk.Delivery,
    "AttemptOut": sdk.DeliveryAttempt,
    "CallbackSecretOut": sdk.CallbackSecret,
    "EventOut": sdk.UnknownEvent,
    "PaymentDetailOut": sdk.PaymentDetail,
    "RefundOut": sdk.Refund,
    "ReversalOut": sdk.Reversal,
    "BankPaybillOut": sdk.BankPaybill,
    "BankPaybillList": sdk.BankPaybillList,
    "C2BSettingsOut": sdk.C2BSettings,
    "C2BSweepOut": sdk.C2BSweep,
    "C2BRecoveryOut": sdk.C2BRecovery,
    "C2BNotificationOut": sdk.C2BNotification,
}

CREATE_METHODS: dict[str, Callable[..., Any]] = {
    "PaymentCreate": Payments.create,
    "PayoutCreate": Payouts.create,
    "EndpointCreate": WebhookEndpoints.create,
    "RefundCreate": Refunds.create,
    "ReversalCreate": Reversals.create,
    "C2BSettingsIn": C2B.put_settings,
    "C2BRecoverIn": C2B.recover,
}


@pytest.fixture(scope="module")
def schemas(gateway: Gateway) -> dict[str, Any]:
    spec = httpx.get(f"{gateway.base_url}/openapi.json", timeout=10).json()
    found: dict[str, Any] = spec["components"]["schemas"]
    return found


@pytest.mark.parametrize("schema_name", sorted(RESPONSE_MODELS))
def test_a_model_has_the_fields_of_its_schema(schemas: dict[str, Any], schema_name: str) -> None:
    schema = schemas[schema_name]
    model = RESPONSE_MODELS[schema_name]
    assert set(model.model_fields) == set(schema["properties"])
    # What the gateway always sends, the model requires (and the reverse, but for the
    # discriminating `object` constant, which the models default).
    required_by_model = {name for name, field in model.model_fields.items() if field.is_required()}
    assert required_by_model <= set(schema.get("required", []))


@pytest.mark.parametrize("schema_name", sorted(CREATE_METHODS))
def test_a_create_method_takes_every_field_of_its_body(
    schemas: dict[str, Any], schema_name: str
) -> None:
    parameters = inspect.signature(CREATE_METHODS[schema_name]).parameters
    schema = schemas[schema_name]
    # The payment a refund or reversal is of, and the channel of C2B settings, are in the
    # path, not the body (a payment's channel_id is in its body).
    in_path = {"payment_id", "channel_id"} - set(schema["properties"])
    accepted = set(parameters) - {"self", "idempotency_key"} - in_path
    assert accepted == set(schema["properties"])
    for name in schema.get("required", []):
        assert parameters[name].default is inspect.Parameter.empty, name


def test_every_schema_is_covered(schemas: dict[str, Any]) -> None:
    # A new schema in the API is a reminder to add it to the SDK.
    plumbing = {"HTTPValidationError", "ValidationError", "PhoneValidateIn", "RedeliverIn"}
    pages = {name for name in schemas if name.startswith("Page_")}
    known = set(RESPONSE_MODELS) | set(CREATE_METHODS) | plumbing | pages
    assert set(schemas) - known == set()
