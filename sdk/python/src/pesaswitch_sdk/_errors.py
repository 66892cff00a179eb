"""The exceptions the SDK raises. One class per family of the gateway's problem+json ``code``.

    PesaswitchError                         anything this SDK raises
    ├── APIConnectionError                  no HTTP answer (after the retries)
    │   └── APITimeoutError                 ... because the request timed out
    ├── WaitTimeoutError                    wait_for_final ran out of time (also a TimeoutError)
    └── APIError                            the gateway answered with an error status
        ├── InvalidRequestError             400, 413: bad_request, invalid_json, payload_too_large
        ├── ValidationError                 422: validation_error, invalid_phone, unsafe_url…
        ├── AuthenticationError             401: invalid_api_key, api_key_revoked
        ├── PermissionDeniedError           403: insufficient_permissions
        ├── NotFoundError                   404: not_found, channel_not_found
        ├── ConflictError                   409: conflict, duplicate_reference, ledger_conflict
        ├── IdempotencyError                idempotency_key_in_use (409), …_mismatch (422)
        ├── InsufficientFundsError          insufficient_funds
        ├── RateLimitError                  429: rate_limited, stk_phone_blocked, …
        ├── MpesaError                      daraja_*: the answer came from M-Pesa
        │   ├── MpesaRejectedError          M-Pesa said no (subscriber locked, invalid request…)
        │   └── MpesaUnavailableError       M-Pesa did not answer (daraja_timeout/error/unavailable)
        └── ServerError                     5xx not from M-Pesa: internal_error, ledger_unbalanced

A payment or payout that the failed request created anyway (an M-Pesa rejection, or a
timeout after which the prompt may still reach the customer) is on ``error.payment`` or
``error.payout``.
"""

from __future__ import annotations

from typing import Any

import httpx

from pesaswitch_sdk._models import Payment, Payout
from pesaswitch_sdk._retry import parse_retry_after


class PesaswitchError(Exception):
    """The base of every exception this SDK raises."""


class APIConnectionError(PesaswitchError):
    """The gateway could not be reached, or the connection broke before an answer came."""


class APITimeoutError(APIConnectionError):
    """The gateway did not answer within the client's timeout."""


class WaitTimeoutError(PesaswitchError, TimeoutError):
    """``wait_for_final`` gave up; ``payment`` is the last state seen (still pending)."""

    def __init__(self, message: str, *, payment: Payment) -> None:
        super().__init__(message)
        self.payment = payment


class APIError(PesaswitchError):
    """An RFC 9457 problem from the gateway (or any non-2xx answer, read as one)."""

    def __init__(self, response: httpx.Response, problem: dict[str, Any]) -> None:
        self.response = response
        self.problem = problem
        self.status: int = response.status_code
        self.code: str = str(problem.get("code") or f"http_{response.status_code}")
        self.title: str = str(problem.get("title") or response.reason_phrase)
        self.detail: str = str(problem.get("detail") or self.title)
        # Field errors of a 422 validation_error: [{"field": "amount", "message": "..."}].
        self.errors: list[dict[str, Any]] = list(problem.get("errors") or [])
        self.payment: Payment | None = _payment_of(problem)
        self.payout: Payout | None = _payout_of(problem)
        super().__init__(f"{self.status} {self.code}: {self.detail}")

    @property
    def idempotency_key(self) -> str | None:
        """The key the failed request was sent with (generated, unless you gave one): the
        same call with it later returns the first attempt's answer."""
        key: str | None = self.response.request.headers.get("idempotency-key")
        return key


class InvalidRequestError(APIError):
    pass


class ValidationError(APIError):
    pass


class AuthenticationError(APIError):
    pass


class PermissionDeniedError(APIError):
    pass


class NotFoundError(APIError):
    pass


class ConflictError(APIError):
    pass


class IdempotencyError(APIError):
    """The key is still in flight (409; the SDK retries these) or was used with another body."""


class InsufficientFundsError(APIError):
    pass


class RateLimitError(APIError):
    """Refused for now; ``retry_after`` (seconds, from the ``Retry-After`` header) says how long."""

    @property
    def retry_after(self) -> float | None:
        return parse_retry_after(self.response.headers.get("retry-after"))


class MpesaError(APIError):
    pass


class MpesaRejectedError(MpesaError):
    pass


class MpesaUnavailableError(MpesaError):
    """When ``error.payment`` is pending (daraja_timeout), the prompt may still be paid:
    wait for its final status instead of creating another payment."""


class ServerError(APIError):
    pass


_BY_CODE: dict[str, type[APIError]] = {
    "bad_request": InvalidRequestError,
    "invalid_json": InvalidRequestError,
    "payload_too_large": InvalidRequestError,
    "validation_error": ValidationError,
    "invalid_phone": ValidationError,
    "unsupported_network": ValidationError,
    "amount_out_of_range": ValidationError,
    "unsafe_url": ValidationError,
    "no_exchange_rate": ValidationError,
    "invalid_api_key": AuthenticationError,
    "api_key_revoked": AuthenticationError,
    "insufficient_permissions": PermissionDeniedError,
    "not_found": NotFoundError,
    "channel_not_found": NotFoundError,
    "conflict": ConflictError,
    "duplicate_reference": ConflictError,
    "ledger_conflict": ConflictError,
    "idempotency_key_in_use": IdempotencyError,
    "idempotency_key_mismatch": IdempotencyError,
    "insufficient_funds": InsufficientFundsError,
    "rate_limited": RateLimitError,
    "stk_phone_blocked": RateLimitError,
    "stk_account_restricted": RateLimitError,
    "daraja_timeout": MpesaUnavailableError,
    "daraja_error": MpesaUnavailableError,
    "daraja_unavailable": MpesaUnavailableError,
}

# Codes the gateway may add later still land in the right family by their HTTP status.
_BY_STATUS: dict[int, type[APIError]] = {
    400: InvalidRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    413: InvalidRequestError,
    422: ValidationError,
    429: RateLimitError,
}


def error_class(code: str, status: int) -> type[APIError]:
    known = _BY_CODE.get(code)
    if known is not None:
        return known
    if code.startswith("daraja_"):
        return MpesaRejectedError
    by_status = _BY_STATUS.get(status)
    if by_status is not None:
        return by_status
    return ServerError if status >= 500 else APIError


def error_from_response(response: httpx.Response) -> APIError:
    problem = read_problem(response)
    code = str(problem.get("code") or f"http_{response.status_code}")
    return error_class(code, response.status_code)(response, problem)


def read_problem(response: httpx.Response) -> dict[str, Any]:
    """The problem+json body, or an empty one when a proxy answered with HTML or nothing."""
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _payment_of(problem: dict[str, Any]) -> Payment | None:
    data = problem.get("payment")
    return Payment.model_validate(data) if isinstance(data, dict) else None


def _payout_of(problem: dict[str, Any]) -> Payout | None:
    data = problem.get("payout")
    return Payout.model_validate(data) if isinstance(data, dict) else None
