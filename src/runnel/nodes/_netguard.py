"""Outbound address policy: which hosts a workflow may reach (server-side request forgery).

A workflow author must not be able to reach the operator's internal network, cloud metadata
endpoints (169.254.169.254) or services bound to loopback through ``http.request``. So every
target host is resolved and *every* address it resolves to must be publicly routable, unless
the operator listed the host in ``RUNNEL_HTTP_ALLOWED_HOSTS`` (``HttpPolicy.allowed_hosts``).

Known limit: the check resolves the name and the HTTP client resolves it again when it
connects, so a DNS server that answers differently within that window (DNS rebinding) is not
stopped here; pinning the checked address into the connection would close that gap.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
from collections.abc import Iterable
from typing import Final

from runnel.engine.signals import NodeFailure

__all__ = [
    "ALLOW_ALL",
    "IPAddress",
    "check_target",
    "forbidden_reason",
    "host_allowed",
    "normalize_host",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

#: The ``allowed_hosts`` entry that allows every host (trusted single-user installs).
ALLOW_ALL: Final = "*"

#: NAT64 well-known prefix: 64:ff9b::a.b.c.d reaches the IPv4 address a.b.c.d.
_NAT64: Final = ipaddress.IPv6Network("64:ff9b::/96")
#: Shared address space (carrier-grade NAT); not public, and not ``is_private`` either.
_SHARED: Final = ipaddress.IPv4Network("100.64.0.0/10")

_HINT: Final = (
    "private, loopback and link-local targets are refused; an operator can allow the host "
    "with RUNNEL_HTTP_ALLOWED_HOSTS"
)


def normalize_host(host: str) -> str:
    """Lower case, ASCII (IDNA), no IPv6 brackets, no trailing dot: the form hosts are
    compared in, so that an operator may list ``münchen.de`` or ``xn--mnchen-3ya.de``."""
    host = host.strip().lower()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    host = host.rstrip(".")
    if not host.isascii():
        # Not a valid name otherwise: it will match nothing and fail to resolve.
        with contextlib.suppress(UnicodeError):
            host = host.encode("idna").decode("ascii")
    return host


def host_allowed(host: str, allowed_hosts: Iterable[str]) -> bool:
    """Whether the operator allowed ``host`` (exact name or address, or ``*`` for all)."""
    wanted = normalize_host(host)
    return any(entry == ALLOW_ALL or normalize_host(entry) == wanted for entry in allowed_hosts)


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address stands for (mapped, 6to4, NAT64), if any."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def forbidden_reason(address: IPAddress) -> str | None:
    """Why ``address`` must not be reached (``"loopback"``...), or ``None`` if it is public."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            return forbidden_reason(embedded)
        if address.is_site_local:  # fec0::/10, deprecated but still routed inside sites
            return "private"
    # The order matters only for the message: the most specific reason first.
    if address.is_unspecified:
        return "unspecified"
    if address.is_loopback:
        return "loopback"
    if address.is_link_local:
        return "link-local"
    if address.is_multicast:
        return "multicast"
    if address.is_reserved:
        return "reserved"
    if address.is_private:
        return "private"
    if isinstance(address, ipaddress.IPv4Address) and address in _SHARED:
        return "shared address space"
    if not address.is_global:
        return "not publicly routable"
    return None


async def check_target(host: str, port: int, allowed_hosts: Iterable[str]) -> None:
    """Refuse ``host`` unless allowed or every address it resolves to is public.

    Raises ``NodeFailure`` of kind ``forbidden_target`` for a refused host and of kind
    ``http`` when the name does not resolve.
    """
    if host_allowed(host, allowed_hosts):
        return
    name = normalize_host(host)
    try:
        addresses: list[IPAddress] = [ipaddress.ip_address(name)]
    except ValueError:
        addresses = await _resolve(name, port)
    for address in addresses:
        reason = forbidden_reason(address)
        if reason is not None:
            shown = str(address) if str(address) == name else f"{name} ({address})"
            raise NodeFailure(
                f"refusing to connect to {shown}: {reason} address; {_HINT}",
                kind="forbidden_target",
                host=name,
                address=str(address),
                reason=reason,
            )


async def _resolve(name: str, port: int) -> list[IPAddress]:
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(name, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise NodeFailure(f"cannot resolve host {name!r}: {exc}", kind="http", host=name) from exc
    addresses: list[IPAddress] = []
    for _family, _type, _proto, _canonname, sockaddr in infos:
        # IPv6 link-local results carry a zone ("fe80::1%eth0"); the zone is not an address.
        text = str(sockaddr[0]).split("%", 1)[0]
        addresses.append(ipaddress.ip_address(text))
    if not addresses:
        raise NodeFailure(f"cannot resolve host {name!r}: no addresses", kind="http", host=name)
    return addresses
