"""httpx's client API on aiohttp's connection pool, for the gateway's outbound traffic.

Every outbound request (the STK Push and other Daraja calls, webhook deliveries, the
simulator's callbacks) is written against ``httpx.AsyncClient``. Its default transport,
httpcore, scans its pool on every request: at 32 requests in flight one POST cost
2.0 ms of client CPU, against 0.34 ms through this transport and 0.12 ms on aiohttp
alone (bench/issue-11-rounds.md, "HTTP client"). This transport keeps httpx's interface (and the
in-process ASGI transport the tests use) and sends through an ``aiohttp.ClientSession``.

The exceptions are httpx's, mapped by what they say about the request, because callers
decide on that: a push that never left (``ConnectError``/``ConnectTimeout``) fails the
payment at once, one that may have reached Daraja (a read timeout, a dropped connection)
stays pending until Daraja's answer. Only a failure to open the connection, or a wait for
a free one, maps to the first kind.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Any
from weakref import WeakKeyDictionary

import aiohttp
import httpx

_CHUNK = 16 * 1024


@contextmanager
def _mapped(request: httpx.Request | None) -> Iterator[None]:
    try:
        yield
    # Order matters: the connection-timeout classes also derive from ServerTimeoutError.
    except aiohttp.ConnectionTimeoutError as exc:
        raise httpx.ConnectTimeout(str(exc) or "connect timeout", request=request) from exc
    except aiohttp.ClientConnectorError as exc:
        raise httpx.ConnectError(str(exc), request=request) from exc
    except (aiohttp.SocketTimeoutError, aiohttp.ServerTimeoutError, TimeoutError) as exc:
        raise httpx.ReadTimeout(str(exc) or "read timeout", request=request) from exc
    except aiohttp.ClientPayloadError as exc:
        raise httpx.ReadError(str(exc), request=request) from exc
    except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError) as exc:
        # The request may have been written before the connection dropped.
        raise httpx.RemoteProtocolError(str(exc) or "server disconnected", request=request) from exc
    except aiohttp.InvalidURL as exc:
        raise httpx.UnsupportedProtocol(str(exc), request=request) from exc
    except aiohttp.ClientError as exc:
        raise httpx.TransportError(str(exc), request=request) from exc


class _Body(httpx.AsyncByteStream):
    def __init__(self, response: aiohttp.ClientResponse, request: httpx.Request) -> None:
        self._response = response
        self._request = request

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with _mapped(self._request):
            async for chunk in self._response.content.iter_chunked(_CHUNK):
                yield chunk

    async def aclose(self) -> None:
        self._response.release()


class AiohttpTransport(httpx.AsyncBaseTransport):
    """An httpx transport sending through one lazily made ``aiohttp.ClientSession`` (made
    on first use, inside the event loop that will run it)."""

    def __init__(self, *, limits: httpx.Limits | None = None) -> None:
        limits = limits or httpx.Limits()
        self._limit = limits.max_connections or 0  # aiohttp: 0 is no limit
        self._keepalive = limits.keepalive_expiry
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = aiohttp.TCPConnector(
                limit=self._limit, limit_per_host=0, keepalive_timeout=self._keepalive or 5.0
            )
            self._session = aiohttp.ClientSession(
                connector=connector, auto_decompress=False, skip_auto_headers=("User-Agent",)
            )
        return self._session

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        timeout: dict[str, Any] = request.extensions.get("timeout", {})
        body = await request.aread()
        headers = [(key, value) for key, value in request.headers.multi_items()
                   if key.lower() not in ("content-length", "transfer-encoding")]  # fmt: skip
        with _mapped(request):
            response = await self._client().request(
                request.method,
                str(request.url),
                headers=headers,
                data=body or None,
                allow_redirects=False,
                compress=None,
                # httpx's per-phase timeouts: the pool wait and the connect are one phase
                # in aiohttp (``connect``), each socket read another.
                timeout=aiohttp.ClientTimeout(
                    total=None,
                    connect=timeout.get("pool"),
                    sock_connect=timeout.get("connect"),
                    sock_read=timeout.get("read"),
                ),
                server_hostname=request.extensions.get("sni_hostname"),
            )
        return httpx.Response(
            status_code=response.status,
            headers=response.raw_headers,
            stream=_Body(response, request),
            request=request,
            extensions={"http_version": b"HTTP/1.1"},
        )

    async def post_capped(
        self,
        url: str,
        *,
        headers: dict[str, str],
        body: bytes,
        timeouts: httpx.Timeout,
        sni_hostname: str | None,
        keep: int,
    ) -> tuple[int, bytes]:
        """POST on aiohttp alone, without building httpx's request and response: the
        status and at most ``keep`` bytes of the answer. Raises httpx's exceptions, as
        ``handle_async_request`` does (without a request attached)."""
        with _mapped(None):
            async with self._client().post(
                url,
                headers=headers,
                data=body,
                allow_redirects=False,
                compress=None,
                timeout=aiohttp.ClientTimeout(
                    total=None, connect=timeouts.pool, sock_connect=timeouts.connect,
                    sock_read=timeouts.read,
                ),
                server_hostname=sni_hostname,
            ) as response:  # fmt: skip
                kept = bytearray()
                async for chunk in response.content.iter_chunked(_CHUNK):
                    kept += chunk
                    if len(kept) >= keep:
                        break
                return response.status, bytes(kept[:keep])

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


_TRANSPORTS: WeakKeyDictionary[httpx.AsyncClient, AiohttpTransport] = WeakKeyDictionary()


def async_client(*, limits: httpx.Limits | None = None, **options: Any) -> httpx.AsyncClient:
    """An ``httpx.AsyncClient`` (``options`` as httpx takes them) sending through aiohttp."""
    transport = AiohttpTransport(limits=limits)
    client = httpx.AsyncClient(transport=transport, **options)
    _TRANSPORTS[client] = transport
    return client


async def post_for_status(
    client: httpx.AsyncClient, url: str, *, headers: dict[str, str], body: bytes
) -> int:
    """POST and return the status, the answer read and dropped: straight through aiohttp
    on a client ``async_client`` made, through httpx on any other. Raises httpx's
    errors either way."""
    transport = aiohttp_transport_of(client)
    if transport is None:
        response = await client.post(url, content=body, headers=headers)
        return response.status_code
    status, _ = await transport.post_capped(
        url, headers={**client.headers, **headers}, body=body, timeouts=client.timeout,
        sni_hostname=None, keep=_CHUNK,
    )  # fmt: skip
    return status


def aiohttp_transport_of(client: httpx.AsyncClient) -> AiohttpTransport | None:
    """The aiohttp transport of a client ``async_client`` made (None for any other, such
    as a test's ASGI client), for the hot sends that skip httpx's layers."""
    return _TRANSPORTS.get(client)
