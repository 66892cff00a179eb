"""Sending one API request: auth, ``Idempotency-Key``, retries, and errors from problems.

``SyncTransport`` and ``AsyncTransport`` differ only in ``send`` (blocking or awaited I/O and
sleep); everything they decide is in ``_retry`` and ``_errors``, shared by both.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from pesaswitch_sdk._errors import (
    APIConnectionError,
    APITimeoutError,
    error_from_response,
    read_problem,
)
from pesaswitch_sdk._retry import RetryPolicy, delay_after_error, delay_after_response
from pesaswitch_sdk._version import VERSION

# Longer than the gateway's own wait for Daraja (PESASWITCH_DARAJA_TIMEOUT, 30 s): when
# M-Pesa is slow, the gateway's answer (502 daraja_timeout, with the pending payment)
# arrives before the client gives up, instead of a bare timeout and a retry.
DEFAULT_TIMEOUT = httpx.Timeout(60.0, connect=5.0)
USER_AGENT = f"pesaswitch-sdk-python/{VERSION} httpx/{httpx.__version__}"

QueryParams = Mapping[str, str | int | None]


def new_idempotency_key() -> str:
    return str(uuid.uuid4())


@dataclass(frozen=True, slots=True)
class ApiRequest:
    method: str
    path: str
    params: QueryParams | None = None
    json: Any = None
    # Set on every create; the same value goes out on every retry.
    idempotency_key: str | None = None
    # Whether the gateway dedupes this request, so that sending it twice does it once.
    replay_safe: bool = True
    headers: dict[str, str] = field(default_factory=dict)

    def build_headers(self) -> dict[str, str]:
        headers = dict(self.headers)
        if self.idempotency_key is not None:
            headers["Idempotency-Key"] = self.idempotency_key
        return headers

    def query(self) -> dict[str, str | int] | None:
        if self.params is None:
            return None
        return {name: value for name, value in self.params.items() if value is not None}


def create_request(
    path: str, body: dict[str, Any], *, idempotency_key: str | None, idempotent: bool = True
) -> ApiRequest:
    """A POST that creates something, with the caller's key or a fresh one.

    ``idempotent`` says whether the gateway honours the key on this path (payments and
    payouts do); the key is sent either way so that it is there when the gateway does.
    """
    return ApiRequest(
        "POST",
        path,
        json={name: value for name, value in body.items() if value is not None},
        idempotency_key=idempotency_key or new_idempotency_key(),
        replay_safe=idempotent,
    )


def client_headers(api_key: str) -> dict[str, str]:
    return {
        "Authorization": f"Bearer {api_key}",
        "User-Agent": USER_AGENT,
        "Accept": "application/json",
    }


def _body(response: httpx.Response) -> Any:
    return response.json() if response.content else None


def _connection_error(error: httpx.TransportError) -> APIConnectionError:
    if isinstance(error, httpx.TimeoutException):
        return APITimeoutError(f"The gateway did not answer in time: {error!r}")
    return APIConnectionError(f"Could not reach the gateway: {error!r}")


class SyncTransport:
    def __init__(self, http: httpx.Client, retries: RetryPolicy) -> None:
        self.http = http
        self.retries = retries

    def send(self, request: ApiRequest) -> Any:
        """The decoded JSON body of the first 2xx answer; raises the SDK's errors."""
        headers = request.build_headers()
        retry_number = 0
        while True:
            try:
                response = self.http.request(
                    request.method, request.path, params=request.query(), json=request.json,
                    headers=headers,
                )  # fmt: skip
            except httpx.TransportError as error:
                delay = delay_after_error(
                    self.retries, error, retry_number, replay_safe=request.replay_safe
                )
                if delay is None:
                    raise _connection_error(error) from error
            else:
                if response.is_success:
                    return _body(response)
                delay = delay_after_response(
                    self.retries, response, read_problem(response), retry_number,
                    replay_safe=request.replay_safe,
                )  # fmt: skip
                if delay is None:
                    raise error_from_response(response)
            time.sleep(delay)
            retry_number += 1


class AsyncTransport:
    def __init__(self, http: httpx.AsyncClient, retries: RetryPolicy) -> None:
        self.http = http
        self.retries = retries

    async def send(self, request: ApiRequest) -> Any:
        """The decoded JSON body of the first 2xx answer; raises the SDK's errors."""
        headers = request.build_headers()
        retry_number = 0
        while True:
            try:
                response = await self.http.request(
                    request.method, request.path, params=request.query(), json=request.json,
                    headers=headers,
                )  # fmt: skip
            except httpx.TransportError as error:
                delay = delay_after_error(
                    self.retries, error, retry_number, replay_safe=request.replay_safe
                )
                if delay is None:
                    raise _connection_error(error) from error
            else:
                if response.is_success:
                    return _body(response)
                delay = delay_after_response(
                    self.retries, response, read_problem(response), retry_number,
                    replay_safe=request.replay_safe,
                )  # fmt: skip
                if delay is None:
                    raise error_from_response(response)
            await asyncio.sleep(delay)
            retry_number += 1
