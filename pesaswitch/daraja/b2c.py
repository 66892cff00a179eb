"""Daraja's initiator APIs: B2C payouts, Transaction Status and Account Balance.

All three work the same way (daraja.md §6, §7): an initiator (a named API user plus its
RSA-encrypted password) sends the request, Daraja only acknowledges it synchronously,
and the real answer arrives later as a ``Result`` envelope POSTed to ResultURL (or to
QueueTimeOutURL when the request expired in Daraja's queue). The requests go through
``DarajaClient``, which owns the token and classifies transport failures; this module
builds the JSON and reads the acknowledgements and the Results.
"""

from __future__ import annotations

import base64
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import httpx
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from pesaswitch.daraja.errors import DarajaBusinessError, DarajaTechnicalError
from pesaswitch.daraja.wire import error_fields

B2C_PAYMENT_PATH = "/mpesa/b2c/v3/paymentrequest"
TRANSACTION_STATUS_PATH = "/mpesa/transactionstatus/v1/query"
ACCOUNT_BALANCE_PATH = "/mpesa/accountbalance/v1/query"

# IdentifierType of PartyA: 1 MSISDN, 2 till, 4 shortcode (daraja.md §7).
SHORTCODE_IDENTIFIER = "4"

# ``DarajaClient._post``: POST with a bearer token, refreshed once on an invalid-token code.
Post = Callable[[str, dict[str, Any]], Awaitable[httpx.Response]]


def security_credential(initiator_password: str, certificate_pem: bytes) -> str:
    """The initiator password, RSA-encrypted (PKCS#1 v1.5) with Daraja's certificate, base64.

    Sandbox and production certificates differ; the wrong one is only noticed later, as
    ResultCode 2001 in the Result (daraja.md §6). Safaricom ships them as ``.cer`` files
    that are usually PEM, sometimes DER, so both are read. The padding is randomised, so
    two calls give different credentials; Daraja accepts any of them.
    """
    if b"-----BEGIN" in certificate_pem:
        certificate = x509.load_pem_x509_certificate(certificate_pem)
    else:
        certificate = x509.load_der_x509_certificate(certificate_pem)
    public_key = certificate.public_key()
    if not isinstance(public_key, rsa.RSAPublicKey):
        raise ValueError("Daraja's certificate must carry an RSA public key")
    encrypted = public_key.encrypt(initiator_password.encode(), padding.PKCS1v15())
    return base64.b64encode(encrypted).decode()


@dataclass(frozen=True, slots=True)
class Initiator:
    """The API user that signs B2C, Transaction Status and Account Balance requests."""

    name: str
    security_credential: str


class B2CCommand(StrEnum):
    BUSINESS_PAYMENT = "BusinessPayment"
    SALARY_PAYMENT = "SalaryPayment"
    PROMOTION_PAYMENT = "PromotionPayment"


@dataclass(frozen=True, slots=True)
class B2CPaymentRequest:
    # Ours, unique per payout: Daraja refuses a reused one (500.002.1001), which is what
    # makes a retried request safe, and Transaction Status can look the payout up by it.
    originator_conversation_id: str
    initiator: Initiator
    command: B2CCommand
    amount: int
    party_a: str  # the B2C shortcode; the money leaves its Utility account
    party_b: str  # the recipient, 2547…/2541…
    remarks: str  # 2-100 characters
    result_url: str
    queue_timeout_url: str
    occasion: str = ""

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "OriginatorConversationID": self.originator_conversation_id,
            "InitiatorName": self.initiator.name,
            "SecurityCredential": self.initiator.security_credential,
            "CommandID": self.command.value,
            "Amount": self.amount,
            "PartyA": self.party_a,
            "PartyB": self.party_b,
            "Remarks": self.remarks,
            "QueueTimeOutURL": self.queue_timeout_url,
            "ResultURL": self.result_url,
        }
        if self.occasion:
            body["Occassion"] = self.occasion  # sic: the docs' spelling (daraja.md §6)
        return body


