"""Keep merchant URLs away from the gateway's own network (reliability.md §4.2).

Decisions are made on resolved addresses, never on the host string, and the connection
is then pinned to an address that was checked, so DNS cannot change its answer between
the check and the request (rebinding).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import re
import socket
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from pesaswitch.errors import ValidationFailed

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Explicit lists: `is_global` alone has let multicast and NAT64 through in some versions.
BLOCKED_NETWORKS = tuple(
    ipaddress.ip_network(net)
    for net in (
        "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16",
        "172.16.0.0/12", "192.0.0.0/24", "192.0.2.0/24", "192.88.99.0/24", "192.168.0.0/16",
        "198.18.0.0/15", "198.51.100.0/24", "203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4",
        "::/96", "::1/128", "::ffff:0:0:0/96", "100::/64", "2001::/32", "2001:db8::/32",
        "2002::/16", "64:ff9b::/96", "64:ff9b:1::/48", "fc00::/7", "fe80::/10", "fec0::/10",
        "ff00::/8",
    )
)  # fmt: skip


class UnsafeUrl(ValidationFailed):
    code = "unsafe_url"
    title = "The URL is not allowed"


@dataclass(frozen=True, slots=True)
class Target:
    url: str
    scheme: str
    host: str
    port: int
    addresses: tuple[str, ...]


def is_blocked(address: IPAddress) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if not address.is_global:  # the registry's special-purpose ranges, as a second net
        return True
    return any(address in net for net in BLOCKED_NETWORKS if net.version == address.version)


# Resolves a host name to its addresses. Tests install their own (``use_resolver``) to
# show what happens when a name points into the gateway's network.
Resolver = Callable[[str, int], Awaitable[Sequence[str]]]


async def system_resolver(host: str, port: int) -> Sequence[str]:
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


_resolver: Resolver = system_resolver


@contextlib.contextmanager
def use_resolver(resolver: Resolver) -> Iterator[None]:
    global _resolver
    previous, _resolver = _resolver, resolver
    try:
        yield
    finally:
        _resolver = previous


_INET_ATON_FORM = re.compile(r"(0[xX][0-9a-fA-F]+|[0-9]+)(\.(0[xX][0-9a-fA-F]+|[0-9]+)){0,3}")


def numeric_host(host: str) -> IPAddress | None:
    """The address of a literal IP, including the old spellings that URL parsers and C
    libraries still accept: 2130706433, 0177.0.0.1, 0x7f.1, 127.1 are all 127.0.0.1."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if not _INET_ATON_FORM.fullmatch(host):
        return None
    try:
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except OSError:
        return None


def _split(url: str) -> tuple[str, str, int]:
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"}:
        raise UnsafeUrl("The URL must start with http:// or https://")
    if parts.username is not None or parts.password is not None:
        raise UnsafeUrl("The URL may not contain a user name or password")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise UnsafeUrl("The URL has an invalid port") from exc
    if not parts.hostname:
        raise UnsafeUrl("The URL has no host")
    return parts.scheme, parts.hostname, port


async def resolve(host: str, port: int) -> tuple[str, ...]:
    literal = numeric_host(host)
    if literal is not None:
        return (str(literal),)
    try:
        found = await _resolver(host, port)
    except OSError as exc:
        raise UnsafeUrl(f"The host {host!r} cannot be resolved") from exc
    # A scoped IPv6 answer ("fe80::1%eth0") is checked without its zone.
    return tuple(dict.fromkeys(address.split("%", 1)[0] for address in found))


async def check_url(
    url: str, *, allow_private: bool, require_https: bool = False, must_resolve: bool = True
) -> Target:
    """``must_resolve=False`` with ``allow_private`` only checks the URL's form: where any
    address is allowed there is nothing to decide yet (deliveries resolve and pin anyway)."""
    scheme, host, port = _split(url)
    if allow_private and not must_resolve:
        return Target(url, scheme, host, port, ())
    addresses = await resolve(host, port)
    if not allow_private:
        blocked = [a for a in addresses if is_blocked(ipaddress.ip_address(a))]
        if blocked:
            raise UnsafeUrl(
                f"{host} resolves to a private, loopback, link-local or reserved address",
                addresses=blocked,
            )
        if require_https and scheme != "https":
            raise UnsafeUrl("Live webhook URLs must use https://")
    if not addresses:
        raise UnsafeUrl(f"The host {host!r} has no addresses")
    return Target(url, scheme, host, port, addresses)
