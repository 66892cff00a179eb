"""When to retry a request, and how long to wait first.

A retry reuses the request exactly, ``Idempotency-Key`` included, so the gateway answers a
retried payment with the first one's response instead of sending a second STK prompt
(reliability.md §2). What is retried depends on whether the gateway dedupes the request:

- replay-safe (GET, DELETE, and the POSTs the gateway keeps idempotency records for):
  any transport error (the request may or may not have arrived), 409
  ``idempotency_key_in_use`` (the first attempt is still running), 429 and 5xx;
- other POSTs: only failures where the request surely did nothing: no connection made, or
  a 429 refusal.

A 5xx whose problem carries the ``payment`` or ``payout`` it created is not retried: the
gateway stored that answer under the key, and a retry would only replay it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

# Sent (or surely not sent) before any byte of the request reached the gateway.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """``max_retries`` retries after the first attempt. Waits grow as initial_delay * 2^n up
    to ``max_delay``, each scaled by a random 50-100 % (jitter, so that clients refused
    together do not all come back together). A ``Retry-After`` longer than
    ``max_retry_after`` is not waited for: the error is raised, its ``retry_after`` set."""

    max_retries: int = 3
    initial_delay: float = 0.5
    max_delay: float = 8.0
    max_retry_after: float = 60.0

    def backoff(self, retry_number: int) -> float:
        """The wait before retry ``retry_number`` (0 for the first retry)."""
        ceiling = min(self.max_delay, self.initial_delay * 2.0**retry_number)
        jitter: float = random.uniform(0.5, 1.0)
        return ceiling * jitter


NO_RETRIES = RetryPolicy(max_retries=0)


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header: delta-seconds or an HTTP date."""
    if value is None:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def delay_after_error(
    policy: RetryPolicy, error: httpx.TransportError, retry_number: int, *, replay_safe: bool
) -> float | None:
    """Seconds to wait before retrying after ``error``, or None to give up."""
    if retry_number >= policy.max_retries:
        return None
    if isinstance(error, httpx.UnsupportedProtocol):
        return None
    if not replay_safe and not isinstance(error, _NOT_SENT):
        return None
    return policy.backoff(retry_number)


def delay_after_response(
    policy: RetryPolicy,
    response: httpx.Response,
    problem: dict[str, Any],
    retry_number: int,
    *,
    replay_safe: bool,
) -> float | None:
    """Seconds to wait before retrying after an error ``response``, or None to give up."""
    if retry_number >= policy.max_retries:
        return None
    status = response.status_code
    if status == 429:
        retryable = True
    elif not replay_safe:
        retryable = False
    elif status == 409:
        retryable = problem.get("code") == "idempotency_key_in_use"
    elif status >= 500:
        retryable = "payment" not in problem and "payout" not in problem
    else:
        retryable = False
    if not retryable:
        return None
    retry_after = parse_retry_after(response.headers.get("retry-after"))
    if retry_after is None:
        return policy.backoff(retry_number)
    if retry_after > policy.max_retry_after:
        return None
    return retry_after