@dataclass(frozen=True, slots=True)
class TransactionStatusRequest:
    """Look a transaction up by its receipt, by our OriginatorConversationID, or both."""

    initiator: Initiator
    party_a: str
    result_url: str
    queue_timeout_url: str
    transaction_id: str | None = None
    # The OriginatorConversationID we gave the original request; Daraja's field is
    # called OriginalConversationID here (daraja.md §7).
    original_conversation_id: str | None = None
    identifier_type: str = SHORTCODE_IDENTIFIER
    remarks: str = "Transaction status"
    occasion: str = ""

    def __post_init__(self) -> None:
        if not self.transaction_id and not self.original_conversation_id:
            raise ValueError("give transaction_id or original_conversation_id")

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "Initiator": self.initiator.name,
            "SecurityCredential": self.initiator.security_credential,
            "CommandID": "TransactionStatusQuery",
            "PartyA": self.party_a,
            "IdentifierType": self.identifier_type,
            "ResultURL": self.result_url,
            "QueueTimeOutURL": self.queue_timeout_url,
            "Remarks": self.remarks,
            "Occasion": self.occasion,
        }
        if self.transaction_id:
            body["TransactionID"] = self.transaction_id
        if self.original_conversation_id:
            body["OriginalConversationID"] = self.original_conversation_id
        return body


@dataclass(frozen=True, slots=True)
class AccountBalanceRequest:
    initiator: Initiator
    party_a: str
    result_url: str
    queue_timeout_url: str
    identifier_type: str = SHORTCODE_IDENTIFIER
    remarks: str = "Account balance"

    def to_json(self) -> dict[str, Any]:
        return {
            "Initiator": self.initiator.name,
            "SecurityCredential": self.initiator.security_credential,
            "CommandID": "AccountBalance",
            "PartyA": self.party_a,
            "IdentifierType": self.identifier_type,
            "Remarks": self.remarks,
            "QueueTimeOutURL": self.queue_timeout_url,
            "ResultURL": self.result_url,
        }


@dataclass(frozen=True, slots=True)
class B2CAccepted:
    """Daraja took the request; the outcome follows as a Result.

    Transaction Status and Account Balance acknowledge in the same shape, so they return
    this too; for them the OriginatorConversationID is Daraja's, not ours.
    """

    conversation_id: str
    originator_conversation_id: str
    response_description: str


async def b2c_payment(post: Post, request: B2CPaymentRequest) -> B2CAccepted:
    """Disburse. A DarajaTechnicalError with ``maybe_sent`` means the payout may run: look
    it up with Transaction Status (by OriginatorConversationID) before sending it again."""
    response = await post(B2C_PAYMENT_PATH, request.to_json())
    return _acknowledgement(response, "B2C payment", request.originator_conversation_id)


async def transaction_status(post: Post, request: TransactionStatusRequest) -> B2CAccepted:
    response = await post(TRANSACTION_STATUS_PATH, request.to_json())
    return _acknowledgement(response, "Transaction Status", None)


async def account_balance(post: Post, request: AccountBalanceRequest) -> B2CAccepted:
    response = await post(ACCOUNT_BALANCE_PATH, request.to_json())
    return _acknowledgement(response, "Account Balance", None)


def _acknowledgement(
    response: httpx.Response, what: str, originator_conversation_id: str | None
) -> B2CAccepted:
    try:
        body = response.json()
    except ValueError:
        body = None
    if (
        response.status_code == 200
        and isinstance(body, dict)
        and str(body.get("ResponseCode")) == "0"
        and body.get("ConversationID")
    ):
        return B2CAccepted(
            conversation_id=str(body["ConversationID"]),
            originator_conversation_id=str(
                body.get("OriginatorConversationID") or originator_conversation_id or ""
            ),
            response_description=str(body.get("ResponseDescription", "")),
        )
    fields = error_fields(body)
    if fields is not None and _is_refusal(response.status_code, *fields):
        raise DarajaBusinessError(
            http_status=response.status_code, error_code=fields[0], message=fields[1]
        )
    # A 5xx, "System internal error." or an unreadable answer: the request may have run.
    raise DarajaTechnicalError(
        f"unexpected {what} answer: HTTP {response.status_code}", maybe_sent=True
    )


def _is_refusal(http_status: int, error_code: str, message: str) -> bool:
    """Answers that prove the request did not run (daraja.md §6 sync errors)."""
    if 400 <= http_status < 500:
        return True
    if error_code == "500.002.1001":
        # Overloaded: "Duplicate OriginatorConversationID." refuses this request (the
        # first one with that id may well have paid); "System internal error." proves
        # nothing, so it stays a technical error.
        return "duplicate" in message.lower()
    return error_code in {"500.003.02", "500.003.03"}  # throttled
